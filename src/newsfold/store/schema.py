"""Tables and numbered migrations, one list for every SQL dialect.

A migration is a function of a connection; `migrate` runs the ones past the stored version, each in
its own transaction, and records the version. Never edit a released migration: append a new one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Dialect

from newsfold.errors import StoreError
from newsfold.store import Progress
from newsfold.store.search import add_search_pairs, create_search_index


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, hands back aware UTC datetimes, on every dialect alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


# A migration: a function of a connection and of a progress callback (most ignore it).
Migration = Callable[[Connection, Progress], None]

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", UTCDateTime, nullable=False),
)

feeds = Table(
    "feeds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", Text, nullable=False, unique=True),
    Column("name", Text),
    Column("status", String(8), nullable=False, default="new"),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("body_hash", String(64)),
    # Why the body at body_hash is not a feed, when it is not: the same body again is the same
    # fault, told without parsing it again.
    Column("body_error", Text),
    Column("error_count", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("error_kind", String(32)),
    Column("last_checked", UTCDateTime),
    Column("next_check", UTCDateTime),
    Column("interval_seconds", Float),  # the user's fixed interval, if any
    Column("rate_seconds", Float),  # the interval learnt from the feed's publishing rate
    Column("entries", Integer, nullable=False, default=0),
    Column("added_at", UTCDateTime, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_expires", UTCDateTime),
    # JSON {"reason": count}: article pages of the last check that kept the feed's text.
    Column("page_failures", Text),
    # JSON [entry key, ...]: entries a run took but did not finish, taken first by the next.
    Column("pending_entries", Text),
    Index("ix_feeds_next_check", "next_check"),
)

stories = Table(
    "stories",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("article_count", Integer, nullable=False, default=1),
    # Merged into another story: no articles left, its id leads to the surviving story.
    Column("merged_into", Integer),
    # The connected group of stories whose articles fold with each other's (None: its own id).
    Column("component", Integer),
    Index("ix_stories_updated_at", "updated_at"),
    Index("ix_stories_first_seen", "first_seen"),
    Index("ix_stories_component", "component"),
    # The few merged stories, found by the story they lead to whenever a story is read.
    Index(
        "ix_stories_merged_into",
        "merged_into",
        sqlite_where=text("merged_into IS NOT NULL"),
        postgresql_where=text("merged_into IS NOT NULL"),
    ),
)

articles = Table(
    "articles",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", Text, nullable=False, unique=True),
    Column("title", Text),
    Column("text", Text, nullable=False),
    Column("text_source", String(8), nullable=False),
    Column("text_chars", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("published", UTCDateTime),
    Column("author", Text),
    Column("site_name", Text),
    Column("language", String(16)),
    Column("page_error", Text),
    Column("version", Integer, nullable=False, default=1),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("story_id", Integer, ForeignKey("stories.id")),
    Column("similarity", Float),
    Index("ix_articles_story_id", "story_id"),
    # The exact-text lookup wants the first article with a hash: (hash, id) serves both at once,
    # where an index on the hash alone lets the planner walk the primary key instead.
    Index("ix_articles_text_first", "content_hash", "id"),
    Index("ix_articles_first_seen", "first_seen"),
)

entries = Table(
    "entries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("feed_id", Integer, ForeignKey("feeds.id", ondelete="CASCADE"), nullable=False),
    Column("key", Text, nullable=False),
    Column("link", Text),
    Column("title", Text),
    Column("summary", Text),
    Column("published", UTCDateTime),
    Column("date_suspect", Boolean, nullable=False, default=False),
    Column("author", Text),
    Column("content_hash", String(64), nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("article_id", Integer, ForeignKey("articles.id")),
    UniqueConstraint("feed_id", "key", name="uq_entries_feed_key"),
    Index("ix_entries_article_id", "article_id"),
)

fingerprints = Table(
    "fingerprints",
    metadata,
    Column("article_id", Integer, ForeignKey("articles.id"), primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
)

dedup_bands = Table(
    "dedup_bands",
    metadata,
    Column("band_key", BigInteger, nullable=False),
    Column("article_id", Integer, nullable=False),
    # Unix seconds: dozens of rows per article, and an integer costs nothing to convert.
    Column("seen_at", BigInteger, nullable=False),
    Index("ix_dedup_bands_key", "band_key"),
    Index("ix_dedup_bands_seen_at", "seen_at"),  # for pruning only: lookups are by key alone
)

robots = Table(
    "robots",
    metadata,
    Column("host", Text, primary_key=True),
    Column("body", Text),
    Column("status", Integer, nullable=False),
    Column("expires", UTCDateTime, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("worker", String(64), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("report", Text),
)

# Every `newsfold run` process that leased a feed: what `stats` lists as the workers seen.
workers = Table(
    "workers",
    metadata,
    Column("worker", String(64), primary_key=True),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("feeds", Integer, nullable=False, default=0),  # feeds leased so far
    Index("ix_workers_last_seen", "last_seen"),
)

# fetch.per_host across workers on PostgreSQL: a request in flight to `host` holds one slot row
# until it ends or `expires` passes (a killed worker's slots come back by themselves).
host_slots = Table(
    "host_slots",
    metadata,
    Column("host", Text, primary_key=True),
    Column("slot", Integer, primary_key=True),
    Column("owner", String(64)),
    Column("expires", UTCDateTime),
)

# On PostgreSQL a feed's transaction locks the rows of the buckets (key mod 2^20) of the dedup
# keys it looks up, so two workers never fold copies of one story at the same time.
dedup_locks = Table(
    "dedup_locks",
    metadata,
    Column("bucket", Integer, primary_key=True, autoincrement=False),
)


def _lookup_indexes(conn: Connection, progress: Progress) -> None:
    """The exact-text index on (hash, id); a store that briefly had a three-column band index
    gets the one-column one back."""
    for name in ("ix_articles_content_hash", "ix_dedup_bands_lookup"):
        conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
    for table, name in (
        (articles, "ix_articles_text_first"),
        (dedup_bands, "ix_dedup_bands_key"),
    ):
        index = next(i for i in table.indexes if i.name == name)
        index.create(conn, checkfirst=True)


def _add_columns(table: Table, *names: str) -> Migration:
    """ALTER TABLE ADD COLUMN for columns the table's definition gained later; a store made
    after that (the first migration creates today's tables) has them already."""

    def add(conn: Connection, progress: Progress) -> None:
        present = {column["name"] for column in inspect(conn).get_columns(table.name)}
        for name in names:
            if name not in present:
                kind = table.c[name].type.compile(dialect=conn.dialect)
                conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {name} {kind}"))

    return add


def _story_merges(conn: Connection, progress: Progress) -> None:
    """Stories that merge and the components they regroup in (today's stories are each their
    own component)."""
    _add_columns(stories, "merged_into", "component")(conn, progress)
    _create_index(conn, stories, "ix_stories_component")


def _merged_index(conn: Connection, progress: Progress) -> None:
    """Reading a story looks up the stories merged into it: by index, not a scan of them all."""
    _create_index(conn, stories, "ix_stories_merged_into")


def _create_index(conn: Connection, table: Table, name: str) -> None:
    next(i for i in table.indexes if i.name == name).create(conn, checkfirst=True)


def _create(*tables: Table) -> Migration:
    def create(conn: Connection, progress: Progress) -> None:
        metadata.create_all(conn, tables=list(tables))

    return create


# Append only. Position + 1 is the version number.
MIGRATIONS: list[Migration] = [
    _create(feeds, stories, articles, entries, fingerprints, dedup_bands, robots, runs),
    _create(workers, host_slots),
    _create(dedup_locks),
    _lookup_indexes,
    create_search_index,
    _add_columns(feeds, "page_failures"),
    _add_columns(feeds, "pending_entries"),
    _story_merges,
    _merged_index,
    _add_columns(feeds, "body_error"),
    add_search_pairs,
]
LATEST = len(MIGRATIONS)


def ignore_progress(done: int, total: int) -> None:
    """Progress nobody watches."""


def current_version(conn: Connection) -> int:
    schema_version.create(conn, checkfirst=True)
    version = conn.execute(select(schema_version.c.version).order_by(-schema_version.c.version))
    return int(version.scalar() or 0)


def migrate(conn: Connection, now: datetime, progress: Progress = ignore_progress) -> int:
    """Bring the schema to LATEST; returns the version it started from. A migration that
    rewrites stored rows reports through `progress` as it goes."""
    start = current_version(conn)
    if start > LATEST:
        raise StoreError(
            f"the store is at schema version {start}, newer than this newsfold ({LATEST}): upgrade"
        )
    for version in range(start + 1, LATEST + 1):
        MIGRATIONS[version - 1](conn, progress)
        conn.execute(schema_version.insert().values(version=version, applied_at=now))
    return start
