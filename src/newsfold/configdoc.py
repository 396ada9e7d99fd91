"""The config reference, generated from the declarations in config.py so it cannot drift.

`example_toml()` is config/newsfold.toml; `reference_markdown()` is the table in README.md. A test
checks both files against these functions; `newsfold config --example` prints the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import tomlkit
from tomlkit.items import Item, Table

from newsfold.config import Settings, format_duration, iter_settings, setting_docs
from newsfold.feedlists import feeds_table

Row = tuple[str, str, Any, str | None]  # (section, key, value, comment)


def toml_value(value: Any) -> str:
    """A setting's value as a TOML literal."""
    return _toml_item(value).as_string()


def _toml_item(value: Any) -> Item:
    """Durations as "15m", tuples as arrays, large integers grouped by thousands."""
    if isinstance(value, timedelta):
        return tomlkit.item(format_duration(value))
    if isinstance(value, tuple):
        array = tomlkit.array()
        array.extend(value)
        return array
    literal: Item = (
        tomlkit.value(f"{value:_}")  # parsed, so written back as spelt
        if isinstance(value, int) and not isinstance(value, bool) and value >= 10_000
        else tomlkit.item(value)
    )
    return literal


def _toml_tables(rows: Sequence[Row]) -> tomlkit.TOMLDocument:
    """Rows as TOML tables, a comment line above each key that has one."""
    tables: dict[str, Table] = {}
    for name, key, value, comment in rows:
        table = tables.setdefault(name, tomlkit.table())
        if comment:
            table.add(tomlkit.comment(comment))
        table.add(key, _toml_item(value))
    document = tomlkit.document()
    for name, table in tables.items():
        document.add(name, table)
    return document


HEADER = (
    "newsfold configuration: every key is optional; the values below are the defaults.",
    "Environment variables override the file: NEWSFOLD_<SECTION>_<KEY>, e.g.",
    "NEWSFOLD_FETCH_TIMEOUT=10. Durations: 90s, 30m, 24h, 7d, 2w.",
)
FEEDS_EXAMPLE = """
# Feeds listed here are added to the store on every run.
# [[feeds]]
# url = "https://example.org/feed.xml"
# name = "Example"      # optional
# interval = "15m"      # optional: a fixed check interval for this feed
"""


def example_toml() -> str:
    """Every setting at its default, commented: the file a user copies and edits."""
    document = tomlkit.document()
    for line in HEADER:
        document.add(tomlkit.comment(line))
    document.add(tomlkit.nl())
    document.update(_toml_tables(setting_docs()))
    return tomlkit.dumps(document) + FEEDS_EXAMPLE


def reference_markdown() -> str:
    """The README's config reference table."""
    rows = ["| key | default | environment | meaning |", "| --- | --- | --- | --- |"]
    for name, key, default, meaning in setting_docs():
        env = f"NEWSFOLD_{name}_{key}".upper()
        rows.append(f"| `{name}.{key}` | `{toml_value(default)}` | `{env}` | {meaning} |")
    return "\n".join(rows) + "\n"


def effective_toml(settings: Settings) -> str:
    """The settings in force, as TOML (what `newsfold config` prints)."""
    document = _toml_tables(
        [(name, key, value, None) for name, key, value in iter_settings(settings)]
    )
    if settings.feeds:
        document.add("feeds", feeds_table(settings.feeds))
    return tomlkit.dumps(document)
