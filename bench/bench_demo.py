"""`newsfold demo` run again and again: the same stories every time, whatever order feeds arrive in.

Run: .venv/bin/python bench/bench_demo.py [--runs 50]

Each run is the README's first command as users type it (`newsfold demo --keep FILE`, its own
server on 127.0.0.1, a throwaway store), in a home of its own. Feeds are checked concurrently, so
the copies of the wire story arrive in another order each run. The kept store's stories are read
back (`export --format jsonl`) as the sets of page paths they hold, and compared across runs and
with the sample's expected stories (one story per wire text, every other article alone).
Tables: the distinct partitions and how many runs made each; the runs that differ from the
expected stories; wall and CPU seconds per run (the demo's whole process tree).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

from common import machine_line, newsfold_command, print_table, run_measured

from tests.test_demo import expected_stories

Partition = frozenset[frozenset[str]]


def kept_partition(db: Path) -> Partition:
    """The stories of a kept demo store, as the page paths each holds."""
    argv = [*newsfold_command(), "--db", str(db), "export", "--format", "jsonl"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    stories = [json.loads(line) for line in out.splitlines()]
    return frozenset(frozenset(urlsplit(a["url"]).path for a in s["articles"]) for s in stories)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="demo runs in a row")
    args = parser.parse_args()
    print(machine_line())
    expected = frozenset(expected_stories())
    partitions: list[Partition] = []
    walls, cpus = [], []
    with tempfile.TemporaryDirectory(prefix="demo-runs-") as scratch:
        home = Path(scratch)
        for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
            os.environ[name] = str(home / name.lower())  # a home of its own: no user config
        for run in range(args.runs):
            kept = home / f"run-{run}.db"
            done = run_measured([*newsfold_command(), "demo", "--keep", str(kept)])
            walls.append(done.wall)
            cpus.append(done.usage.root_cpu + done.usage.other_cpu)
            partitions.append(kept_partition(kept))
    counts = Counter(partitions)
    rows = [
        (number, made, len(partition), "yes" if partition == expected else "no")
        for number, (partition, made) in enumerate(counts.most_common(), 1)
    ]
    print_table(
        f"Partitions over {args.runs} runs ({len(counts)} distinct)",
        ("partition", "runs", "stories", "expected"),
        rows,
    )
    wrong = [run for run, partition in enumerate(partitions, 1) if partition != expected]
    print(f"\nRuns whose stories differ from the expected ones: {len(wrong)} {wrong or ''}")
    print_table(
        "Seconds per run (the demo's process tree)",
        ("runs", "wall median", "wall max", "CPU median", "CPU max"),
        [
            (
                args.runs,
                f"{statistics.median(walls):.2f}",
                f"{max(walls):.2f}",
                f"{statistics.median(cpus):.2f}",
                f"{max(cpus):.2f}",
            )
        ],
    )


if __name__ == "__main__":
    main()
