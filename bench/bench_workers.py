"""Scale-out on PostgreSQL: throughput of 1 vs 2 workers, and what dedup costs per article when
the store holds 10,000 or 1,000,000 articles.

    .venv/bin/python bench/bench_workers.py                      # both parts
    .venv/bin/python bench/bench_workers.py --part throughput --workers 1 2 4 --workload pages
    .venv/bin/python bench/bench_workers.py --part dedup --stored 10000 1000000

PostgreSQL is NEWSFOLD_TEST_PG (default postgresql://root@127.0.0.1:5432/test).

**Throughput**: the generated web of tests/test_workers.py (corpus articles and templated
stories with their syndicated copies, about 1,200 articles in 40 feeds of 8 outlets), served by
bench/common.py's aiohttp server in its own process on 8 loopback addresses. Two workloads:
"feed text" (extract.fetch_pages = false, the text in content:encoded: parse, fingerprint,
store) and "pages" (each feed item links to an outlet page: download, trafilatura, store).
N `newsfold run --all` processes start together on a fresh schema. Measured: wall time from the
first start to the last exit, the workers' CPU (process trees, /proc), and PostgreSQL's side: the
CPU of the backends serving the workers (found by application_name) and what they were doing,
sampled every 10 ms from pg_stat_activity (running, waiting on a lock, waiting for the worker).

**Dedup**: a schema holding N articles, each with its fingerprint and 58 LSH band rows, bulk
generated inside PostgreSQL (the band keys random, as distinct texts' keys are), plus 300 real
originals saved through the store. Then, one feed transaction each, 300 copies of those
originals (their candidates are found and verified, they join the original's story) and 300
texts with no copy stored (a new story each): time per article, statements per article (a
SQLAlchemy event listener counts them) and the share of the two statements that lock the dedup
keys. The rows the
measurement adds are deleted afterwards, so a kept schema (`--keep`) measures the same again.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from common import (
    CLOCK_TICKS,
    CorpusServer,
    Route,
    TreeSampler,
    machine_line,
    newsfold_command,
    print_table,
    write_config,
)
from sqlalchemy import event

from newsfold import dedup
from newsfold.config import Settings
from newsfold.model import FeedSource
from newsfold.store import open_store
from newsfold.store.sql import SqlStore
from tests.syndicate import Doc, outlet_page
from tests.test_workers import SEED, Web, feed_xml, generate_web, save_copies

PG_URL = os.environ.get("NEWSFOLD_TEST_PG", "postgresql://root@127.0.0.1:5432/test")
APP_NAME = "newsfold-bench"
HOSTS = 8
PG_SAMPLE_EVERY = 0.01  # seconds
BANDS_PER_ARTICLE = 58  # 42 whole-text keys and 16 lead keys at the default dedup settings
MEASURED = 300  # copies, and as many texts without a copy


# ---------------------------------------------------------------------------------------------
# PostgreSQL schemas


def schema_url(schema: str) -> str:
    return f"{PG_URL}?options=-csearch_path%3D{schema}&application_name={APP_NAME}"


@contextmanager
def fresh_schema(keep: bool = False, name: str | None = None) -> Iterator[str]:
    schema = name or f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    try:
        yield schema
    finally:
        if not keep:
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")


class PgSampler(threading.Thread):
    """What the backends serving this benchmark do, and their CPU, until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="pg-sampler")
        self.states: Counter[str] = Counter()
        self.cpu: dict[int, float] = {}
        self._done = threading.Event()

    def run(self) -> None:
        query = (
            "SELECT pid, state, wait_event_type, wait_event FROM pg_stat_activity"
            " WHERE application_name = %s AND pid <> pg_backend_pid()"
        )
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            while not self._done.wait(PG_SAMPLE_EVERY):
                for pid, state, kind, name in conn.execute(query, (APP_NAME,)).fetchall():
                    self.states[_activity(state, kind, name)] += 1
                    self.cpu[pid] = _process_cpu(pid) or self.cpu.get(pid, 0.0)

    def stop(self) -> PgSampler:
        self._done.set()
        self.join()
        return self


def _activity(state: str | None, kind: str | None, name: str | None) -> str:
    if state == "active":
        return f"waiting: {kind}/{name}" if kind else "running"
    if state == "idle in transaction":
        return "in a transaction, waiting for the worker"
    return "idle"


def _process_cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


# ---------------------------------------------------------------------------------------------
# Throughput: N workers on one job


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    routes: list[Route]
    feeds: list[Route]
    sections: dict[str, dict[str, Any]]


def workloads(web: Web, server: CorpusServer) -> list[Workload]:
    feeds = [
        Route(path, feed_xml(path, docs), "application/rss+xml", host=i % HOSTS)
        for i, (path, docs) in enumerate(web.feeds.items())
    ]
    pages = {
        d.url: Route("/pages/" + d.url.split("://", 1)[1], outlet_page(d).encode(), "text/html", i)
        for i, d in enumerate(web.docs)
    }
    links = {url: server.url(route) for url, route in pages.items()}
    paged = [
        Route("/paged" + path, page_feed(path, docs, links), "application/rss+xml", i % HOSTS)
        for i, (path, docs) in enumerate(web.feeds.items())
    ]
    fetch = {"per_host": 8, "concurrency": 32, "max_new_per_feed": 1000}
    return [
        Workload("feed text", feeds, feeds, {"fetch": fetch, "extract": {"fetch_pages": False}}),
        Workload("pages", paged + list(pages.values()), paged, {"fetch": fetch}),
    ]


def page_feed(path: str, docs: Sequence[Doc], links: dict[str, str]) -> bytes:
    """The feed with each item linking to its page on the benchmark server; the page's
    canonical link names the outlet's URL, which becomes the article's."""
    body = feed_xml(path, docs).decode()
    for doc in docs:
        body = body.replace(f"<link>{doc.url}</link>", f"<link>{links[doc.url]}</link>")
    return body.encode()


@dataclass(slots=True)
class RunResult:
    workers: int
    wall: float
    articles: int
    worker_cpu: float
    pg: PgSampler
    statements: dict[str, Any] = field(default_factory=dict)


def run_workers(config: Path, db: str, count: int) -> tuple[float, float]:
    """`count` workers started together; (wall seconds, CPU seconds of their process trees)."""
    argv = [*newsfold_command(), "--config", str(config), "--db", db, "-q", "run", "--all"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFOLD_")}
    started = time.perf_counter()
    processes = [
        subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    samplers = [TreeSampler(p.pid) for p in processes]
    for sampler in samplers:
        sampler.start()
    for process in processes:
        _, stderr = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"a worker exited {process.returncode}: {stderr[-2000:]}")
    wall = time.perf_counter() - started
    usages = [sampler.stop() for sampler in samplers]
    return wall, sum(u.root_cpu + u.other_cpu for u in usages)


def throughput(web: Web, counts: Sequence[int], only: str | None) -> None:
    with CorpusServer(hosts=HOSTS) as server:
        loads = workloads(web, server)
        server.serve([route for workload in loads for route in workload.routes])  # once only
        for workload in loads:
            if only and workload.name != only:
                continue
            results = []
            for count in counts:
                with fresh_schema() as schema, tempfile.TemporaryDirectory() as tmp:
                    urls = [server.url(route) for route in workload.feeds]
                    config = write_config(Path(tmp), urls, **workload.sections)
                    db = schema_url(schema)
                    store = open_store(db)
                    store.migrate()  # outside the timing: a first start's one-off
                    pg = PgSampler()
                    pg.start()
                    wall, cpu = run_workers(config, db, count)
                    pg.stop()
                    articles = int(store.stats()["articles"])
                    store.close()
                results.append(RunResult(count, wall, articles, cpu, pg))
            print_throughput(workload.name, results)


def print_throughput(name: str, results: list[RunResult]) -> None:
    base = results[0]
    rows = []
    for r in results:
        pg_cpu = sum(r.pg.cpu.values())
        busy = sum(n for state, n in r.pg.states.items() if state != "idle")
        locked = sum(n for state, n in r.pg.states.items() if state.startswith("waiting: Lock"))
        rows.append(
            [
                r.workers,
                r.articles,
                f"{r.wall:.1f}",
                f"{r.articles / r.wall:.0f}",
                f"{(base.wall / r.wall):.2f}x",
                f"{r.worker_cpu:.1f}",
                f"{pg_cpu:.1f}",
                f"{1000 * pg_cpu / max(r.articles, 1):.2f}",
                f"{100 * locked / max(busy, 1):.1f} %",
            ]
        )
    header = [
        "workers",
        "articles",
        "wall s",
        "articles/s",
        "speed-up",
        "worker CPU s",
        "PG CPU s",
        "PG CPU ms/article",
        "lock waits",
    ]
    print_table(f"Throughput, {name}", header, rows)
    for r in results:
        total = sum(r.pg.states.values()) or 1
        shares = ", ".join(f"{s} {100 * n / total:.0f} %" for s, n in r.pg.states.most_common(6))
        print(f"  {r.workers} worker(s), backend samples: {shares}")


# ---------------------------------------------------------------------------------------------
# Dedup cost with N stored articles


@dataclass(slots=True)
class StatementLog:
    """Statements run on an engine, by kind, with their time."""

    count: Counter[str] = field(default_factory=Counter)
    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    _started: dict[int, float] = field(default_factory=dict)

    def attach(self, store: SqlStore) -> None:
        event.listen(store.engine, "before_cursor_execute", self._before)
        event.listen(store.engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self._started[id(cursor)] = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        kind = statement_kind(statement)
        self.count[kind] += 1
        self.seconds[kind] += time.perf_counter() - self._started.pop(id(cursor), 0.0)

    def reset(self) -> None:
        self.count.clear()
        self.seconds.clear()


def statement_kind(sql: str) -> str:
    words = sql.split()
    if "dedup_locks" in sql:
        return "dedup key locks"
    verb = words[0].upper() if words else "?"
    for marker in ("FROM", "INTO", "UPDATE"):
        if marker in (w.upper() for w in words):
            table = words[[w.upper() for w in words].index(marker) + 1]
            return f"{verb} {table.strip('(').split('.')[-1]}"
    return verb


def bulk_load(schema: str, stored: int) -> None:
    """`stored` articles, each in its own story, with a fingerprint and band rows: in SQL."""
    store = open_store(schema_url(schema))
    store.migrate()
    store.close()
    fingerprint = dedup.fingerprint("a stored text " * 300, Settings().dedup).to_bytes()
    now = datetime.now(UTC).replace(tzinfo=None)
    epoch = int(datetime.now(UTC).timestamp())
    chunk = 250_000
    with psycopg.connect(PG_URL, autocommit=True, options=f"-csearch_path={schema}") as conn:
        conn.execute("DROP INDEX IF EXISTS ix_dedup_bands_key, ix_dedup_bands_seen_at")
        for low in range(1, stored + 1, chunk):
            high = min(low + chunk - 1, stored)
            conn.execute(
                "INSERT INTO stories (id, first_seen, updated_at, article_count)"
                " SELECT a, %s, %s, 1 FROM generate_series(%s::int, %s::int) a",
                (now, now, low, high),
            )
            conn.execute(
                "INSERT INTO articles (id, url, title, text, text_source, text_chars,"
                " content_hash, version, first_seen, updated_at, story_id, similarity)"
                " SELECT a, 'https://bulk.example/' || a, 'bulk', 'bulk text', 'feed', 9,"
                " md5(a::text), 1, %s, %s, a, 1.0 FROM generate_series(%s::int, %s::int) a",
                (now, now, low, high),
            )
            conn.execute(
                "INSERT INTO fingerprints (article_id, data, seen_at)"
                " SELECT a, %s, %s FROM generate_series(%s::int, %s::int) a",
                (fingerprint, now, low, high),
            )
            conn.execute(
                "INSERT INTO dedup_bands (band_key, article_id, seen_at)"
                " SELECT (random() * 18446744073709551615.0 - 9223372036854775808.0)::bigint,"
                " a, %s FROM generate_series(%s::int, %s::int) a, generate_series(1, %s) b",
                (epoch, low, high, BANDS_PER_ARTICLE),
            )
            print(f"  loaded {high:,} of {stored:,} articles", file=sys.stderr, flush=True)
        conn.execute("CREATE INDEX ix_dedup_bands_key ON dedup_bands (band_key)")
        conn.execute("CREATE INDEX ix_dedup_bands_seen_at ON dedup_bands (seen_at)")
        for table in ("stories", "articles"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {stored})")
        conn.execute("ANALYZE")
        conn.execute("CREATE TABLE bench_ready (stored bigint)")
        conn.execute("INSERT INTO bench_ready VALUES (%s)", (stored,))


def ready(schema: str, stored: int) -> bool:
    with psycopg.connect(PG_URL, autocommit=True, options=f"-csearch_path={schema}") as conn:
        found = conn.execute("SELECT to_regclass('bench_ready') IS NOT NULL").fetchone()
        if not found or not found[0]:
            return False
        row = conn.execute("SELECT stored FROM bench_ready").fetchone()
        return row is not None and row[0] == stored


def delete_measured(schema: str, stored: int) -> None:
    """Take out what the measurement added: the store is back to its bulk-loaded state."""
    with psycopg.connect(PG_URL, autocommit=True, options=f"-csearch_path={schema}") as conn:
        for statement in (
            "DELETE FROM dedup_bands WHERE article_id > %s",
            "DELETE FROM fingerprints WHERE article_id > %s",
            "DELETE FROM entries WHERE article_id > %s",
            "DELETE FROM articles WHERE id > %s",
            "DELETE FROM stories WHERE id > %s",
        ):
            conn.execute(statement, (stored,))
        conn.execute("DELETE FROM feeds")


@dataclass(frozen=True, slots=True)
class DedupResult:
    stored: int
    kind: str
    per_article_ms: list[float]
    statements: dict[str, int]
    seconds: dict[str, float]
    stories_new: int


def measure_dedup(web: Web, stored: int, keep: bool) -> list[DedupResult]:
    name = f"bench_dedup_{stored}"
    with fresh_schema(keep=keep, name=name) as schema:
        if not ready(schema, stored):
            started = time.perf_counter()
            bulk_load(schema, stored)
            print(f"  bulk load of {stored:,}: {time.perf_counter() - started:.0f} s", flush=True)
        try:
            return dedup_rounds(web, schema, stored)
        finally:
            delete_measured(schema, stored)


def warm(schema: str) -> None:
    """Read the indexes the lookups use once, as a store in daily use has them in memory."""
    options = f"-csearch_path={schema} -cenable_seqscan=off"
    with psycopg.connect(PG_URL, autocommit=True, options=options) as conn:
        conn.execute("SELECT count(*) FROM dedup_bands WHERE band_key > -9223372036854775808")
        conn.execute("SELECT count(*) FROM fingerprints WHERE article_id > 0")
        conn.execute("SELECT count(*) FROM articles WHERE id > 0")


def dedup_rounds(web: Web, schema: str, stored: int) -> list[DedupResult]:
    store = open_store(schema_url(schema))
    assert isinstance(store, SqlStore)
    store.migrate()  # a kept schema may predate the code's last migration
    warm(schema)
    settings = Settings()
    now = datetime.now(UTC)
    store.sync_feeds([FeedSource("https://bench.example/feed")], now)
    feed_id = store.feeds()[0].id
    groups = [group for group in web.groups() if len(group) > 1][:MEASURED]
    singles = [group[0] for group in web.groups() if len(group) == 1][:MEASURED]
    log = StatementLog()
    log.attach(store)
    save_copies(store, feed_id, [g[0] for g in groups], settings, now)()  # the originals
    results = []
    for kind, docs in (("copy of a stored story", [g[1] for g in groups]), ("no copy", singles)):
        calls = [save_copies(store, feed_id, [doc], settings, now) for doc in docs]
        log.reset()
        times, new = [], 0
        for call in calls:
            started = time.perf_counter()
            new += call().stories_new
            times.append(1000 * (time.perf_counter() - started))
        results.append(DedupResult(stored, kind, times, dict(log.count), dict(log.seconds), new))
    store.close()
    return results


def print_dedup(results: list[DedupResult]) -> None:
    rows = []
    for r in results:
        n = len(r.per_article_ms)
        locks = r.seconds.get("dedup key locks", 0.0)
        rows.append(
            [
                f"{r.stored:,}",
                r.kind,
                f"{statistics.median(r.per_article_ms):.2f}",
                f"{statistics.quantiles(r.per_article_ms, n=10)[-1]:.2f}",
                f"{sum(r.statements.values()) / n:.1f}",
                f"{1000 * locks / n:.3f}",
                f"{r.stories_new}/{n}",
            ]
        )
    header = [
        "stored",
        "new article",
        "ms median",
        "ms p90",
        "statements",
        "lock ms",
        "new stories",
    ]
    print_table("Dedup and store, one article per feed transaction", header, rows)
    for r in results:
        n = len(r.per_article_ms)
        parts = sorted(r.statements.items(), key=lambda kv: -r.seconds.get(kv[0], 0.0))
        detail = ", ".join(
            f"{kind} {count / n:.1f} ({1000 * r.seconds[kind] / n:.2f} ms)"
            for kind, count in parts[:8]
        )
        print(f"  {r.stored:,} / {r.kind}, per article: {detail}")


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["throughput", "dedup", "both"], default="both")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2, 1, 2], help="runs, in this order"
    )
    parser.add_argument("--workload", choices=["feed text", "pages"], help="only this one")
    parser.add_argument("--stored", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--keep", action="store_true", help="keep the bulk-loaded schemas")
    args = parser.parse_args()
    print(machine_line())
    web = generate_web(SEED)
    print(f"web: {len(web.docs)} articles in {len(web.feeds)} feeds, {len(web.groups())} stories")
    if args.part in ("throughput", "both"):
        throughput(web, args.workers, args.workload)
    if args.part in ("dedup", "both"):
        results = [r for stored in args.stored for r in measure_dedup(web, stored, args.keep)]
        print_dedup(results)


if __name__ == "__main__":
    main()
