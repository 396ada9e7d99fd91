"""Export formats for `newsfold export`: JSONL, CSV, Atom 1.0 and an HTML digest."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from newsfold import output
from newsfold.model import Story


def render(fmt: str, stories: Sequence[Story], now: datetime) -> str:
    if fmt == "jsonl":
        return output.jsonl(stories)
    if fmt == "csv":
        return output.csv_text(stories)
    raise NotImplementedError(fmt)
