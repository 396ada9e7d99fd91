"""Several workers sharing one PostgreSQL store: one worker's stories, nothing lost to a kill.

The web here is generated: corpus articles and templated stories with their syndicated copies
(tests/syndicate.py), listed in the RSS feeds of a few outlets with the whole text in
content:encoded, so runs download no pages. Only story groups whose every two copies are LSH
candidates that fold, and that fold with nothing outside the group, are kept: such a web has one
right answer whatever order the articles arrive in, and every run, by one worker or by four,
must find exactly it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import html
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from itertools import combinations
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from newsfold import dedup
from newsfold.config import DedupSettings, Settings
from newsfold.fold import plan
from newsfold.hostslots import HostSlots
from newsfold.model import Article, Entry, FeedSource
from newsfold.parse import html_to_text
from newsfold.pipeline import fold_rules
from newsfold.store import FeedCommit, FeedUpdate, PlannedArticle, Store, open_store, schema
from newsfold.storecalls import StoreCalls
from tests.server import FeedServer
from tests.stores import migrated_store, sqlite_url
from tests.syndicate import OUTLETS, Doc, paragraphs, syndicate, trap_stories
from tests.textmetrics import CORPUS, corpus_pages

NEWSFOLD = Path(sys.executable).with_name("newsfold")
RUN_TIMEOUT = 120.0  # seconds: far beyond any run here; a hang fails instead of blocking
SEED = 11
SECTIONS = ("world", "business", "politics", "science", "sport")
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
KILL_LEASE_SECONDS = 2
LEAD_WORDS = 300
PER_HOST = 4
TRAPS_PER_FAMILY = 40

Stories = frozenset[frozenset[str]]


# --- the generated web -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Web:
    docs: tuple[Doc, ...]
    feeds: dict[str, tuple[Doc, ...]]  # feed path on the server -> its items

    def stories(self) -> Stories:
        groups: dict[str, set[str]] = {}
        for doc in self.docs:
            groups.setdefault(doc.story, set()).add(doc.url)
        return frozenset(frozenset(urls) for urls in groups.values())

    def groups(self) -> list[list[Doc]]:
        by_story: dict[str, list[Doc]] = {}
        for doc in self.docs:
            by_story.setdefault(doc.story, []).append(doc)
        return list(by_story.values())


def generate_web(seed: int) -> Web:
    """Originals with zero to four copies each, kept where folding has one answer, in feeds."""
    rng = random.Random(seed)
    docs = [
        doc
        for original in corpus_originals(rng) + trap_stories(seed, TRAPS_PER_FAMILY)
        for doc in [original, *syndicate(original, rng, rng.randint(0, 4))]
    ]
    return Web(tuple(docs := folding_in_any_order(docs)), outlet_feeds(docs, rng))


def corpus_originals(rng: random.Random) -> list[Doc]:
    """The corpus articles with a text truth long enough to be syndicated (and no angle
    brackets in it, which the feed's HTML would turn into tags), cut to about LEAD_WORDS words
    so that parsing and fingerprinting the web stay quick."""
    base = datetime(2026, 2, 17, 6, 0, tzinfo=UTC)
    docs = []
    for page in corpus_pages():
        text = first_words(page.truth or "", LEAD_WORDS)
        if len(text.split()) < 150 or len(paragraphs(text)) < 4 or "<" in text:
            continue
        key = str(page.path.relative_to(CORPUS))
        title = " ".join(paragraphs(text)[0].split()[:12])
        published = base + timedelta(minutes=rng.randint(0, 3 * 24 * 60))
        docs.append(Doc(key, key, title, text, rng.choice(OUTLETS), published, "corpus"))
    return docs


def first_words(text: str, count: int) -> str:
    """The paragraphs of `text` up to the one that reaches `count` words."""
    kept, words = [], 0
    for paragraph in paragraphs(text):
        if words >= count:
            break
        kept.append(paragraph)
        words += len(paragraph.split())
    return "\n\n".join(kept)


def folding_in_any_order(docs: list[Doc]) -> list[Doc]:
    """The docs of the story groups in which every two docs share an LSH band key and fold,
    and no doc folds with one of another group: whatever the order, each group is one story.

    Judged on each text as a worker reads it from the feed. Feed text runs its paragraphs
    together, and a text whose one line does not end like a sentence keeps no facts (names,
    numbers) for dedup to check, so it folds with any text of its template: those are left out.
    """
    settings = DedupSettings()
    texts = texts_read_from_a_feed(docs)
    prints = [dedup.fingerprint(texts[d.url], settings) for d in docs]
    kept = [i for i, fp in enumerate(prints) if fp.fact_count]
    docs, prints = [docs[i] for i in kept], [prints[i] for i in kept]
    keys = [set(dedup.band_keys(fp, settings)) for fp in prints]
    members: dict[str, list[int]] = {}
    for i, doc in enumerate(docs):
        members.setdefault(doc.story, []).append(i)

    def folds(i: int, j: int) -> bool:
        return dedup.compare(prints[i], prints[j], settings).folds

    unclear = {
        story
        for story, group in members.items()
        for i, j in combinations(group, 2)
        if not (keys[i] & keys[j] and folds(i, j))
    }
    sharing: dict[int, list[int]] = {}
    for i, doc_keys in enumerate(keys):
        for key in doc_keys:
            sharing.setdefault(key, []).append(i)
    pairs = {
        (i, j)
        for group in sharing.values()
        for i, j in combinations(group, 2)
        if docs[i].story != docs[j].story
    }
    for i, j in pairs:
        if folds(i, j):
            unclear |= {docs[i].story, docs[j].story}
    return [d for d in docs if d.story not in unclear]


def texts_read_from_a_feed(docs: Sequence[Doc]) -> dict[str, str]:
    """Each doc's text as the parse stage hands it to dedup (from content:encoded, the longer
    body of the item), by the doc's URL."""
    return {d.url: html_to_text(content_html(d)) for d in docs}


def content_html(doc: Doc) -> str:
    return "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs(doc.text))


def outlet_feeds(docs: Sequence[Doc], rng: random.Random) -> dict[str, tuple[Doc, ...]]:
    """Each doc in one section feed of its outlet; one in twenty in a second section too."""
    feeds: dict[str, list[Doc]] = {}
    for doc in docs:
        first, second = rng.sample(SECTIONS, 2)
        listed = [first, second] if rng.random() < 0.05 else [first]
        for section in listed:
            feeds.setdefault(f"/web/{doc.outlet.host}/{section}.xml", []).append(doc)
    return {path: tuple(items) for path, items in sorted(feeds.items())}


def feed_xml(title: str, docs: Sequence[Doc]) -> bytes:
    """RSS 2.0 with each story's first paragraph in description, its whole text in
    content:encoded."""
    esc = html.escape
    items = "".join(
        f"<item><title>{esc(d.title)}</title><link>{esc(d.url)}</link>"
        f'<guid isPermaLink="true">{esc(d.url)}</guid>'
        f"<pubDate>{format_datetime(d.published, usegmt=True)}</pubDate>"
        f"<description>{esc(paragraphs(d.text)[0])}</description>"
        f"<content:encoded><![CDATA[{content_html(d)}]]></content:encoded></item>\n"
        for d in sorted(docs, key=lambda d: d.published, reverse=True)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel><title>{esc(title)}</title><link>https://example.org/</link>\n"
        f"{items}</channel></rss>\n"
    ).encode()


@pytest.fixture(scope="module")
def web() -> Web:
    return generate_web(SEED)


@pytest.fixture(scope="module")
def feed_urls(server: FeedServer, web: Web) -> list[str]:
    return [server.add(path, feed_xml(path, docs)) for path, docs in web.feeds.items()]


# --- newsfold as a user runs it ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Job:
    """A config file and a store: what the workers of one job share."""

    config: Path
    db: str
    home: Path

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """`newsfold ARGS` in a session of its own (so a kill takes its pool processes too)."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFOLD_")}
        for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
            clean[name] = str(self.home / name.lower())
        return subprocess.Popen(
            [str(NEWSFOLD), "--config", str(self.config), "--db", self.db, "-q", *args],
            env={**clean, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def ok(self, *args: str) -> str:
        """Run `newsfold ARGS`, which must exit 0; its stdout."""
        return finish(self.start(*args))

    def run_workers(self, count: int, *args: str) -> None:
        """`count` workers started together, each `newsfold run ARGS`; all must exit 0."""
        for process in [self.start("run", *args) for _ in range(count)]:
            finish(process)

    def stories(self) -> Stories:
        """Each exported story as the set of its copies' URLs."""
        lines = self.ok("export", "--format", "jsonl").splitlines()
        exported = [json.loads(line) for line in lines]
        return frozenset(frozenset(a["url"] for a in s["articles"]) for s in exported)


def finish(process: subprocess.Popen[str]) -> str:
    try:
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT)
    finally:
        kill_session(process)
    assert process.returncode == 0, f"{process.args!r}: {stderr}"
    return stdout


def kill_session(process: subprocess.Popen[str]) -> None:
    """SIGKILL `process` and every process of its session (its extraction pool)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def make_job(root: Path, db: str, feeds: Sequence[str], per_host: int = PER_HOST) -> Job:
    """Every feed is on the one test server, so `per_host` is the cap on feeds in flight."""
    root.mkdir(parents=True, exist_ok=True)
    lines = [
        "[fetch]",
        "allow_private_networks = true",
        "timeout = 60",
        f"per_host = {per_host}",
        "concurrency = 64",
        "max_new_per_feed = 1000",
        "[extract]",
        "fetch_pages = false",
        "workers = 1",
        *(f'[[feeds]]\nurl = "{url}"' for url in feeds),
    ]
    config = root / "newsfold.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Job(config, db, root)


@pytest.fixture(scope="module")
def one_worker_on_sqlite(tmp_path_factory: pytest.TempPathFactory, feed_urls: list[str]) -> Stories:
    """The stories one worker finds on SQLite: what every other set-up must find."""
    root = tmp_path_factory.mktemp("sqlite-job")
    job = make_job(root, sqlite_url(root), feed_urls)
    job.ok("run", "--all")
    return job.stories()


# --- whole runs --------------------------------------------------------------------------------


def test_one_worker_on_sqlite_finds_the_generated_stories(
    one_worker_on_sqlite: Stories, web: Web
) -> None:
    """The reference run folds the web into exactly its story groups, copies and all."""
    assert len(web.docs) >= 1000
    assert sum(len(group) > 1 for group in web.groups()) >= 250
    assert one_worker_on_sqlite == web.stories()


@pytest.mark.postgres
@pytest.mark.parametrize("workers", [2, 4])
def test_workers_on_postgresql_make_the_same_stories(
    workers: int,
    pg_url: str,
    tmp_path: Path,
    feed_urls: list[str],
    server: FeedServer,
    one_worker_on_sqlite: Stories,
) -> None:
    """2 or 4 `run --all` workers started together on an empty database set it up once and
    fold exactly what one SQLite worker does (the same backend's single writer is held to the
    same partition by test_merges), never fetching one feed twice at a time nor more
    than fetch.per_host from the one host together; `stats` lists them."""
    job = make_job(tmp_path, pg_url, feed_urls)
    fetched_before = {url: server.count(url.removeprefix(server.base_url)) for url in feed_urls}
    job.run_workers(workers, "--all")
    assert job.stories() == one_worker_on_sqlite
    for url in feed_urls:
        path = url.removeprefix(server.base_url)
        assert server.count(path) > fetched_before[url]
    assert max(server.peak_concurrency(u.removeprefix(server.base_url)) for u in feed_urls) == 1
    assert server.peak_concurrency("/web/") <= PER_HOST
    stats = json.loads(job.ok("stats", "--json"))
    assert len(stats["workers"]) == workers
    assert sum(w["feeds"] for w in stats["workers"]) >= len(feed_urls)
    assert job.ok("check").strip() == "store ok"


@pytest.mark.postgres
def test_killed_worker_loses_nothing(
    pg_url: str,
    tmp_path: Path,
    server: FeedServer,
    web: Web,
    one_worker_on_sqlite: Stories,
) -> None:
    """A worker killed mid-run keeps what it committed; its leased feeds go back to the pool
    when the lease ends, and the next run makes the same stories as an uninterrupted one."""
    gate = threading.Event()
    urls, held = [], []
    for i, (path, docs) in enumerate(web.feeds.items()):
        body = feed_xml(path, docs)
        killed_path = "/killed" + path
        if i % 2:
            urls.append(server.add(killed_path, body))
            continue
        held.append(killed_path)
        urls.append(server.add_handler(killed_path, held_until(gate, body)))
    job = make_job(tmp_path, pg_url, urls, per_host=len(urls))  # held feeds keep their slots
    with migrated_store(pg_url):  # the store exists before the worker that will be killed starts
        pass
    lease = {"NEWSFOLD_SCHEDULE_LEASE": f"{KILL_LEASE_SECONDS}s"}
    worker = job.start("run", env=lease)
    try:
        expires = wait_until_only_held_feeds_are_left(pg_url, len(urls) - len(held), len(held))
    finally:
        kill_session(worker)
        worker.communicate()
        gate.set()
    committed = frozenset().union(*job.stories())
    assert committed and committed < frozenset().union(*one_worker_on_sqlite)
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.5)
    finish(job.start("run", env=lease))
    assert job.stories() == one_worker_on_sqlite
    for url in urls:  # a feed done before the kill was not checked again; a held one once more
        path = url.removeprefix(server.base_url)
        assert server.count(path) == (2 if path in held else 1)
    assert job.ok("check").strip() == "store ok"


def held_until(gate: threading.Event, body: bytes) -> Callable[[Any], None]:
    def handler(request: Any) -> None:
        while not gate.wait(0.05):
            if request.stopping.is_set():
                return
        request.send_body(body)

    return handler


def wait_until_only_held_feeds_are_left(pg_url: str, done: int, held: int) -> datetime:
    """Poll the store until `done` feeds are recorded and `held` are leased; the latest lease
    expiry. Gives up after RUN_TIMEOUT."""
    deadline = time.monotonic() + RUN_TIMEOUT
    query = "SELECT count(last_checked), count(lease_owner), max(lease_expires) FROM feeds"
    with psycopg.connect(pg_url.split("?")[0], autocommit=True, options=pg_options(pg_url)) as db:
        while time.monotonic() < deadline:
            checked, leased, expires = db.execute(query).fetchone() or (0, 0, None)
            if checked == done and leased == held:
                latest: datetime = expires.replace(tzinfo=UTC)
                return latest
            time.sleep(0.1)
    raise AssertionError(f"the worker did not reach {done} feeds done and {held} held")


def pg_options(pg_url: str) -> str:
    return pg_url.partition("options=")[2].replace("%3D", "=")


# --- copies racing in two transactions ---------------------------------------------------------


def racing(calls: Sequence[Callable[[], object]]) -> list[object]:
    """Run `calls` in threads released together by a barrier; their results."""
    barrier = threading.Barrier(len(calls))

    def released(call: Callable[[], object]) -> object:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return [f.result() for f in [pool.submit(released, call) for call in calls]]


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Store]:
    with migrated_store(pg_url) as store:
        yield store


def add_feeds(store: Store, count: int) -> list[int]:
    urls = [f"https://outlet{i}.example/feed" for i in range(count)]
    store.sync_feeds([FeedSource(url) for url in urls], NOW)
    ids = {f.url: f.id for f in store.feeds()}
    return [ids[url] for url in urls]


def save_copies(
    store: Store,
    feed_id: int,
    docs: Sequence[Doc],
    settings: Settings | None = None,
    now: datetime = NOW,
) -> Callable[[], FeedCommit]:
    """What a worker commits for one feed listing `docs` (fingerprints made beforehand, as the
    worker's pool makes them), as a call to race or to time."""
    settings = settings or Settings()
    entries = [Entry(d.url, d.url, d.title, d.text, d.published) for d in docs]
    articles = [
        PlannedArticle(
            Article(
                url=d.url,
                feed_id=feed_id,
                title=d.title,
                text=d.text,
                text_source="feed",
                published=d.published,
            ),
            plan(d.text, settings.dedup),
        )
        for d in docs
    ]
    update = FeedUpdate(feed_id, now, now + timedelta(minutes=30))
    rules = fold_rules(settings, now)
    links = {d.url: d.url for d in docs}
    return lambda: store.record_feed(update, entries, articles, links, rules)


def story_urls(store: Store) -> Stories:
    return frozenset(frozenset(a.url for a in s.articles) for s in store.stories(None, None))


def copy_pairs(web: Web, count: int) -> list[tuple[Doc, Doc]]:
    return [(group[0], group[1]) for group in web.groups() if len(group) > 1][:count]


@pytest.mark.postgres
def test_two_copies_saved_at_the_same_moment_are_one_story(pg_store: Store, web: Web) -> None:
    """Two workers committing two copies of one story at the same instant make one story."""
    feed_a, feed_b = add_feeds(pg_store, 2)
    pairs = copy_pairs(web, 40)
    for first, second in pairs:
        racing([save_copies(pg_store, feed_a, [first]), save_copies(pg_store, feed_b, [second])])
    assert story_urls(pg_store) == {frozenset({a.url, b.url}) for a, b in pairs}


@pytest.mark.postgres
def test_identical_texts_saved_at_the_same_moment_are_one_story(pg_store: Store, web: Web) -> None:
    """The exact-text layer holds under a race too: one text published twice is one story."""
    feed_a, feed_b = add_feeds(pg_store, 2)
    pairs = [(doc, replace(doc, id=doc.id + "-again")) for doc, _ in copy_pairs(web, 40)]
    for first, second in pairs:
        racing([save_copies(pg_store, feed_a, [first]), save_copies(pg_store, feed_b, [second])])
    assert story_urls(pg_store) == {frozenset({a.url, b.url}) for a, b in pairs}


@pytest.mark.postgres
def test_feeds_listing_copies_in_opposite_orders_both_commit(pg_store: Store, web: Web) -> None:
    """Two feeds holding copies of the same two stories in opposite orders commit side by side
    (no deadlock aborts either) and make two stories."""
    feed_a, feed_b = add_feeds(pg_store, 2)
    pairs = copy_pairs(web, 40)
    for (x1, x2), (y1, y2) in zip(pairs[::2], pairs[1::2], strict=True):
        racing([save_copies(pg_store, feed_a, [x1, y1]), save_copies(pg_store, feed_b, [y2, x2])])
    assert story_urls(pg_store) == {frozenset({a.url, b.url}) for a, b in pairs}


@pytest.mark.postgres
def test_an_article_two_workers_save_at_once_is_stored_once(pg_store: Store, web: Web) -> None:
    """One article listed by two feeds checked by two workers at the same instant is one
    article in one story."""
    feeds = add_feeds(pg_store, 2)
    docs = [group[0] for group in web.groups()[:20]]
    for doc in docs:
        racing([save_copies(pg_store, feed_id, [doc]) for feed_id in feeds])
    assert story_urls(pg_store) == {frozenset({d.url}) for d in docs}
    assert pg_store.stats()["articles"] == len(docs)


@pytest.mark.postgres
def test_a_feed_of_300_new_articles_commits_in_one_transaction(pg_store: Store, web: Web) -> None:
    """A first check of a big feed locks some 17,000 dedup keys in one transaction: more than
    PostgreSQL's shared lock table holds by default, which row locks do not need."""
    [feed] = add_feeds(pg_store, 1)
    docs = [group[0] for group in web.groups()[:300]]
    racing([save_copies(pg_store, feed, docs)])
    assert pg_store.stats()["articles"] == len(docs)


@pytest.mark.postgres
def test_workers_starting_together_migrate_and_sync_once(pg_url: str) -> None:
    """Four workers migrating a new database and syncing the same config at once all succeed."""
    stores = [open_store(pg_url) for _ in range(4)]
    sources = [FeedSource(f"https://outlet{i}.example/feed") for i in range(50)]
    try:
        racing([store.migrate for store in stores])
        racing([functools.partial(store.sync_feeds, sources, NOW) for store in stores])
        assert len(stores[0].feeds()) == len(sources)
        assert stores[0].stats()["schema_version"] == schema.LATEST
    finally:
        for store in stores:
            store.close()


# --- the per-host limit shared by workers --------------------------------------------------------


@pytest.mark.postgres
def test_per_host_limit_holds_across_workers(pg_url: str, server: FeedServer) -> None:
    """Four workers fetching from one host never have more than fetch.per_host requests in
    flight together."""

    def slow(request: Any) -> None:
        request.wait(0.05)
        request.send_body(b"ok", content_type="text/plain")

    url = server.add_handler("/per-host/slow", slow)
    per_host, requests = 2, 6

    async def worker(name: str) -> None:
        store = open_store(pg_url)
        async with StoreCalls(None) as calls, httpx.AsyncClient() as client:
            slots = HostSlots.for_store(store, name, per_host, 10, calls)
            assert slots is not None
            for i in range(requests):
                async with slots.slot("127.0.0.1"):
                    (await client.get(f"{url}?{name}-{i}")).raise_for_status()
        store.close()

    setup = open_store(pg_url)
    setup.migrate()
    setup.close()

    def run_worker(name: str) -> None:
        asyncio.run(worker(name))

    racing([functools.partial(run_worker, f"w{i}") for i in range(4)])
    assert server.peak_concurrency("/per-host/slow") <= per_host
    assert sum(1 for _, p, _ in server.requests if p.startswith("/per-host/slow?")) == 4 * requests


@pytest.mark.postgres
def test_slots_of_a_dead_worker_come_back_after_their_hold(pg_store: Store) -> None:
    """Slots a worker took and never gave back are free again once their hold has passed."""
    hold = timedelta(seconds=0.3)
    taken = [pg_store.acquire_host_slot("news.example", "dead", 2, hold) for _ in range(2)]
    assert sorted(s for s in taken if s is not None) == [0, 1]
    assert pg_store.acquire_host_slot("news.example", "alive", 2, hold) is None
    time.sleep(hold.total_seconds() + 0.1)
    assert pg_store.acquire_host_slot("news.example", "alive", 2, hold) is not None


def test_sqlite_needs_no_shared_host_slots(tmp_path: Path) -> None:
    """On SQLite (one run at a time) the fetcher's own per-host limit is enough: no slots."""
    store = open_store(sqlite_url(tmp_path))
    store.migrate()
    assert HostSlots.for_store(store, "w", 2, 10, StoreCalls()) is None
    assert store.acquire_host_slot("news.example", "w", 1, timedelta(seconds=1)) == 0
    store.close()
