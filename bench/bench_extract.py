"""Extraction speed and quality: extract_page against plain trafilatura.extract on the corpus.

Run: .venv/bin/python bench/bench_extract.py [--workers N] [--rounds R] [--skip-options]

1. Throughput: all 398 corpus pages through ExtractPool of N workers, once with extract_page and
   once with plain trafilatura.extract on the same bytes; the best of R rounds.
2. Metadata options, in this process: CPU ms/page for each way of getting text and metadata.
   Every page runs each option R times in turn and keeps its fastest time; CPU time rather than
   wall time, so other processes on the machine hardly move the numbers (wall-clock pool
   throughput on a shared machine can swing by 30 % from one round to the next).
3. Quality of the pool runs: mean token F1 per collection, and trafilatura's snippet counts.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

import trafilatura
from trafilatura.metadata import extract_metadata
from trafilatura.utils import load_html

from newsfold import charset
from newsfold.config import ExtractSettings
from newsfold.errors import ExtractError
from newsfold.extract import ExtractPool, PageExtractor, extract_page
from newsfold.model import Extracted
from tests.textmetrics import (
    CorpusPage,
    corpus_pages,
    mean_f1_by_collection,
    plain_trafilatura,
    snippet_counts,
)

Page = tuple[bytes, str]  # body, URL


def _ours(body: bytes, url: str) -> object:
    try:
        return extract_page(body, url=url, content_type=None)
    except ExtractError:
        return None


def _bare_extraction_with_metadata(body: bytes, url: str) -> object:
    html = charset.decode(body, None)
    return trafilatura.bare_extraction(html, url=url, include_comments=False, with_metadata=True)


def _extract_then_extract_metadata(body: bytes, url: str) -> object:
    html = charset.decode(body, None)
    text = trafilatura.extract(html, url=url, include_comments=False)
    return text, extract_metadata(load_html(html), url)


OPTIONS: dict[str, Callable[[bytes, str], object]] = {
    "plain trafilatura.extract(bytes)": lambda body, url: trafilatura.extract(body),
    "extract_page (text + head pass)": _ours,
    "bare_extraction(with_metadata)": _bare_extraction_with_metadata,
    "extract + extract_metadata": _extract_then_extract_metadata,
}


async def _run_pool(pool: ExtractPool, pages: list[CorpusPage], bodies: list[bytes]) -> list[str]:
    jobs = (pool.extract(body, page.url, None) for page, body in zip(pages, bodies, strict=True))
    results = await asyncio.gather(*jobs, return_exceptions=True)
    return [r.text if isinstance(r, Extracted) else "" for r in results]


def pool_throughput(
    extractors: dict[str, PageExtractor], pages: list[CorpusPage], workers: int, rounds: int
) -> dict[str, tuple[float, list[str]]]:
    """Per extractor: best pages/s over the rounds, and its texts.

    The extractors take turns, round after round, so that load from other processes falls on
    all of them alike.
    """
    settings = ExtractSettings(workers=workers, page_timeout=120)
    bodies = [page.body() for page in pages]
    pools = {name: ExtractPool(settings, extractor=fn) for name, fn in extractors.items()}
    best = dict.fromkeys(extractors, 0.0)
    texts: dict[str, list[str]] = {}
    try:
        for _ in range(rounds):
            for name, pool in pools.items():
                started = time.perf_counter()
                texts[name] = asyncio.run(_run_pool(pool, pages, bodies))
                best[name] = max(best[name], len(pages) / (time.perf_counter() - started))
    finally:
        for pool in pools.values():
            pool.close()
    return {name: (best[name], texts[name]) for name in extractors}


def option_times(pages: list[Page], rounds: int) -> dict[str, list[float]]:
    """Per option, each page's least CPU time in seconds over the rounds."""
    fastest: dict[str, list[float]] = {name: [] for name in OPTIONS}
    for body, url in pages:
        for name, option in OPTIONS.items():
            times = []
            for _ in range(rounds):
                started = time.process_time()
                option(body, url)
                times.append(time.process_time() - started)
            fastest[name].append(min(times))
    return fastest


def _print_table(title: str, header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    print(f"\n{title}")
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-options", action="store_true", help="pool runs only")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # trafilatura logs every page it discards

    pages = corpus_pages()
    runs = pool_throughput(
        {"plain trafilatura.extract": plain_trafilatura, "extract_page": extract_page},
        pages,
        args.workers,
        args.rounds,
    )
    (plain_rate, plain_texts), (_, ours_texts) = runs.values()
    _print_table(
        f"Pool: {len(pages)} corpus pages, {args.workers} workers, best of {args.rounds} rounds",
        ("extractor", "pages/s", "time vs plain"),
        [(name, f"{rate:.1f}", f"{plain_rate / rate:.3f}") for name, (rate, _) in runs.items()],
    )

    if not args.skip_options:
        fastest = option_times([(page.body(), page.url) for page in pages], args.rounds)
        base = sum(fastest["plain trafilatura.extract(bytes)"])
        _print_table(
            f"One process, CPU ms/page (each page's least of {args.rounds})",
            ("option", "mean", "median", "time vs plain"),
            [
                (
                    name,
                    f"{1000 * statistics.mean(times):.2f}",
                    f"{1000 * statistics.median(times):.2f}",
                    f"{sum(times) / base:.3f}",
                )
                for name, times in fastest.items()
            ],
        )

    ours_f1 = mean_f1_by_collection(pages, ours_texts)
    plain_f1 = mean_f1_by_collection(pages, plain_texts)
    _print_table(
        "Mean token F1 against the truth",
        ("collection", "plain", "extract_page", "difference"),
        [
            (name, f"{plain_f1[name]:.4f}", f"{f1:.4f}", f"{f1 - plain_f1[name]:+.4f}")
            for name, f1 in ours_f1.items()
        ],
    )
    ours_found, ours_absent = snippet_counts(pages, ours_texts)
    plain_found, plain_absent = snippet_counts(pages, plain_texts)
    _print_table(
        "trafilatura-eval snippets",
        ("extractor", "main text found", "boilerplate absent"),
        [("plain", plain_found, plain_absent), ("extract_page", ours_found, ours_absent)],
    )


if __name__ == "__main__":
    main()
