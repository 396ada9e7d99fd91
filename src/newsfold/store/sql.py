"""SqlStore: the store on SQLAlchemy Core, for SQLite (default) and PostgreSQL.

SQLite runs in WAL mode with synchronous=NORMAL: a committed transaction survives a process crash,
and a power loss can lose at most the last transactions, never corrupt the file. Every write
transaction starts with BEGIN IMMEDIATE so two writers queue instead of failing on a lock upgrade.

On PostgreSQL several workers write at once. What keeps their result equal to one worker's:
- feeds are leased one at a time (FOR UPDATE SKIP LOCKED), so no feed is checked twice at once;
- a feed's transaction first locks every key its articles' dedup will look up (LSH band keys
  and exact-text keys), in one statement, in ascending order: two transactions holding copies of
  one story run their dedup one after the other and the second sees the first's story; the one
  global order means these locks never deadlock. The locks are row locks on `dedup_locks`, one
  row per key bucket (2^20 of them), not advisory locks: a feed of 300 new articles needs some
  17,000, and advisory locks live in a shared table of max_locks_per_transaction *
  max_connections entries (6,400 by default), where row locks cost nothing;
- rows two workers may both create (a feed from the config, an article two feeds list, a robots
  answer) are inserted with ON CONFLICT, and a transaction PostgreSQL still aborts as a deadlock
  (story rows updated in opposite orders) is run again from the start.
"""

from __future__ import annotations

import fcntl
import hashlib
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    Integer,
    Table,
    and_,
    any_,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DatabaseError, DBAPIError, SQLAlchemyError

from newsfold.errors import LockedError, StoreError
from newsfold.model import (
    Article,
    Entry,
    FeedSource,
    FeedState,
    Story,
    StoryArticle,
)
from newsfold.store import Candidate, FeedCommit, FeedUpdate, Folder, schema
from newsfold.store.schema import (
    articles,
    dedup_bands,
    dedup_locks,
    entries,
    feeds,
    fingerprints,
    host_slots,
    robots,
    runs,
    stories,
    workers,
)

T = TypeVar("T")
SQLITE_BUSY_TIMEOUT_S = 60
LEASE_BATCH = 8  # feeds leased per transaction: fewer round trips, still fair between workers
MIGRATION_LOCK = 0x6E657773666F6C64  # "newsfold": workers starting at once migrate one by one
LOCK_BUCKETS = 1 << 20  # dedup keys share a lock row only by chance: 58 keys an article
# PostgreSQL's SQLSTATEs for a transaction it aborted so another could go on: run it again.
RETRY_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure
TRANSACTION_ATTEMPTS = 5
WORKERS_RECENT = timedelta(hours=1)  # `stats` lists the workers seen within this


def entry_hash(entry: Entry) -> str:
    """What a publisher may edit: a change here updates the stored entry."""
    text = "\x1f".join([entry.title or "", entry.summary or "", entry.link or ""])
    return hashlib.sha256(text.encode()).hexdigest()


class SqlStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _make_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.shared = not self.is_sqlite  # SQLite: one run at a time (run_lock)

    # -- lifecycle -----------------------------------------------------------------------------

    def migrate(self) -> int:
        with self._write() as conn:
            if not self.is_sqlite:
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            return schema.migrate(conn, _now())

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def run_lock(self, wait: bool) -> Iterator[None]:
        """One run at a time on a SQLite file; PostgreSQL workers share feeds by lease instead."""
        if not self.is_sqlite or self.engine.url.database in (None, "", ":memory:"):
            yield
            return
        lock_path = Path(str(self.engine.url.database) + ".lock")
        with lock_path.open("a") as handle:
            flags = fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB
            try:
                fcntl.flock(handle, flags)
            except BlockingIOError:
                raise LockedError(f"another newsfold run holds the lock {lock_path}") from None
            try:
                # Holding the lock proves no other run is alive: leases of a killed run are void.
                self.release_leases(None)
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._as_store_errors(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._as_store_errors(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def _as_store_errors(self) -> Iterator[None]:
        try:
            yield
        except DatabaseError as exc:  # unreachable, locked, or not a sound SQLite file
            raise StoreError(f"{self._safe_url()}: {_first_line(exc)}") from exc

    def _transaction(self, work: Callable[[Connection], T]) -> T:
        """`work` in one write transaction, run again when PostgreSQL aborts it as a deadlock."""
        for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
            try:
                with self._write() as conn:
                    return work(conn)
            except StoreError as exc:
                if attempt == TRANSACTION_ATTEMPTS or not _retryable(exc.__cause__):
                    raise
                time.sleep(random.uniform(0.0, 0.05 * attempt))  # let the other one commit
        raise AssertionError("unreachable")  # pragma: no cover

    @cached_property
    def _upsert_entry(self) -> Any:
        insert = self._dialect_insert(entries)
        return insert.on_conflict_do_update(
            index_elements=["feed_id", "key"],
            set_={name: insert.excluded[name] for name in _ENTRY_VALUES},
        )

    @cached_property
    def _insert_article(self) -> Any:
        insert = self._dialect_insert(articles)
        return insert.on_conflict_do_nothing(index_elements=["url"]).returning(articles.c.id)

    def _dialect_insert(self, table: Table) -> Any:
        """INSERT for this dialect, with its ON CONFLICT clauses."""
        return (sqlite.insert if self.is_sqlite else postgresql.insert)(table)

    def _safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    # -- feeds ---------------------------------------------------------------------------------

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
        return [_feed_state(row._mapping) for row in rows]

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
                due = or_(feeds.c.next_check.is_(None), feeds.c.next_check <= now)
                free = or_(feeds.c.lease_expires.is_(None), feeds.c.lease_expires < at)
                # --all: every feed not yet checked in this run (one started at `now`).
                unchecked = or_(feeds.c.last_checked.is_(None), feeds.c.last_checked < now)
                where = and_(unchecked, free) if include_all else and_(due, free)
                rows = conn.execute(
                    select(feeds)
                    .where(where)
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
                self._worker_seen(conn, worker, at, leased=len(rows))
            yield from (_feed_state(row._mapping) for row in rows)

    def _worker_seen(self, conn: Connection, worker: str, at: datetime, leased: int) -> None:
        seen = self._dialect_insert(workers).values(
            worker=worker, first_seen=at, last_seen=at, feeds=leased
        )
        conn.execute(
            seen.on_conflict_do_update(
                index_elements=["worker"],
                set_={"last_seen": seen.excluded.last_seen, "feeds": workers.c.feeds + leased},
            )
        )

    def release_leases(self, worker: str | None) -> None:
        """Give back the feeds leased to `worker` (None: to anyone) and not yet recorded."""
        owned = (
            feeds.c.lease_owner.is_not(None) if worker is None else feeds.c.lease_owner == worker
        )
        with self._write() as conn:
            conn.execute(update(feeds).where(owned).values(lease_owner=None, lease_expires=None))

    # -- entries and articles ------------------------------------------------------------------

    def entry_hashes(self, feed_id: int, keys: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self._read() as conn:
            for chunk in _chunks(keys):
                rows = conn.execute(
                    select(entries.c.key, entries.c.content_hash).where(
                        entries.c.feed_id == feed_id, entries.c.key.in_(chunk)
                    )
                )
                found.update({row.key: row.content_hash for row in rows})
        return found

    def known_article_urls(self, urls: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with self._read() as conn:
            for chunk in _chunks(urls):
                found.update(
                    conn.execute(select(articles.c.url).where(articles.c.url.in_(chunk))).scalars()
                )
        return found

    def record_feed(
        self,
        update_: FeedUpdate,
        new_entries: Sequence[Entry],
        new_articles: Sequence[Article],
        links: dict[str, str],
        fold: Folder,
    ) -> FeedCommit:
        """One feed's whole result in one transaction: a crash loses this feed's work or none."""
        return self._transaction(
            lambda conn: self._record_feed(conn, update_, new_entries, new_articles, links, fold)
        )

    def _record_feed(
        self,
        conn: Connection,
        update_: FeedUpdate,
        new_entries: Sequence[Entry],
        new_articles: Sequence[Article],
        links: dict[str, str],
        fold: Folder,
    ) -> FeedCommit:
        self._update_feed_state(conn, update_)
        added, edited, article_counts = 0, 0, [0, 0, 0]
        if update_.error is None:
            locks = _DedupLocks(conn, enabled=not self.is_sqlite)
            locks.take_all_asked(fold, new_articles)
            saved = {
                a.url: self._save_article(conn, a, fold, locks, update_.checked_at, article_counts)
                for a in new_articles
            }
            ids = self._article_ids(conn, set(links.values()) - set(saved)) | saved
            for entry in new_entries:
                is_new = self._save_entry(conn, update_, entry, ids.get(links.get(entry.key, "")))
                added += is_new
                edited += not is_new
            self._refresh_entry_count(conn, update_.feed_id)
        return FeedCommit(added, edited, *article_counts)

    def _update_feed_state(self, conn: Connection, u: FeedUpdate) -> None:
        values: dict[str, Any] = {
            "last_checked": u.checked_at,
            "next_check": u.next_check,
            "lease_owner": None,
            "lease_expires": None,
        }
        if u.error is None:
            values.update(
                status="ok",
                error_count=0,
                last_error=None,
                error_kind=None,
                etag=u.etag,
                last_modified=u.last_modified,
                body_hash=u.body_hash,
                rate_seconds=u.rate.total_seconds() if u.rate else None,
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
        conn.execute(update(feeds).where(feeds.c.id == u.feed_id).values(**values))

    def _save_entry(
        self, conn: Connection, u: FeedUpdate, entry: Entry, article_id: int | None
    ) -> bool:
        values = {
            "link": entry.link,
            "title": entry.title,
            "summary": entry.summary,
            "published": entry.published,
            "date_suspect": entry.date_suspect,
            "author": entry.author,
            "content_hash": entry_hash(entry),
            "updated_at": u.checked_at,
            "article_id": article_id,
        }
        where = {"b_feed": u.feed_id, "b_key": entry.key}
        if conn.execute(_UPDATE_ENTRY, where | values).rowcount:
            return False
        # A feed whose lease ran out mid-check may be recorded by two workers: the later one wins.
        row = {"feed_id": u.feed_id, "key": entry.key, "first_seen": u.checked_at, **values}
        conn.execute(self._upsert_entry, row)
        return True

    def _refresh_entry_count(self, conn: Connection, feed_id: int) -> None:
        count = select(func.count()).where(entries.c.feed_id == feed_id).scalar_subquery()
        conn.execute(update(feeds).where(feeds.c.id == feed_id).values(entries=count))

    def _article_ids(self, conn: Connection, urls: set[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for chunk in _chunks(sorted(urls)):
            rows = conn.execute(
                select(articles.c.url, articles.c.id).where(articles.c.url.in_(chunk))
            )
            found.update({row.url: row.id for row in rows})
        return found

    def _save_article(
        self,
        conn: Connection,
        article: Article,
        fold: Folder,
        locks: _DedupLocks,
        now: datetime,
        counts: list[int],
    ) -> int:
        """Insert a new article and fold it, or record a changed page as a new version."""
        values = _article_values(article)
        query = _ARTICLE_BY_URL, {"url": article.url}
        row = conn.execute(*query).first()
        if row is None:
            # Nothing back: another feed's transaction, on another worker, saved it first.
            row_values = {"first_seen": now, "updated_at": now, "version": 1, **values}
            inserted = conn.execute(self._insert_article, row_values).scalar()
            if inserted is not None:
                counts[0] += 1
                counts[2] += self._place_in_story(conn, inserted, article, fold, locks, now)
                return int(inserted)
            row = conn.execute(*query).one()
        if row.content_hash != article.content_hash:
            conn.execute(
                update(articles)
                .where(articles.c.id == row.id)
                .values(version=articles.c.version + 1, updated_at=now, **values)
            )
            counts[1] += 1
        return int(row.id)

    def _place_in_story(
        self,
        conn: Connection,
        article_id: int,
        article: Article,
        fold: Folder,
        locks: _DedupLocks,
        now: datetime,
    ) -> int:
        decision = fold(article_id, article, _DedupView(conn, locks))
        story_id, created = decision.story_id, 0
        if story_id is None:
            story_id = _insert(
                conn, stories.insert().values(first_seen=now, updated_at=now, article_count=1)
            )
            created = 1
        else:
            conn.execute(_JOIN_STORY, {"b_id": story_id, "updated_at": now})
        place = {"b_id": article_id, "story_id": story_id, "similarity": decision.similarity}
        conn.execute(_PLACE_ARTICLE, place)
        conn.execute(
            fingerprints.insert(),
            {"article_id": article_id, "data": decision.fingerprint, "seen_at": now},
        )
        if decision.band_keys:
            conn.execute(
                dedup_bands.insert(),
                [
                    {"band_key": k, "article_id": article_id, "seen_at": int(now.timestamp())}
                    for k in decision.band_keys
                ],
            )
        return created

    # -- stories -------------------------------------------------------------------------------

    def stories(self, since: datetime | None, limit: int | None) -> list[Story]:
        query = select(stories.c.id).order_by(stories.c.first_seen.desc(), stories.c.id.desc())
        if since is not None:
            query = query.where(stories.c.updated_at >= since)
        if limit:
            query = query.limit(limit)
        with self._read() as conn:
            ids = list(conn.execute(query).scalars())
            return self._load_stories(conn, ids)

    def story(self, story_id: int) -> Story | None:
        with self._read() as conn:
            found = self._load_stories(conn, [story_id])
        return found[0] if found else None

    def _load_stories(self, conn: Connection, ids: list[int]) -> list[Story]:
        copies: dict[int, list[StoryArticle]] = {i: [] for i in ids}
        heads: dict[int, Any] = {}
        for chunk in _chunks(ids):
            for row in conn.execute(select(stories).where(stories.c.id.in_(chunk))):
                heads[row.id] = row
            feed_url = (
                select(feeds.c.url)
                .join(entries, entries.c.feed_id == feeds.c.id)
                .where(entries.c.article_id == articles.c.id)
                .order_by(entries.c.id)
                .limit(1)
                .scalar_subquery()
            )
            query = (
                select(articles, feed_url.label("feed_url"))
                .where(articles.c.story_id.in_(chunk))
                .order_by(articles.c.first_seen, articles.c.id)
            )
            for row in conn.execute(query):
                copies[row.story_id].append(_story_article(row._mapping))
        result = []
        for story_id in ids:
            if story_id not in heads or not copies[story_id]:
                continue
            first = copies[story_id][0]
            result.append(
                Story(
                    id=story_id,
                    title=first.title,
                    url=first.url,
                    first_seen=heads[story_id].first_seen,
                    articles=tuple(copies[story_id]),
                )
            )
        return result

    def article_text(self, url: str) -> tuple[Article, int | None] | None:
        """A stored article (for `explain`) and its story id."""
        with self._read() as conn:
            row = conn.execute(select(articles).where(articles.c.url == url)).first()
        return None if row is None else (_article(row._mapping), row.story_id)

    # -- dedup maintenance ---------------------------------------------------------------------

    def prune_dedup(self, before: datetime) -> int:
        """Drop LSH band rows older than the window: nothing will be compared with them again."""
        with self._write() as conn:
            return int(
                conn.execute(
                    delete(dedup_bands).where(dedup_bands.c.seen_at < before.timestamp())
                ).rowcount
            )

    def refold(self, since: datetime, fold: Folder) -> int:
        """Fold again every article first seen since `since`, oldest first; returns how many.

        Their stories are emptied and removed, then each article is placed as if it were new, in
        its original order; stories of older articles keep their ids. One transaction: a failed
        refold leaves the stories as they were.
        """
        return self._transaction(lambda conn: self._refold(conn, since, fold))

    def _refold(self, conn: Connection, since: datetime, fold: Folder) -> int:
        rows = conn.execute(
            select(articles)
            .where(articles.c.first_seen >= since)
            # Ids give the order articles were folded in; first_seen is their feed's check time,
            # and a feed checked earlier may commit later.
            .order_by(articles.c.id)
        ).all()
        ids = [row.id for row in rows]
        for chunk in _chunks(ids):
            conn.execute(delete(dedup_bands).where(dedup_bands.c.article_id.in_(chunk)))
            conn.execute(delete(fingerprints).where(fingerprints.c.article_id.in_(chunk)))
            conn.execute(update(articles).where(articles.c.id.in_(chunk)).values(story_id=None))
        self._drop_empty_stories(conn)
        locks = _DedupLocks(conn, enabled=not self.is_sqlite)
        for row in rows:
            article = _article(row._mapping)
            self._place_in_story(conn, row.id, article, fold, locks, row.first_seen)
        self._recount_stories(conn)
        return len(rows)

    def _drop_empty_stories(self, conn: Connection) -> None:
        members = select(articles.c.id).where(articles.c.story_id == stories.c.id).exists()
        conn.execute(delete(stories).where(~members))

    def _recount_stories(self, conn: Connection) -> None:
        count = select(func.count()).where(articles.c.story_id == stories.c.id).scalar_subquery()
        conn.execute(update(stories).values(article_count=count))

    # -- robots.txt ----------------------------------------------------------------------------

    def get_robots(self, host: str) -> tuple[str | None, datetime, int] | None:
        with self._read() as conn:
            row = conn.execute(select(robots).where(robots.c.host == host)).first()
        return None if row is None else (row.body, row.expires, row.status)

    def put_robots(self, host: str, body: str | None, status: int, expires: datetime) -> None:
        values = {"body": body, "status": status, "expires": expires}
        with self._write() as conn:
            answer = self._dialect_insert(robots).values(host=host, **values)
            conn.execute(answer.on_conflict_do_update(index_elements=["host"], set_=values))

    # -- per-host limit shared by workers ------------------------------------------------------

    def acquire_host_slot(self, host: str, owner: str, limit: int, hold: timedelta) -> int | None:
        """One of `limit` request slots for `host`, held until released or `hold` passes.

        None while every slot is taken. On SQLite one run works at a time and its fetcher's own
        per-host limit is the whole story: always slot 0, without touching the database.
        """
        if self.is_sqlite:
            return 0
        with self._write() as conn:
            slot = self._take_slot(conn, host, owner, limit, hold)
            if slot is None and self._add_slots(conn, host, limit):
                slot = self._take_slot(conn, host, owner, limit, hold)
        return slot

    def _take_slot(
        self, conn: Connection, host: str, owner: str, limit: int, hold: timedelta
    ) -> int | None:
        # The database's clock: slots last seconds, and workers on other machines share them.
        now = func.timezone("UTC", func.clock_timestamp())
        free = (
            select(host_slots.c.slot)
            .where(
                host_slots.c.host == host,
                host_slots.c.slot < limit,
                or_(host_slots.c.expires.is_(None), host_slots.c.expires < now),
            )
            .order_by(host_slots.c.slot)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        taken = conn.execute(
            update(host_slots)
            .where(host_slots.c.host == host, host_slots.c.slot == free)
            .values(owner=owner, expires=now + hold)
            .returning(host_slots.c.slot)
        ).scalar()
        return None if taken is None else int(taken)

    def _add_slots(self, conn: Connection, host: str, limit: int) -> bool:
        """Create the host's slot rows up to `limit`; whether any was missing."""
        rows = [{"host": host, "slot": slot} for slot in range(limit)]
        added = conn.execute(self._dialect_insert(host_slots).on_conflict_do_nothing(), rows)
        return bool(added.rowcount)

    def release_host_slot(self, host: str, slot: int, owner: str) -> None:
        if self.is_sqlite:
            return
        with self._write() as conn:
            conn.execute(
                update(host_slots)
                .where(
                    host_slots.c.host == host,
                    host_slots.c.slot == slot,
                    host_slots.c.owner == owner,
                )
                .values(owner=None, expires=None)
            )

    # -- integrity -----------------------------------------------------------------------------

    def check(self) -> list[str]:
        """Problems found in the store (empty when it is sound): file integrity and invariants."""
        problems: list[str] = []
        with self._read() as conn:
            if self.is_sqlite:
                result = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check")]
                if result != ["ok"]:
                    problems += [f"integrity: {line}" for line in result]
                problems += [
                    f"foreign key: {r[0]} row {r[1]} points to a missing {r[2]}"
                    for r in conn.exec_driver_sql("PRAGMA foreign_key_check")
                ]
            version = schema.current_version(conn)
            if version != schema.LATEST:
                problems.append(f"schema version {version}, expected {schema.LATEST}")
            unfolded = conn.execute(
                select(func.count()).where(articles.c.story_id.is_(None))
            ).scalar()
            if unfolded:
                problems.append(f"{unfolded} articles belong to no story")
            members = select(articles.c.id).where(articles.c.story_id == stories.c.id).exists()
            empty = conn.execute(select(func.count()).select_from(stories).where(~members)).scalar()
            if empty:
                problems.append(f"{empty} stories have no article")
        return problems

    # -- runs and stats ------------------------------------------------------------------------

    def record_run(self, worker: str, started: datetime, finished: datetime, report: str) -> None:
        with self._write() as conn:
            conn.execute(
                runs.insert().values(
                    worker=worker, started_at=started, finished_at=finished, report=report
                )
            )
            self._worker_seen(conn, worker, finished, leased=0)

    def stats(self) -> dict[str, Any]:
        with self._read() as conn:

            def count(query: Any) -> int:
                return int(conn.execute(query).scalar() or 0)

            return {
                "feeds": count(select(func.count()).select_from(feeds)),
                "feeds_failing": count(select(func.count()).where(feeds.c.status == "error")),
                "articles": count(select(func.count()).select_from(articles)),
                "stories": count(select(func.count()).select_from(stories)),
                "last_run": conn.execute(select(func.max(runs.c.finished_at))).scalar(),
                "schema_version": schema.current_version(conn),
                "workers": self._recent_workers(conn),
            }

    def _recent_workers(self, conn: Connection) -> list[dict[str, Any]]:
        """Workers seen within WORKERS_RECENT, latest first, with the feeds they lease now."""
        now = _now()
        leased_now = (
            select(func.count())
            .where(feeds.c.lease_owner == workers.c.worker, feeds.c.lease_expires >= now)
            .scalar_subquery()
        )
        finished = (
            select(func.max(runs.c.finished_at))
            .where(runs.c.worker == workers.c.worker)
            .scalar_subquery()
        )
        query = (
            select(workers, leased_now.label("leased_now"), finished.label("finished"))
            .where(workers.c.last_seen >= now - WORKERS_RECENT)
            .order_by(workers.c.last_seen.desc(), workers.c.worker)
        )
        return [dict(row._mapping) for row in conn.execute(query)]


class _DedupLocks:
    """The dedup key buckets one PostgreSQL transaction holds locked (none on SQLite)."""

    def __init__(self, conn: Connection, enabled: bool) -> None:
        self.conn = conn
        self.enabled = enabled
        self.held: set[int] = set()

    def take(self, keys: Iterable[int]) -> None:
        if not self.enabled:
            return
        missing = {key % LOCK_BUCKETS for key in keys} - self.held
        if missing:
            _lock_buckets(self.conn, sorted(missing))
            self.held |= missing

    def take_all_asked(self, fold: Folder, new_articles: Sequence[Article]) -> None:
        """Lock, in one ascending sweep, every key `fold` will ask about for these articles.

        Taking them one article at a time would let two transactions each hold a key the other
        waits for; one global order cannot deadlock.
        """
        if not self.enabled:
            return
        probe = _KeyProbe()
        for article in new_articles:
            fold(0, article, probe)
        self.take(probe.keys)


class _KeyProbe:
    """A DedupIndex that finds nothing and notes the keys a Folder asks about."""

    def __init__(self) -> None:
        self.keys: set[int] = set()

    def story_with_text(self, content_hash: str, exclude_article: int) -> int | None:
        self.keys.add(text_lock_key(content_hash))
        return None

    def candidates(self, band_keys: Sequence[int], since: datetime) -> list[Candidate]:
        self.keys.update(band_keys)
        return []


# Built once: statements run for every new article reuse their compiled form.
_BUCKETS = bindparam("buckets", type_=postgresql.ARRAY(Integer))  # one array, however many
_ADD_BUCKETS = (
    postgresql.insert(dedup_locks)
    .from_select(["bucket"], select(func.unnest(_BUCKETS)))
    .on_conflict_do_nothing()
)
_LOCK_BUCKETS = (
    select(dedup_locks.c.bucket)
    .where(dedup_locks.c.bucket == any_(_BUCKETS))
    .order_by(dedup_locks.c.bucket)
    .with_for_update()
)
_UPDATE_ENTRY = update(entries).where(
    entries.c.feed_id == bindparam("b_feed"), entries.c.key == bindparam("b_key")
)
_ARTICLE_BY_URL = select(articles.c.id, articles.c.content_hash).where(
    articles.c.url == bindparam("url")
)
_JOIN_STORY = (
    update(stories)
    .where(stories.c.id == bindparam("b_id"))
    .values(article_count=stories.c.article_count + 1)
)
_PLACE_ARTICLE = update(articles).where(articles.c.id == bindparam("b_id"))
_ENTRY_VALUES = (
    "link",
    "title",
    "summary",
    "published",
    "date_suspect",
    "author",
    "content_hash",
    "updated_at",
    "article_id",
)
_STORY_WITH_TEXT = (
    select(articles.c.story_id)
    .where(
        articles.c.content_hash == bindparam("content_hash"),
        articles.c.id != bindparam("exclude"),
        articles.c.story_id.is_not(None),
    )
    .order_by(articles.c.id)
    .limit(1)
)
# By key alone: rows past the window are pruned anyway, and a condition on seen_at would let
# the planner of a store without statistics walk the seen_at index, every row, per article.
_BAND_MATCHES = (
    select(dedup_bands.c.article_id)
    .where(dedup_bands.c.band_key.in_(bindparam("keys", expanding=True)))
    .distinct()
)
_CANDIDATES = (
    select(articles.c.id, articles.c.story_id, fingerprints.c.data, fingerprints.c.seen_at)
    .join(fingerprints, fingerprints.c.article_id == articles.c.id)
    .where(articles.c.id.in_(_BAND_MATCHES), articles.c.story_id.is_not(None))
)


class _DedupView:
    """The dedup questions, answered inside the article's own transaction.

    On PostgreSQL each question first locks its keys (a no-op when record_feed locked them all
    up front), so a copy being saved by another worker is waited for, then seen.
    """

    def __init__(self, conn: Connection, locks: _DedupLocks) -> None:
        self.conn = conn
        self.locks = locks

    def story_with_text(self, content_hash: str, exclude_article: int) -> int | None:
        self.locks.take([text_lock_key(content_hash)])
        params = {"content_hash": content_hash, "exclude": exclude_article}
        value = self.conn.execute(_STORY_WITH_TEXT, params).scalar()
        return None if value is None else int(value)

    def candidates(self, band_keys: Sequence[int], since: datetime) -> list[Candidate]:
        if not band_keys:
            return []
        # Copies of one story share band keys: locking the keys serialises exactly the workers
        # that could otherwise each open a story for the same text.
        self.locks.take(band_keys)
        rows = self.conn.execute(_CANDIDATES, {"keys": list(band_keys)})
        return [
            Candidate(row.id, row.story_id, row.data, row.seen_at)
            for row in rows
            if row.seen_at >= since
        ]


def text_lock_key(content_hash: str) -> int:
    """The dedup lock key of an exact text (a signed 64-bit number, like the LSH band keys)."""
    return int.from_bytes(hashlib.sha256(content_hash.encode()).digest()[:8], "big", signed=True)


def _lock_buckets(conn: Connection, buckets: Sequence[int]) -> None:
    """Lock the rows of `buckets` (ascending) until the transaction ends; create missing ones.

    A bucket another transaction is creating or holds makes this one wait for its commit.
    """
    conn.execute(_ADD_BUCKETS, {"buckets": list(buckets)})
    conn.execute(_LOCK_BUCKETS, {"buckets": list(buckets)}).all()


def _retryable(exc: BaseException | None) -> bool:
    """Whether PostgreSQL aborted the transaction only so that another one could go on."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in RETRY_SQLSTATES


def _make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        if url.startswith("sqlite:///"):
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
            _configure_sqlite(engine)
            return engine
        if url.startswith("postgresql+psycopg://"):
            # No server-side prepared statements: a plan cached while the tables were small (a new
            # store has no statistics yet) would scan them whole once they have grown.
            return create_engine(url, pool_pre_ping=True, connect_args={"prepare_threshold": None})
    except (SQLAlchemyError, DBAPIError, OSError, ImportError) as exc:
        raise StoreError(f"cannot open the store {url}: {_first_line(exc)}") from exc
    raise StoreError(f"unsupported --db URL {url!r}: use sqlite:///PATH or postgresql://…")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _feed_state(row: Any) -> FeedState:
    interval = row["interval_seconds"]
    return FeedState(
        id=row["id"],
        url=row["url"],
        name=row["name"],
        status=row["status"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        body_hash=row["body_hash"],
        error_count=row["error_count"],
        last_error=row["last_error"],
        error_kind=row["error_kind"],
        last_checked=row["last_checked"],
        next_check=row["next_check"],
        interval=timedelta(seconds=interval) if interval else None,
        rate=timedelta(seconds=row["rate_seconds"]) if row["rate_seconds"] else None,
        entries=row["entries"],
    )


def _article_values(article: Article) -> dict[str, Any]:
    return {
        "url": article.url,
        "title": article.title,
        "text": article.text,
        "text_source": article.text_source,
        "text_chars": len(article.text),
        "content_hash": article.content_hash,
        "published": article.published,
        "author": article.author,
        "site_name": article.site_name,
        "language": article.language,
        "page_error": article.page_error,
    }


def _article(row: Any) -> Article:
    return Article(
        url=row["url"],
        feed_id=0,
        entry_key="",
        title=row["title"],
        text=row["text"],
        text_source=row["text_source"],
        published=row["published"],
        author=row["author"],
        site_name=row["site_name"],
        language=row["language"],
        page_error=row["page_error"],
        content_hash=row["content_hash"],
    )


def _story_article(row: Any) -> StoryArticle:
    return StoryArticle(
        article_id=row["id"],
        url=row["url"],
        feed_url=row["feed_url"],
        title=row["title"],
        site=row["site_name"],
        published=row["published"],
        text_chars=row["text_chars"],
        similarity=row["similarity"] if row["similarity"] is not None else 1.0,
        summary=row["text"][:300] or None,
    )


def _insert(conn: Connection, statement: Insert) -> int:
    """Run an INSERT and return the new row's id."""
    key = conn.execute(statement).inserted_primary_key
    assert key is not None
    return int(key[0])


def _chunks(items: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _first_line(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


def _now() -> datetime:
    return datetime.now(UTC)
