"""The store: the narrow interface the stages and the CLI talk to, and `open_store` to get one.

Each client depends on the small protocol of the part it uses (`FeedQueue` for a run's feeds,
`robots.RobotsStore`, `hostslots.SlotStore`, ...); `Store` is all of them. One implementation
(`sql.SqlStore`, SQLAlchemy Core, one module per table and job) serves SQLite and PostgreSQL; the
few places where the two differ (run lock, write transactions, upserts, dedup locks, the per-host
limit shared by workers) are chosen by dialect inside it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from newsfold.fold import FoldPlan, FoldRules
from newsfold.hostslots import SlotStore
from newsfold.model import Article, Entry, FeedSource, FeedState, Story
from newsfold.robots import RobotsStore

if TYPE_CHECKING:
    from newsfold.query import Query

# (done, total): how far a migration that rewrites stored rows has come, for a progress bar.
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class FeedUpdate:
    """A feed's new state after one check; `error` set when the check failed."""

    feed_id: int
    checked_at: datetime
    next_check: datetime
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    # Set with `error` when this check's body is not a feed: its validators and hash are kept
    # with the cause, so the same body answers with the same error and no parse.
    body_error: str | None = None
    rate: timedelta | None = None
    title: str | None = None  # the feed's own title: its name until the user gives one
    error: str | None = None
    error_kind: str | None = None
    # Article pages of this check that kept the feed's text, by reason ("dns": 3).
    page_failures: Mapping[str, int] = field(default_factory=dict)
    # Entries taken but not finished, for the next run to take first; None leaves them as
    # they are (a failed or unchanged check).
    pending: Sequence[str] | None = None
    # More slices of this check follow: the run keeps its lease on the feed until the last.
    leased_on: bool = False


@dataclass(frozen=True, slots=True)
class PlannedArticle:
    """An article to save, with the plan dedup made for it before the transaction."""

    article: Article
    plan: FoldPlan


@dataclass(frozen=True, slots=True)
class FeedCommit:
    """What one feed's transaction added."""

    entries_new: int = 0
    entries_updated: int = 0
    articles_new: int = 0
    articles_updated: int = 0
    stories_new: int = 0  # how many more stories the store holds: opened less merged
    stories_merged: int = 0


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A story that matches a search, with its best-matching copy's text for the snippet."""

    story_id: int
    score: float  # higher is better; comparable within one query and one store only
    article_id: int
    title: str | None
    text: str


class FeedList(Protocol):
    """The feeds the user follows (the CLI's `feeds` commands and the config sync)."""

    def sync_feeds(self, sources: Sequence[FeedSource], now: datetime) -> int: ...

    def add_feed(self, source: FeedSource, now: datetime) -> bool: ...

    def remove_feed(self, url: str) -> bool: ...

    def feeds(self) -> list[FeedState]: ...


class FeedQueue(Protocol):
    """A run's side of the store, feed by feed: lease, compare, record."""

    def lease_due_feeds(
        self, now: datetime, *, include_all: bool, worker: str, lease: timedelta
    ) -> Iterator[FeedState]: ...

    def count_due_feeds(self, now: datetime, *, include_all: bool) -> int: ...

    def release_leases(self, worker: str | None) -> None: ...

    def entry_hashes(self, feed_id: int, keys: Sequence[str]) -> dict[str, str]: ...

    def known_article_urls(self, urls: Sequence[str]) -> set[str]: ...

    def record_feed(
        self,
        update: FeedUpdate,
        entries: Sequence[Entry],
        articles: Sequence[PlannedArticle],
        links: dict[str, str],
        rules: FoldRules,
    ) -> FeedCommit: ...


class RunRecords(Protocol):
    """What a run leaves behind once its feeds are done."""

    def prune_dedup(self, before: datetime) -> int: ...

    def record_run(
        self, worker: str, started: datetime, finished: datetime, report: str
    ) -> None: ...


class StoryReader(Protocol):
    """Stories and articles read back for the outputs and `explain`."""

    def stories(self, since: datetime | None, limit: int | None) -> list[Story]: ...

    def story(self, story_id: int) -> Story | None: ...

    def stories_by_id(self, ids: Sequence[int]) -> list[Story]: ...

    def article_text(self, url: str) -> tuple[Article, int | None] | None: ...


class StorySearch(Protocol):
    """What `newsfold search` asks the store: each matching story once, best first."""

    def search_stories(
        self, query: Query, since: datetime | None, limit: int
    ) -> list[SearchHit]: ...


class Refolder(Protocol):
    """`refold`: the articles' texts, then their stories made again from their new plans."""

    def texts_since(self, since: datetime) -> list[tuple[int, str]]: ...

    def refold(self, plans: dict[int, FoldPlan], rules: FoldRules) -> int: ...


class Admin(Protocol):
    """The store's life and health."""

    url: str

    def migrate(self, progress: Progress = ...) -> int: ...

    def close(self) -> None: ...

    def stats(self) -> dict[str, Any]: ...

    def check(self) -> list[str]: ...


class Store(
    FeedList,
    FeedQueue,
    RunRecords,
    StoryReader,
    StorySearch,
    Refolder,
    Admin,
    RobotsStore,
    SlotStore,
    Protocol,
):
    """All of it: what `open_store` returns. Each client asks only for the part it uses."""


def open_store(url: str, *, create: bool = True) -> Store:
    """The store at `url`; with `create` False, a StoreMissing (and nothing made) if none is."""
    from newsfold.store.sql import SqlStore

    return SqlStore(url, create=create)
