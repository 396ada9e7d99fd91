"""The store's cost per new article: one article a commit against a slice of many, both backends.

Run: .venv/bin/python bench/bench_store.py [--rounds 3] [--slice 50]
         [--backend sqlite postgresql]

The labelled evaluation set of bench/bench_fold_e2e.py (tests/syndicate.py `labelled_docs`:
corpus texts, their syndicated copies, templated trap stories), shuffled once, is saved through
`SqlStore.record_feed` as a worker commits a feed (tests/test_workers.py `save_copies`: the
pipeline's fold rules, plans made beforehand), on a fresh store each time: a SQLite file, or a
fresh PostgreSQL schema (NEWSFOLD_TEST_PG). Two sets: "every copy" (853 texts of 467 labelled
stories: most articles join a story) and "one per story" (the first text of each story: every
article opens its own). Each is committed one article a feed commit (the baseline: every article
folded with its own look-up and writes), then in slices of --slice articles, as `pipeline`
commits a feed's new articles. Printed per article, medians over the rounds (the variants take
turns): CPU time of the calls (the process's own; PostgreSQL's work is in its server, so read
wall beside it), wall time, statements sent (a SQLAlchemy event counts them), and the slice's
ratio to the baseline.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

from bench_workers import fresh_schema, schema_url
from common import machine_line
from sqlalchemy import event

from newsfold.model import FeedSource
from newsfold.store.sql import SqlStore
from tests.syndicate import Doc, corpus_texts, labelled_docs
from tests.test_workers import NOW, save_copies

Cost = tuple[float, float, float]  # CPU µs, wall µs, statements, per article


@contextmanager
def fresh_store(backend: str) -> Iterator[SqlStore]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-store-") as scratch:
            store = SqlStore(f"sqlite:///{scratch}/newsfold.db")
            yield store
            store.close()
    else:
        with fresh_schema() as schema:
            store = SqlStore(schema_url(schema).replace("postgresql://", "postgresql+psycopg://"))
            yield store
            store.close()


def save(store: SqlStore, docs: Sequence[Doc], per_commit: int) -> Cost:
    """Save `docs` in feed commits of `per_commit` articles; the cost of the commits alone."""
    store.migrate()
    store.add_feed(FeedSource("https://feeds.example/all"), NOW)
    feed_id = store.feeds()[0].id
    sent = [0]

    def count(*_: Any) -> None:
        sent[0] += 1

    event.listen(store.engine, "before_cursor_execute", count)
    cpu = wall = 0.0
    for start in range(0, len(docs), per_commit):
        commit = save_copies(store, feed_id, docs[start : start + per_commit], now=NOW)
        cpu_0, wall_0 = time.thread_time(), time.perf_counter()
        commit()
        cpu += time.thread_time() - cpu_0
        wall += time.perf_counter() - wall_0
    return cpu / len(docs) * 1e6, wall / len(docs) * 1e6, sent[0] / len(docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--slice", type=int, default=50, help="articles a feed commit")
    parser.add_argument("--backend", nargs="+", default=["sqlite", "postgresql"])
    args = parser.parse_args()
    print(machine_line() + "\n")
    docs = labelled_docs(1, 100, corpus_texts())
    random.Random(1).shuffle(docs)
    sets = {"every copy": docs, "one per story": list({d.story: d for d in docs}.values())}
    variants = [
        (backend, name, per_commit)
        for backend in args.backend
        for name in sets
        for per_commit in (1, args.slice)
    ]
    costs: dict[tuple[str, str, int], list[Cost]] = {v: [] for v in variants}
    for _ in range(args.rounds):
        for backend, name, per_commit in variants:
            with fresh_store(backend) as store:
                costs[(backend, name, per_commit)].append(save(store, sets[name], per_commit))
    print(f"{len(docs)} texts, {len(sets['one per story'])} stories; medians of {args.rounds}\n")
    print("| backend | set | a commit | CPU µs | wall µs | statements | CPU ratio | wall ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for backend, name, per_commit in variants:
        cpu, wall, sent = (
            statistics.median(c[i] for c in costs[(backend, name, per_commit)]) for i in range(3)
        )
        base = [statistics.median(c[i] for c in costs[(backend, name, 1)]) for i in range(2)]
        print(
            f"| {backend} | {name} | {per_commit} | {cpu:,.0f} | {wall:,.0f} | {sent:.2f} "
            f"| {cpu / base[0]:.2f} | {wall / base[1]:.2f} |"
        )


if __name__ == "__main__":
    main()
