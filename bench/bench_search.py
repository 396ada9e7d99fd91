"""Full-text search: what the index costs a run, its size, and how fast queries are.

Run: .venv/bin/python bench/bench_search.py [--sizes 10000,1000000] [--backends sqlite,postgresql]
     [--runs 3] [--queries 50] [--skip-run] [--skip-write] [--keep DIR]

Tables:
- cost in a run: `newsfold run --all` in-process (pipeline.run, tests/foldpages.py) over the
  generated syndicated web (tests/syndicate.py, ~780 pages in 8 outlets' feeds) on a fresh SQLite
  store, with the search index and without it (its triggers and table dropped after migrating:
  the store as it was before search); CPU seconds of the whole process tree, the median of
  --runs runs each, taken in turns; the ratio is the index's share on top of a run without it;
- write cost per article: the same articles inserted into the store with and without the index,
  nothing else in the transaction (SQLite: this process's CPU, the text generation included on
  both sides; PostgreSQL: wall, its server does the work);
- size on disk per 1,000 articles: the index's pages (SQLite dbstat; PostgreSQL the table, its
  TOAST and the GIN index), beside the articles' own;
- query time: N articles bulk-loaded into a fresh store (stories of 1 to 5 copies; texts made of
  paragraphs of the corpus's articles, each with a sentence of its own), --queries two-word
  queries (two words of 5+ letters from one stored text) and as many phrases (4 consecutive
  words of one stored text): p50/p95 of `search_stories` (the store's statement) and of
  `find_stories` (what the command does in-process: query, stories with their copies,
  snippets) with this process's CPU beside it, then the `newsfold search` command's wall for 5
  of each (Python's start included), and the slowest query in-process;
- quality: tests/test_search_quality.py's check, counted (phrases whose story is in the top 3).
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

import psycopg
from common import machine_line, newsfold_command, print_table, run_in_process, run_measured

from newsfold.config import Settings
from newsfold.query import parse_query, words_of
from newsfold.search import find_stories
from newsfold.store.sql import SqlStore
from tests.foldpages import run_all, serve_docs
from tests.server import FeedServer
from tests.stores import PG_URL
from tests.syndicate import corpus_texts, labelled_docs, paragraphs
from tests.test_search_quality import QUERIES, SEED, TOP, phrase_misses

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LOAD_BATCH = 5000
WALL_QUERIES = 5


# -- the index's cost in a run ----------------------------------------------------------------


def drop_index(store: SqlStore) -> None:
    """The store as it was before search: no triggers, no index."""
    with store.engine.begin() as conn:
        if store.is_sqlite:
            for name in ("insert", "delete", "update"):
                conn.exec_driver_sql(f"DROP TRIGGER article_search_{name}")
            conn.exec_driver_sql("DROP TABLE article_search")
        else:
            conn.exec_driver_sql("DROP TRIGGER article_search_sync ON articles")
            conn.exec_driver_sql("DROP TABLE article_search")


def one_run(db: str, feed_urls: list[str], indexed: bool) -> float:
    """A run over the feeds on a fresh store; its wall seconds (CPU is sampled outside)."""
    store = SqlStore(db)
    store.migrate()
    if not indexed:
        drop_index(store)
    settings = Settings().replace("fetch", allow_private_networks=True, per_host=8)
    started = time.perf_counter()
    run_all(settings, store, feed_urls)
    store.close()
    return time.perf_counter() - started


def run_cost(runs: int) -> None:
    docs = labelled_docs(1, originals=100)
    cpu: dict[bool, list[float]] = {True: [], False: []}
    wall: dict[bool, list[float]] = {True: [], False: []}
    with FeedServer() as server, tempfile.TemporaryDirectory() as scratch:
        feed_urls = serve_docs(server, docs)
        for number in range(runs):
            for indexed in (number % 2 == 0, number % 2 != 0):  # in turns, the first alternating
                db = f"sqlite:///{scratch}/run-{number}-{indexed}.db"
                seconds, usage = run_in_process(one_run, db, feed_urls, indexed)
                cpu[indexed].append(usage.root_cpu + usage.other_cpu)
                wall[indexed].append(seconds)
    without, with_index = statistics.median(cpu[False]), statistics.median(cpu[True])
    print_table(
        f"cost in a run: {len(docs)} pages, {len(feed_urls)} feeds, SQLite, median of {runs}",
        ["store", "CPU s", "wall s", "CPU runs"],
        [
            [
                "without index",
                f"{without:.2f}",
                f"{statistics.median(wall[False]):.2f}",
                " ".join(f"{c:.2f}" for c in cpu[False]),
            ],
            [
                "with index",
                f"{with_index:.2f}",
                f"{statistics.median(wall[True]):.2f}",
                " ".join(f"{c:.2f}" for c in cpu[True]),
            ],
            ["ratio", f"{with_index / without:.3f}", "", ""],
        ],
    )


# -- generated archives -----------------------------------------------------------------------


def paragraph_pool() -> list[str]:
    pool = [p for text in corpus_texts().values() for p in paragraphs(text) if len(p) > 80]
    return sorted(set(pool))


NAMES = ("Okafor", "Lindqvist", "Moreau", "Tanaka", "Haddad", "Kowalski", "Mensah", "Castillo")


def archive(count: int, pool: Sequence[str], seed: int = 1) -> Iterator[tuple[int, str, str]]:
    """(story number, title, text) for `count` articles: stories of 1 to 5 copies."""
    rng = random.Random(seed)
    made, story = 0, 0
    while made < count:
        story += 1
        chosen = rng.sample(pool, rng.randint(3, 7))
        own = (
            f"{rng.choice(NAMES)} said {rng.randint(2, 9999)} people attended on day "
            f"{rng.randint(1, 365)} in district {rng.randint(1, 5000)}."
        )
        text = "\n".join([chosen[0], own, *chosen[1:]])
        title = " ".join(chosen[0].split()[:10])
        for copy in range(min(rng.randint(1, 5), count - made)):
            yield story, title, text + (f"\nCopy {copy}." if copy else "")
            made += 1


def load(store: SqlStore, count: int, pool: Sequence[str]) -> float:
    """Bulk-load `count` articles and their stories (the index's triggers on); seconds."""
    started = time.perf_counter()
    rows = archive(count, pool)
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        marker = "?" if store.is_sqlite else "%s"
        story_sql = (
            "INSERT INTO stories (id, first_seen, updated_at, article_count) "
            f"VALUES ({', '.join([marker] * 4)})"
        )
        article_sql = (
            "INSERT INTO articles (id, url, title, text, text_source, text_chars, content_hash,"
            " version, first_seen, updated_at, story_id, similarity)"
            f" VALUES ({', '.join([marker] * 12)})"
        )
        done, seen_stories = 0, 0
        while done < count:
            stories_rows, article_rows = [], []
            for story, title, text in _take(rows, LOAD_BATCH):
                done += 1
                at = (T0 + timedelta(minutes=story)).replace(tzinfo=None)
                if story > seen_stories:
                    seen_stories = story
                    stories_rows.append((story, at, at, 1))
                url = f"https://outlet{done % 50}.example/{done}"
                article_rows.append(
                    (done, url, title, text, "page", len(text), f"h{done}", 1, at, at, story, 1.0)
                )
            cursor.executemany(story_sql, stories_rows)
            cursor.executemany(article_sql, article_rows)
            raw.commit()
    finally:
        raw.close()
    if not store.is_sqlite:  # what autovacuum does after a bulk load: statistics, GIN merged
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    return time.perf_counter() - started


def _take(rows: Iterator[Any], size: int) -> list[Any]:
    out = []
    for row in rows:
        out.append(row)
        if len(out) == size:
            break
    return out


# -- sizes and write cost -----------------------------------------------------------------------


def sizes(store: SqlStore) -> tuple[int, int]:
    """(bytes of the index, bytes of the articles table) on disk."""
    with store.engine.connect() as conn:
        if store.is_sqlite:
            index = conn.exec_driver_sql(
                "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'article_search%'"
            ).scalar()
            table = conn.exec_driver_sql(
                "SELECT sum(pgsize) FROM dbstat WHERE name = 'articles'"
                " OR name LIKE 'sqlite_autoindex_articles%' OR name LIKE 'ix_articles%'"
            ).scalar()
        else:
            index = conn.exec_driver_sql("SELECT pg_total_relation_size('article_search')").scalar()
            table = conn.exec_driver_sql("SELECT pg_total_relation_size('articles')").scalar()
    return int(index or 0), int(table or 0)


def write_cost(url_for: Callable[[], str], pool: Sequence[str], count: int = 3000) -> list[str]:
    """Microseconds per article to insert `count` articles, without and with the index: this
    process's CPU on SQLite (the index works in it), wall on PostgreSQL (its server does)."""
    results = {}
    for indexed in (False, True):
        store = SqlStore(url_for())
        store.migrate()
        if not indexed:
            drop_index(store)
        cpu = time.process_time()
        wall = load(store, count, pool)
        spent = time.process_time() - cpu if store.is_sqlite else wall
        results[indexed] = spent / count * 1e6
        store.close()
    return [
        f"{results[False]:.0f}",
        f"{results[True]:.0f}",
        f"{results[True] / results[False]:.2f}",
    ]


# -- queries --------------------------------------------------------------------------------------


def queries(pool: Sequence[str], count: int, seed: int = 7) -> tuple[list[str], list[str]]:
    """`count` two-word queries and `count` phrases, from texts that are stored."""
    rng = random.Random(seed)
    pairs: list[str] = []
    phrases: list[str] = []
    while len(pairs) < count:
        words = [w for w in words_of(rng.choice(pool)) if len(w) >= 5 and w.isalpha()]
        if len(words) >= 2:
            first, second = rng.sample(words, 2)
            pairs.append(f"{first} {second}")
    while len(phrases) < count:
        phrase_words = words_of(rng.choice(pool))
        if len(phrase_words) >= 8:
            start = rng.randrange(len(phrase_words) - 4)
            phrases.append('"' + " ".join(phrase_words[start : start + 4]) + '"')
    return pairs, phrases


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000, result


def timed_cpu(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall and this process's CPU milliseconds of fn(): on a busy machine the CPU still holds
    (SQLite works in this process; PostgreSQL's server is not counted)."""
    cpu = time.process_time()
    wall, _ = timed(fn)
    return wall, (time.process_time() - cpu) * 1000


def p95(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


def query_rows(store: SqlStore, db: str, kind: str, texts: list[str]) -> list[Any]:
    store_ms, command_ms, command_cpu, found = [], [], [], []
    for text in texts:
        query = parse_query(text)
        ms, hits = timed(functools.partial(store.search_stories, query, None, 20))
        store_ms.append(ms)
        ms, cpu = timed_cpu(functools.partial(find_stories, store, text, None, 20))
        command_ms.append(ms)
        command_cpu.append(cpu)
        found.append(len(hits))
    walls = [
        run_measured([*newsfold_command(), "--db", db, "search", text, "--json"]).wall * 1000
        for text in texts[:WALL_QUERIES]
    ]
    return [
        kind,
        f"{statistics.median(found):.0f}",
        f"{statistics.median(store_ms):.1f}",
        f"{p95(store_ms):.1f}",
        f"{statistics.median(command_ms):.1f}",
        f"{p95(command_ms):.1f}",
        f"{statistics.median(command_cpu):.1f}",
        f"{p95(command_cpu):.1f}",
        f"{statistics.median(walls):.0f}",
        "{:.0f} {}".format(*max(zip(command_ms, texts, strict=True))),
    ]


class Backend:
    """Fresh stores of one kind: SQLite files in a directory, or PostgreSQL schemas."""

    def __init__(self, name: str, scratch: Path, keep: Path | None = None) -> None:
        self.name = name
        self.scratch = scratch
        self.keep = keep
        self.schemas: list[str] = []

    def url(self, kept_as: str | None = None) -> str:
        """A fresh store; with `kept_as` and --keep, a store kept under that name (loaded by an
        earlier run when it exists): a SQLite file in --keep, a PostgreSQL schema left in place."""
        kept = kept_as if self.keep is not None else None
        if self.name == "sqlite":
            folder = self.keep if kept and self.keep else self.scratch
            return f"sqlite:///{folder / (kept or uuid.uuid4().hex)}.db"
        schema = "bench_" + (f"kept_{kept.replace('-', '_')}" if kept else uuid.uuid4().hex[:10])
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        if not kept:
            self.schemas.append(schema)
        return f"{PG_URL}?options=-csearch_path%3D{schema}"

    def cleanup(self) -> None:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            for schema in self.schemas:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")


def archive_tables(
    backend: Backend, sizes_wanted: Sequence[int], pool: Sequence[str], count: int
) -> None:
    pairs, phrases = queries(pool, count)
    size_rows, query_table = [], []
    for size in sizes_wanted:
        url = backend.url(kept_as=f"articles-{size}")
        store = SqlStore(url)
        store.migrate()
        seconds = load(store, size, pool) if store.stats()["articles"] < size else float("nan")
        index, table = sizes(store)
        size_rows.append(
            [
                f"{size:,}",
                f"{seconds:.0f}",
                f"{size / seconds:,.0f}",
                f"{index / size * 1000 / 2**20:.2f}",
                f"{table / size * 1000 / 2**20:.2f}",
                f"{index / table:.2f}",
            ]
        )
        for kind, texts in (("two words", pairs), ("phrase", phrases)):
            query_table.append([f"{size:,}", *query_rows(store, url, kind, texts)])
        store.close()
    print_table(
        f"size on disk, {backend.name} (bulk load with the index's triggers on)",
        ["articles", "load s", "articles/s", "index MB/1k", "articles MB/1k", "index/articles"],
        size_rows,
    )
    print_table(
        f"query time, {backend.name}: {count} queries of each kind, top 20 stories, ms",
        [
            "articles",
            "query",
            "stories found",
            "store p50",
            "store p95",
            "in-process p50",
            "in-process p95",
            "its CPU p50",
            "its CPU p95",
            f"command wall p50 ({WALL_QUERIES})",
            "slowest in-process: ms, query",
        ],
        query_table,
    )


def quality(backend: Backend) -> list[str]:
    """The quality check of tests/test_search_quality.py, counted: phrases found in the top 3."""
    store = SqlStore(backend.url())
    store.migrate()
    misses = phrase_misses(store, labelled_docs(SEED, originals=100))
    store.close()
    return [backend.name, f"{QUERIES - len(misses)}/{QUERIES}", "; ".join(misses[:3])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--skip-run", action="store_true", help="leave out the cost in a run")
    parser.add_argument(
        "--keep",
        type=Path,
        help="keep the archives (SQLite: files in this directory; PostgreSQL: schemas"
        " bench_kept_*) and reuse them",
    )
    parser.add_argument("--skip-write", action="store_true", help="leave out the write cost")
    args = parser.parse_args()
    print(machine_line())
    if not args.skip_run:
        run_cost(args.runs)
    pool = paragraph_pool()
    sizes_wanted = [int(s) for s in args.sizes.split(",")]
    quality_rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.backends.split(","):
            backend = Backend(name, Path(scratch), args.keep)
            try:
                if not args.skip_write:
                    print_table(
                        f"write cost per article, {name}, µs (3,000 articles; SQLite: CPU,"
                        " PostgreSQL: wall)",
                        ["without index", "with index", "ratio"],
                        [write_cost(backend.url, pool)],
                    )
                quality_rows.append(quality(backend))
                archive_tables(backend, sizes_wanted, pool, args.queries)
            finally:
                backend.cleanup()
    print_table(
        f"quality: 5-word phrases from the middle of a copy, story in the top {TOP}",
        ["store", "found", "first misses"],
        quality_rows,
    )


if __name__ == "__main__":
    main()
