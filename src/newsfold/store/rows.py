"""Table rows to the model's dataclasses and back."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from newsfold.model import Article, FeedState, StoryArticle


def feed_state(row: Any) -> FeedState:
    interval = row["interval_seconds"]
    return FeedState(
        id=row["id"],
        url=row["url"],
        name=row["name"],
        status=row["status"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        body_hash=row["body_hash"],
        body_error=row["body_error"],
        error_count=row["error_count"],
        last_error=row["last_error"],
        error_kind=row["error_kind"],
        last_checked=row["last_checked"],
        next_check=row["next_check"],
        interval=timedelta(seconds=interval) if interval else None,
        rate=timedelta(seconds=row["rate_seconds"]) if row["rate_seconds"] else None,
        entries=row["entries"],
        page_failures=json.loads(row["page_failures"] or "{}"),
        pending=frozenset(json.loads(row["pending_entries"] or "[]")),
    )


def article_values(article: Article, text_hash: str) -> dict[str, Any]:
    return {
        "url": article.url,
        "title": article.title,
        "text": article.text,
        "text_source": article.text_source,
        "text_chars": len(article.text),
        "content_hash": text_hash,
        "published": article.published,
        "author": article.author,
        "site_name": article.site_name,
        "language": article.language,
        "page_error": article.page_error,
    }


def article(row: Any) -> Article:
    return Article(
        url=row["url"],
        feed_id=0,
        title=row["title"],
        text=row["text"],
        text_source=row["text_source"],
        published=row["published"],
        author=row["author"],
        site_name=row["site_name"],
        language=row["language"],
        page_error=row["page_error"],
    )


def story_article(row: Any) -> StoryArticle:
    return StoryArticle(
        article_id=row["id"],
        url=row["url"],
        feed_url=row["feed_url"],
        title=row["title"],
        site=row["site_name"],
        published=row["published"],
        text_chars=row["text_chars"],
        similarity=row["similarity"] if row["similarity"] is not None else 1.0,
        text=row["text"],
        author=row["author"],
        language=row["language"],
        page_error=row["page_error"],
    )
