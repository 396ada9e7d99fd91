"""Articles: `newsfold run --all` over 2,000 new article pages, against two baselines.

Run: .venv/bin/python bench/bench_articles.py [--workload heavy|light] [--feeds 40] [--items 50]
                                              [--hosts 20] [--rounds 1] [--profile DIR]
                                              [--newsfold-only]

Two workloads. heavy: the 398 corpus pages (real news pages with their scripts, ~230 KB of HTML
each), where extraction dwarfs everything else. light: the generated articles of
tests/test_workers.py (corpus texts and templated stories with their syndicated copies) in their
outlets' page layouts with the furniture of a news site (menus, lists of other stories, footer),
10-30 KB of HTML each, like many real article pages once scripts are left out: here the work
around extraction shows. Either way the pages are served again and again under new URLs (each
URL is a new article), listed in generated RSS feeds of --items items each; the feeds are spread
over --hosts loopback addresses and each feed's pages sit on its own host, as an outlet serves
its feed and its pages (--hosts 1: many outlets on one host).
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
import random
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


def heavy_pages() -> list[tuple[str, Path | bytes]]:
    """(name, source) of each corpus page."""
    return [(file.name.removesuffix(".gz"), file) for file in corpus_pages()]


def light_pages() -> list[tuple[str, Path | bytes]]:
    """(name, HTML) of each generated article in its outlet's layout, with a site's furniture."""
    from tests.syndicate import outlet_page
    from tests.test_workers import SEED, generate_web

    rng = random.Random(SEED)
    return [
        (f"{doc.url.rsplit('/', 1)[-1]}.html", with_furniture(outlet_page(doc), rng).encode())
        for doc in generate_web(SEED).docs
    ]


FURNITURE_WORDS = (
    *("council", "budget", "vote", "storm", "coast", "rail", "strike", "market", "shares"),
    *("court", "ruling", "match", "final", "election", "count", "museum", "opens", "bridge"),
    *("repairs", "heat", "warning", "school", "results", "airport", "delays"),
)


def with_furniture(page: str, rng: random.Random) -> str:
    """The page with a news site's menus and lists of other stories, 10-30 KB in all."""
    target = rng.randint(10_000, 30_000)
    blocks: list[str] = []
    size = len(page)
    while size < target:
        words = " ".join(rng.choices(FURNITURE_WORDS, k=rng.randint(4, 9))).capitalize()
        item = f'<li><a href="/news/{rng.randrange(10**6)}">{words}</a><span>{words}.</span></li>'
        blocks.append(item)
        size += len(item)
    furniture = f"<aside class='more'><h3>More from the site</h3><ul>{''.join(blocks)}</ul></aside>"
    return page.replace("</body>", furniture + "</body>", 1)


def build_site(
    server: CorpusServer, sources: list[tuple[str, Path | bytes]], feeds: int, items: int
) -> Site:
    """Feed n lists `items` pages, the sources in turn, each under its own new URL."""
    pages = [
        Route(f"/articles/{n // items}/{n % items}-{name}", source, "text/html", host=(n // items))
        for n, (name, source) in enumerate(islice(cycle(sources), feeds * items))
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


def page_bytes(source: Path | bytes) -> bytes:
    """A page as served (corpus files are stored gzip-compressed)."""
    return gzip.decompress(source.read_bytes()) if isinstance(source, Path) else source


def extraction_only(sources: Sequence[Path | bytes], workers: int) -> tuple[float, int]:
    """(seconds, pages with text): trafilatura.extract over the bodies in a warm process pool."""
    unique = {source: page_bytes(source) for source in set(sources)}
    bodies = [unique[source] for source in sources]  # one copy of each page, as served
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


def run_extraction_only(sources: Sequence[Path | bytes], workers: int) -> Row:
    (seconds, done), usage = run_in_process(extraction_only, sources, workers)
    return Row(f"extraction only ({workers} workers)", done, seconds, usage)


def run_sequential(server: CorpusServer, feed_urls: Sequence[str]) -> Row:
    before, started = server.stats(), time.perf_counter()
    done, usage = run_in_process(sequential, feed_urls)
    wall = time.perf_counter() - started
    return Row("sequential loop", done, wall, usage, server.stats() - before)


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=["heavy", "light"], default="heavy")
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
        sources = heavy_pages() if args.workload == "heavy" else light_pages()
        site = build_site(server, sources, args.feeds, args.items)
        server.serve([*site.pages, *site.feeds])
        feed_urls = [server.url(route) for route in site.feeds]
        files = [route.source for route in site.pages]
        sizes = sorted(len(page_bytes(source)) for source in {*files})
        print(
            f"{args.workload} workload: {len(site.pages)} pages in {len(site.feeds)} feeds over"
            f" {args.hosts} hosts; {len(sizes)} distinct pages, median"
            f" {sizes[len(sizes) // 2] / 1024:.0f} KB of HTML"
        )
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
            print_ratios(rows, workers, args.workload)
        if args.profile:
            profile(server, feed_urls, Path(tmp) / "profile", args.profile)


AIMS = {"heavy": "<= 1.05", "light": "<= 1.3"}  # newsfold / extraction-only


def print_ratios(rows: Sequence[Row], workers: int, workload: str) -> None:
    bound, ours, naive = (_best(rows, way) for way in ("extraction", "newsfold", "sequential"))
    cpu_ratio = _cpu_per_article(ours) / _cpu_per_article(bound)
    naive_cpu_ratio = _cpu_per_article(ours) / _cpu_per_article(naive)
    print_table(
        "Ratios (best round of each; CPU ratios hold on a loaded machine, wall ratios do not)",
        ("measure", "value", "aim"),
        [
            ("newsfold / extraction-only wall", f"{ours.wall / bound.wall:.2f}", AIMS[workload]),
            ("newsfold / sequential wall", f"{ours.wall / naive.wall:.2f}", "<= 0.6"),
            ("newsfold / extraction-only CPU per article", f"{cpu_ratio:.2f}", ""),
            ("newsfold / sequential CPU per article", f"{naive_cpu_ratio:.2f}", ""),
            (
                "newsfold main process CPU ms per article",
                f"{1000 * ours.usage.root_cpu / ours.articles:.2f}",
                "<= 1",
            ),
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
