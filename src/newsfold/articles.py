"""Articles: a feed entry is only a pointer; download its page and extract the story's text.

For each new or edited entry (its link is canonical since parsing): skip the download when the
article is already stored (another feed listed it) unless the entry was edited; honour robots.txt;
download the page with the shared fetcher; refuse non-HTML answers; extract in the process pool.
When the page fails or gives less text than the feed itself carries, the feed's text is kept and
the reason recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from newsfold.config import Settings
from newsfold.errors import PageSkipped, StageError
from newsfold.extract import ExtractPool
from newsfold.fetch import HTML_ACCEPT, Fetcher
from newsfold.model import MAX_TEXT_CHARS, Article, Entry, Extracted, FeedState, RunReport
from newsfold.robots import RobotsPolicy
from newsfold.urls import canonicalize_url

HTML_TYPES = ("text/html", "application/xhtml+xml")
PAGES_AHEAD_PER_WORKER = 4


@dataclass(slots=True)
class MadeArticles:
    entries: list[Entry] = field(default_factory=list)  # the entries done, articles or not
    articles: list[Article] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)  # entry key -> article URL
    # Articles that kept the feed's text because their page failed or said less, by reason
    # (pages not downloaded by choice, extract.fetch_pages off, are no failure).
    page_failures: dict[str, int] = field(default_factory=dict)

    def absorb(self, later: MadeArticles) -> None:
        """Add the work on later entries of the same feed."""
        self.entries += later.entries
        self.links.update(later.links)
        urls = {a.url for a in self.articles}
        self.articles += [a for a in later.articles if a.url not in urls]
        add_counts(self.page_failures, later.page_failures)


def add_counts(total: dict[str, int], more: dict[str, int]) -> None:
    for reason, count in more.items():
        total[reason] = total.get(reason, 0) + count


@dataclass(frozen=True, slots=True)
class PageJob:
    """An entry on its way to an article: its canonical link and, if asked for, its page."""

    entry: Entry
    link: str | None  # None: no usable link, so no article
    stored: bool  # the article is stored already (another feed listed it): nothing to do
    page: asyncio.Task[PageOutcome] | None  # None: no download (stored, or pages off)


@dataclass(frozen=True, slots=True)
class PageOutcome:
    extracted: Extracted | None
    error: str | None = None
    kind: str | None = None


async def _ready(task: asyncio.Task[PageOutcome], until: float | None) -> bool:
    """Whether `task` finished (not cancelled), waiting for it until `until` at the latest."""
    if not task.done():
        timeout = None if until is None else max(0.0, until - asyncio.get_running_loop().time())
        await asyncio.wait({task}, timeout=timeout)
    return task.done() and not task.cancelled()


class ArticleMaker:
    def __init__(
        self,
        settings: Settings,
        fetcher: Fetcher,
        pool: ExtractPool,
        robots: RobotsPolicy,
        report: RunReport,
    ) -> None:
        self.settings = settings
        self.fetcher = fetcher
        self.pool = pool
        self.robots = robots
        self.report = report
        # One download per URL per run, however many feeds list it.
        self._pages: dict[str, asyncio.Task[PageOutcome]] = {}
        self._extracting: set[str] = set()  # pages in a worker now
        # Pages between download and extraction: downloads run a little ahead of the workers,
        # and memory holds a few page bodies, not every page the run will see.
        self._in_flight = asyncio.Semaphore(PAGES_AHEAD_PER_WORKER * pool.workers)

    def start(self, entries: Sequence[Entry], known: set[str], edited: set[str]) -> list[PageJob]:
        """Start the page downloads of `entries` (`known`: article URLs already stored,
        `edited`: keys of entries whose article is made again); they run while earlier work
        is committed."""
        jobs = []
        for entry in entries:
            link = entry.link
            stored = link is not None and link in known and entry.key not in edited
            page = self._page(link) if link is not None and not stored else None
            jobs.append(PageJob(entry, link, stored, page))
        return jobs

    async def finish(
        self, feed: FeedState, jobs: Sequence[PageJob], until: float | None = None
    ) -> tuple[MadeArticles, list[PageJob]]:
        """The articles of `jobs`, in order, and the jobs left undone: a page not ready at
        `until` (the event loop's clock) is not waited for."""
        made = MadeArticles()
        left = []
        for job in jobs:
            if job.page is not None and not await _ready(job.page, until):
                left.append(job)
                continue
            made.entries.append(job.entry)
            if job.link is None:
                continue
            if job.stored:
                made.links[job.entry.key] = job.link
                continue
            outcome = (
                job.page.result() if job.page else PageOutcome(None, "page download is off", "off")
            )
            self._add(made, feed, job, outcome)
        return made, left

    def stop(self) -> None:
        """Give up the pages not done yet (--max-time is up). A page a worker is extracting is
        let finish: cancelling it would kill the worker, and the commits waiting for the pool
        would wait for a new one."""
        for url, task in self._pages.items():
            if url not in self._extracting:
                task.cancel()

    def _add(self, made: MadeArticles, feed: FeedState, job: PageJob, outcome: PageOutcome) -> None:
        assert job.link is not None
        article = self._article(feed, job.entry, job.link, outcome)
        if article is None:
            return
        made.links[job.entry.key] = article.url
        if all(a.url != article.url for a in made.articles):
            made.articles.append(article)
            if article.page_error is not None and outcome.kind != "off":
                add_counts(made.page_failures, {outcome.kind or "short": 1})

    def _page(self, url: str) -> asyncio.Task[PageOutcome] | None:
        if not self.settings.extract.fetch_pages:
            return None
        if url not in self._pages:
            self._pages[url] = asyncio.create_task(self._download_and_extract(url))
        return self._pages[url]

    async def _download_and_extract(self, url: str) -> PageOutcome:
        async with self._in_flight:
            return await self._page_outcome(url)

    async def _page_outcome(self, url: str) -> PageOutcome:
        try:
            if self.settings.fetch.respect_robots and not await self.robots.allowed(url):
                raise PageSkipped(url, "disallowed by robots.txt", "robots")
            result = await self.fetcher.fetch(url, accept=HTML_ACCEPT)
            if result.body is None:
                raise PageSkipped(url, "empty answer", "empty")
            media_type = (result.content_type or "text/html").split(";")[0].strip().lower()
            if media_type not in HTML_TYPES:
                raise PageSkipped(url, f"not an HTML page ({media_type})", "not_html")
            self._extracting.add(url)
            try:
                extracted = await self.pool.extract(
                    result.body, result.final_url, result.content_type
                )
            finally:
                self._extracting.discard(url)
        except StageError as exc:  # the feed's text is kept, with this reason
            return PageOutcome(None, str(exc), exc.kind)
        return PageOutcome(extracted)

    def _article(
        self, feed: FeedState, entry: Entry, link: str, outcome: PageOutcome
    ) -> Article | None:
        page = outcome.extracted
        feed_text = entry.summary or ""
        error = outcome.error
        if page is not None and len(page.text) < len(feed_text):
            error = f"{link}: the page's text is shorter than the feed's"
        use_page = page is not None and error is None
        text = (page.text if use_page and page else feed_text)[:MAX_TEXT_CHARS]
        if not text.strip():
            return None
        if error is not None:
            self.report.articles_from_feed_text += 1
            kind = outcome.kind or "short"
            self.report.pages_skipped[kind] = self.report.pages_skipped.get(kind, 0) + 1
        canonical = canonicalize_url(page.canonical_url) if page and page.canonical_url else None
        # A date in 1970 or 2999 stays on the entry, flagged, never on the article.
        published = entry.published if not entry.date_suspect else None
        return Article(
            url=canonical or link,
            feed_id=feed.id,
            title=entry.title or (page.title if page else None),
            text=text,
            text_source="page" if use_page else "feed",
            published=published or (page.published if page else None),
            author=entry.author or (page.author if page else None),
            site_name=page.site_name if page else None,
            language=page.language if page else None,
            page_error=error,
        )
