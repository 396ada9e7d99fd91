"""Dedup at scale on SQLite: cost per new article with 10,000 vs 1,000,000 stored, memory, and
what dedup adds to a run.

Run: .venv/bin/python bench/bench_dedup_scale.py [--part scale|share|both]
         [--stored 10000 1000000] [--new 1000] [--dir DIR] [--rounds 3]

**Scale.** A SQLite store (made by SqlStore.migrate, so the schema is newsfold's) is filled with N
stored articles, each in its own story, with a fingerprint and its 58 LSH band rows, every one
seen within the dedup window: the worst case, as `prune_dedup` keeps only the window's rows.
The first rows are real: corpus texts (their true text) with their fingerprints, band keys and
text hashes; the bulk reuses the fingerprints of 1,000 generated texts with random band keys
(distinct texts share no band). The bulk goes in with executemany in transactions of 20,000
articles, indexes dropped and made again afterwards. Then, in a fresh process that first reads
the store file once (so the OS caches it, as it would a store in daily use), `--new` articles
are saved through `SqlStore.record_feed` with the pipeline's fold rules, 10 per feed
transaction, their plans (fingerprints, band keys) made beforehand as the pipeline's worker pool
makes them: a third of them are syndicated copies of stored corpus texts (tests/syndicate.py), so
candidates exist and are verified; the rest are new texts. The sizes take turns, --rounds times.
Printed per measurement, in µs per article: wall and CPU time of record_feed (the process has one
thread and SQLite works in it, so CPU time is the work's cost whatever else the machine runs), of
which the fold decision (exact-text and candidate queries, verification), the rest being inserts
and commit; candidates per article, copies folded, KB the process wrote (WAL and checkpoints), its
RSS before and after (VmRSS) and its peak (VmHWM); then the medians of both sizes and their
ratio, and the wall time of each kind of statement.
With --dir the filled stores are kept there and reused (the measured rows are deleted after).

**Share.** The labelled set of bench/bench_fold_e2e.py (corpus pages, syndicated copies, trap
stories in outlet pages and feeds), served by bench/common.py's server in its own process, one
loopback address per outlet; newsfold's `pipeline.run` on a fresh SQLite store, default settings
(loopback allowed). Three variants take turns for --rounds rounds, each run in a fresh process:
dedup as it is; no lookup and a trivial decision (a new story for every article); and also no
MinHash (plans reduced to the text hash). Printed: wall time and CPU (main process, extraction
workers), medians over the rounds, and what dedup adds to the run, from those medians and
measured directly: the CPU time of the fold decisions during the run (in the store's thread: the
look-ups, the candidates verified, the group read and the decision) and of fingerprinting the
stored texts (what the worker pool does), measured after it. On a shared machine the CPU figures
are the ones to read; wall time follows the load.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from itertools import cycle, islice
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

from bench_workers import StatementLog
from common import CorpusServer, Route, TreeUsage, machine_line, mb, run_in_process
from sqlalchemy import Connection, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.schema import CreateIndex, Index

from newsfold import dedup, fold, pipeline
from newsfold.config import DedupSettings, Settings
from newsfold.fold import FoldDecision, FoldPlan, FoldRules, Found
from newsfold.model import Article, Entry, FeedSource
from newsfold.store import FeedUpdate, PlannedArticle, schema
from newsfold.store import stories as story_rows
from newsfold.store.sql import SqlStore
from tests.foldpages import (
    HTML_TYPE,
    RSS_TYPE,
    feed_body,
    is_corpus_page,
    page_html,
    page_path,
    sections,
)
from tests.server import article_text
from tests.syndicate import OUTLETS, WIRE, Doc, corpus_texts, labelled_docs, syndicate
from tests.textmetrics import CORPUS, corpus_pages

SETTINGS = Settings()
P = ParamSpec("P")
R = TypeVar("R")
BULK_CHUNK = 20_000  # articles per bulk transaction
FINGERPRINT_POOL = 1_000  # generated texts whose fingerprints the bulk rows reuse
PER_FEED = 10  # new articles per feed transaction
WARM_UP = 50  # new articles saved before the clock starts
WORDS = (8, 75)  # paragraphs and words per paragraph of a generated text: 600 words
BULK_HOST = "https://bulk.example/a/"
NEW_HOST = "https://new.example/a/"
BULK_INDEXES: tuple[Index, ...] = (
    *schema.dedup_bands.indexes,
    *schema.articles.indexes,
    *schema.stories.indexes,
)


def generated_text(key: str) -> str:
    """A 600-word text of its own: no other key's text shares its shingles."""
    return "\n\n".join(article_text(key, *WORDS))


def long_corpus_texts() -> list[str]:
    """The true texts of corpus articles long enough to be syndicated (150 words or more)."""
    return [p.truth for p in corpus_pages() if p.truth and len(p.truth.split()) >= 150]


# ---------------------------------------------------------------------------------------------
# Filling a store


def sqlite_time(value: datetime) -> str:
    """A datetime as SQLAlchemy stores it in SQLite (naive UTC, microseconds)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


@dataclass(frozen=True, slots=True)
class Stored:
    """A real article put in the bulk: its text's fingerprint and band keys."""

    text: str
    fingerprint: dedup.Fingerprint
    keys: list[int]


def real_articles() -> list[Stored]:
    made = []
    for text in long_corpus_texts():
        fp = dedup.fingerprint(text, SETTINGS.dedup)
        made.append(Stored(text, fp, dedup.band_keys(fp, SETTINGS.dedup)))
    return made


def fill(path: Path, stored: int, now: datetime) -> float:
    """Fill a new store at `path` with `stored` articles (see the module doc); seconds taken."""
    started = time.perf_counter()
    store = SqlStore(f"sqlite:///{path}")
    store.migrate()
    store.close()
    real = real_articles()
    pool = [
        dedup.fingerprint(generated_text(f"bulk-{i}"), SETTINGS.dedup).to_bytes()
        for i in range(FINGERPRINT_POOL)
    ]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(
        "PRAGMA journal_mode=DELETE; PRAGMA synchronous=OFF; PRAGMA cache_size=-500000;"
    )
    for index in BULK_INDEXES:
        conn.execute(f"DROP INDEX {index.name}")
    rng = np.random.default_rng(7)
    for low in range(1, stored + 1, BULK_CHUNK):
        ids = range(low, min(low + BULK_CHUNK, stored + 1))
        conn.execute("BEGIN")
        _insert_chunk(conn, ids, real, pool, rng, now)
        conn.execute("COMMIT")
        print(f"  {ids[-1]:,} of {stored:,} articles", file=sys.stderr, end="\r", flush=True)
    for index in BULK_INDEXES:
        conn.execute(str(CreateIndex(index).compile(dialect=sqlite.dialect())))
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    return time.perf_counter() - started


def _insert_chunk(
    conn: sqlite3.Connection,
    ids: range,
    real: Sequence[Stored],
    pool: Sequence[bytes],
    rng: np.random.Generator,
    now: datetime,
) -> None:
    """Articles `ids`: the first len(real) are the real ones, the others generated."""
    window = SETTINGS.dedup.window.total_seconds() * 0.95
    ages = rng.uniform(0, window, len(ids))
    seen = [now - timedelta(seconds=float(age)) for age in ages]
    times = [sqlite_time(s) for s in seen]
    conn.executemany(
        "INSERT INTO stories (id, first_seen, updated_at, article_count) VALUES (?, ?, ?, 1)",
        zip(ids, times, times, strict=True),
    )
    conn.executemany(
        "INSERT INTO articles (id, url, title, text, text_source, text_chars, content_hash,"
        " version, first_seen, updated_at, story_id, similarity)"
        " VALUES (?, ?, 'stored', ?, 'page', ?, ?, 1, ?, ?, ?, 1.0)",
        (_article_row(i, real, t) for i, t in zip(ids, times, strict=True)),
    )
    conn.executemany(
        "INSERT INTO fingerprints (article_id, data, seen_at) VALUES (?, ?, ?)",
        (
            (i, real[i - 1].fingerprint.to_bytes() if i <= len(real) else pool[i % len(pool)], t)
            for i, t in zip(ids, times, strict=True)
        ),
    )
    keys_per_article = len(real[0].keys)
    random_keys = rng.integers(-(2**63), 2**63 - 1, len(ids) * keys_per_article, dtype=np.int64)
    conn.executemany(
        "INSERT INTO dedup_bands (band_key, article_id, seen_at) VALUES (?, ?, ?)",
        _band_rows(ids, seen, real, iter(random_keys.tolist()), keys_per_article),
    )


def _article_row(i: int, real: Sequence[Stored], when: str) -> tuple[Any, ...]:
    if i <= len(real):
        item = real[i - 1]
        text, digest = item.text, item.fingerprint.text_hash.hex()
    else:
        text, digest = "a stored article", hashlib.sha256(str(i).encode()).hexdigest()
    return (i, f"{BULK_HOST}{i:09d}", text, len(text), digest, when, when, i)


def _band_rows(
    ids: range,
    seen: Sequence[datetime],
    real: Sequence[Stored],
    random_keys: Iterator[int],
    per_article: int,
) -> Iterator[tuple[int, int, int]]:
    for i, when in zip(ids, seen, strict=True):
        seconds = int(when.timestamp())
        keys = real[i - 1].keys if i <= len(real) else islice(random_keys, per_article)
        yield from ((key, i, seconds) for key in keys)


# ---------------------------------------------------------------------------------------------
# Saving new articles into it


@dataclass(slots=True)
class Spent:
    """Wall and CPU seconds (the measuring process has one thread: SQLite works in it, so its
    CPU time is what the work costs, whatever else the machine runs)."""

    wall: float = 0.0
    cpu: float = 0.0

    @contextmanager
    def timing(self) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall += time.perf_counter() - wall
            self.cpu += time.process_time() - cpu


@dataclass(slots=True)
class FoldClock:
    """Time spent in the fold decision, and in the store's two dedup queries within it."""

    fold: Spent = field(default_factory=Spent)
    queries: Spent = field(default_factory=Spent)
    candidates: int = 0


@dataclass(frozen=True, slots=True)
class TimedRules(FoldRules):
    """The pipeline's rules, their decisions timed and their candidates counted."""

    clock: FoldClock = field(default_factory=FoldClock)

    def linked(self, plan: FoldPlan, found: Found) -> tuple[int, ...]:
        self.clock.candidates += len(found.candidates)
        with self.clock.fold.timing():
            return fold.linked_components(plan, found, self.settings)

    def decide(self, plan: FoldPlan, found: Found) -> FoldDecision:
        with self.clock.fold.timing():
            return fold.decide(plan, found, self.settings)


@contextmanager
def timed_look_ups(clock: FoldClock) -> Iterator[None]:
    """The store's dedup queries (its `look_up`) timed, as part of the fold decision."""
    real = story_rows.look_up

    def look_up(conn: Connection, article_id: int, plan: FoldPlan, since: datetime) -> Found:
        with clock.fold.timing(), clock.queries.timing():
            return real(conn, article_id, plan, since)

    story_rows.look_up = look_up
    try:
        yield
    finally:
        story_rows.look_up = real


@dataclass(frozen=True, slots=True)
class NewArticle:
    url: str
    text: str
    copy: bool  # a syndicated copy of a stored text


def new_articles(count: int) -> list[NewArticle]:
    """A third copies of stored corpus texts (one transform or more each), the rest new texts."""
    rng = random.Random(11)
    originals = long_corpus_texts()
    copies = []
    for i, text in enumerate(islice(cycle(originals), count // 3)):
        doc = Doc(f"o{i}", f"o{i}", "original", text, WIRE, datetime.now(UTC), "original")
        copies.append(NewArticle(f"{NEW_HOST}copy-{i}", syndicate(doc, rng, 1)[-1].text, True))
    fresh = [
        NewArticle(f"{NEW_HOST}new-{i}", generated_text(f"new-{i}"), False)
        for i in range(count - len(copies))
    ]
    mixed = copies + fresh
    rng.shuffle(mixed)
    return mixed


@dataclass(slots=True)
class ScaleResult:
    stored: int
    articles: int = 0
    total: Spent = field(default_factory=Spent)  # all of record_feed
    clock: FoldClock = field(default_factory=FoldClock)
    copies: int = 0
    copies_folded: int = 0
    rss_before: int = 0
    rss_after: int = 0
    peak_rss: int = 0
    statements: dict[str, float] = field(default_factory=dict)  # seconds by statement kind
    written: int = 0  # bytes the process wrote (write calls: WAL, checkpoints)


def measure(path: Path, stored: int, count: int) -> ScaleResult:
    """Save `count` new articles into the filled store at `path` (run in a fresh process)."""
    read_through(path)
    items = new_articles(WARM_UP + count)
    prints = {a.url: fold.plan(a.text, SETTINGS.dedup) for a in items}
    store = SqlStore(f"sqlite:///{path}")
    store.migrate()  # a store kept from an older revision
    now = datetime.now(UTC)
    store.sync_feeds([FeedSource("https://new.example/feed.xml")], now)
    feed_id = store.feeds()[0].id
    result = ScaleResult(stored, rss_before=_status_kib("VmRSS") * 1024)
    batches = [items[i : i + PER_FEED] for i in range(0, len(items), PER_FEED)]
    warm = WARM_UP // PER_FEED
    log = StatementLog()
    log.attach(store)
    for number, batch in enumerate(batches):
        if number == warm:
            log.reset()
        if number < warm:
            _save(store, feed_id, batch, prints, FoldClock(), now)
            continue
        written = _written()
        with result.total.timing():
            commit = _save(store, feed_id, batch, prints, result.clock, now)
        result.written += _written() - written
        result.articles += len(batch)
        result.copies += sum(a.copy for a in batch)
        result.copies_folded += len(batch) - commit
    result.statements = dict(log.seconds)
    result.rss_after = _status_kib("VmRSS") * 1024
    result.peak_rss = _status_kib("VmHWM") * 1024
    store.close()
    _delete_new_rows(path, stored)
    return result


def read_through(path: Path) -> None:
    """Read the whole file once, so the OS caches it as it would a store in daily use: what is
    measured is the database's work, not the disk's first reads. One buffer, reused: the
    process's RSS does not grow."""
    buffer = bytearray(1 << 20)
    with path.open("rb", buffering=0) as file:
        while file.readinto(buffer):
            pass


def _save(
    store: SqlStore,
    feed_id: int,
    batch: Sequence[NewArticle],
    plans: dict[str, FoldPlan],
    clock: FoldClock,
    now: datetime,
) -> int:
    """One feed transaction saving `batch`, as the pipeline saves it; new stories made."""
    entries = [Entry(a.url, a.url, "new", None, now) for a in batch]
    articles = [
        PlannedArticle(
            Article(
                url=a.url,
                feed_id=feed_id,
                title="new",
                text=a.text,
                text_source="page",
                published=now,
            ),
            plans[a.url],
        )
        for a in batch
    ]
    update = FeedUpdate(feed_id, now, now + timedelta(minutes=30))
    rules = TimedRules(SETTINGS.dedup, now - SETTINGS.dedup.window, clock)
    links = {a.url: a.url for a in batch}
    with timed_look_ups(clock):
        return store.record_feed(update, entries, articles, links, rules).stories_new


def _delete_new_rows(path: Path, stored: int) -> None:
    """Back to the filled state, so a kept store measures the same next time."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    for table, column in (
        ("dedup_bands", "article_id"),
        ("fingerprints", "article_id"),
        ("entries", "article_id"),
        ("articles", "id"),
        ("stories", "id"),
    ):
        conn.execute(f"DELETE FROM {table} WHERE {column} > ?", (stored,))
    conn.execute("DELETE FROM feeds")
    conn.execute("COMMIT")
    conn.close()


def _written() -> int:
    """Bytes this process has passed to write calls so far (/proc/self/io wchar)."""
    with open("/proc/self/io", encoding="ascii") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("wchar:"))


def _status_kib(field_name: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def scale(sizes: Sequence[int], count: int, directory: Path, rounds: int) -> None:
    """Fill a store per size (unless kept), then measure the sizes in turn, `rounds` times."""
    for stored in sizes:
        path = directory / f"stored-{stored}.db"
        ready = path.with_suffix(".ready")
        fill_seconds = None
        if not ready.exists():
            path.unlink(missing_ok=True)
            fill_seconds, _usage = run_in_process(fill, path, stored, datetime.now(UTC))
            ready.touch()
        filled = f", filled in {fill_seconds:.0f} s" if fill_seconds else " (kept from before)"
        print(f"stored {stored:,}: store file {mb(path.stat().st_size)}{filled}", flush=True)
    results = [
        run_in_process(measure, directory / f"stored-{stored}.db", stored, count)[0]
        for _ in range(rounds)
        for stored in sizes
    ]
    print_scale(sorted(results, key=lambda r: r.stored), sizes)


def _per_article(results: Sequence[ScaleResult], value: Callable[[ScaleResult], float]) -> float:
    """The median over `results` of value / articles, in µs."""
    return float(statistics.median(value(r) / r.articles * 1e6 for r in results))


MEASURES: dict[str, Callable[[ScaleResult], float]] = {
    "wall": lambda r: r.total.wall,
    "CPU": lambda r: r.total.cpu,
    "fold decision CPU": lambda r: r.clock.fold.cpu,
    "of which queries CPU": lambda r: r.clock.queries.cpu,
    "verification CPU": lambda r: r.clock.fold.cpu - r.clock.queries.cpu,
    "inserts and commit CPU": lambda r: r.total.cpu - r.clock.fold.cpu,
}


def print_scale(results: Sequence[ScaleResult], sizes: Sequence[int]) -> None:
    first = results[0]
    print(
        f"\nSaving {first.articles} new articles, {PER_FEED} per feed transaction "
        f"({first.copies} copies of stored texts), each size measured in turn; µs per article\n"
    )
    names = list(MEASURES)
    print(
        "| stored | " + " | ".join(names) + " | candidates | copies folded | written KB | "
        "RSS before | RSS after | peak RSS |"
    )
    print("|---|" + "---|" * (len(names) + 6))
    for r in results:
        cells = [f"{_per_article([r], MEASURES[name]):.0f}" for name in names]
        print(
            f"| {r.stored:,} | " + " | ".join(cells) + f" | {r.clock.candidates / r.articles:.2f} "
            f"| {r.copies_folded}/{r.copies} | {r.written / r.articles / 1024:.0f} | "
            f"{mb(r.rss_before)} | {mb(r.rss_after)} | "
            f"{mb(r.peak_rss)} |"
        )
    by_size = {size: [r for r in results if r.stored == size] for size in sizes}
    small, large = by_size[sizes[0]], by_size[sizes[-1]]
    print(f"\nMedians, {sizes[-1]:,} vs {sizes[0]:,} stored, µs per article:")
    for name, value in MEASURES.items():
        low, high = _per_article(small, value), _per_article(large, value)
        print(f"  {name}: {low:.0f} vs {high:.0f} ({high / low:.2f}x)")
    peak = {size: max(r.peak_rss for r in rs) for size, rs in by_size.items()}
    written = [
        statistics.median(r.written / r.articles / 1024 for r in rs) for rs in (small, large)
    ]
    print(f"  KB written (WAL, checkpoints): {written[0]:.0f} vs {written[1]:.0f}")
    print(f"  peak RSS of the measuring process: {mb(peak[sizes[0]])} vs {mb(peak[sizes[-1]])}\n")
    kinds = {kind for r in results for kind in r.statements}
    ranked = sorted(kinds, key=lambda kind: -first.statements.get(kind, 0.0))
    print("Wall µs per article by statement, medians (the rest: Python, COMMIT)\n")
    print("| statement | " + " | ".join(f"{size:,} stored" for size in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for kind in ranked[:10]:
        cells = [statement_us(rs, kind) for rs in by_size.values()]
        print(f"| {kind} | " + " | ".join(cells) + " |")
    print()


def statement_us(results: Sequence[ScaleResult], kind: str) -> str:
    return f"{_per_article(results, lambda r: r.statements.get(kind, 0.0)):.0f}"


# ---------------------------------------------------------------------------------------------
# Dedup's share of a run


class Fold:
    """The CPU time of the fold (the store's lookups and the decisions, in the store's thread)."""

    cpu = 0.0

    @staticmethod
    @contextmanager
    def timing() -> Iterator[None]:
        started = time.thread_time()
        try:
            yield
        finally:
            Fold.cpu += time.thread_time() - started


def timed(step: Callable[P, R]) -> Callable[P, R]:
    """`step`, its CPU time added to `Fold.cpu`."""

    @functools.wraps(step)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with Fold.timing():
            return step(*args, **kwargs)

    return run


def no_look_up(*args: Any) -> Found:
    return Found(None)


def new_story(plan: FoldPlan, found: Found, settings: DedupSettings) -> FoldDecision:
    """No dedup: every article starts its own story."""
    return fold.NEW_STORY


def text_hashes_only(texts: list[str], settings: DedupSettings) -> list[FoldPlan]:
    """Plans without MinHash: only the text hash the store keeps as content_hash, no bands."""
    digests = [hashlib.sha256(dedup.normalize_text(t).encode()).digest() for t in texts]
    prints = [dedup.Fingerprint(b"", b"", 0, 0, (), 0, digest) for digest in digests]
    return [fold.plan_of(fp, settings) for fp in prints]


# name -> (the store's dedup lookups, the decision, MinHash fingerprints)
VARIANTS: dict[str, tuple[Callable[..., Found], Callable[..., FoldDecision], bool]] = {
    "dedup as it is": (timed(story_rows.look_up), timed(fold.decide), True),
    "no lookup, new story each time": (no_look_up, new_story, True),
    "no dedup, no MinHash": (no_look_up, new_story, False),
}


@dataclass(frozen=True, slots=True)
class RunResult:
    variant: str
    wall: float
    articles: int
    stories: int
    fold_cpu: float  # seconds of CPU in the fold decisions
    minhash_cpu: float  # seconds of CPU to fingerprint the stored texts, measured after the run
    usage: TreeUsage | None = None


def one_run(variant: str, feed_urls: list[str], db: Path) -> RunResult:
    """A run of the whole pipeline (in a fresh process), with the variant's dedup."""
    look_up, decide, minhash = VARIANTS[variant]
    story_rows.look_up, fold.decide = look_up, decide
    fold.linked_components = timed(fold.linked_components)
    story_rows._group = timed(story_rows._group)
    if not minhash:
        fold.plan_all = text_hashes_only
    settings = Settings().replace("fetch", allow_private_networks=True)
    store = SqlStore(f"sqlite:///{db}")
    store.migrate()
    store.sync_feeds([FeedSource(url) for url in feed_urls], datetime.now(UTC))
    options = pipeline.RunOptions(include_all=True)
    started = time.perf_counter()
    report = asyncio.run(pipeline.run(settings, store, lambda: datetime.now(UTC), options))
    wall = time.perf_counter() - started
    assert report.feeds_failed == 0, report.failures_by_kind
    stats = store.stats()
    with store.engine.connect() as conn:
        texts = list(conn.execute(select(schema.articles.c.text)).scalars())
    store.close()
    cpu = time.process_time()
    for text in texts:
        dedup.fingerprint(text, settings.dedup)
    minhash_cpu = time.process_time() - cpu
    return RunResult(
        variant,
        wall,
        int(stats["articles"]),
        int(stats["stories"]),
        Fold.cpu,
        minhash_cpu,
    )


def published_set(server: CorpusServer, docs: Sequence[Doc]) -> tuple[list[Route], list[Route]]:
    """Page and feed routes of the labelled set; each outlet on its own loopback address."""
    host_of = {outlet: number for number, outlet in enumerate(OUTLETS)}
    pages = [
        Route(
            page_path(doc),
            CORPUS / doc.id if is_corpus_page(doc) else page_html(doc),
            HTML_TYPE,
            host_of[doc.outlet],
        )
        for doc in docs
    ]
    feeds = []
    for section in sections(docs):
        host = host_of[section.outlet]
        base = server.url(Route("", b"", "", host))
        feeds.append(Route(section.path, feed_body(section, base), RSS_TYPE, host))
    return pages, feeds


def share(rounds: int, directory: Path) -> None:
    docs = labelled_docs(1, texts=corpus_texts())
    results: list[RunResult] = []
    with CorpusServer(hosts=len(OUTLETS)) as server:
        pages, feeds = published_set(server, docs)
        server.serve([*pages, *feeds])
        urls = [server.url(route) for route in feeds]
        print(f"\nRuns over {len(pages)} pages in {len(feeds)} feeds, {rounds} round(s)")
        for number in range(rounds):
            for variant in VARIANTS:
                db = directory / f"share-{number}-{len(results)}.db"
                result, usage = run_in_process(one_run, variant, urls, db)
                results.append(replace(result, usage=usage))
                db.unlink()
    print_share(results)


def print_share(results: Sequence[RunResult]) -> None:
    print(
        "\n| variant | wall s | main CPU s | workers CPU s | CPU s in all | articles | stories |"
        "\n|---|---|---|---|---|---|---|"
    )
    wall, cpu = {}, {}
    for variant in VARIANTS:
        mine = [r for r in results if r.variant == variant and r.usage]
        main = statistics.median(r.usage.root_cpu for r in mine if r.usage)
        workers = statistics.median(r.usage.other_cpu for r in mine if r.usage)
        wall[variant] = statistics.median(r.wall for r in mine)
        cpu[variant] = statistics.median(
            r.usage.root_cpu + r.usage.other_cpu for r in mine if r.usage
        )
        print(
            f"| {variant} | {wall[variant]:.1f} | {main:.1f} | {workers:.1f} | "
            f"{cpu[variant]:.1f} | {mine[0].articles} | {mine[0].stories} |"
        )
    full, none = "dedup as it is", "no dedup, no MinHash"
    print("\nMedians. Dedup (lookups, decisions and MinHash) adds, to a run without it:")
    print(
        f"  wall time {wall[full] / wall[none] - 1:+.1%}, CPU time {cpu[full] / cpu[none] - 1:+.1%}"
    )
    timed = [r for r in results if r.variant == full]
    articles = timed[0].articles
    fold = statistics.median(r.fold_cpu for r in timed)
    minhash = statistics.median(r.minhash_cpu for r in results)
    print(
        f"  measured directly: fold decisions {fold:.2f} s CPU ({fold / articles * 1e3:.2f} ms an"
        f" article), MinHash fingerprints {minhash:.2f} s CPU ({minhash / articles * 1e3:.2f} ms),"
        f" together {(fold + minhash) / cpu[none]:.1%} of the CPU of a run without dedup\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["scale", "share", "both"], default="both")
    parser.add_argument("--stored", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--new", type=int, default=1_000, help="new articles saved per size")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each size/variant")
    parser.add_argument("--dir", type=Path, help="keep the filled stores here and reuse them")
    args = parser.parse_args()
    print(machine_line() + "\n")
    with tempfile.TemporaryDirectory(prefix="dedup-scale-") as scratch:
        directory = args.dir or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        if args.part in ("scale", "both"):
            scale(args.stored, args.new, directory, args.rounds)
        if args.part in ("share", "both"):
            share(args.rounds, Path(scratch))


if __name__ == "__main__":
    main()
