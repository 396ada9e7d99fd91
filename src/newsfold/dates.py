"""Dates as feeds, pages and HTTP headers write them -> aware UTC datetimes, or None.

A date with no zone is read as UTC; anything unreadable is None, never an error: a bad date in a
feed or a header is the sender's fault, and the entry or the answer is still good.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def parse_date(value: object) -> datetime | None:
    """ISO 8601 (RFC 3339, as JSON Feed and meta tags write it), else RFC 2822 (as RSS does)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return _in_utc(datetime.fromisoformat(value.strip()))
    except (ValueError, OverflowError):
        return parse_http_date(value)


def parse_http_date(value: str) -> datetime | None:
    """An RFC 2822 date, the only form HTTP headers (Expires, Retry-After, Date) may use."""
    try:
        return _in_utc(parsedate_to_datetime(value.strip()))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def from_struct_time(value: Sequence[int]) -> datetime | None:
    """feedparser's parsed dates are UTC struct_times; a leap second is read as :59."""
    try:
        year, month, day, hour, minute, second = value[:6]
        return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _in_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
