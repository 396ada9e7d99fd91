"""Cron ticks: `newsfold run` with nothing due, and `run` while another run holds the lock.

Run: .venv/bin/python bench/bench_tick.py [--feeds 50] [--repeat 5]

cron starts `newsfold run` every few minutes; most ticks find nothing due, and a tick that comes
while a long run is still going finds the lock held and exits 75. Both should cost next to
nothing. A store is filled by one real run over --feeds corpus feeds (pages off), then each
command is run --repeat times, taking turns, and the median is printed: wall time from start to
exit, and CPU time (user + system of the process and everything it waited for, from
getrusage). For scale, the same for a bare `python -c pass` and `newsfold --version` (the
interpreter and the command line alone) in the same rounds.
"""

from __future__ import annotations

import argparse
import fcntl
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from common import (
    CORPUS,
    CorpusServer,
    corpus_feeds,
    feed_route,
    machine_line,
    newsfold_command,
    print_table,
    run_measured,
    write_config,
)

EXIT_LOCKED = 75


@dataclass
class Timings:
    """One command's wall and CPU seconds, one pair per round."""

    name: str
    expected_exit: int
    aim: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def cells(self) -> list[str]:
        return [
            self.name,
            f"{statistics.median(self.wall):.3f}",
            f"{min(self.wall):.3f}-{max(self.wall):.3f}",
            f"{statistics.median(self.cpu):.3f}",
            str(self.expected_exit),
            self.aim,
        ]


def timed(argv: Sequence[str], expected_exit: int) -> tuple[float, float]:
    """(wall s, CPU s) of one command, checked to exit with `expected_exit`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != expected_exit:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def holding_lock(db: Path, run: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    """`run` while this process holds the run lock, as a long run in progress would."""
    with Path(f"{db}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            return run()
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    print(machine_line())
    files = list(islice(corpus_feeds(), args.feeds))
    routes = [feed_route(f"/feeds/{f.relative_to(CORPUS / 'feeds')}", f) for f in files]
    with CorpusServer() as server, tempfile.TemporaryDirectory() as tmp:
        server.serve(routes)
        urls = [server.url(r) for r in routes]
        config = write_config(Path(tmp), urls, extract={"fetch_pages": False})
        db = Path(tmp) / "newsfold.db"
        newsfold = [*newsfold_command(), "--config", str(config), "--db", str(db)]
        filled = run_measured([*newsfold, "run"])
        print(f"store filled by one run over {len(routes)} feeds in {filled.wall:.1f} s")
        rows = [
            Timings("python -c pass", 0, ""),
            Timings("newsfold --version", 0, ""),
            Timings("run, nothing due", 0, "<= 0.3 s"),
            Timings("run, lock held (exit 75)", EXIT_LOCKED, "<= 0.2 s"),
        ]
        commands: list[Callable[[], tuple[float, float]]] = [
            lambda: timed([sys.executable, "-c", "pass"], 0),
            lambda: timed([*newsfold_command(), "--version"], 0),
            lambda: timed([*newsfold, "run"], 0),
            lambda: holding_lock(db, lambda: timed([*newsfold, "run"], EXIT_LOCKED)),
        ]
        for _ in range(args.repeat):
            for row, command in zip(rows, commands, strict=True):
                wall, cpu = command()
                row.wall.append(wall)
                row.cpu.append(cpu)
        print_table(
            f"Medians of {args.repeat} (commands take turns; wall needs an idle machine, CPU holds"
            " on a busy one)",
            ("command", "wall s", "wall range", "CPU s", "exit", "aim (wall)"),
            [row.cells() for row in rows],
        )


if __name__ == "__main__":
    main()
