"""What a run tells its user: progress on a TTY, one summary line."""

from __future__ import annotations

import logging
import sys
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
