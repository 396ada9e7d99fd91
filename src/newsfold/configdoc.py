"""The config reference, generated from the declarations in config.py so it cannot drift.

`example_toml()` is config/newsfold.toml; `reference_markdown()` is the table in README.md. A test
checks both files against these functions; `newsfold config --example` prints the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from newsfold.config import Settings, format_duration, iter_settings, setting_docs
from newsfold.feedlists import write_toml


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        return f'"{format_duration(value)}"'
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, int) and value >= 10_000:
        return f"{value:_}"
    return str(value)


def _toml_tables(rows: Sequence[tuple[str, str, Any, str | None]]) -> list[str]:
    """(section, key, value, comment) rows as TOML tables, a comment line above each key."""
    lines: list[str] = []
    section = None
    for name, key, value, comment in rows:
        if name != section:
            lines += ["", f"[{name}]"]
            section = name
        if comment:
            lines.append(f"# {comment}")
        lines.append(f"{key} = {toml_value(value)}")
    return lines


def example_toml() -> str:
    """Every setting at its default, commented: the file a user copies and edits."""
    header = [
        "# newsfold configuration: every key is optional; the values below are the defaults.",
        "# Environment variables override the file: NEWSFOLD_<SECTION>_<KEY>, e.g.",
        "# NEWSFOLD_FETCH_TIMEOUT=10. Durations: 90s, 30m, 24h, 7d, 2w.",
    ]
    feeds = [
        "",
        "# Feeds listed here are added to the store on every run.",
        "# [[feeds]]",
        '# url = "https://example.org/feed.xml"',
        '# name = "Example"      # optional',
        '# interval = "15m"      # optional: a fixed check interval for this feed',
        "",
    ]
    return "\n".join(header + _toml_tables(setting_docs()) + feeds)


def reference_markdown() -> str:
    """The README's config reference table."""
    rows = ["| key | default | environment | meaning |", "| --- | --- | --- | --- |"]
    for name, key, default, meaning in setting_docs():
        env = f"NEWSFOLD_{name}_{key}".upper()
        rows.append(f"| `{name}.{key}` | `{toml_value(default)}` | `{env}` | {meaning} |")
    return "\n".join(rows) + "\n"


def effective_toml(settings: Settings) -> str:
    """The settings in force, as TOML (what `newsfold config` prints)."""
    rows: list[tuple[str, str, Any, str | None]] = [
        (name, key, value, None) for name, key, value in iter_settings(settings)
    ]
    tables = "\n".join(_toml_tables(rows)).lstrip("\n") + "\n"
    return tables + ("\n" + write_toml(list(settings.feeds)) if settings.feeds else "")
