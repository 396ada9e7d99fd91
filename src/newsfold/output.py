"""Rendering: feeds and stories as terminal tables, JSON, JSONL and CSV. Pure over model objects.

A story handed to these functions has its canonical copy first (see cluster.choose_canonical).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal

from rich.cells import cell_len
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from newsfold.feedlists import feed_label
from newsfold.model import FeedState, Story, StoryArticle
from newsfold.search import Found
from newsfold.urls import host_of


def counted(number: int, one: str, many: str | None = None) -> str:
    """ "1 feed", "2 feeds": `many` when the plural is not `one` + "s"."""
    return f"{number} {one if number == 1 else many or one + 's'}"


def pages_kept_feed_text(by_reason: dict[str, int]) -> str:
    """ "3 pages kept the feed's text (dns 2, robots 1)", the most frequent reason first."""
    total = sum(by_reason.values())
    reasons = sorted(by_reason.items(), key=lambda item: (-item[1], item[0]))
    detail = ", ".join(f"{reason} {n}" for reason, n in reasons)
    return f"{total} page{'s' if total != 1 else ''} kept the feed's text ({detail})"


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def outlet(copy: StoryArticle) -> str:
    return copy.site or host_of(copy.url) or copy.url


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
        "published": iso(story.published),
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
                "site": copy.site,
                "author": copy.author,
                "language": copy.language,
                "text": copy.text,
            }
            for copy in story.articles
        ],
        "merged_ids": list(story.merged_ids),
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
CSV_TEXT_COLUMNS = ("site", "author", "language", "text")


def csv_text(stories: Iterable[Story], *, with_text: bool = False) -> str:
    """One row per article with its story id; the canonical copy marked. `with_text` adds the
    site, author, language and the whole text: a field with newlines or quotes is quoted, so a
    CSV reader still gets one record per article."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS + (CSV_TEXT_COLUMNS if with_text else ()))
    for story in stories:
        for index, copy in enumerate(story.articles):
            row = [
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
            if with_text:
                row += [copy.site or "", copy.author or "", copy.language or "", copy.text]
            writer.writerow(row)
    return buffer.getvalue()


def _console() -> Console:
    """Lines are never wrapped here (a terminal wraps what is wider than it, and copies it back
    as one line). Markup is off: titles, URLs and error messages come from the web, and "[/x]"
    in a headline must print as it is, not be read as a style tag."""
    return Console(soft_wrap=True, highlight=False, markup=False)


def _width(console: Console) -> int | None:
    """The columns a table may fill: the terminal's (or COLUMNS when set); None, no limit, when
    stdout is a pipe or a file, so a script reads every title and URL whole."""
    if console.is_terminal or os.environ.get("COLUMNS", "").isdigit():
        return console.width
    return None


GAP = "  "  # between two columns


@dataclass(frozen=True, slots=True)
class Col:
    """A table column. `give` orders the columns that give way when the table is too wide
    (1 first; 0 never): they are cut, with an ellipsis, down to `least` characters."""

    header: str
    justify: Literal["left", "right"] = "left"
    give: int = 0
    least: int = 0


def _widths(columns: Sequence[Col], rows: Sequence[Sequence[str]], room: int | None) -> list[int]:
    """Each column as wide as its widest cell; then, past `room`, cut where the columns allow."""
    widths = [
        max([cell_len(column.header), *(cell_len(row[i]) for row in rows)])
        for i, column in enumerate(columns)
    ]
    if room is None:
        return widths
    excess = sum(widths) + len(GAP) * (len(columns) - 1) - room
    for level in sorted({column.give for column in columns if column.give}):
        for i, column in enumerate(columns):
            if column.give == level and excess > 0:
                cut = min(excess, max(0, widths[i] - column.least))
                widths[i] -= cut
                excess -= cut
    return widths


def _line(cells: Sequence[Text], columns: Sequence[Col], widths: Sequence[int]) -> Text:
    line = Text()
    for index, (cell, column, width) in enumerate(zip(cells, columns, widths, strict=True)):
        cell = cell.copy()
        cell.truncate(width, overflow="ellipsis")
        pad = " " * (width - cell.cell_len)
        line.append_text(Text(pad) + cell if column.justify == "right" else cell + pad)
        if index < len(columns) - 1:
            line.append(GAP)
    line.rstrip()
    return line


@dataclass(slots=True)
class Row:
    """One row of a table, and lines printed whole beneath it (a URL, an error): never cut."""

    cells: Sequence[str | Text]
    below: Sequence[Text] = ()


def print_table(columns: Sequence[Col], rows: Sequence[Row], indent_below: int = 0) -> None:
    """A plain table that fits the terminal by cutting the columns that give way; piped, it is
    as wide as its widest row. The lines below a row start under column `indent_below` and are
    printed whole: on a terminal a long one wraps, and copies back as one line."""
    console = _console()
    cells = [[_cell_text(cell) for cell in row.cells] for row in rows]
    widths = _widths(columns, [[c.plain for c in row] for row in cells], _width(console))
    header = [Text(column.header, style="bold") for column in columns]
    console.print(_line(header, columns, widths))
    margin = " " * sum(width + len(GAP) for width in widths[:indent_below])
    for row, row_cells in zip(rows, cells, strict=True):
        console.print(_line(row_cells, columns, widths))
        for text in row.below:
            console.print(Text(margin) + text)


def _cell_text(value: str | Text) -> Text:
    """One line: titles from the web may carry newlines and tabs."""
    if isinstance(value, Text):
        return value
    return Text(" ".join(value.split()))


def shown_time(value: datetime | None, now: datetime | None = None) -> str:
    """Local time, short enough for a table column: "Nov 25 21:33", or "Mar 12  2018" (as ls
    does) when not this year."""
    if value is None:
        return "-"
    local = value.astimezone()
    if local.year != (now or datetime.now(UTC)).astimezone().year:
        return local.strftime("%b %d  %Y")
    return local.strftime("%b %d %H:%M")


def print_feeds(feeds: list[FeedState]) -> None:
    """Each feed by its name (its host until it has one), its URL whole on the line below."""
    columns = (Col("status"), Col("feed", give=1, least=12), Col("entries", "right"),
               Col("next check"))  # fmt: skip
    rows = []
    for feed in feeds:
        below = [Text(feed.url, style="dim")]
        if feed.last_error:
            below.append(Text(f"{feed.last_error} (x{feed.error_count})", style="red"))
        if feed.page_failures:
            pages = pages_kept_feed_text(feed.page_failures)
            below.append(Text(f"last check: {pages}", style="yellow"))
        cells = (feed.status, feed_label(feed), str(feed.entries), shown_time(feed.next_check))
        rows.append(Row(cells, below))
    print_table(columns, rows, indent_below=1)


def print_stories(stories: list[Story]) -> None:
    """One line per story; its time is when it was published, or first seen (marked *) when
    no copy says."""
    columns = (Col("id", "right"), Col("title", give=1, least=20), Col("copies", "right"),
               Col("first outlet", give=2, least=12), Col("published"))  # fmt: skip
    rows = [
        Row((str(s.id), s.title or s.url, str(len(s.articles)), outlet(s.articles[0]),
             story_time_cell(s)))
        for s in stories
    ]  # fmt: skip
    print_table(columns, rows)
    if any(story.published is None for story in stories):
        _console().print("* first seen: no copy says when it was published")


def print_found(found: list[Found]) -> None:
    """Search results, best first: id, title, copies, first outlet, published, then the
    snippet on the line below with the matched words in bold."""
    columns = (Col("id", "right"), Col("story", give=1, least=20), Col("copies", "right"),
               Col("first outlet", give=2, least=12), Col("published"))  # fmt: skip
    rows = []
    for item in found:
        story = item.story
        snippet = Text(item.snippet.text, style="dim")
        for start, end in item.snippet.marks:
            snippet.stylize("bold not dim", start, end)
        cells = (str(story.id), story.title or story.url, str(len(story.articles)),
                 outlet(story.articles[0]), story_time_cell(story))  # fmt: skip
        rows.append(Row(cells, [snippet]))
    print_table(columns, rows, indent_below=1)


def story_time_cell(story: Story) -> str:
    if story.published is None:
        return shown_time(story.first_seen) + "*"
    return shown_time(story.published)


SHARED_NOTE = "shared: how much the copy and the canonical copy (first row) have in common"


def print_story(story: Story, shared: Sequence[float]) -> None:
    """The story's title, then each copy: text shared with the canonical copy, outlet,
    published and title, its URL whole on the line below. `shared`: one value per copy."""
    console = _console()
    console.print(Text(" ".join((story.title or story.url).split()), style="bold"))
    published = shown_time(story.published) if story.published else "unknown"
    console.print(
        f"story {story.id}, {len(story.articles)} copies,"
        f" published {published}, first seen {shown_time(story.first_seen)}"
    )
    console.print(SHARED_NOTE + "\n")
    columns = (Col("shared", "right"), Col("outlet", give=2, least=12), Col("published"),
               Col("title", give=1, least=16))  # fmt: skip
    rows = [
        Row(
            (f"{share:.0%}", outlet(copy), shown_time(copy.published), copy.title or "-"),
            _below_copy(copy),
        )
        for copy, share in zip(story.articles, shared, strict=True)
    ]
    print_table(columns, rows, indent_below=1)


def _below_copy(copy: StoryArticle) -> list[Text]:
    """The copy's URL, whole; and why its page's text was not used, if it was not."""
    lines = [Text(copy.url, style="dim")]
    if copy.page_error:
        lines.append(Text(f"page: {copy.page_error}", style="yellow"))
    return lines


def print_stats(stats: dict[str, Any]) -> None:
    """The counts, then the workers seen lately (several on PostgreSQL), if the store has any."""
    console = _console()
    for key, value in stats.items():
        if key == "config" and value is None:
            value = "none: defaults and NEWSFOLD_* variables"
        if key != "workers":
            console.print(f"{key.replace('_', ' '):<15} {_cell(value)}")
    workers = stats.get("workers") or []
    if workers:
        console.print()
        columns = (Col("worker", give=1, least=12), Col("leased now", "right"),
                   Col("feeds taken", "right"), Col("last seen"))  # fmt: skip
        rows = [
            Row((w["worker"], _cell(w.get("leased_now")), _cell(w.get("feeds")),
                 _cell(w.get("last_seen"))))
            for w in workers
        ]  # fmt: skip
        print_table(columns, rows)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return shown_time(value)
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
