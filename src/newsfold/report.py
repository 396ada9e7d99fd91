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
from newsfold.output import counted, pages_kept_feed_text

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
    """The run in one line; its counts fit 80 columns after "newsfold: " up to 9,999 feeds and
    99,999 articles: "5 feeds ok, 18 new articles, 14 new stories, 10.8 s". Pages that kept the
    feed's text follow, by reason, when there were any."""
    feeds = counted(report.feeds_ok + report.feeds_not_modified + report.feeds_failed, "feed")
    outcome = f"{feeds} ({report.feeds_failed} failed)" if report.feeds_failed else f"{feeds} ok"
    line = (
        f"{outcome}, {counted(report.articles_new, 'new article')}, "
        f"{counted(report.stories_new, 'new story', 'new stories')}, "
    )
    if report.stories_merged:
        line += f"{report.stories_merged:,} merged, "
    line += seconds(report.seconds)
    fallbacks = page_fallbacks(report)
    if fallbacks:
        line += f", {pages_kept_feed_text(fallbacks)}"
    return line


def unfinished_line(report: RunReport) -> str | None:
    """What the run left for the next one, if anything: a second line beside the summary."""
    parts = []
    if report.stopped_early:
        parts.append("stopped at --max-time")
    if report.entries_deferred:
        parts.append(f"{counted(report.entries_deferred, 'new entry', 'new entries')} wait")
    return f"{'; '.join(parts)} for the next run" if parts else None


def seconds(value: float) -> str:
    """ "10.8 s" under 100 seconds, else minutes and seconds: "4m05s"."""
    if value < 99.95:
        return f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes}m{rest:02d}s"


def page_fallbacks(report: RunReport) -> dict[str, int]:
    """Articles that kept the feed's text because their page failed, by reason; pages not
    downloaded by choice (extract.fetch_pages off) are left out."""
    return {reason: n for reason, n in report.pages_skipped.items() if reason != "off"}


def log_summary(report: RunReport, verbosity: int) -> None:
    """The summary line, and the unfinished line if any (logs.summary_wanted); a failed feed
    has already said its own line."""
    fields = {"event": "run_finished", **_report_fields(report)}
    if logs.summary_wanted(verbosity):
        log.log(logs.NOTICE, summary_line(report), extra={"fields": fields})
        unfinished = unfinished_line(report)
        if unfinished:
            log.log(
                logs.NOTICE, unfinished, extra={"fields": {**fields, "event": "run_unfinished"}}
            )


def _report_fields(report: RunReport) -> dict[str, Any]:
    return {
        "feeds_ok": report.feeds_ok,
        "feeds_not_modified": report.feeds_not_modified,
        "feeds_failed": report.feeds_failed,
        "articles_new": report.articles_new,
        "stories_new": report.stories_new,
        "stories_merged": report.stories_merged,
        "pages_kept_feed_text": page_fallbacks(report),
        "entries_deferred": report.entries_deferred,
        "seconds": round(report.seconds, 3),
        "stopped_early": report.stopped_early,
    }
