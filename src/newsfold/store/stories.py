"""Stories, and the dedup rows that fold articles into them: fingerprints, LSH bands, locks.

On PostgreSQL a feed's transaction first locks every key its articles' dedup will look up (LSH
band keys and exact-text keys), in one statement, in ascending order: two transactions holding
copies of one story run their dedup one after the other and the second sees the first's story;
the one global order means these locks never deadlock. The locks are row locks on `dedup_locks`,
one row per key bucket (2^20 of them), not advisory locks: a feed of 300 new articles needs some
17,000, and advisory locks live in a shared table of max_locks_per_transaction * max_connections
entries (6,400 by default), where row locks cost nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Integer, any_, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql

from newsfold.model import Article, Story, StoryArticle
from newsfold.store import Candidate, Folder, rows
from newsfold.store.base import SqlBase, chunks, insert_id
from newsfold.store.schema import (
    articles,
    dedup_bands,
    dedup_locks,
    entries,
    feeds,
    fingerprints,
    stories,
)

LOCK_BUCKETS = 1 << 20  # dedup keys share a lock row only by chance: 58 keys an article


class StoriesSql(SqlBase):
    def stories(self, since: datetime | None, limit: int | None) -> list[Story]:
        query = select(stories.c.id).order_by(stories.c.first_seen.desc(), stories.c.id.desc())
        if since is not None:
            query = query.where(stories.c.updated_at >= since)
        if limit:
            query = query.limit(limit)
        with self._read() as conn:
            ids = list(conn.execute(query).scalars())
            return _load_stories(conn, ids)

    def story(self, story_id: int) -> Story | None:
        found = self.stories_by_id([story_id])
        return found[0] if found else None

    def stories_by_id(self, ids: Sequence[int]) -> list[Story]:
        """The stories with these ids that exist, in the order given."""
        with self._read() as conn:
            return _load_stories(conn, list(ids))

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
        found = conn.execute(
            select(articles)
            .where(articles.c.first_seen >= since)
            # Ids give the order articles were folded in; first_seen is their feed's check time,
            # and a feed checked earlier may commit later.
            .order_by(articles.c.id)
        ).all()
        ids = [row.id for row in found]
        for chunk in chunks(ids):
            conn.execute(delete(dedup_bands).where(dedup_bands.c.article_id.in_(chunk)))
            conn.execute(delete(fingerprints).where(fingerprints.c.article_id.in_(chunk)))
            conn.execute(update(articles).where(articles.c.id.in_(chunk)).values(story_id=None))
        _drop_empty_stories(conn)
        locks = DedupLocks(conn, enabled=not self.is_sqlite)
        for row in found:
            article = rows.article(row._mapping)
            place_in_story(conn, row.id, article, fold, locks, row.first_seen)
        _recount_stories(conn)
        return len(found)


def place_in_story(
    conn: Connection,
    article_id: int,
    article: Article,
    fold: Folder,
    locks: DedupLocks,
    now: datetime,
) -> int:
    """Fold a saved article into its story and keep its dedup rows; 1 if it opened a story."""
    decision = fold(article_id, article, _DedupView(conn, locks))
    story_id, created = decision.story_id, 0
    if story_id is None:
        story_id = insert_id(
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


def _load_stories(conn: Connection, ids: list[int]) -> list[Story]:
    copies: dict[int, list[StoryArticle]] = {i: [] for i in ids}
    heads: dict[int, Any] = {}
    for chunk in chunks(ids):
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
            copies[row.story_id].append(rows.story_article(row._mapping))
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


def _drop_empty_stories(conn: Connection) -> None:
    members = select(articles.c.id).where(articles.c.story_id == stories.c.id).exists()
    conn.execute(delete(stories).where(~members))


def _recount_stories(conn: Connection) -> None:
    count = select(func.count()).where(articles.c.story_id == stories.c.id).scalar_subquery()
    conn.execute(update(stories).values(article_count=count))


class DedupLocks:
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
_JOIN_STORY = (
    update(stories)
    .where(stories.c.id == bindparam("b_id"))
    .values(article_count=stories.c.article_count + 1)
)
_PLACE_ARTICLE = update(articles).where(articles.c.id == bindparam("b_id"))
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

    def __init__(self, conn: Connection, locks: DedupLocks) -> None:
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
        found = self.conn.execute(_CANDIDATES, {"keys": list(band_keys)})
        return [
            Candidate(row.id, row.story_id, row.data, row.seen_at)
            for row in found
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
