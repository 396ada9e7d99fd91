"""What a cron tick needs before anything heavy loads: where the SQLite store is, the run lock,
and a look at the schedule.

Only the standard library is used here (sqlite3, fcntl), never SQLAlchemy, the store package or
the pipeline's stages: a tick that finds the lock held, or nothing due, is over before they would
have loaded.

    with run_lock(db_url, wait=False) as exclusive:     # LockedError when another run holds it
        if idle_until(db_url, settings.feeds, now):     # nothing due: done
            return
        ...                                             # the full run

The lock is a flock on a file beside the SQLite file. PostgreSQL workers share feeds by lease
instead, so there it is no lock at all; `idle_until` reads only SQLite files and leaves
PostgreSQL to the full path.
"""

from __future__ import annotations

import fcntl
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from newsfold.errors import LockedError, StoreError
from newsfold.model import FeedSource

# How SQLAlchemy writes a DateTime into SQLite (naive UTC); text in this form sorts as time does.
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"
_SCHEDULE_QUERY = "SELECT url, name, interval_seconds, next_check FROM feeds"


def default_db_path(env: dict[str, str]) -> Path:
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "newsfold" / "newsfold.db"


def sqlite_file(db_url: str) -> Path | None:
    """The database file of a sqlite:/// URL; None for PostgreSQL or an in-memory SQLite."""
    scheme, separator, rest = db_url.partition("://")
    if not separator or scheme.split("+")[0] != "sqlite":
        return None
    database = rest.partition("/")[2].partition("?")[0]  # sqlite:///PATH: no host part
    return None if database in ("", ":memory:") else Path(database)


def lock_file(db_url: str) -> Path | None:
    database = sqlite_file(db_url)
    return None if database is None else database.with_name(database.name + ".lock")


@contextmanager
def run_lock(db_url: str, wait: bool) -> Iterator[bool]:
    """One run at a time on a SQLite file: LockedError when another holds it, unless `wait`.

    Yields True when this run holds the lock alone, which proves no other run is alive (the
    leases of a killed run are void); False where there is no lock to take (PostgreSQL).
    """
    path = lock_file(db_url)
    if path is None:
        yield False
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a")
    except OSError as exc:
        raise StoreError(f"{db_url}: cannot take the run lock {path}: {exc.strerror}") from None
    with handle:
        flags = fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB
        try:
            fcntl.flock(handle, flags)
        except BlockingIOError:
            raise LockedError(f"another newsfold run holds the lock {path}") from None
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def idle_until(db_url: str, sources: Sequence[FeedSource], now: datetime) -> datetime | None:
    """When the next feed is due, if none is due at `now`; None when a full run has work.

    "Work" is anything the full run would do: a feed due or never checked, a feed of the config
    the store lacks or knows under another name or interval, or a store this cannot read (not
    there yet, another database, a schema it does not recognise). Unsure means None.
    """
    database = sqlite_file(db_url)
    if database is None or not database.is_file():
        return None
    try:
        with closing(sqlite3.connect(database, timeout=5)) as conn:
            rows = conn.execute(_SCHEDULE_QUERY).fetchall()
    except sqlite3.Error:
        return None
    stored = {url: (name, interval) for url, name, interval, _ in rows}
    if not rows or any(not _in_store(source, stored) for source in sources):
        return None
    if any(next_check is None for *_, next_check in rows):
        return None
    first = min(str(next_check) for *_, next_check in rows)
    due = datetime.strptime(first, _SQLITE_DATETIME).replace(tzinfo=UTC)
    return due if due > now else None


def _in_store(source: FeedSource, stored: dict[str, tuple[str | None, float | None]]) -> bool:
    """Whether syncing the config would leave this feed's row as it is."""
    if source.url not in stored:
        return False
    name, interval = stored[source.url]
    wanted = source.interval.total_seconds() if source.interval else None
    return interval == wanted and (source.name is None or source.name == name)
