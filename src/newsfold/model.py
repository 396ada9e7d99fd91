"""The plain data that flows between stages: frozen, no I/O, no config, no clock."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# Longer than any news article (the longest run to ~120,000): a hostile page or feed item of
# megabytes of text is cut here, so its fingerprint (~150 bytes of memory per character) and its
# row stay bounded. Entry.summary and Article.text are never longer.
MAX_TEXT_CHARS = 200_000


@dataclass(frozen=True, slots=True)
class FeedSource:
    """A feed as the user lists it."""

    url: str
    name: str | None = None
    interval: timedelta | None = None


@dataclass(frozen=True, slots=True)
class FeedState:
    """A feed as the store knows it: what the scheduler and the fetcher need."""

    id: int
    url: str
    name: str | None
    status: str  # "new" | "ok" | "error"
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    body_error: str | None = None  # why the body at body_hash is not a feed, if it is not
    error_count: int = 0
    last_error: str | None = None
    error_kind: str | None = None
    last_checked: datetime | None = None
    next_check: datetime | None = None
    interval: timedelta | None = None  # fixed by the user
    rate: timedelta | None = None  # learnt from the feed's publishing rate
    entries: int = 0
    # Article pages of the last check that kept the feed's text instead, by reason ("dns": 3).
    page_failures: dict[str, int] = field(default_factory=dict)
    # Keys of entries a run took but did not finish (--max-time): the next run takes them first.
    pending: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class FetchResult:
    """One HTTP answer, after redirects. `body` is None for a 304 Not Modified."""

    url: str  # the URL asked for
    final_url: str  # the URL that answered, after redirects
    status: int
    body: bytes | None
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    max_age: float | None = None  # seconds, from Cache-Control or Expires

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True, slots=True)
class Entry:
    """One item of a feed. `key` is its identity: GUID, else the canonical link."""

    key: str
    link: str | None  # canonical (newsfold.urls.canonicalize_url); None when it has none
    title: str | None
    summary: str | None  # plain text of the feed's summary or content, the longer one
    published: datetime | None  # UTC
    date_suspect: bool = False  # a date far in the past or the future, kept but flagged
    author: str | None = None

    @property
    def content_hash(self) -> str:
        """What a publisher may edit: a change here updates the stored entry."""
        text = "\x1f".join([self.title or "", self.summary or "", self.link or ""])
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A feed body read into entries."""

    title: str | None
    link: str | None
    entries: tuple[Entry, ...]
    ttl: timedelta | None = None  # RSS <ttl> or sy:updatePeriod


@dataclass(frozen=True, slots=True)
class Extracted:
    """What extraction found on an article page."""

    text: str
    title: str | None = None
    author: str | None = None
    published: datetime | None = None
    site_name: str | None = None
    language: str | None = None
    canonical_url: str | None = None


@dataclass(frozen=True, slots=True)
class Article:
    """One article ready to be stored: the page's text, or the feed's when the page failed."""

    url: str  # canonical URL: the article's identity
    feed_id: int
    title: str | None
    text: str
    text_source: str  # "page" | "feed"
    published: datetime | None
    author: str | None = None
    site_name: str | None = None
    language: str | None = None
    page_error: str | None = None  # why the page's text was not used


@dataclass(frozen=True, slots=True)
class StoryArticle:
    """One copy inside a story."""

    article_id: int
    url: str
    feed_url: str | None
    title: str | None
    site: str | None
    published: datetime | None
    text_chars: int
    similarity: float  # to the story's member it matched when it joined (1.0: it opened it)
    text: str = ""  # the extracted main text (the feed's when the page gave none)
    author: str | None = None
    language: str | None = None  # primary language subtag: "en", "de"
    page_error: str | None = None  # why the page's text was not used, if it was not


@dataclass(frozen=True, slots=True)
class Story:
    """Syndicated copies of one story, folded together; the canonical copy first."""

    id: int
    title: str | None
    url: str
    first_seen: datetime
    articles: tuple[StoryArticle, ...] = field(default_factory=tuple)
    merged_ids: tuple[int, ...] = ()  # stories found later to be this one, merged into it

    @property
    def published(self) -> datetime | None:
        """When its earliest copy says it was published; None when no copy says."""
        return min((copy.published for copy in self.articles if copy.published), default=None)


@dataclass(slots=True)
class RunReport:
    """What one run did; counted as it goes, printed and exported at its end."""

    feeds_ok: int = 0
    feeds_not_modified: int = 0
    feeds_failed: int = 0
    failures_by_kind: dict[str, int] = field(default_factory=dict)
    entries_new: int = 0
    entries_deferred: int = 0  # new entries past fetch.max_new_per_feed, left for the next run
    articles_new: int = 0
    articles_from_feed_text: int = 0
    stories_new: int = 0  # opened less merged: how many more stories the store holds
    stories_merged: int = 0  # found to be one with another story and merged into it
    pages_skipped: dict[str, int] = field(default_factory=dict)
    stopped_early: bool = False
    seconds: float = 0.0

    def count_failure(self, kind: str) -> None:
        self.failures_by_kind[kind] = self.failures_by_kind.get(kind, 0) + 1
