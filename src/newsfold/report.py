"""What a run tells its user: progress on a TTY, one summary line, Prometheus metrics."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from newsfold import pipeline
from newsfold.model import RunReport

log = logging.getLogger("newsfold")


class RunProgress(pipeline.Progress):
    """Feed failures as one line each; a progress bar as well when stderr is a terminal."""

    def __init__(self, show_bar: bool) -> None:
        self.bar = (
            Progress(
                TextColumn("feeds"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                transient=True,
            )
            if show_bar
            else None
        )
        self.task: Any = None
        self.done = 0

    def __enter__(self) -> RunProgress:
        if self.bar is not None:
            self.bar.start()
            self.task = self.bar.add_task("feeds", total=None, rate="")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.bar is not None:
            self.bar.stop()

    def feed_done(self, url: str, error: str | None) -> None:
        if error:
            log.warning(error, extra={"fields": {"feed": url, "event": "feed_failed"}})
        self.done += 1
        if self.bar is not None:
            elapsed = self.bar.tasks[0].elapsed or 0.0
            rate = f"{self.done / elapsed:.1f} feeds/s" if elapsed else ""
            self.bar.update(self.task, advance=1, rate=rate)


def make_progress(verbosity: int) -> RunProgress:
    return RunProgress(show_bar=verbosity >= 0 and sys.stderr.isatty())


def summary_line(report: RunReport) -> str:
    feeds = report.feeds_ok + report.feeds_not_modified + report.feeds_failed
    line = (
        f"{feeds} feeds ({report.feeds_ok} updated, {report.feeds_not_modified} unchanged, "
        f"{report.feeds_failed} failed), {report.articles_new} new articles, "
        f"{report.stories_new} new stories in {report.seconds:.1f} s"
    )
    return line + (" (stopped at --max-time)" if report.stopped_early else "")


def log_summary(report: RunReport, verbosity: int) -> None:
    """One line: on a terminal or with -v always; off a terminal only when something failed."""
    fields = {"event": "run_finished", **_report_fields(report)}
    if verbosity > 0 or (verbosity == 0 and (sys.stderr.isatty() or report.feeds_failed)):
        log.warning(summary_line(report), extra={"fields": fields})


def _report_fields(report: RunReport) -> dict[str, Any]:
    return {
        "feeds_ok": report.feeds_ok,
        "feeds_not_modified": report.feeds_not_modified,
        "feeds_failed": report.feeds_failed,
        "articles_new": report.articles_new,
        "stories_new": report.stories_new,
        "seconds": round(report.seconds, 3),
    }


def metrics_text(report: RunReport, stats: dict[str, Any]) -> str:
    """Prometheus text exposition format, counters of the last run and gauges of the store."""
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP newsfold_{name} {help_text}")
        lines.append(f"# TYPE newsfold_{name} {kind}")
        lines.extend(f"newsfold_{name}{labels} {value:g}" for labels, value in samples)

    metric(
        "run_feeds",
        "gauge",
        "Feeds checked by the last run, by outcome.",
        [
            ('{outcome="updated"}', report.feeds_ok),
            ('{outcome="unchanged"}', report.feeds_not_modified),
            ('{outcome="failed"}', report.feeds_failed),
        ],
    )
    metric(
        "run_failures",
        "gauge",
        "Feed failures of the last run, by kind.",
        [(f'{{kind="{k}"}}', v) for k, v in sorted(report.failures_by_kind.items())],
    )
    metric(
        "run_articles_new", "gauge", "Articles added by the last run.", [("", report.articles_new)]
    )
    metric(
        "run_stories_new", "gauge", "Stories opened by the last run.", [("", report.stories_new)]
    )
    metric("run_duration_seconds", "gauge", "Wall time of the last run.", [("", report.seconds)])
    metric(
        "run_stopped_early",
        "gauge",
        "1 if the last run hit --max-time.",
        [("", float(report.stopped_early))],
    )
    metric("feeds", "gauge", "Feeds in the store.", [("", stats["feeds"])])
    metric(
        "feeds_failing", "gauge", "Feeds whose last check failed.", [("", stats["feeds_failing"])]
    )
    metric("articles", "gauge", "Articles in the store.", [("", stats["articles"])])
    metric("stories", "gauge", "Stories in the store.", [("", stats["stories"])])
    return "\n".join(lines) + "\n"


def write_metrics(path: Path, report: RunReport, stats: dict[str, Any]) -> None:
    """Write atomically: node_exporter must never read half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(metrics_text(report, stats))
    os.replace(tmp.name, path)
