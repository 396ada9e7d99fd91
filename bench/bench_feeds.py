"""Feeds: `newsfold run --all` over many local feeds, cold and again with nothing changed.

Run: .venv/bin/python bench/bench_feeds.py [--feeds 1000] [--sizes 250,500] [--hosts 100]
                                           [--profile DIR]

The 86 corpus feeds are served again and again under other paths until there are --feeds of
them, spread over --hosts loopback addresses; extract.fetch_pages is off, so only fetching,
parsing, the entry comparison and the store are measured. Each size gets a fresh SQLite store:
a cold run (every entry new), then a run where every feed answers 304 Not Modified.

Counting: a feed's entries belong to that feed, so every copy stores its entries again ("entries
stored" grows with the copies). Articles are per URL: copies of a feed list the same links, so
only the first copy to be committed makes articles of them; the others link to those.
Feeds that list more than fetch.max_new_per_feed new entries keep no validators (the rest must
come next run), so they are fetched in full again on the second run and are not 304s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import cycle, islice
from pathlib import Path
from typing import Any

from common import (
    CORPUS,
    CorpusServer,
    Measured,
    Route,
    ServerStats,
    corpus_feeds,
    feed_route,
    machine_line,
    mb,
    newsfold_command,
    newsfold_json,
    print_profile,
    print_table,
    profile_command,
    read_profile,
    run_measured,
    write_config,
)


def feed_routes(count: int, hosts: int) -> list[Route]:
    """`count` feeds: the corpus feeds in turn, copy n under /feeds/<n>/, host by host."""
    files = corpus_feeds()
    root = CORPUS / "feeds"
    return [
        feed_route(f"/feeds/{number // len(files)}/{file.relative_to(root)}", file, number % hosts)
        for number, file in enumerate(islice(cycle(files), count))
    ]


@dataclass(frozen=True, slots=True)
class RunRow:
    feeds: int
    run: str
    measured: Measured
    server: ServerStats
    summary: dict[str, Any]
    entries: int
    articles: int

    @property
    def cpu(self) -> float:
        return self.measured.usage.root_cpu + self.measured.usage.other_cpu

    def cells(self) -> list[Any]:
        wall, usage = self.measured.wall, self.measured.usage
        fetched = self.server.requests.get("feeds", 0)
        answered_304 = self.server.not_modified.get("feeds", 0)
        return [
            self.feeds,
            self.run,
            f"{wall:.2f}",
            f"{self.feeds / wall:.0f}",
            f"{answered_304}/{fetched} ({answered_304 / max(fetched, 1):.0%})",
            "/".join(
                str(self.summary.get(key, "?"))
                for key in ("feeds_ok", "feeds_not_modified", "feeds_failed")
            ),
            self.entries,
            self.articles,
            f"{usage.root_cpu:.2f}",
            f"{usage.other_cpu:.2f}",
            f"{1000 * self.cpu / self.feeds:.1f}",
            f"{self.server.cpu_seconds:.2f}",
            mb(usage.root_peak_rss),
            mb(usage.tree_peak_rss),
            f"{usage.load:.1f}",
        ]


HEADER = (
    "feeds",
    "run",
    "wall s",
    "feeds/s",
    "304s (server)",
    "updated/unchanged/failed",
    "entries stored",
    "articles",
    "main CPU s",
    "workers CPU s",
    "CPU ms/feed",
    "server CPU s",
    "main peak RSS",
    "tree peak RSS",
    "load",
)


def run_args(config: Path, db: Path) -> list[str]:
    return ["--config", str(config), "--db", str(db), "--log-format", "json", "-v", "run", "--all"]


def run_summary(stderr: str) -> dict[str, Any]:
    """The fields of the run_finished log line (JSON log format)."""
    for line in reversed(stderr.splitlines()):
        if line.startswith("{") and '"run_finished"' in line:
            return dict(json.loads(line))
    return {}


def bench_size(server: CorpusServer, routes: Sequence[Route], work: Path) -> list[RunRow]:
    """Cold run then no-change run on a fresh store; one row each."""
    work.mkdir()
    config = write_config(work, [server.url(r) for r in routes], extract={"fetch_pages": False})
    db = work / "newsfold.db"
    rows = []
    for name in ("cold", "no change"):
        before = server.stats()
        measured = run_measured([*newsfold_command(), *run_args(config, db)])
        served = server.stats() - before
        listed = newsfold_json(config, db, "feeds", "list")
        stats = newsfold_json(config, db, "stats")
        entries = sum(feed["entries"] for feed in listed)
        summary = run_summary(measured.stderr)
        articles = stats["articles"]
        rows.append(RunRow(len(routes), name, measured, served, summary, entries, articles))
    return rows


def empty_run(work: Path) -> Measured:
    """`run --all` with no feeds: what starting up and shutting down costs."""
    work.mkdir()
    config = write_config(work, [], extract={"fetch_pages": False})
    return run_measured([*newsfold_command(), *run_args(config, work / "newsfold.db")])


def profile_runs(server: CorpusServer, routes: Sequence[Route], work: Path, out: Path) -> None:
    """Both runs again on a fresh store, under py-spy; summaries printed, raw files kept."""
    work.mkdir()
    config = write_config(work, [server.url(r) for r in routes], extract={"fetch_pages": False})
    db = work / "newsfold.db"
    for name in ("cold", "no-change"):
        raw = out / f"feeds-{len(routes)}-{name}.txt"
        wall, cpu = profile_command([*newsfold_command(), *run_args(config, db)], raw)
        print_profile(f"{name} run, {len(routes)} feeds ({raw})", read_profile(raw), wall, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--sizes", default="250,500", help="smaller sizes, for memory vs size")
    parser.add_argument("--hosts", type=int, default=100, help="loopback addresses to spread on")
    parser.add_argument("--profile", type=Path, help="also profile the largest size into DIR")
    args = parser.parse_args()
    sizes = sorted({*(int(s) for s in args.sizes.split(",") if s), args.feeds})

    print(machine_line())
    routes = feed_routes(args.feeds, args.hosts)
    with CorpusServer(args.hosts) as server, tempfile.TemporaryDirectory() as tmp:
        server.serve(routes)
        print(f"{args.feeds} feeds over {server.hosts} hosts")
        empty = empty_run(Path(tmp) / "empty")
        rows = [
            row
            for size in sizes
            for row in bench_size(server, routes[:size], Path(tmp) / f"{size}")
        ]
        print_results(empty, rows)
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            profile_runs(server, routes, Path(tmp) / "profile", args.profile)


def print_results(empty: Measured, rows: Sequence[RunRow]) -> None:
    print_table(
        f"newsfold run --all, fetch_pages = false (empty run, no feeds: {empty.wall:.2f} s wall, "
        f"main peak RSS {mb(empty.usage.root_peak_rss)}, tree {mb(empty.usage.tree_peak_rss)})",
        HEADER,
        [row.cells() for row in rows],
    )
    smallest, (cold, again) = rows[0], rows[-2:]
    print_table(
        f"Ratios at {cold.feeds} feeds",
        ("measure", "value", "aim"),
        [
            ("no-change / cold wall", f"{again.measured.wall / cold.measured.wall:.3f}", "<= 0.05"),
            ("no-change / cold CPU", f"{again.cpu / cold.cpu:.3f}", ""),
            ("cold fetch+parse wall", f"{cold.measured.wall:.1f} s", "well under 60 s"),
            (
                f"main peak RSS, {cold.feeds} / {smallest.feeds} feeds (cold)",
                f"{cold.measured.usage.root_peak_rss / smallest.measured.usage.root_peak_rss:.2f}",
                "~1 (flat)",
            ),
        ],
    )


if __name__ == "__main__":
    main()
