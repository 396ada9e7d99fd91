"""Rendering: feeds and stories as terminal tables, JSON, JSONL and CSV. Pure over model objects.

A story handed to these functions has its canonical copy first (see dedup.choose_canonical).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import datetime
from types import TracebackType
from typing import Any

from rich.console import Console, Group, JustifyMethod
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Column, Table
from rich.text import Text

from newsfold.model import FeedState, Story, StoryArticle
from newsfold.search import Found
from newsfold.urls import host_of


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def outlet(copy: StoryArticle) -> str:
    return copy.site or host_of(copy.url) or copy.url


def pages_kept_feed_text(by_reason: dict[str, int]) -> str:
    """ "3 pages kept the feed's text (dns 2, robots 1)", the most frequent reason first."""
    total = sum(by_reason.values())
    reasons = sorted(by_reason.items(), key=lambda item: (-item[1], item[0]))
    detail = ", ".join(f"{reason} {n}" for reason, n in reasons)
    return f"{total} page{'s' if total != 1 else ''} kept the feed's text ({detail})"


def feed_json(feed: FeedState) -> dict[str, Any]:
    return {
        "url": feed.url,
        "name": feed.name,
        "status": feed.status,
        "last_error": feed.last_error,
        "error_kind": feed.error_kind,
        "error_count": feed.error_count,
        "last_checked": iso(feed.last_checked),
        "next_check": iso(feed.next_check),
        "entries": feed.entries,
        "page_failures": feed.page_failures,
    }


def story_json(story: Story) -> dict[str, Any]:
    """One line of `export --format jsonl`, exactly as the contract says (plus a few extras)."""
    return {
        "id": story.id,
        "title": story.title,
        "url": story.url,
        "first_seen": iso(story.first_seen),
        "articles": [
            {
                "url": copy.url,
                "feed": copy.feed_url,
                "title": copy.title,
                "published": iso(copy.published),
                "text_chars": copy.text_chars,
                "outlet": outlet(copy),
                "similarity": round(copy.similarity, 4),
                "page_error": copy.page_error,
            }
            for copy in story.articles
        ],
    }


def found_json(found: Found) -> dict[str, Any]:
    """A `search --json` result: the story as in the JSONL export, its score and snippet; the
    snippet's matches are [start, end) character offsets into it."""
    return {
        **story_json(found.story),
        "score": float(f"{found.score:.6g}"),
        "snippet": found.snippet.text,
        "snippet_marks": [list(mark) for mark in found.snippet.marks],
    }


def published(story: Story) -> datetime | None:
    """When the story came out: its earliest dated copy."""
    return min((a.published for a in story.articles if a.published), default=None)


def jsonl(stories: Iterable[Story]) -> str:
    return "".join(json.dumps(story_json(s), ensure_ascii=False) + "\n" for s in stories)


CSV_COLUMNS = (
    "story_id",
    "canonical",
    "url",
    "feed",
    "outlet",
    "title",
    "published",
    "text_chars",
    "similarity",
)


def csv_text(stories: Iterable[Story]) -> str:
    """One row per article with its story id; the canonical copy marked."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for story in stories:
        for index, copy in enumerate(story.articles):
            writer.writerow(
                [
                    story.id,
                    int(index == 0),
                    copy.url,
                    copy.feed_url or "",
                    outlet(copy),
                    copy.title or "",
                    iso(copy.published) or "",
                    copy.text_chars,
                    f"{copy.similarity:.4f}",
                ]
            )
    return buffer.getvalue()


def _console() -> Console:
    """The terminal's width (COLUMNS when set); 80 columns when stdout is a file or a pipe.

    Markup is off: titles, URLs and error messages come from the web, and "[/x]" in a headline
    must print as it is, not be read as a style tag.
    """
    return Console(soft_wrap=False, highlight=False, markup=False)


TIME_WIDTH = len("Nov 25 21:33")


def _short_time(value: datetime | None) -> str:
    """Local time, short enough for a table column: "Nov 25 21:33"."""
    return value.astimezone().strftime("%b %d %H:%M") if value else "-"


def _fixed(header: str, width: int, justify: JustifyMethod = "left") -> Column:
    """A column of short values that keeps its width; the title or URL column gives way."""
    width = max(width, len(header))
    return Column(
        header, justify=justify, no_wrap=True, overflow="ellipsis", min_width=width, max_width=width
    )


def _table(*columns: Column) -> Table:
    """A plain table; one with a `ratio` column spans the width and that column takes the rest."""
    expand = any(column.ratio for column in columns)
    return Table(*columns, box=None, pad_edge=False, header_style="bold", expand=expand)


def print_feeds(feeds: list[FeedState]) -> None:
    table = _table(
        Column("status", no_wrap=True),
        Column("feed", overflow="fold", ratio=1),
        Column("entries", justify="right", no_wrap=True),
        Column("next check", no_wrap=True),
    )
    for feed in feeds:
        label = Text(f"{feed.name}\n{feed.url}" if feed.name else feed.url)
        if feed.last_error:
            label.append(f"\n{feed.last_error} (x{feed.error_count})", style="red")
        if feed.page_failures:
            pages = pages_kept_feed_text(feed.page_failures)
            label.append(f"\nlast check: {pages}", style="yellow")
        table.add_row(feed.status, label, str(feed.entries), _short_time(feed.next_check))
    _console().print(table)


def print_stories(stories: list[Story]) -> None:
    table = _table(
        _fixed("id", max((len(str(s.id)) for s in stories), default=2), justify="right"),
        Column("title", overflow="ellipsis", no_wrap=True, ratio=1),
        _fixed("copies", 6, justify="right"),
        _fixed("first outlet", 16),
        _fixed("first seen", TIME_WIDTH),
    )
    for story in stories:
        table.add_row(
            str(story.id),
            story.title or story.url,
            str(len(story.articles)),
            outlet(story.articles[0]),
            _short_time(story.first_seen),
        )
    _console().print(table)


def print_found(found: list[Found]) -> None:
    """Search results, best first: title, copies, first outlet, published, then the snippet
    with the matched words in bold."""
    table = _table(
        _fixed("id", max((len(str(f.story.id)) for f in found), default=2), justify="right"),
        Column("story", ratio=1),
        _fixed("copies", 6, justify="right"),
        _fixed("first outlet", 16),
        _fixed("published", TIME_WIDTH),
    )
    for item in found:
        story = item.story
        title = Text(story.title or story.url, overflow="ellipsis", no_wrap=True)
        snippet = Text(item.snippet.text, style="dim", overflow="fold")
        for start, end in item.snippet.marks:
            snippet.stylize("bold not dim", start, end)
        table.add_row(
            str(story.id),
            Group(title, snippet),
            str(len(story.articles)),
            outlet(story.articles[0]),
            _short_time(published(story) or story.first_seen),
        )
    _console().print(table)


def print_story(story: Story) -> None:
    """The story's title, then each copy: similarity, outlet, published, its title and URL."""
    console = _console()
    console.print(Text(story.title or story.url, style="bold"))
    first_seen = _short_time(story.first_seen)
    console.print(f"story {story.id}, {len(story.articles)} copies, first seen {first_seen}\n")
    table = _table(
        _fixed("sim", 4, justify="right"),
        _fixed("outlet", 21),
        _fixed("published", TIME_WIDTH),
        Column("copy", ratio=1),
    )
    for copy in story.articles:
        title = Text(copy.title or "-", overflow="ellipsis", no_wrap=True)
        url = Text(copy.url, overflow="fold", style="dim")
        lines = [title, url]
        if copy.page_error:  # the feed's text was kept: say why
            lines.append(Text(f"page: {copy.page_error}", overflow="fold", style="yellow"))
        table.add_row(
            f"{copy.similarity:.2f}",
            outlet(copy),
            _short_time(copy.published),
            Group(*lines),
        )
    console.print(table)


def print_stats(stats: dict[str, Any]) -> None:
    """The counts, then the workers seen lately (several on PostgreSQL), if the store has any."""
    console = _console()
    counts = _table(Column("what", no_wrap=True), Column("count", justify="right", no_wrap=True))
    counts.show_header = False
    for key, value in stats.items():
        if key != "workers":
            counts.add_row(key.replace("_", " "), _cell(value))
    console.print(counts)
    workers = stats.get("workers") or []
    if workers:
        table = _table(
            Column("worker", overflow="fold", ratio=1),
            _fixed("leased now", 10, justify="right"),
            _fixed("feeds taken", 11, justify="right"),
            _fixed("last seen", TIME_WIDTH),
        )
        for worker in workers:
            table.add_row(
                worker["worker"],
                _cell(worker.get("leased_now")),
                _cell(worker.get("feeds")),
                _cell(worker.get("last_seen")),
            )
        console.print()
        console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return _short_time(value)
    return str(value)


def json_value(value: Any) -> Any:
    """json.dumps's `default`: datetimes as ISO 8601 in UTC, anything else as its text."""
    return iso(value) if isinstance(value, datetime) else str(value)


class MigrationBar:
    """A bar on stderr while a store upgrade rewrites stored rows; nothing when there is none.

    with MigrationBar(show=sys.stderr.isatty()) as bar:
        store.migrate(bar.update)
    """

    def __init__(self, show: bool) -> None:
        self.bar = (
            Progress(
                TextColumn("upgrading the store"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            if show
            else None
        )
        self.task: Any = None

    def __enter__(self) -> MigrationBar:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.stop()

    def update(self, done: int, total: int) -> None:
        if self.bar is None:
            return
        if self.task is None:  # the first rows: only now is there something to show
            self.bar.start()
            self.task = self.bar.add_task("upgrade", total=total)
        self.bar.update(self.task, completed=done, total=total)
        self.bar.refresh()
