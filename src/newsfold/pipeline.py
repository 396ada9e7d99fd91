"""One run: schedule -> fetch -> parse -> articles -> dedup -> store, feed by feed.

Each due feed is one task. Its feed body is fetched (conditionally) and parsed; its new or edited
entries' pages are downloaded and extracted while other feeds go on fetching; what the feed
produced is committed in slices of COMMIT_SLICE entries, one transaction each. A failure anywhere
in a feed is recorded on that feed and never touches the others; a crash loses at most the slices
in flight.

--max-time: at the deadline no feed is fetched or parsed any more; a feed that is past that makes
no new pages: it commits the articles extracted so far, and its entries not done wait for the
next run, which takes them first. Every run makes progress on every feed it reached.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from newsfold import dedup, fold, schedule
from newsfold.articles import ArticleMaker, MadeArticles, PageJob, add_counts
from newsfold.config import Settings
from newsfold.errors import FetchError, FoldError, NotAFeed, ParseError, StageError, StoreError
from newsfold.extract import ExtractPool
from newsfold.fetch import Fetcher
from newsfold.hostslots import HostSlots, SlotStore
from newsfold.model import Article, Entry, FeedState, FetchResult, ParsedFeed, RunReport
from newsfold.parse import parse_feed
from newsfold.pool import Step
from newsfold.robots import RobotsPolicy, RobotsStore
from newsfold.store import FeedCommit, FeedQueue, FeedUpdate, PlannedArticle, Refolder, RunRecords
from newsfold.storecalls import StoreCalls

Clock = Callable[[], datetime]
T = TypeVar("T")
log = logging.getLogger("newsfold")
PARSING = Step("parsing", ParseError)
FINGERPRINTING = Step("fingerprinting", FoldError)
FEED_BACKLOG_FACTOR = 10  # parse this many times the per-run cap, so deferred entries come later
COMMIT_SLICE = 50  # entries committed per transaction: a slow feed keeps its work as it goes
COMMIT_GRACE = 5.0  # seconds past --max-time for feeds to commit what they have done


@dataclass(frozen=True, slots=True)
class RunOptions:
    include_all: bool = False
    max_time: timedelta | None = None
    worker: str = ""


class RunStore(FeedQueue, RunRecords, RobotsStore, SlotStore, Protocol):
    """What one run needs of the store."""


class Progress:
    """Hooks the CLI fills in to show progress; the default does nothing."""

    def feed_done(self, url: str, error: str | None) -> None:
        return None


async def run(
    settings: Settings,
    store: RunStore,
    clock: Clock,
    options: RunOptions = RunOptions(),
    progress: Progress | None = None,
) -> RunReport:
    """Process every due feed once; returns what was done."""
    started, started_at = time.monotonic(), clock()
    report = RunReport()
    progress = progress or Progress()
    worker = options.worker or f"{socket.gethostname()}:{id(report):x}"
    deadline = None if options.max_time is None else started + options.max_time.total_seconds()
    if deadline is not None:
        # At --max-time this process makes the plans of what it commits (_plans): load what
        # that takes in the background now, not in the few seconds after the limit.
        threading.Thread(target=dedup.prepare, args=(settings.dedup,), daemon=True).start()
    async with StoreCalls() as calls, StoreCalls(None, "newsfold-slots") as slot_calls:
        fetch = settings.fetch
        per_host = HostSlots.for_store(store, worker, fetch.per_host, fetch.timeout, slot_calls)
        with ExtractPool(settings.extract) as pool:
            async with Fetcher(fetch, shared_per_host=per_host) as fetcher:
                robots = RobotsPolicy(fetcher, fetch.user_agent, store, calls, clock=clock)
                runner = _FeedRunner(settings, store, clock, fetcher, pool, robots, calls, report)
                runner.deadline = _loop_time_of(deadline)
                await _run_feeds(runner, store, clock, options, worker, deadline, progress)
                runner.articles.stop()  # pages of feeds cut off, if any
        await calls(store.prune_dedup, clock() - settings.dedup.window)
        report.seconds = time.monotonic() - started
        await calls(store.record_run, worker, started_at, clock(), json.dumps(asdict(report)))
    return report


async def _run_feeds(
    runner: _FeedRunner,
    store: FeedQueue,
    clock: Clock,
    options: RunOptions,
    worker: str,
    deadline: float | None,
    progress: Progress,
) -> None:
    lease = runner.settings.schedule.lease  # a killed worker's feeds return to the pool after it
    leases = store.lease_due_feeds(
        clock(), include_all=options.include_all, worker=worker, lease=lease
    )
    limit = asyncio.Semaphore(runner.settings.fetch.concurrency * 2)
    tasks: set[asyncio.Task[None]] = set()

    async def one(feed: FeedState) -> None:
        try:
            error = await runner.process(feed)
            progress.feed_done(feed.url, error)
        except StoppedAtDeadline:
            runner.report.stopped_early = True
        finally:
            limit.release()

    while True:
        await limit.acquire()  # before leasing: a leased feed should not wait
        if deadline is not None and time.monotonic() >= deadline:
            runner.report.stopped_early = True
            break
        feed = await runner.calls(next, leases, None)
        if feed is None:
            break
        task = asyncio.create_task(one(feed))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        # Past the deadline feeds only commit what they did: give them a few seconds for it.
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        grace = None if remaining is None else remaining + COMMIT_GRACE
        _done, pending = await asyncio.wait(set(tasks), timeout=grace)
        if pending:
            runner.report.stopped_early = True
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
    # Feeds cut off by --max-time go back to the pool at once, not when their lease expires.
    await runner.calls(store.release_leases, worker)


class StoppedAtDeadline(Exception):
    """--max-time came before the feed was fetched and parsed: it is left for the next run."""


def _loop_time_of(moment: float | None) -> float | None:
    """A time.monotonic() moment on the event loop's clock."""
    if moment is None:
        return None
    return asyncio.get_running_loop().time() + (moment - time.monotonic())


class _FeedRunner:
    def __init__(
        self,
        settings: Settings,
        store: FeedQueue,
        clock: Clock,
        fetcher: Fetcher,
        pool: ExtractPool,
        robots: RobotsPolicy,
        calls: StoreCalls,
        report: RunReport,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.fetcher = fetcher
        self.pool = pool
        self.calls = calls
        self.report = report
        self.articles = ArticleMaker(settings, fetcher, pool, robots, report)
        self.deadline: float | None = None  # --max-time, on the event loop's clock

    async def process(self, feed: FeedState) -> str | None:
        """Check one feed; returns its error line, or None when it went well."""
        result: FetchResult | None = None
        try:
            result = await self._before_deadline(self._fetch(feed))
            parsed = await self._before_deadline(self._parse_if_changed(feed, result))
            if parsed is None:
                self.report.feeds_not_modified += 1
                await self._record_unchanged(feed, result)
            else:
                await self._record_parsed(feed, result, parsed)
                self.report.feeds_ok += 1
        except StageError as exc:
            not_a_feed = result if isinstance(exc, NotAFeed) else None
            await self._record_failure(feed, exc, not_a_feed)
            return str(exc)
        except (StoreError, StoppedAtDeadline):
            raise  # the store itself failed, or --max-time came: the feed is not recorded
        except Exception as exc:  # a bug costs this feed's check, never the run
            log.debug("%s: unexpected error", feed.url, exc_info=True)
            cause = f"internal error: {type(exc).__name__}: {exc}"
            internal = StageError(feed.url, cause, kind="internal", transient=True)
            await self._record_failure(feed, internal, None)
            return str(internal)
        return None

    async def _fetch(self, feed: FeedState) -> FetchResult:
        return await self.fetcher.fetch(feed.url, etag=feed.etag, last_modified=feed.last_modified)

    async def _parse_if_changed(self, feed: FeedState, result: FetchResult) -> ParsedFeed | None:
        """The feed's entries, or None when it did not change; a body that was not a feed last
        time is the same fault this time, told without parsing it again."""
        if not _unchanged(feed, result):
            return await self._parse(feed, result)
        if feed.body_error is not None:
            raise NotAFeed(result.final_url, feed.body_error)
        return None

    async def _before_deadline(self, work: Awaitable[T]) -> T:
        """`work`, cut off by --max-time: then StoppedAtDeadline, and the feed is not recorded."""
        if self.deadline is None:
            return await work
        try:
            async with asyncio.timeout_at(self.deadline) as cut:
                return await work
        except TimeoutError:
            if cut.expired():
                raise StoppedAtDeadline from None
            raise

    async def _parse(self, feed: FeedState, result: FetchResult) -> ParsedFeed:
        assert result.body is not None
        cap = self.settings.fetch.max_new_per_feed * FEED_BACKLOG_FACTOR
        return await self.pool.call(
            PARSING,
            feed.url,
            parse_feed,
            result.body,
            url=result.final_url,
            content_type=result.content_type,
            now=self.clock(),
            max_entries=cap,
        )

    async def _record_failure(
        self, feed: FeedState, exc: StageError, not_a_feed: FetchResult | None
    ) -> None:
        """Record a failed check; `not_a_feed` is the answer whose body was not a feed, kept by
        its validators and hash with the cause."""
        now = self.clock()
        next_check = schedule.next_check_after_failure(
            now,
            self.settings.schedule,
            url=feed.url,
            error_count=feed.error_count + 1,
            transient=exc.transient,
            retry_after_seconds=exc.retry_after if isinstance(exc, FetchError) else None,
        )
        self.report.feeds_failed += 1
        self.report.count_failure(exc.kind)
        update = FeedUpdate(feed.id, now, next_check, error=str(exc), error_kind=exc.kind)
        if not_a_feed is not None:
            update = replace(
                update,
                etag=not_a_feed.etag or feed.etag,
                last_modified=not_a_feed.last_modified or feed.last_modified,
                body_hash=_body_hash(not_a_feed.body) or feed.body_hash,
                body_error=exc.cause,
            )
        await self._commit(feed.url, update, [], [], {})

    async def _record_unchanged(self, feed: FeedState, result: FetchResult) -> None:
        now = self.clock()
        next_check = schedule.next_check_after_success(
            now,
            self.settings.schedule,
            url=feed.url,
            override=feed.interval,
            rate=feed.rate,
            max_age_seconds=result.max_age,
        )
        update = FeedUpdate(
            feed.id,
            now,
            next_check,
            etag=result.etag or feed.etag,
            last_modified=result.last_modified or feed.last_modified,
            body_hash=feed.body_hash,
            rate=feed.rate,
        )
        await self._commit(feed.url, update, [], [], {})

    async def _record_parsed(
        self, feed: FeedState, result: FetchResult, parsed: ParsedFeed
    ) -> None:
        keys = [e.key for e in parsed.entries]
        known = await self.calls(self.store.entry_hashes, feed.id, keys)
        changed = [e for e in parsed.entries if known.get(e.key) != e.content_hash]
        changed.sort(key=lambda e: e.key not in feed.pending)  # an earlier run's leftovers first
        cap = self.settings.fetch.max_new_per_feed
        taken, deferred = changed[:cap], len(changed) - min(len(changed), cap)
        links = [e.link for e in taken if e.link]
        stored = await self.calls(self.store.known_article_urls, links)
        edited = {e.key for e in taken if e.key in known}
        jobs = self.articles.start(taken, stored, edited)
        page_failures: dict[str, int] = {}
        stopped = False
        while not stopped:  # at least once: the feed's state is recorded even with no entry
            made, jobs, stopped = await self._next_slice(feed, jobs)
            add_counts(page_failures, made.page_failures)
            left = [job.entry.key for job in jobs]
            stopped = stopped or not jobs
            await self._commit_slice(
                feed, result, parsed, made, left, deferred, page_failures, stopped
            )
            self.report.entries_new += sum(1 for e in made.entries if e.key not in known)
        self.report.entries_deferred += deferred + len(jobs)

    async def _next_slice(
        self, feed: FeedState, jobs: list[PageJob]
    ) -> tuple[MadeArticles, list[PageJob], bool]:
        """The next COMMIT_SLICE entries' articles, the jobs still to do, and whether the run
        stops there: once --max-time is up, whatever is done among all the jobs is taken, and
        the rest is left for the next run."""
        made, left = await self.articles.finish(feed, jobs[:COMMIT_SLICE], self.deadline)
        rest = jobs[COMMIT_SLICE:]
        if not left:
            return made, rest, False
        self.report.stopped_early = True
        self.articles.stop()  # the deadline: no page is waited for any more, in any feed
        late, late_left = await self.articles.finish(feed, rest, self.deadline)
        made.absorb(late)
        return made, left + late_left, True

    async def _commit_slice(
        self,
        feed: FeedState,
        result: FetchResult,
        parsed: ParsedFeed,
        made: MadeArticles,
        left: list[str],
        deferred: int,
        page_failures: dict[str, int],
        last: bool,
    ) -> None:
        """Commit a slice of the feed's entries with the feed's state; while entries remain
        (`left` in this run, `deferred` past the cap) the feed is not up to date. Until the
        `last` slice the feed stays leased and is due at once: other workers keep off it while
        this run goes on, and a run that dies mid-feed leaves the rest to the next one."""
        now = self.clock()
        dates = [e.published for e in parsed.entries if e.published and not e.date_suspect]
        rate = schedule.publishing_interval(dates, now)
        next_check = schedule.next_check_after_success(
            now,
            self.settings.schedule,
            url=feed.url,
            override=feed.interval,
            rate=rate,
            ttl=parsed.ttl,
            max_age_seconds=result.max_age,
        )
        unfinished = deferred or left
        if unfinished:
            # Come back soon, and with a full fetch: validators would answer 304 to the backlog.
            next_check = now + self.settings.schedule.min_interval if last else now
        update = FeedUpdate(
            feed.id,
            now,
            next_check,
            etag=None if unfinished else result.etag,
            last_modified=None if unfinished else result.last_modified,
            body_hash=None if unfinished else _body_hash(result.body),
            rate=rate,
            title=parsed.title,
            page_failures=dict(page_failures),
            pending=left,
            leased_on=not last,
        )
        commit = await self._commit(feed.url, update, made.entries, made.articles, made.links)
        self.report.articles_new += commit.articles_new
        self.report.stories_new += commit.stories_new
        self.report.stories_merged += commit.stories_merged

    async def _plans(self, url: str, texts: list[str]) -> list[fold.FoldPlan]:
        """In the process pool until --max-time, beside the store after it: the workers may
        then still be busy with pages the run gave up."""
        dedup_settings = self.settings.dedup
        try:
            work = self.pool.call(FINGERPRINTING, url, fold.plan_all, texts, dedup_settings)
            return await self._before_deadline(work)
        except StoppedAtDeadline:
            return await self.calls(fold.plan_all, texts, dedup_settings)

    async def _commit(
        self,
        url: str,
        update: FeedUpdate,
        entries: Sequence[Entry],
        articles: Sequence[Article],
        links: dict[str, str],
    ) -> FeedCommit:
        texts = [a.text for a in articles]
        # Fingerprints, band and lock keys in a worker process: the transaction only looks up.
        plans = await self._plans(url, texts) if texts else []
        planned = [PlannedArticle(a, p) for a, p in zip(articles, plans, strict=True)]
        rules = fold_rules(self.settings, self.clock())
        return await self.calls(self.store.record_feed, update, entries, planned, links, rules)


def fold_rules(settings: Settings, now: datetime) -> fold.FoldRules:
    """Dedup's settings, and its window as it stands at `now`."""
    return fold.FoldRules(settings.dedup, now - settings.dedup.window)


def refold(settings: Settings, store: Refolder, since: datetime, now: datetime) -> int:
    """Recompute the stories of articles first seen since `since` (after a settings change)."""
    plans = {
        article_id: fold.plan(text, settings.dedup) for article_id, text in store.texts_since(since)
    }
    return store.refold(plans, fold_rules(settings, now))


def _unchanged(feed: FeedState, result: FetchResult) -> bool:
    """304, or a 200 with the very body we saw last time (servers whose validators lie)."""
    if result.not_modified:
        return True
    return feed.body_hash is not None and feed.body_hash == _body_hash(result.body)


def _body_hash(body: bytes | None) -> str | None:
    return None if body is None else hashlib.sha256(body).hexdigest()
