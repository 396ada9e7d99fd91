"""The one way async code touches the store: each call runs in a thread, never on the event loop.

A store call can wait on a database lock (SQLite's busy timeout is 60 s, PostgreSQL's row locks
as long as another worker's transaction), and the loop must go on fetching meanwhile.

    async with StoreCalls() as calls:
        feeds = await calls(store.entry_hashes, feed_id, keys)

A run has two: its own calls go through one thread, in order (SQLite has one writer anyway, and a
feed's commit never races its own lease); the per-host slots shared by workers (PostgreSQL) have
threads of their own, so a request waiting for a slot is not queued behind a feed's commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, Self, TypeVar

T = TypeVar("T")


class StoreCalls:
    """Store calls from async code, in `threads` threads (None: the executor's default)."""

    def __init__(self, threads: int | None = 1, name: str = "newsfold-store") -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    async def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        """Wait for the calls under way, then stop the threads."""
        self._executor.shutdown(wait=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # In a thread: shutting down waits for a call that may itself wait on a lock.
        await asyncio.to_thread(self.close)
