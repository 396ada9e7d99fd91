"""Feeds, their entries, and the leases that share due feeds between workers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, func, or_, select, update

from newsfold.model import Entry, FeedSource, FeedState
from newsfold.store import FeedUpdate
from newsfold.store.base import SqlBase, chunks, dialect_insert
from newsfold.store.rows import feed_state
from newsfold.store.schema import entries, feeds, workers

LEASE_BATCH = 8  # feeds leased per transaction: fewer round trips, still fair between workers


class FeedsSql(SqlBase):
    def sync_feeds(self, sources: Sequence[FeedSource], now: datetime) -> int:
        """Add config feeds the store lacks and refresh their names and intervals."""
        added = 0
        with self._write() as conn:
            for source in sources:
                added += self._upsert_feed(conn, source, now)
        return added

    def add_feed(self, source: FeedSource, now: datetime) -> bool:
        with self._write() as conn:
            return self._upsert_feed(conn, source, now)

    def _upsert_feed(self, conn: Connection, source: FeedSource, now: datetime) -> bool:
        interval = source.interval.total_seconds() if source.interval else None
        values: dict[str, Any] = {"interval_seconds": interval}
        if source.name:
            values["name"] = source.name
        changed = conn.execute(update(feeds).where(feeds.c.url == source.url).values(**values))
        if changed.rowcount:
            return False
        added = conn.execute(
            self._dialect_insert(feeds)
            .values(
                url=source.url,
                name=source.name,
                status="new",
                error_count=0,
                entries=0,
                interval_seconds=interval,
                added_at=now,
            )
            .on_conflict_do_nothing(index_elements=["url"])
        )
        return bool(added.rowcount)  # 0: another worker added it a moment ago

    def remove_feed(self, url: str) -> bool:
        with self._write() as conn:
            feed_id = conn.execute(select(feeds.c.id).where(feeds.c.url == url)).scalar()
            if feed_id is None:
                return False
            # Articles stay: they may belong to other feeds and to stories.
            conn.execute(delete(entries).where(entries.c.feed_id == feed_id))
            conn.execute(delete(feeds).where(feeds.c.id == feed_id))
            return True

    def feeds(self) -> list[FeedState]:
        with self._read() as conn:
            rows = conn.execute(select(feeds).order_by(feeds.c.id)).all()
        return [feed_state(row._mapping) for row in rows]

    def lease_due_feeds(
        self, now: datetime, *, include_all: bool, worker: str, lease: timedelta
    ) -> Iterator[FeedState]:
        """Due feeds, leased to `worker` a few at a time so several workers share the list.

        `now` is the run's start: it decides which feeds are due. A lease runs from the moment
        it is taken (`now` plus the time since the first lease), so a feed leased late in a long
        run is not handed to another worker before its `lease` is over.
        """
        started = time.monotonic()
        while True:
            at = now + timedelta(seconds=time.monotonic() - started)
            with self._write() as conn:
                free = or_(feeds.c.lease_expires.is_(None), feeds.c.lease_expires < at)
                rows = conn.execute(
                    select(feeds)
                    .where(and_(_waiting(now, include_all), free))
                    .order_by(feeds.c.next_check.is_not(None), feeds.c.next_check, feeds.c.id)
                    .limit(LEASE_BATCH)
                    .with_for_update(skip_locked=True)
                ).all()
                if not rows:
                    return
                conn.execute(
                    update(feeds)
                    .where(feeds.c.id.in_([row.id for row in rows]))
                    .values(lease_owner=worker, lease_expires=at + lease)
                )
                worker_seen(conn, worker, at, leased=len(rows))
            yield from (feed_state(row._mapping) for row in rows)

    def count_due_feeds(self, now: datetime, *, include_all: bool) -> int:
        """How many feeds `lease_due_feeds` would hand out now, leased or not."""
        with self._read() as conn:
            query = select(func.count()).select_from(feeds).where(_waiting(now, include_all))
            return int(conn.execute(query).scalar_one())

    def release_leases(self, worker: str | None) -> None:
        """Give back the feeds leased to `worker` (None: to anyone) and not yet recorded."""
        with self._write() as conn:
            void_leases(conn, worker)

    def entry_hashes(self, feed_id: int, keys: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self._read() as conn:
            for chunk in chunks(keys):
                rows = conn.execute(
                    select(entries.c.key, entries.c.content_hash).where(
                        entries.c.feed_id == feed_id, entries.c.key.in_(chunk)
                    )
                )
                found.update({row.key: row.content_hash for row in rows})
        return found


def _waiting(now: datetime, include_all: bool) -> ColumnElement[bool]:
    """The feeds a run started at `now` takes: those due, or with --all every feed it has not
    checked yet."""
    if include_all:
        return or_(feeds.c.last_checked.is_(None), feeds.c.last_checked < now)
    return or_(feeds.c.next_check.is_(None), feeds.c.next_check <= now)


def void_leases(conn: Connection, worker: str | None) -> None:
    """Clear the leases of `worker` (None: of anyone)."""
    owned = feeds.c.lease_owner.is_not(None) if worker is None else feeds.c.lease_owner == worker
    conn.execute(update(feeds).where(owned).values(lease_owner=None, lease_expires=None))


def worker_seen(conn: Connection, worker: str, at: datetime, leased: int) -> None:
    seen = dialect_insert(conn.dialect.name, workers).values(
        worker=worker, first_seen=at, last_seen=at, feeds=leased
    )
    conn.execute(
        seen.on_conflict_do_update(
            index_elements=["worker"],
            set_={"last_seen": seen.excluded.last_seen, "feeds": workers.c.feeds + leased},
        )
    )


def update_feed_state(conn: Connection, u: FeedUpdate) -> None:
    values: dict[str, Any] = {
        "last_checked": u.checked_at,
        "next_check": u.next_check,
        "page_failures": json.dumps(dict(u.page_failures)) if u.page_failures else None,
    }
    if not u.leased_on:
        values.update(lease_owner=None, lease_expires=None)
    if u.pending is not None:
        values["pending_entries"] = json.dumps(list(u.pending)) if u.pending else None
    # The answer's validators and body hash, and why that body is not a feed when it is not.
    body = {
        "etag": u.etag,
        "last_modified": u.last_modified,
        "body_hash": u.body_hash,
        "body_error": u.body_error,
    }
    if u.error is None:
        values.update(
            status="ok",
            error_count=0,
            last_error=None,
            error_kind=None,
            rate_seconds=u.rate.total_seconds() if u.rate else None,
            **body,
        )
        if u.title:
            values["name"] = func.coalesce(feeds.c.name, u.title)
    else:
        values.update(
            status="error",
            error_count=feeds.c.error_count + 1,
            last_error=u.error,
            error_kind=u.error_kind,
        )
        if u.body_error is not None:  # other failures keep the last good answer's
            values.update(body)
    conn.execute(update(feeds).where(feeds.c.id == u.feed_id).values(**values))


def save_entries(conn: Connection, u: FeedUpdate, found: Sequence[tuple[Entry, int | None]]) -> int:
    """Insert or update the feed's entries (each with its article's id) in one statement; how
    many are new. A feed whose lease ran out mid-check may be recorded by two workers: the
    later one wins."""
    last = {entry.key: (entry, article_id) for entry, article_id in found}  # one row a key
    if not last:
        return 0
    known: set[str] = set()
    for chunk in chunks(list(last)):
        query = select(entries.c.key).where(
            entries.c.feed_id == u.feed_id, entries.c.key.in_(chunk)
        )
        known.update(conn.execute(query).scalars())
    rows = [
        {
            "feed_id": u.feed_id,
            "key": entry.key,
            "first_seen": u.checked_at,
            "updated_at": u.checked_at,
            "article_id": article_id,
            **{name: getattr(entry, name) for name in _ENTRY_FIELDS},
        }
        for entry, article_id in last.values()
    ]
    conn.execute(_upsert_entry(conn.dialect.name), rows)
    return len(set(last) - known)


def refresh_entry_count(conn: Connection, feed_id: int) -> None:
    count = select(func.count()).where(entries.c.feed_id == feed_id).scalar_subquery()
    conn.execute(update(feeds).where(feeds.c.id == feed_id).values(entries=count))


# An entry's own fields that its row keeps; a check that finds the entry again rewrites them.
_ENTRY_FIELDS = ("link", "title", "summary", "published", "date_suspect", "author", "content_hash")
_ENTRY_VALUES = (*_ENTRY_FIELDS, "updated_at", "article_id")


@cache
def _upsert_entry(dialect: str) -> Any:
    insert = dialect_insert(dialect, entries)
    return insert.on_conflict_do_update(
        index_elements=["feed_id", "key"],
        set_={name: insert.excluded[name] for name in _ENTRY_VALUES},
    )
