"""Articles, and the one transaction that records a feed's check with its entries and articles."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from newsfold.model import Article, Entry
from newsfold.store import FeedCommit, FeedUpdate, Folder, rows
from newsfold.store.base import SqlBase, chunks, dialect_insert
from newsfold.store.feeds import refresh_entry_count, save_entry, update_feed_state
from newsfold.store.schema import articles
from newsfold.store.stories import DedupLocks, place_in_story


class ArticlesSql(SqlBase):
    def known_article_urls(self, urls: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with self._read() as conn:
            for chunk in chunks(urls):
                found.update(
                    conn.execute(select(articles.c.url).where(articles.c.url.in_(chunk))).scalars()
                )
        return found

    def article_text(self, url: str) -> tuple[Article, int | None] | None:
        """A stored article (for `explain`) and its story id."""
        with self._read() as conn:
            row = conn.execute(select(articles).where(articles.c.url == url)).first()
        return None if row is None else (rows.article(row._mapping), row.story_id)

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
        update_feed_state(conn, update_)
        added, edited, article_counts = 0, 0, [0, 0, 0]
        if update_.error is None:
            locks = DedupLocks(conn, enabled=not self.is_sqlite)
            locks.take_all_asked(fold, new_articles)
            saved = {
                a.url: _save_article(conn, a, fold, locks, update_.checked_at, article_counts)
                for a in new_articles
            }
            ids = _article_ids(conn, set(links.values()) - set(saved)) | saved
            for entry in new_entries:
                is_new = save_entry(conn, update_, entry, ids.get(links.get(entry.key, "")))
                added += is_new
                edited += not is_new
            refresh_entry_count(conn, update_.feed_id)
        return FeedCommit(added, edited, *article_counts)


def _article_ids(conn: Connection, urls: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in chunks(sorted(urls)):
        found_rows = conn.execute(
            select(articles.c.url, articles.c.id).where(articles.c.url.in_(chunk))
        )
        found.update({row.url: row.id for row in found_rows})
    return found


def _save_article(
    conn: Connection,
    article: Article,
    fold: Folder,
    locks: DedupLocks,
    now: datetime,
    counts: list[int],
) -> int:
    """Insert a new article and fold it, or record a changed page as a new version."""
    values = rows.article_values(article)
    query = _ARTICLE_BY_URL, {"url": article.url}
    row = conn.execute(*query).first()
    if row is None:
        # Nothing back: another feed's transaction, on another worker, saved it first.
        row_values = {"first_seen": now, "updated_at": now, "version": 1, **values}
        inserted = conn.execute(_insert_article(conn.dialect.name), row_values).scalar()
        if inserted is not None:
            counts[0] += 1
            counts[2] += place_in_story(conn, inserted, article, fold, locks, now)
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


_ARTICLE_BY_URL = select(articles.c.id, articles.c.content_hash).where(
    articles.c.url == bindparam("url")
)


@cache
def _insert_article(dialect: str) -> Any:
    insert = dialect_insert(dialect, articles)
    return insert.on_conflict_do_nothing(index_elements=["url"]).returning(articles.c.id)
