"""Dates from feeds, pages and HTTP headers: aware UTC datetimes, None for what cannot be read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from newsfold.dates import from_struct_time, parse_date, parse_http_date

NOON = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "2024-03-01T12:00:00Z",
        "2024-03-01T13:00:00+01:00",
        "2024-03-01 12:00:00",  # no zone: UTC
        " 2024-03-01T07:00:00-05:00 ",
        "Fri, 01 Mar 2024 12:00:00 GMT",
        "Fri, 01 Mar 2024 14:00:00 +0200",
    ],
)
def test_iso_and_rfc_2822_dates_become_utc(value: str) -> None:
    parsed = parse_date(value)
    assert parsed == NOON
    assert parsed is not None and parsed.utcoffset() is not None


@pytest.mark.parametrize(
    "value", [None, 1709294400, "", "  ", "yesterday", "2024-13-45", "Fri, 99"]
)
def test_unreadable_dates_are_none(value: object) -> None:
    assert parse_date(value) is None


def test_http_dates_are_rfc_2822_only() -> None:
    """HTTP headers may only carry RFC 2822 dates; an ISO date there is not one."""
    assert parse_http_date("Fri, 01 Mar 2024 12:00:00 GMT") == NOON
    assert parse_http_date("2024-03-01T12:00:00Z") is None
    assert parse_http_date("0") is None


def test_struct_times_from_feedparser() -> None:
    """A leap second is read as :59; an impossible date is None."""
    assert from_struct_time((2016, 12, 31, 23, 59, 60, 5, 366, 0)) == datetime(
        2016, 12, 31, 23, 59, 59, tzinfo=UTC
    )
    assert from_struct_time((2024, 2, 30, 0, 0, 0)) is None
