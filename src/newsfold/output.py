"""Rendering: feeds and stories as terminal tables, JSON, JSONL and CSV. Pure over model objects.

A story handed to these functions has its canonical copy first (see dedup.choose_canonical).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from newsfold.model import FeedState, Story, StoryArticle
from newsfold.urls import host_of

WIDTH = 80


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
            }
            for copy in story.articles
        ],
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
    return Console(width=WIDTH, soft_wrap=False, highlight=False)


def _short_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def print_feeds(feeds: list[FeedState]) -> None:
    table = Table(box=None, pad_edge=False, expand=False)
    table.add_column("status", no_wrap=True)
    table.add_column("feed", overflow="fold", ratio=3)
    table.add_column("entries", justify="right", no_wrap=True)
    table.add_column("next check", no_wrap=True)
    for feed in feeds:
        label = feed.name or feed.url
        if feed.last_error:
            label += f"\n[red]{feed.last_error}[/red] (x{feed.error_count})"
        table.add_row(feed.status, label, str(feed.entries), _short_time(feed.next_check))
    _console().print(table)


def print_stories(stories: list[Story]) -> None:
    table = Table(box=None, pad_edge=False)
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("title", overflow="ellipsis", no_wrap=True, ratio=3)
    table.add_column("copies", justify="right", no_wrap=True)
    table.add_column("first outlet", overflow="ellipsis", no_wrap=True, max_width=18)
    table.add_column("first seen", no_wrap=True)
    for story in stories:
        table.add_row(
            str(story.id),
            story.title or story.url,
            str(len(story.articles)),
            outlet(story.articles[0]),
            _short_time(story.first_seen),
        )
    _console().print(table)


def print_story(story: Story) -> None:
    console = _console()
    console.print(f"[bold]{story.title or story.url}[/bold]")
    first_seen = _short_time(story.first_seen)
    console.print(f"story {story.id}, {len(story.articles)} copies, first seen {first_seen}")
    table = Table(box=None, pad_edge=False)
    table.add_column("sim", justify="right", no_wrap=True)
    table.add_column("outlet", overflow="ellipsis", no_wrap=True, max_width=18)
    table.add_column("published", no_wrap=True)
    table.add_column("url", overflow="fold")
    for copy in story.articles:
        table.add_row(f"{copy.similarity:.2f}", outlet(copy), _short_time(copy.published), copy.url)
    console.print(table)
