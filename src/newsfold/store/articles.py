"""Articles, and the one transaction that records a feed's check with its entries and articles."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, select, update

from newsfold.fold import FoldRules
from newsfold.model import Article, Entry
from newsfold.store import FeedCommit, FeedUpdate, PlannedArticle, rows
from newsfold.store.base import SqlBase, chunks, dialect_insert
from newsfold.store.feeds import refresh_entry_count, save_entries, update_feed_state
from newsfold.store.schema import articles
from newsfold.store.stories import ToFold, fold_articles, lock_keys


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
    saved = _save_articles(conn, new_articles, now)
    pairs = list(zip(new_articles, saved, strict=True))
    by_url = {new.article.url: article_id for new, (article_id, _) in pairs}
    opened, merged = fold_articles(
        conn,
        [ToFold(i, new.plan, now) for new, (i, outcome) in pairs if outcome is Saved.NEW],
        rules,
    )
    linked = _stored(conn, sorted(set(links.values()) - set(by_url)))
    ids = {url: article_id for url, (article_id, _) in linked.items()} | by_url
    found = [(e, ids.get(links.get(e.key, ""))) for e in new_entries]
    created = save_entries(conn, update_, found)
    if created:  # only new rows change the count: a feed unchanged since is not counted again
        refresh_entry_count(conn, update_.feed_id)
    outcomes = [outcome for _, outcome in saved]
    return FeedCommit(
        entries_new=created,
        entries_updated=len(new_entries) - created,
        articles_new=outcomes.count(Saved.NEW),
        articles_updated=outcomes.count(Saved.EDITED),
        stories_new=opened - merged,
        stories_merged=merged,
    )


def _save_articles(
    conn: Connection, new_articles: Sequence[PlannedArticle], now: datetime
) -> list[tuple[int, Saved]]:
    """Save a feed's articles, each with its id and what was done: the new ones inserted in
    one statement, a changed page recorded as a new version of the stored one."""
    stored = _stored(conn, [new.article.url for new in new_articles])
    fresh = {
        new.article.url: {
            "first_seen": now,
            "updated_at": now,
            "version": 1,
            **rows.article_values(new.article, new.plan.text_hash),
        }
        for new in new_articles
        if new.article.url not in stored
    }
    made: dict[str, int] = {}
    if fresh:
        inserted = conn.execute(_insert_article(conn.dialect.name), list(fresh.values()))
        made = {row.url: row.id for row in inserted}
        # Not inserted: another feed's transaction, on another worker, saved it first.
        stored |= _stored(conn, [url for url in fresh if url not in made])
    saved = []
    for new in new_articles:
        url = new.article.url
        if url in made:  # a URL twice in the feed is new once, then the same page again
            saved.append((made[url], Saved.NEW))
            stored[url] = (made.pop(url), new.plan.text_hash)
        else:
            saved.append(_save_version(conn, new, stored, now))
    return saved


def _stored(conn: Connection, urls: Sequence[str]) -> dict[str, tuple[int, str]]:
    """The id and text hash of the stored articles at these URLs."""
    found: dict[str, tuple[int, str]] = {}
    for chunk in chunks(sorted(set(urls))):
        query = select(articles.c.url, articles.c.id, articles.c.content_hash)
        for row in conn.execute(query.where(articles.c.url.in_(chunk))):
            found[row.url] = (row.id, row.content_hash)
    return found


def _save_version(
    conn: Connection, new: PlannedArticle, stored: dict[str, tuple[int, str]], now: datetime
) -> tuple[int, Saved]:
    """A stored page again: the same text, or a new version of it."""
    article_id, text_hash = stored[new.article.url]
    if text_hash == new.plan.text_hash:
        return article_id, Saved.SAME
    values = rows.article_values(new.article, new.plan.text_hash)
    conn.execute(
        update(articles)
        .where(articles.c.id == article_id)
        .values(version=articles.c.version + 1, updated_at=now, **values)
    )
    stored[new.article.url] = (article_id, new.plan.text_hash)
    return article_id, Saved.EDITED


@cache
def _insert_article(dialect: str) -> Any:
    insert = dialect_insert(dialect, articles)
    return insert.on_conflict_do_nothing(index_elements=["url"]).returning(
        articles.c.url, articles.c.id
    )
