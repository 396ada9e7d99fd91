"""Articles, and the one transaction that records a feed's check with its entries and articles."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from newsfold.fold import FoldPlan, FoldRules
from newsfold.model import Article, Entry
from newsfold.store import FeedCommit, FeedUpdate, PlannedArticle, rows
from newsfold.store.base import SqlBase, chunks, dialect_insert
from newsfold.store.feeds import refresh_entry_count, save_entry, update_feed_state
from newsfold.store.schema import articles
from newsfold.store.stories import fold_article, lock_keys


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
        new_articles: Sequence[PlannedArticle],
        links: dict[str, str],
        rules: FoldRules,
    ) -> FeedCommit:
        """One feed's whole result in one transaction: a crash loses this feed's work or none."""
        return self._transaction(
            lambda conn: _record_feed(conn, update_, new_entries, new_articles, links, rules)
        )


class Saved(enum.Enum):
    NEW = "new"
    EDITED = "edited"  # a new version of a stored page
    SAME = "same"


def _record_feed(
    conn: Connection,
    update_: FeedUpdate,
    new_entries: Sequence[Entry],
    new_articles: Sequence[PlannedArticle],
    links: dict[str, str],
    rules: FoldRules,
) -> FeedCommit:
    update_feed_state(conn, update_)
    if update_.error is not None:
        return FeedCommit()
    lock_keys(conn, [key for a in new_articles for key in a.plan.lock_keys])
    now = update_.checked_at
    saved: dict[str, int] = {}
    outcomes: list[Saved] = []
    opened = merged = 0
    for new in new_articles:
        article_id, outcome = _save_article(conn, new.article, new.plan, now)
        if outcome is Saved.NEW:
            folded = fold_article(conn, article_id, new.plan, rules, now)
            opened += folded.opened
            merged += folded.merged
        saved[new.article.url] = article_id
        outcomes.append(outcome)
    ids = _article_ids(conn, set(links.values()) - set(saved)) | saved
    created = [save_entry(conn, update_, e, ids.get(links.get(e.key, ""))) for e in new_entries]
    refresh_entry_count(conn, update_.feed_id)
    return FeedCommit(
        entries_new=sum(created),
        entries_updated=len(created) - sum(created),
        articles_new=outcomes.count(Saved.NEW),
        articles_updated=outcomes.count(Saved.EDITED),
        stories_new=opened - merged,
        stories_merged=merged,
    )


def _article_ids(conn: Connection, urls: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in chunks(sorted(urls)):
        found_rows = conn.execute(
            select(articles.c.url, articles.c.id).where(articles.c.url.in_(chunk))
        )
        found.update({row.url: row.id for row in found_rows})
    return found


def _save_article(
    conn: Connection, article: Article, plan: FoldPlan, now: datetime
) -> tuple[int, Saved]:
    """Insert a new article, or record a changed page as a new version; its id, what was done."""
    values = rows.article_values(article, plan.text_hash)
    query = _ARTICLE_BY_URL, {"url": article.url}
    row = conn.execute(*query).first()
    if row is None:
        # Nothing back: another feed's transaction, on another worker, saved it first.
        row_values = {"first_seen": now, "updated_at": now, "version": 1, **values}
        inserted = conn.execute(_insert_article(conn.dialect.name), row_values).scalar()
        if inserted is not None:
            return int(inserted), Saved.NEW
        row = conn.execute(*query).one()
    if row.content_hash == plan.text_hash:
        return int(row.id), Saved.SAME
    conn.execute(
        update(articles)
        .where(articles.c.id == row.id)
        .values(version=articles.c.version + 1, updated_at=now, **values)
    )
    return int(row.id), Saved.EDITED


_ARTICLE_BY_URL = select(articles.c.id, articles.c.content_hash).where(
    articles.c.url == bindparam("url")
)


@cache
def _insert_article(dialect: str) -> Any:
    insert = dialect_insert(dialect, articles)
    return insert.on_conflict_do_nothing(index_elements=["url"]).returning(articles.c.id)
