"""robots.txt for article pages (RFC 9309): fetched once per site per run, kept in the store.

What a robots.txt answer means here:
- 2xx: the rules in its body;
- 401 or 403: the whole site is off limits;
- any other status (404 and 410 above all), a network failure, a timeout: everything is allowed.
  RFC 9309 would treat a 5xx or an unreachable site as "disallow all"; newsfold's requirement is
  that an unreachable robots.txt does not stop the crawl.

Definite answers (2xx, 4xx) are stored with an expiry: Cache-Control max-age, else 24 hours, and
never more than 24 hours (RFC 9309 section 2.4). Failures (5xx, network, timeout) are not stored:
they hold for this run only, and the next run asks again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.robotparser import RobotFileParser

import httpx

from newsfold.errors import FetchError
from newsfold.fetch import Fetcher
from newsfold.storecalls import StoreCalls

ROBOTS_ACCEPT = "text/plain, */*;q=0.5"
LIFETIME = timedelta(hours=24)
DISALLOW_ALL_CODES = frozenset({401, 403})
DISALLOW_ALL = ["User-agent: *", "Disallow: /"]


class RobotsStore(Protocol):
    """Where robots.txt answers outlive a run; `host` is the site's origin, "https://host[:port]"."""

    def get_robots(self, host: str) -> tuple[str | None, datetime, int] | None:
        """(body, expires, status) as last stored, or None."""
        ...

    def put_robots(self, host: str, body: str | None, status: int, expires: datetime) -> None: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


class RobotsPolicy:
    """Answers "may this page be fetched?" for one run, reading each site's robots.txt once."""

    def __init__(
        self,
        fetcher: Fetcher,
        user_agent: str,
        cache: RobotsStore,
        calls: StoreCalls,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._fetcher = fetcher
        self._user_agent = user_agent
        self._cache = cache
        self._calls = calls  # the cache is the store: never called on the event loop
        self._clock = clock
        self._sites: dict[str, asyncio.Task[RobotFileParser]] = {}

    async def allowed(self, url: str) -> bool:
        """Whether the site's robots.txt lets our user agent fetch `url`."""
        origin = site_origin(url)
        if origin is None:
            return True  # not an http(s) URL: the fetcher refuses it with a clearer message
        rules = self._sites.get(origin)
        if rules is None:
            rules = self._sites[origin] = asyncio.create_task(self._load(origin))
        # Shielded: a caller that is cancelled must not cancel the lookup other callers await.
        return (await asyncio.shield(rules)).can_fetch(self._user_agent, url)

    async def _load(self, origin: str) -> RobotFileParser:
        now = self._clock()
        stored = await self._calls(self._cache.get_robots, origin)
        if stored is not None and stored[1] > now:
            return parse_rules(stored[0], stored[2])
        body, status, lifetime = await self._fetch(origin)
        if status is not None:
            await self._calls(self._cache.put_robots, origin, body, status, now + lifetime)
        return parse_rules(body, status or 0)

    async def _fetch(self, origin: str) -> tuple[str | None, int | None, timedelta]:
        """(body, status, lifetime); status None when the answer is not worth keeping."""
        try:
            result = await self._fetcher.fetch(origin + "/robots.txt", accept=ROBOTS_ACCEPT)
        except FetchError as exc:
            definite = exc.status is not None and 400 <= exc.status < 500
            return None, exc.status if definite else None, LIFETIME
        body = (result.body or b"").decode("utf-8", errors="replace").removeprefix("\ufeff")
        return body, result.status, lifetime_of(result.max_age)


def lifetime_of(max_age: float | None) -> timedelta:
    if max_age is None:
        return LIFETIME
    return min(timedelta(seconds=max_age), LIFETIME)


def parse_rules(body: str | None, status: int) -> RobotFileParser:
    """The rules a robots.txt answer stands for (status 0: no answer at all)."""
    if status in DISALLOW_ALL_CODES:
        lines = DISALLOW_ALL
    elif 200 <= status < 300:
        lines = (body or "").splitlines()
    else:
        lines = []
    rules = RobotFileParser()
    rules.parse(lines)  # also marks the rules as read: until then the parser refuses everything
    return rules


def site_origin(url: str) -> str | None:
    """ "https://host[:port]" of an http(s) URL, the unit robots.txt speaks for; else None."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return None
    port = f":{parsed.port}" if parsed.port else ""
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    return f"{parsed.scheme}://{host}{port}"
