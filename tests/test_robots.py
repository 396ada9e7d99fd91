"""robots.txt for article pages, against a real server per test (one site, one robots.txt)."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from newsfold.config import FetchSettings, Settings
from newsfold.fetch import Fetcher
from newsfold.robots import RobotsPolicy
from newsfold.store import open_store
from newsfold.storecalls import StoreCalls
from tests.server import FeedServer, RequestHandler, free_port
from tests.stores import sqlite_url

AGENT = "newsfold/0.1 (+https://github.com/newsfold/newsfold)"
NOW = datetime(2026, 2, 17, 12, 0, tzinfo=UTC)
RULES = b"User-agent: *\nDisallow: /private/\n"


class MemoryStore:
    """The RobotsStore protocol over a dict, as the real store keeps it in a table."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str | None, datetime, int]] = {}

    def get_robots(self, host: str) -> tuple[str | None, datetime, int] | None:
        return self.rows.get(host)

    def put_robots(self, host: str, body: str | None, status: int, expires: datetime) -> None:
        self.rows[host] = (body, expires, status)


@pytest.fixture
def site() -> Iterator[FeedServer]:
    """A fresh server: one origin whose robots.txt each test sets."""
    with FeedServer() as running:
        yield running


def allowed(
    settings: FetchSettings,
    store: MemoryStore,
    urls: list[str],
    now: datetime = NOW,
) -> list[bool]:
    """Ask one policy (one run) about each URL, all at once."""

    async def go() -> list[bool]:
        async with Fetcher(settings) as fetcher, StoreCalls() as calls:
            policy = RobotsPolicy(fetcher, AGENT, store, calls, clock=lambda: now)
            return list(await asyncio.gather(*(policy.allowed(url) for url in urls)))

    return asyncio.run(asyncio.wait_for(go(), 30))


def test_rules_allow_and_disallow_paths(site: FeedServer, settings: Settings) -> None:
    """Paths under a Disallow line are refused, others allowed."""
    site.add("/robots.txt", RULES, content_type="text/plain")
    urls = [site.url("/news/a.html"), site.url("/private/b.html")]
    assert allowed(settings.fetch, MemoryStore(), urls) == [True, False]


def test_group_for_our_agent_wins(site: FeedServer, settings: Settings) -> None:
    """A group naming newsfold applies to it instead of the * group."""
    body = b"User-agent: newsfold\nDisallow: /\n\nUser-agent: *\nAllow: /\n"
    site.add("/robots.txt", body, content_type="text/plain")
    assert allowed(settings.fetch, MemoryStore(), [site.url("/news/a.html")]) == [False]


def test_robots_is_read_once_per_site_per_run(site: FeedServer, settings: Settings) -> None:
    """Many pages of one site asked about at once cost one robots.txt request."""
    site.add("/robots.txt", RULES, content_type="text/plain")
    urls = [site.url(f"/news/{i}.html") for i in range(10)]
    assert allowed(settings.fetch, MemoryStore(), urls) == [True] * 10
    assert site.count("/robots.txt") == 1


@pytest.mark.parametrize(
    ("status", "allows"), [(404, True), (410, True), (401, False), (403, False)]
)
def test_missing_robots_allow_and_forbidden_robots_disallow_everything(
    site: FeedServer, settings: Settings, status: int, allows: bool
) -> None:
    """No robots.txt (404, 410) means no rules; a robots.txt behind 401 or 403 closes the whole
    site. Either answer is kept for 24 hours."""
    site.add("/robots.txt", b"-", status=status, content_type="text/plain")
    store = MemoryStore()
    urls = [site.url("/"), site.url("/private/a.html")]
    assert allowed(settings.fetch, store, urls) == [allows, allows]
    assert store.rows[site.base_url] == (None, NOW + timedelta(hours=24), status)


def test_server_error_allows_and_is_not_kept(site: FeedServer, settings: Settings) -> None:
    """A 5xx robots.txt allows the pages this run and is asked again next run."""
    site.add("/robots.txt", b"oops", status=500, content_type="text/plain")
    store = MemoryStore()
    assert allowed(settings.fetch, store, [site.url("/private/a.html")]) == [True]
    assert store.rows == {}


def test_unreachable_site_allows(settings: Settings) -> None:
    """When nothing answers on the site, its pages are allowed (their own fetch will fail)."""
    url = f"http://127.0.0.1:{free_port()}/news/a.html"
    store = MemoryStore()
    assert allowed(settings.fetch, store, [url]) == [True]
    assert store.rows == {}


def test_robots_timeout_allows(site: FeedServer, settings: Settings) -> None:
    """A robots.txt that never arrives within the timeout allows the pages."""

    def stall(handler: RequestHandler) -> None:
        handler.wait(5)

    site.add_handler("/robots.txt", stall)
    fetch_settings = dataclasses.replace(settings.fetch, timeout=0.5)
    assert allowed(fetch_settings, MemoryStore(), [site.url("/private/a.html")]) == [True]


def test_stored_rules_are_used_until_they_expire(site: FeedServer, settings: Settings) -> None:
    """The next run reuses the stored robots.txt; after its expiry it is fetched again."""
    site.add("/robots.txt", RULES, content_type="text/plain")
    store = MemoryStore()
    url = site.url("/private/a.html")
    assert allowed(settings.fetch, store, [url]) == [False]
    assert allowed(settings.fetch, store, [url], now=NOW + timedelta(hours=23)) == [False]
    assert site.count("/robots.txt") == 1
    allowed(settings.fetch, store, [url], now=NOW + timedelta(hours=25))
    assert site.count("/robots.txt") == 2


@pytest.mark.parametrize(
    ("cache_control", "lifetime"),
    [("max-age=600", timedelta(minutes=10)), ("max-age=999999", timedelta(hours=24))],
)
def test_expiry_follows_max_age_up_to_a_day(
    site: FeedServer, settings: Settings, cache_control: str, lifetime: timedelta
) -> None:
    """Cache-Control max-age sets the stored expiry, never more than 24 hours away."""
    headers = {"Cache-Control": cache_control}
    site.add("/robots.txt", RULES, content_type="text/plain", headers=headers)
    store = MemoryStore()
    allowed(settings.fetch, store, [site.url("/")])
    assert store.rows[site.base_url] == (RULES.decode(), NOW + lifetime, 200)


def test_a_locked_store_does_not_stall_the_run(
    site: FeedServer, settings: Settings, tmp_path: Path
) -> None:
    """While another writer holds the SQLite store, keeping a robots.txt answer waits for it in
    a thread: the event loop goes on (other feeds keep fetching), and the answer is kept."""
    site.add("/robots.txt", RULES, content_type="text/plain")
    store = open_store(sqlite_url(tmp_path))
    store.migrate()
    holder = sqlite3.connect(tmp_path / "newsfold.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another run's long write transaction
    ticks = 0

    async def ticking() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def go() -> bool:
        ticker = asyncio.create_task(ticking())
        asyncio.get_running_loop().call_later(1.0, holder.execute, "COMMIT")
        async with Fetcher(settings.fetch) as fetcher, StoreCalls() as calls:
            policy = RobotsPolicy(fetcher, AGENT, store, calls, clock=lambda: NOW)
            verdict = await policy.allowed(site.url("/private/b.html"))
        ticker.cancel()
        return verdict

    assert asyncio.run(asyncio.wait_for(go(), 30)) is False
    assert ticks >= 20  # the loop ran while the write waited (on the loop it would stand still)
    assert store.get_robots(site.url("/").rstrip("/")) is not None
    holder.close()
    store.close()
