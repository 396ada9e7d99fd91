"""What a run tells its user: progress on a TTY, one summary line, Prometheus metrics."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from newsfold import logs, pipeline
from newsfold.model import RunReport
from newsfold.output import pages_kept_feed_text

log = logging.getLogger("newsfold")


class RunProgress(pipeline.Progress):
    """Feed failures as one line each; a progress bar on stderr as well when it is a terminal."""

    def __init__(self, show_bar: bool, total: int | None = None) -> None:
        self.bar = (
            Progress(
                TextColumn("feeds"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TextColumn("{task.fields[failed]} failed"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            if show_bar
            else None
        )
        self.total = total
        self.task: Any = None
        self.done = 0
        self.failed = 0

    def __enter__(self) -> RunProgress:
        if self.bar is not None:
            self.bar.start()
            self.task = self.bar.add_task("feeds", total=self.total, rate="", failed=0)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.bar is not None:
            self.bar.stop()

    def feed_done(self, url: str, error: str | None) -> None:
        if error:
            self.failed += 1
            log.warning(error, extra={"fields": {"feed": url, "event": "feed_failed"}})
        self.done += 1
        if self.bar is not None:
            elapsed = self.bar.tasks[0].elapsed or 0.0
            rate = f"{self.done / elapsed:.1f} feeds/s" if elapsed else ""
            self.bar.update(self.task, advance=1, rate=rate, failed=self.failed)


def make_progress(verbosity: int, total: int | None = None) -> RunProgress:
    """`total`: the feeds expected, for the bar's count; failures are logged at any verbosity."""
    return RunProgress(show_bar=verbosity >= 0 and sys.stderr.isatty(), total=total)


def summary_line(report: RunReport) -> str:
    """The run in one line, short enough for 80 columns: ok counts unchanged feeds too."""
    ok = report.feeds_ok + report.feeds_not_modified
    line = (
        f"{ok + report.feeds_failed} feeds ({ok} ok, {report.feeds_failed} failed), "
        f"{report.articles_new} new articles, {report.stories_new} new stories "
        f"in {report.seconds:.1f} s"
    )
    fallbacks = page_fallbacks(report)
    if fallbacks:
        line += f", {pages_kept_feed_text(fallbacks)}"
    if report.entries_deferred:
        line += f", {report.entries_deferred} entries left for the next run"
    return line + (" (stopped at --max-time)" if report.stopped_early else "")


def page_fallbacks(report: RunReport) -> dict[str, int]:
    """Articles that kept the feed's text because their page failed, by reason; pages not
    downloaded by choice (extract.fetch_pages off) are left out."""
    return {reason: n for reason, n in report.pages_skipped.items() if reason != "off"}


def log_summary(report: RunReport, verbosity: int) -> None:
    """One line per run (logs.summary_wanted); a failed feed has already said its own line."""
    fields = {"event": "run_finished", **_report_fields(report)}
    if logs.summary_wanted(verbosity):
        log.log(logs.NOTICE, summary_line(report), extra={"fields": fields})


def _report_fields(report: RunReport) -> dict[str, Any]:
    return {
        "feeds_ok": report.feeds_ok,
        "feeds_not_modified": report.feeds_not_modified,
        "feeds_failed": report.feeds_failed,
        "articles_new": report.articles_new,
        "stories_new": report.stories_new,
        "pages_kept_feed_text": page_fallbacks(report),
        "seconds": round(report.seconds, 3),
        "stopped_early": report.stopped_early,
    }


Sample = tuple[str, float]  # (label set such as '{kind="timeout"}' or "", value)


def metrics_text(report: RunReport, stats: dict[str, Any], finished: datetime) -> str:
    """Prometheus text exposition format: gauges of the last run and of the store.

    Gauges, not counters: the textfile collector reads the file afresh after every run, and a
    run's counts start from zero.
    """
    families: list[tuple[str, str, list[Sample]]] = [
        (
            "run_feeds",
            "Feeds checked by the last run, by outcome.",
            [
                ('{outcome="updated"}', report.feeds_ok),
                ('{outcome="unchanged"}', report.feeds_not_modified),
                ('{outcome="failed"}', report.feeds_failed),
            ],
        ),
        (
            "run_feed_failures",
            "Feeds that failed in the last run, by kind of failure.",
            _by_label("kind", report.failures_by_kind),
        ),
        ("run_entries_new", "New feed entries seen by the last run.", [("", report.entries_new)]),
        (
            "run_entries_deferred",
            "New entries past fetch.max_new_per_feed, left for the next run.",
            [("", report.entries_deferred)],
        ),
        ("run_articles_new", "Articles added by the last run.", [("", report.articles_new)]),
        (
            "run_pages_skipped",
            "Article pages not used by the last run (the feed's text kept), by reason.",
            _by_label("reason", report.pages_skipped),
        ),
        ("run_stories_new", "Stories opened by the last run.", [("", report.stories_new)]),
        ("run_duration_seconds", "Wall time of the last run.", [("", report.seconds)]),
        (
            "run_stopped_early",
            "1 if the last run stopped at --max-time.",
            [("", float(report.stopped_early))],
        ),
        (
            "run_finished_timestamp_seconds",
            "When the last run finished, in Unix time.",
            [("", finished.timestamp())],
        ),
        ("feeds", "Feeds in the store.", [("", stats["feeds"])]),
        ("feeds_failing", "Feeds whose last check failed.", [("", stats["feeds_failing"])]),
        ("articles", "Articles in the store.", [("", stats["articles"])]),
        ("stories", "Stories in the store.", [("", stats["stories"])]),
    ]
    lines: list[str] = []
    for name, help_text, samples in families:
        lines.append(f"# HELP newsfold_{name} {help_text}")
        lines.append(f"# TYPE newsfold_{name} gauge")
        lines.extend(f"newsfold_{name}{labels} {_number(value)}" for labels, value in samples)
    return "\n".join(lines) + "\n"


def _by_label(label: str, counts: dict[str, int]) -> list[Sample]:
    return [(f'{{{label}="{_label_value(key)}"}}', value) for key, value in sorted(counts.items())]


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    """Whole numbers in full (never 1.2e+06), others as Python's shortest exact repr."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def write_metrics(path: Path, report: RunReport, stats: dict[str, Any], finished: datetime) -> None:
    """Write atomically: node_exporter must never read half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, delete=False, suffix=".tmp"
    ) as tmp:
        tmp.write(metrics_text(report, stats, finished))
    os.chmod(tmp.name, 0o644)  # the collector usually runs as another user
    os.replace(tmp.name, path)
