"""When a feed is checked next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from newsfold.config import ScheduleSettings
from newsfold.schedule import (
    next_check_after_failure,
    next_check_after_success,
    publishing_interval,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SETTINGS = ScheduleSettings()
URL = "https://news.example/feed"


def within_spread(actual: datetime, interval: timedelta) -> bool:
    """The per-feed spread adds at most 5% to an interval."""
    return interval <= actual - NOW <= interval * 1.05


def test_publishing_rate_sets_the_interval() -> None:
    """A feed that publishes hourly is checked every 30 minutes."""
    dates = [NOW - timedelta(hours=h) for h in range(8)]
    assert publishing_interval(dates, NOW) == timedelta(minutes=30)
    assert within_spread(
        next_check_after_success(NOW, SETTINGS, url=URL, rate=publishing_interval(dates, NOW)),
        timedelta(minutes=30),
    )


def test_no_history_uses_the_default() -> None:
    """With fewer than two dated entries the default interval applies."""
    assert publishing_interval([NOW], NOW) is None
    assert within_spread(
        next_check_after_success(NOW, SETTINGS, url=URL), SETTINGS.default_interval
    )


def test_interval_is_clamped() -> None:
    """A feed publishing every minute is still checked no more often than min_interval,
    and a dormant one at least every max_interval."""
    busy = [NOW - timedelta(minutes=m) for m in range(10)]
    assert within_spread(
        next_check_after_success(NOW, SETTINGS, url=URL, rate=publishing_interval(busy, NOW)),
        SETTINGS.min_interval,
    )
    assert within_spread(
        next_check_after_success(NOW, SETTINGS, url=URL, rate=timedelta(days=30)),
        SETTINGS.max_interval,
    )


def test_server_hints_are_a_floor() -> None:
    """RSS <ttl> and Cache-Control max-age push the next check out, never in."""
    ttl = next_check_after_success(
        NOW, SETTINGS, url=URL, rate=timedelta(minutes=10), ttl=timedelta(hours=2)
    )
    assert within_spread(ttl, timedelta(hours=2))
    max_age = next_check_after_success(NOW, SETTINGS, url=URL, max_age_seconds=3 * 3600)
    assert within_spread(max_age, timedelta(hours=3))


def test_user_interval_wins_over_rate() -> None:
    """A feed's configured interval replaces the learnt rate."""
    at = next_check_after_success(
        NOW, SETTINGS, url=URL, override=timedelta(hours=1), rate=timedelta(minutes=10)
    )
    assert within_spread(at, timedelta(hours=1))


def test_failures_back_off_exponentially_and_cap() -> None:
    """Each transient failure doubles the wait from min_interval, up to max_backoff."""
    waits = [
        next_check_after_failure(NOW, SETTINGS, url=URL, error_count=n, transient=True) - NOW
        for n in (1, 2, 3)
    ]
    assert waits[1] >= waits[0] * 1.9 and waits[2] >= waits[1] * 1.9
    capped = next_check_after_failure(NOW, SETTINGS, url=URL, error_count=40, transient=True)
    assert within_spread(capped, SETTINGS.max_backoff)


def test_permanent_failures_wait_longer() -> None:
    """A 410 waits longer than a 503 after the same number of failures."""
    transient = next_check_after_failure(NOW, SETTINGS, url=URL, error_count=1, transient=True)
    permanent = next_check_after_failure(NOW, SETTINGS, url=URL, error_count=1, transient=False)
    assert permanent - NOW >= (transient - NOW) * 8


def test_retry_after_is_honoured() -> None:
    """A server's Retry-After is never undercut by the backoff."""
    at = next_check_after_failure(
        NOW, SETTINGS, url=URL, error_count=1, transient=True, retry_after_seconds=7200
    )
    assert within_spread(at, timedelta(hours=2))
