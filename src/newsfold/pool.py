"""Worker processes for the CPU-bound steps of a run (feed parsing, page extraction, dedup
fingerprints), awaitable from asyncio, with a time limit per step.

A step that runs past `page_timeout` has its worker killed and replaced, and its caller gets the
step's own stage error (a parse timeout is a ParseError, an extraction timeout an ExtractError).
At most two steps per worker are handed to the pool at a time: the rest wait in call(), so no
unbounded queue of bodies builds up, and a step's time limit counts from the moment a worker takes
it, never while it waits. Cancelling a call() cancels its step, killing the worker if it started.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar, cast

import pebble

from newsfold.config import ExtractSettings
from newsfold.errors import StageError

T = TypeVar("T")
# Imported once by the fork server: extract.py only, which is light. The first feed of a run
# waits for the fork server to start, so it loads nothing heavy; each worker imports what its
# tasks need (trafilatura, feedparser, datasketch) on first use, the two workers side by side.
WORKER_PRELOAD = ("newsfold.extract",)


@dataclass(frozen=True, slots=True)
class Step:
    """A kind of work for the pool: its name in messages, and the error its failures become."""

    name: str
    error: Callable[[str, str], StageError]  # (url, cause) -> the stage's error


def _start_method() -> str:
    """forkserver where the platform has it, else spawn; never plain fork.

    The pool starts and replaces workers while the parent runs an asyncio loop and pebble's own
    manager threads: forking a multi-threaded process can copy a lock held by another thread and
    deadlock the child. A fork server is a clean single-threaded process, started once, that forks
    workers cheaply, so replacing a killed worker costs its imports, not a fresh interpreter.
    """
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


class WorkerPool:
    """`settings.workers` processes (default: one per CPU) shared by every step of a run."""

    def __init__(self, settings: ExtractSettings) -> None:
        self.workers = settings.workers or os.cpu_count() or 1
        self.page_timeout = settings.page_timeout
        # Started by the first call, in a thread: a run that finds nothing changed never pays
        # for worker processes, and the event loop goes on fetching while they start.
        self._pool: pebble.ProcessPool | None = None
        self._closed = False
        self._start_lock = threading.Lock()
        self._slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

    def _started_pool(self) -> pebble.ProcessPool:
        with self._start_lock:
            if self._closed:
                raise RuntimeError("the pool is closed")
            if self._pool is None:
                context = multiprocessing.get_context(_start_method())
                if context.get_start_method() == "forkserver":
                    context.set_forkserver_preload(list(WORKER_PRELOAD))
                self._pool = pebble.ProcessPool(max_workers=self.workers, context=context)
                self._pool.active  # noqa: B018 - starts the workers now, in this thread
            return self._pool

    async def call(
        self, step: Step, url: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> T:
        """Run `fn` in a worker for the feed or page at `url`.

        `fn`'s own errors come back as they are (newsfold's errors pickle whole); a time-out,
        a dead worker or a broken pool become the step's error naming `url`.
        """
        async with self._slots_of_this_loop():
            try:
                pool = self._pool
                if pool is None:
                    pool = await asyncio.to_thread(self._started_pool)
                future = pool.schedule(fn, args=args, kwargs=kwargs, timeout=self.page_timeout)
                return cast(T, await asyncio.wrap_future(future))
            except TimeoutError:
                cause = f"{step.name} took longer than {self.page_timeout:g} s"
                raise step.error(url, cause) from None
            except pebble.ProcessExpired as exc:
                cause = f"{step.name} worker died (exit code {exc.exitcode})"
                raise step.error(url, cause) from None
            except RuntimeError as exc:  # a closed pool, or pebble gave up on its workers
                raise step.error(url, f"{step.name} pool unavailable: {exc}") from None

    def _slots_of_this_loop(self) -> asyncio.Semaphore:
        """The bound on steps handed to the pool; an asyncio.Semaphore works in one loop only."""
        loop = asyncio.get_running_loop()
        if loop not in self._slots:
            self._slots = {loop: asyncio.Semaphore(2 * self.workers)}
        return self._slots[loop]

    def close(self) -> None:
        """Stop the workers; a step still running is abandoned."""
        with self._start_lock:
            self._closed = True
            if self._pool is not None:
                self._pool.stop()  # type: ignore[no-untyped-call]
                self._pool.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
