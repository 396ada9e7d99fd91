"""Fetching: CPU per request of newsfold's Fetcher on aiohttp's transport vs httpx's own.

Run: .venv/bin/python bench/bench_fetch.py [--pages 1000] [--hosts 20] [--rounds 3]

The corpus pages (gzip-encoded, as news sites send them) are fetched once each through one
Fetcher with the default settings, all asked for at once, so the fetcher's own limits
(fetch.concurrency, fetch.per_host) decide how many are in flight, as in a run. The two
transports take turns, round after round, in this process; the server is another process, so
the CPU measured (this process's, from getrusage) is the client's alone: HTTP, the body cap's
inflating and the fetcher's bookkeeping.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import resource
import statistics
import time
from collections.abc import Callable, Sequence

import httpx
from common import CorpusServer, Route, corpus_pages, machine_line, print_table

from newsfold.config import Settings
from newsfold.fetch import HTML_ACCEPT, Fetcher, default_transport


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def fetch_all(
    urls: Sequence[str], transport: httpx.AsyncBaseTransport
) -> tuple[float, float]:
    """(wall s, CPU s) to fetch every URL once through one Fetcher on `transport`."""
    settings = dataclasses.replace(Settings().fetch, allow_private_networks=True)
    async with Fetcher(settings, transport=transport) as fetcher:
        started, cpu = time.perf_counter(), process_cpu()
        await asyncio.gather(*(fetcher.fetch(url, accept=HTML_ACCEPT) for url in urls))
        return time.perf_counter() - started, process_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    print(machine_line())
    files = corpus_pages()
    routes = [
        Route(f"/pages/{n}", files[n % len(files)], "text/html", host=n) for n in range(args.pages)
    ]
    settings = dataclasses.replace(Settings().fetch, allow_private_networks=True)
    transports: dict[str, Callable[[], httpx.AsyncBaseTransport]] = {
        "aiohttp transport (newsfold's)": lambda: default_transport(settings),
        "httpx's own transport": lambda: httpx.AsyncHTTPTransport(trust_env=False),
    }
    cpu: dict[str, list[float]] = {name: [] for name in transports}
    wall: dict[str, list[float]] = {name: [] for name in transports}
    with CorpusServer(args.hosts) as server:
        server.serve(routes)
        urls = [server.url(route) for route in routes]
        for _ in range(args.rounds):
            for name, make in transports.items():
                seconds, used = asyncio.run(fetch_all(urls, make()))
                wall[name].append(seconds)
                cpu[name].append(used)
    rows = [
        [
            name,
            f"{statistics.median(wall[name]):.2f}",
            f"{statistics.median(cpu[name]):.2f}",
            f"{1e6 * statistics.median(cpu[name]) / args.pages:.0f}",
        ]
        for name in transports
    ]
    ours, theirs = (statistics.median(cpu[name]) for name in transports)
    print_table(
        f"{args.pages} gzip-encoded corpus pages over {args.hosts} hosts, medians of"
        f" {args.rounds} rounds; CPU of this (client) process",
        ("transport", "wall s", "CPU s", "CPU us/request"),
        rows,
    )
    print(f"\naiohttp / httpx CPU per request: {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
