"""The Prometheus textfile of `run --metrics-file`, for node_exporter's textfile collector.

Imported only by runs given --metrics-file: prometheus_client is not free to import.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from newsfold.model import RunReport


def metrics_text(report: RunReport, stats: dict[str, Any], finished: datetime) -> str:
    """Prometheus text exposition format: gauges of the last run and of the store.

    Gauges, not counters: the textfile collector reads the file afresh after every run, and a
    run's counts start from zero.
    """
    registry = CollectorRegistry()
    _run_gauges(registry, report, finished)
    _gauge(registry, "feeds", "Feeds in the store.", stats["feeds"])
    _gauge(registry, "feeds_failing", "Feeds whose last check failed.", stats["feeds_failing"])
    _gauge(registry, "articles", "Articles in the store.", stats["articles"])
    _gauge(registry, "stories", "Stories in the store.", stats["stories"])
    return generate_latest(registry).decode("utf-8")


def _run_gauges(registry: CollectorRegistry, report: RunReport, finished: datetime) -> None:
    outcomes = {
        "updated": report.feeds_ok,
        "unchanged": report.feeds_not_modified,
        "failed": report.feeds_failed,
    }
    _by_label(registry, "run_feeds", "Feeds checked by the last run, by outcome.", outcomes)
    failures = "Feeds that failed in the last run, by kind of failure."
    _by_label(registry, "run_feed_failures", failures, report.failures_by_kind, label="kind")
    _gauge(
        registry, "run_entries_new", "New feed entries seen by the last run.", report.entries_new
    )
    deferred = "New entries past fetch.max_new_per_feed, left for the next run."
    _gauge(registry, "run_entries_deferred", deferred, report.entries_deferred)
    _gauge(registry, "run_articles_new", "Articles added by the last run.", report.articles_new)
    skipped = "Article pages not used by the last run (the feed's text kept), by reason."
    _by_label(registry, "run_pages_skipped", skipped, report.pages_skipped, label="reason")
    _gauge(
        registry,
        "run_stories_new",
        "Stories opened less merged by the last run.",
        report.stories_new,
    )
    merged = "Stories the last run found to be one with another and merged."
    _gauge(registry, "run_stories_merged", merged, report.stories_merged)
    _gauge(registry, "run_duration_seconds", "Wall time of the last run.", report.seconds)
    stopped = "1 if the last run stopped at --max-time."
    _gauge(registry, "run_stopped_early", stopped, report.stopped_early)
    when = "When the last run finished, in Unix time."
    _gauge(registry, "run_finished_timestamp_seconds", when, finished.timestamp())


def _gauge(registry: CollectorRegistry, name: str, documentation: str, value: float) -> None:
    Gauge(f"newsfold_{name}", documentation, registry=registry).set(value)


def _by_label(
    registry: CollectorRegistry,
    name: str,
    documentation: str,
    counts: dict[str, int],
    label: str = "outcome",
) -> None:
    family = Gauge(f"newsfold_{name}", documentation, [label], registry=registry)
    for key, value in sorted(counts.items()):
        family.labels(key).set(value)


def write_metrics(path: Path, report: RunReport, stats: dict[str, Any], finished: datetime) -> None:
    """Write atomically: node_exporter must never read half a file.

    Not prometheus_client's write_to_textfile: its file takes the process's umask, and cron jobs
    often run with 077, which leaves the file unreadable to the collector's user.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, delete=False, suffix=".tmp"
    ) as tmp:
        tmp.write(metrics_text(report, stats, finished))
    os.chmod(tmp.name, 0o644)  # the collector usually runs as another user
    os.replace(tmp.name, path)
