"""The store: the narrow interface the stages and the CLI talk to, and `open_store` to get one.

One implementation (`sql.SqlStore`, SQLAlchemy Core) serves SQLite and PostgreSQL; the few places
where the two differ (run lock, write transactions, upserts, dedup locks, the per-host limit
shared by workers) are chosen by dialect inside it. `HostSlots` is the fetcher's side of that
shared per-host limit.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from newsfold.model import Article, Entry, FeedSource, FeedState, Story


@dataclass(frozen=True, slots=True)
class FeedUpdate:
    """A feed's new state after one check; `error` set when the check failed."""

    feed_id: int
    checked_at: datetime
    next_check: datetime
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    rate: timedelta | None = None
    title: str | None = None  # the feed's own title: its name until the user gives one
    error: str | None = None
    error_kind: str | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A stored article that shares an LSH band with a new one."""

    article_id: int
    story_id: int
    fingerprint: bytes
    seen_at: datetime


@dataclass(frozen=True, slots=True)
class Fold:
    """Where dedup puts an article: an existing story (with its similarity) or a new one."""

    story_id: int | None
    similarity: float
    fingerprint: bytes
    band_keys: tuple[int, ...]


class DedupIndex(Protocol):
    """What dedup may ask the store inside the transaction that saves an article."""

    def story_with_text(self, content_hash: str, exclude_article: int) -> int | None: ...

    def candidates(self, band_keys: Sequence[int], since: datetime) -> list[Candidate]: ...


# Given the saved article's id and its data, decide its story (called inside the transaction).
# It must have no side effects: on PostgreSQL the store first calls it with an index that finds
# nothing, to learn which keys it will look up and lock them all before the real call.
Folder = Callable[[int, Article, DedupIndex], Fold]


@dataclass(frozen=True, slots=True)
class FeedCommit:
    """What one feed's transaction added."""

    entries_new: int
    entries_updated: int
    articles_new: int
    articles_updated: int
    stories_new: int


class Store(Protocol):
    url: str
    shared: bool  # several workers may use it at once (PostgreSQL), so limits live in it

    def migrate(self) -> int: ...

    def close(self) -> None: ...

    def run_lock(self, wait: bool) -> AbstractContextManager[None]: ...

    def sync_feeds(self, sources: Sequence[FeedSource], now: datetime) -> int: ...

    def add_feed(self, source: FeedSource, now: datetime) -> bool: ...

    def remove_feed(self, url: str) -> bool: ...

    def feeds(self) -> list[FeedState]: ...

    def lease_due_feeds(
        self, now: datetime, *, include_all: bool, worker: str, lease: timedelta
    ) -> Iterator[FeedState]: ...

    def release_leases(self, worker: str | None) -> None: ...

    def entry_hashes(self, feed_id: int, keys: Sequence[str]) -> dict[str, str]: ...

    def known_article_urls(self, urls: Sequence[str]) -> set[str]: ...

    def record_feed(
        self,
        update: FeedUpdate,
        entries: Sequence[Entry],
        articles: Sequence[Article],
        links: dict[str, str],
        fold: Folder,
    ) -> FeedCommit: ...

    def stories(self, since: datetime | None, limit: int | None) -> list[Story]: ...

    def story(self, story_id: int) -> Story | None: ...

    def stats(self) -> dict[str, Any]: ...

    def check(self) -> list[str]: ...

    def article_text(self, url: str) -> tuple[Article, int | None] | None: ...

    def prune_dedup(self, before: datetime) -> int: ...

    def refold(self, since: datetime, fold: Folder) -> int: ...

    def get_robots(self, host: str) -> tuple[str | None, datetime, int] | None: ...

    def put_robots(self, host: str, body: str | None, status: int, expires: datetime) -> None: ...

    def record_run(
        self, worker: str, started: datetime, finished: datetime, report: str
    ) -> None: ...

    def acquire_host_slot(
        self, host: str, owner: str, limit: int, hold: timedelta
    ) -> int | None: ...

    def release_host_slot(self, host: str, slot: int, owner: str) -> None: ...


class HostSlots:
    """fetch.per_host for every worker sharing a store: a request holds one of the host's slots.

        slots = HostSlots.for_store(store, worker, settings.fetch.per_host, settings.fetch.timeout)
        async with slots.slot(host): ...   # around one request, inside the fetcher's own limit

    A slot is a row in the store, taken and given back in short transactions; a worker that dies
    holding one loses it after `hold`. While all are taken the caller polls, backing off up to
    POLL_MAX. For a store only one worker uses (SQLite), `for_store` returns None: the fetcher's
    in-process limit is enough and costs nothing.
    """

    POLL_MIN = 0.02  # seconds
    POLL_MAX = 0.5
    HOLD_MARGIN = timedelta(seconds=10)  # beyond the request timeout, before a slot is reclaimed

    def __init__(self, store: Store, owner: str, limit: int, hold: timedelta) -> None:
        self.store = store
        self.owner = owner
        self.limit = limit
        self.hold = hold

    @classmethod
    def for_store(cls, store: Store, owner: str, limit: int, timeout: float) -> HostSlots | None:
        """Slots for the store's workers when it is shared; `timeout` is one request's limit."""
        if not store.shared:
            return None
        return cls(store, owner, limit, timedelta(seconds=timeout) + cls.HOLD_MARGIN)

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        taken = await self._wait_for_slot(host)
        try:
            yield
        finally:
            await asyncio.to_thread(self.store.release_host_slot, host, taken, self.owner)

    async def _wait_for_slot(self, host: str) -> int:
        pause = self.POLL_MIN
        while True:
            taken = await asyncio.to_thread(
                self.store.acquire_host_slot, host, self.owner, self.limit, self.hold
            )
            if taken is not None:
                return taken
            # Jitter: workers that lost the same race should not all ask again together.
            await asyncio.sleep(pause * random.uniform(0.5, 1.5))
            pause = min(pause * 2, self.POLL_MAX)


def default_db_path(env: dict[str, str]) -> Path:
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "newsfold" / "newsfold.db"


def open_store(url: str) -> Store:
    from newsfold.store.sql import SqlStore

    return SqlStore(url)
