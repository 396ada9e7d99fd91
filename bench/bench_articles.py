"""Articles: `newsfold run --all` over 2,000 new article pages, against two baselines.

Run: .venv/bin/python bench/bench_articles.py [--feeds 40] [--items 50] [--hosts 20]
                                              [--rounds 1] [--profile DIR] [--newsfold-only]

The 398 corpus pages are served again and again under new URLs (each URL is a new article),
listed in generated RSS feeds of --items items each; the feeds are spread over --hosts loopback
addresses and each feed's pages sit on its own host, as an outlet serves its feed and its pages.
newsfold runs with the user defaults (requests in flight overall and per host, one extraction
worker per CPU, robots.txt respected: the server answers 404 for it, so everything is allowed)
on a fresh SQLite store.

In the same run, on the same page bytes:
- extraction only: plain trafilatura.extract(page) for every page in a ProcessPoolExecutor of
  os.cpu_count() workers, pool started and warm before the clock starts. No implementation that
  extracts every page with trafilatura on this machine can beat it by much; newsfold's
  extract_page does a little more (decoding, a <head> pass, comments left out).
- sequential: the naive job in one process, one thing at a time: httpx GET and feedparser.parse
  of each feed, then httpx GET and trafilatura.extract of each item's page; nothing stored.
newsfold and the sequential loop are timed from process start to exit; with --rounds the three
take turns, so load from elsewhere falls on all of them alike.

Counting: 2,000 pages are ~5 copies of each of the 398 corpus texts, so dedup folds them into
about 400 stories (the exact-text layer catches every copy after the first). A few corpus pages
name a relative canonical URL; two copies of such a page on one host are one article to newsfold
(1,995 articles from 2,000 pages with the defaults).

Reading the numbers: wall time needs an idle machine. CPU per article holds on a busy one, and
on N cores newsfold's wall time cannot beat its CPU / N, so the CPU ratios bound the wall ones.
A worker "runnable" in most samples had work waiting (extraction never waits on I/O).
"""

from __future__ import annotations

import argparse
import gzip
import os
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from itertools import cycle, islice
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from common import (
    CorpusServer,
    Route,
    ServerStats,
    TreeUsage,
    corpus_pages,
    machine_line,
    mb,
    newsfold_command,
    newsfold_json,
    print_profile,
    print_table,
    profile_command,
    read_profile,
    run_in_process,
    run_measured,
    write_config,
)


@dataclass(frozen=True, slots=True)
class Site:
    """The generated feeds and the page routes they list."""

    pages: list[Route]
    feeds: list[Route]


def build_site(server: CorpusServer, feeds: int, items: int) -> Site:
    """Feed n lists `items` pages, the corpus pages in turn, each under its own new URL."""
    sources = islice(cycle(corpus_pages()), feeds * items)
    pages = [
        Route(
            f"/articles/{n // items}/{n % items}-{file.name.removesuffix('.gz')}",
            file,
            "text/html",
            host=(n // items),
        )
        for n, file in enumerate(sources)
    ]
    feed_routes = [
        Route(
            f"/feeds/{number}.xml",
            rss(number, [server.url(p) for p in pages[number * items : (number + 1) * items]]),
            "application/rss+xml",
            host=number,
        )
        for number in range(feeds)
    ]
    return Site(pages, feed_routes)


def rss(number: int, links: Sequence[str]) -> bytes:
    """An RSS 2.0 feed of `links`, newest first, one short sentence as each item's summary."""
    now = datetime.now(UTC)
    items = "".join(
        f"<item><title>Story {number}-{k}</title><link>{escape(link)}</link>"
        f'<guid isPermaLink="false">bench-{number}-{k}</guid>'
        f"<pubDate>{format_datetime(now - timedelta(minutes=k), usegmt=True)}</pubDate>"
        f"<description>Story {number}-{k} in brief.</description></item>"
        for k, link in enumerate(links)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Bench outlet {number}</title><link>http://example.org/{number}</link>"
        f"<description>generated</description>{items}</channel></rss>"
    ).encode()


# ---------------------------------------------------------------------------------------------
# The three ways of doing the job


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    articles: int
    wall: float
    usage: TreeUsage
    server: ServerStats | None = None

    @property
    def cpu(self) -> float:
        return self.usage.root_cpu + self.usage.other_cpu

    def cells(self) -> list[Any]:
        return [
            self.name,
            self.articles,
            f"{self.wall:.2f}",
            f"{self.articles / self.wall:.1f}",
            f"{self.usage.root_cpu:.1f}",
            f"{self.usage.other_cpu:.1f}",
            f"{1000 * _cpu_per_article(self):.1f}",
            f"{self.server.cpu_seconds:.2f}" if self.server else "-",
            mb(self.usage.root_peak_rss),
            mb(self.usage.other_peak_rss),
            mb(self.usage.tree_peak_rss),
            f"{self.usage.load:.1f}",
        ]


HEADER = (
    "way",
    "articles",
    "wall s",
    "articles/s",
    "main CPU s",
    "children CPU s",
    "CPU ms/article",
    "server CPU s",
    "main peak RSS",
    "largest child",
    "tree peak RSS",
    "load",
)


def extraction_only(files: Sequence[Path], workers: int) -> tuple[float, int]:
    """(seconds, pages with text): trafilatura.extract over the bodies in a warm process pool."""
    unique = {file: gzip.decompress(file.read_bytes()) for file in set(files)}
    bodies = [unique[file] for file in files]  # one copy of each page in memory, as served
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_extract, bodies[:workers], chunksize=1))  # start and warm every worker
        started = time.perf_counter()
        texts = list(pool.map(_extract, bodies, chunksize=1))
        seconds = time.perf_counter() - started
    return seconds, sum(1 for text in texts if text)


def _extract(body: bytes) -> str:
    import trafilatura

    return trafilatura.extract(body) or ""


def sequential(feed_urls: Sequence[str]) -> int:
    """The naive job, one request and one page at a time; the number of pages with text."""
    import feedparser
    import httpx
    import trafilatura

    done = 0
    with httpx.Client(timeout=30) as client:
        for url in feed_urls:
            for item in feedparser.parse(client.get(url).content).entries:
                page = client.get(item.link)
                done += bool(trafilatura.extract(page.content))
    return done


def run_newsfold(server: CorpusServer, config: Path, db: Path) -> Row:
    before = server.stats()
    argv = [*newsfold_command(), "--config", str(config), "--db", str(db)]
    measured = run_measured([*argv, "run", "--all"])
    served = server.stats() - before
    articles = newsfold_json(config, db, "stats")["articles"]
    return Row("newsfold run --all", articles, measured.wall, measured.usage, served)


def run_extraction_only(files: Sequence[Path], workers: int) -> Row:
    (seconds, done), usage = run_in_process(extraction_only, files, workers)
    return Row(f"extraction only ({workers} workers)", done, seconds, usage)


def run_sequential(server: CorpusServer, feed_urls: Sequence[str]) -> Row:
    before, started = server.stats(), time.perf_counter()
    done, usage = run_in_process(sequential, feed_urls)
    wall = time.perf_counter() - started
    return Row("sequential loop", done, wall, usage, server.stats() - before)


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=40)
    parser.add_argument("--items", type=int, default=50, help="items (pages) per feed")
    parser.add_argument("--hosts", type=int, default=20, help="loopback addresses to spread on")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--profile", type=Path, help="also profile one newsfold run into DIR")
    parser.add_argument("--newsfold-only", action="store_true", help="no baselines, no ratios")
    args = parser.parse_args()
    workers = os.cpu_count() or 1

    print(machine_line())
    rows: list[Row] = []
    with CorpusServer(args.hosts) as server, tempfile.TemporaryDirectory() as tmp:
        site = build_site(server, args.feeds, args.items)
        server.serve([*site.pages, *site.feeds])
        feed_urls = [server.url(route) for route in site.feeds]
        files = [route.source for route in site.pages if isinstance(route.source, Path)]
        print(f"{len(site.pages)} pages in {len(site.feeds)} feeds over {args.hosts} hosts")
        for round_ in range(args.rounds):
            work = Path(tmp) / f"round-{round_}"
            work.mkdir()
            if not args.newsfold_only:
                rows.append(run_extraction_only(files, workers))
            rows.append(run_newsfold(server, write_config(work, feed_urls), work / "newsfold.db"))
            if not args.newsfold_only:
                rows.append(run_sequential(server, feed_urls))
        print_table(
            f"{len(site.pages)} new articles, {args.rounds} round(s)",
            HEADER,
            [r.cells() for r in rows],
        )
        if not args.newsfold_only:
            print_ratios(rows, workers)
        if args.profile:
            profile(server, feed_urls, Path(tmp) / "profile", args.profile)


def print_ratios(rows: Sequence[Row], workers: int) -> None:
    bound, ours, naive = (_best(rows, way) for way in ("extraction", "newsfold", "sequential"))
    cpu_ratio = _cpu_per_article(ours) / _cpu_per_article(bound)
    naive_cpu_ratio = _cpu_per_article(naive) / _cpu_per_article(ours)
    print_table(
        "Ratios (best round of each; CPU ratios hold on a loaded machine, wall ratios do not)",
        ("measure", "value", "aim"),
        [
            ("newsfold / extraction-only wall", f"{ours.wall / bound.wall:.2f}", "<= 1.15"),
            ("sequential / newsfold wall", f"{naive.wall / ours.wall:.2f}", ">= 2"),
            ("newsfold / extraction-only CPU per article", f"{cpu_ratio:.2f}", ""),
            ("sequential / newsfold CPU per article", f"{naive_cpu_ratio:.2f}", ""),
            ("newsfold workers runnable (share of samples)", _runnable(ours, workers), ""),
            ("extraction-only workers runnable", _runnable(bound, workers), ""),
            ("newsfold workers' CPU / (wall x workers)", f"{_busy(ours, workers):.0%}", ""),
            ("extraction-only workers' CPU / (wall x workers)", f"{_busy(bound, workers):.0%}", ""),
            ("load average (1 min) after newsfold", f"{ours.usage.load:.1f}", f"< {workers}"),
        ],
    )


def _cpu_per_article(row: Row) -> float:
    return row.cpu / row.articles


def _runnable(row: Row, workers: int) -> str:
    return ", ".join(f"{share:.0%}" for _, share in row.usage.busiest(workers))


def _busy(row: Row, workers: int) -> float:
    """How much of the workers' time went to work; the fork server's share is tiny."""
    return row.usage.other_cpu / (row.wall * workers)


def _best(rows: Sequence[Row], prefix: str) -> Row:
    return min((row for row in rows if row.name.startswith(prefix)), key=lambda row: row.wall)


def profile(server: CorpusServer, feed_urls: Sequence[str], work: Path, out: Path) -> None:
    work.mkdir()
    out.mkdir(parents=True, exist_ok=True)
    config = write_config(work, feed_urls)
    argv = [*newsfold_command(), "--config", str(config), "--db", str(work / "newsfold.db")]
    raw = out / f"articles-{len(feed_urls)}-feeds.txt"
    wall, cpu = profile_command([*argv, "run", "--all"], raw)
    title = f"newsfold run --all, {len(feed_urls)} feeds ({raw})"
    print_profile(title, read_profile(raw), wall, cpu)


if __name__ == "__main__":
    main()
