"""When each feed is checked next: pure functions of the clock, the feed's history and settings.

After a success the interval follows the feed's own publishing rate (half the typical gap between
its recent entries), never shorter than what the server asked for (RSS <ttl>, Cache-Control
max-age / Expires), and clamped to [min_interval, max_interval]. After a failure it backs off
exponentially from min_interval, faster for permanent failures, capped at max_backoff, and never
before a server's Retry-After. A small per-feed offset spreads feeds that were added together.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from statistics import median

from newsfold.config import ScheduleSettings

RATE_SAMPLE = 10  # recent entries used to estimate how often a feed publishes
RATE_HORIZON = timedelta(days=60)  # older entries say little about today's rate
PERMANENT_PENALTY = 4  # a 410 or 401 is retried four steps further out than a 503


def publishing_interval(entry_dates: Sequence[datetime], now: datetime) -> timedelta | None:
    """Half the median gap between the feed's recent entries, or None without enough history."""
    recent = sorted((d for d in entry_dates if now - RATE_HORIZON <= d <= now), reverse=True)[
        :RATE_SAMPLE
    ]
    if len(recent) < 2:
        return None
    gaps = [(a - b).total_seconds() for a, b in itertools.pairwise(recent)]
    return timedelta(seconds=median(gaps) / 2)


def next_check_after_success(
    now: datetime,
    settings: ScheduleSettings,
    *,
    url: str,
    override: timedelta | None = None,
    rate: timedelta | None = None,
    ttl: timedelta | None = None,
    max_age_seconds: float | None = None,
) -> datetime:
    """`rate` is publishing_interval() of the feed's entries, or the one learnt before a 304."""
    interval = override or rate or settings.default_interval
    server_floor = max(ttl or timedelta(0), timedelta(seconds=max_age_seconds or 0))
    interval = _clamp(max(interval, server_floor), settings.min_interval, settings.max_interval)
    return now + _spread(interval, url)


def next_check_after_failure(
    now: datetime,
    settings: ScheduleSettings,
    *,
    url: str,
    error_count: int,
    transient: bool,
    retry_after_seconds: float | None = None,
) -> datetime:
    """`error_count` counts this failure too (1 after the first failure)."""
    steps = max(error_count, 1) - 1 + (0 if transient else PERMANENT_PENALTY)
    backoff = settings.min_interval * (2 ** min(steps, 30))
    backoff = min(backoff, settings.max_backoff)
    if retry_after_seconds:
        backoff = max(backoff, timedelta(seconds=retry_after_seconds))
    return now + _spread(backoff, url)


def _clamp(value: timedelta, low: timedelta, high: timedelta) -> timedelta:
    return max(low, min(value, high))


def _spread(interval: timedelta, url: str) -> timedelta:
    """Up to 5% more, fixed per feed, so feeds added together do not stay in lockstep."""
    fraction = (zlib.crc32(url.encode()) % 1000) / 20_000
    return interval * (1 + fraction)
