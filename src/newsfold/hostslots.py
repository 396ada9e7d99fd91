"""fetch.per_host shared by every worker of a store: the fetcher's `SharedHostLimit`."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Protocol

from newsfold.storecalls import StoreCalls


class SlotStore(Protocol):
    """Where the slots live: rows of the store, taken and given back in short transactions."""

    shared: bool  # several workers may use it at once (PostgreSQL), so limits live in it

    def acquire_host_slot(
        self, host: str, owner: str, limit: int, hold: timedelta
    ) -> int | None: ...

    def release_host_slot(self, host: str, slot: int, owner: str) -> None: ...


class HostSlots:
    """fetch.per_host for every worker sharing a store: a request holds one of the host's slots.

        slots = HostSlots.for_store(store, worker, per_host, timeout, calls)
        async with slots.slot(host): ...   # around one request, inside the fetcher's own limit

    A slot is a row in the store, taken and given back in short transactions; a worker that dies
    holding one loses it after `hold`. While all are taken the caller polls, backing off up to
    POLL_MAX. For a store only one worker uses (SQLite), `for_store` returns None: the fetcher's
    in-process limit is enough and costs nothing.
    """

    POLL_MIN = 0.02  # seconds
    POLL_MAX = 0.5
    HOLD_MARGIN = timedelta(seconds=10)  # beyond the request timeout, before a slot is reclaimed

    def __init__(
        self, store: SlotStore, owner: str, limit: int, hold: timedelta, calls: StoreCalls
    ) -> None:
        self.store = store
        self.owner = owner
        self.limit = limit
        self.hold = hold
        self.calls = calls

    @classmethod
    def for_store(
        cls, store: SlotStore, owner: str, limit: int, timeout: float, calls: StoreCalls
    ) -> HostSlots | None:
        """Slots for the store's workers when it is shared; `timeout` is one request's limit."""
        if not store.shared:
            return None
        return cls(store, owner, limit, timedelta(seconds=timeout) + cls.HOLD_MARGIN, calls)

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        taken = await self._wait_for_slot(host)
        try:
            yield
        finally:
            await self.calls(self.store.release_host_slot, host, taken, self.owner)

    async def _wait_for_slot(self, host: str) -> int:
        pause = self.POLL_MIN
        while True:
            taken = await self.calls(
                self.store.acquire_host_slot, host, self.owner, self.limit, self.hold
            )
            if taken is not None:
                return taken
            # Jitter: workers that lost the same race should not all ask again together.
            await asyncio.sleep(pause * random.uniform(0.5, 1.5))
            pause = min(pause * 2, self.POLL_MAX)
