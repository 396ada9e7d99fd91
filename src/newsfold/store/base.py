"""What every part of SqlStore shares: the engine, transactions, and the translation of errors.

SQLite runs in WAL mode with synchronous=NORMAL: a committed transaction survives a process crash,
and a power loss can lose at most the last transactions, never corrupt the file. Every write
transaction starts with BEGIN IMMEDIATE so two writers queue instead of failing on a lock upgrade.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Insert, Table, create_engine, event, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, DBAPIError, SQLAlchemyError

from newsfold.errors import StoreError, StoreMissing

T = TypeVar("T")
SQLITE_BUSY_TIMEOUT_S = 60
# PostgreSQL's SQLSTATEs for a transaction it aborted so another could go on: run it again.
RETRY_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure
TRANSACTION_ATTEMPTS = 5


class SqlBase:
    """The engine and its transactions; the table modules add the store's methods on top."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        """`create`: make the store (and its directory) when there is none yet; without it a
        missing store is a StoreMissing and nothing is created."""
        self.url = url
        self.engine = _make_engine(url, create)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.shared = not self.is_sqlite  # SQLite: one run at a time (run_lock)
        if not create and not self._has_schema():
            self.close()
            where = self.engine.url.database if self.is_sqlite else make_url(url)
            raise StoreMissing(f"no store at {where}")

    def close(self) -> None:
        self.engine.dispose()

    def _has_schema(self) -> bool:
        """Whether the store exists, found out without creating or changing anything."""
        from newsfold.store.schema import schema_version  # schema's own modules import this one

        if self.is_sqlite:
            return _sqlite_has_table(str(self.engine.url.database), schema_version.name)
        with self._read() as conn:
            return inspect(conn).has_table(schema_version.name)

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
            raise StoreError(f"{self._safe_url()}: {first_line(exc)}") from exc

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

    def _dialect_insert(self, table: Table) -> Any:
        """INSERT for this dialect, with its ON CONFLICT clauses."""
        return dialect_insert(self.engine.dialect.name, table)

    def _safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)


def dialect_insert(dialect: str, table: Table) -> Any:
    """INSERT for `dialect` ("sqlite" or "postgresql"), with its ON CONFLICT clauses."""
    return (sqlite.insert if dialect == "sqlite" else postgresql.insert)(table)


def insert_id(conn: Connection, statement: Insert) -> int:
    """Run an INSERT and return the new row's id."""
    key = conn.execute(statement).inserted_primary_key
    assert key is not None
    return int(key[0])


def chunks(items: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def first_line(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


def utc_now() -> datetime:
    return datetime.now(UTC)


def _retryable(exc: BaseException | None) -> bool:
    """Whether PostgreSQL aborted the transaction only so that another one could go on."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in RETRY_SQLSTATES


POSTGRESQL_MISSING = (
    "PostgreSQL support is not installed: pip install 'newsfold[postgresql]'"
    " (with pipx: pipx inject newsfold 'psycopg[binary]')"
)


def _make_engine(url: str, create: bool) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        if url.startswith("sqlite:///"):
            path = url.removeprefix("sqlite:///")
            if path and Path(path).is_dir():
                raise StoreError(
                    f"--db {path} is a directory: name a file in it,"
                    f" such as --db {Path(path) / 'newsfold.db'}"
                )
            if create and path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
            _configure_sqlite(engine)
            return engine
        if url.startswith("postgresql+psycopg://"):
            # No server-side prepared statements: a plan cached while the tables were small (a new
            # store has no statistics yet) would scan them whole once they have grown.
            return create_engine(url, pool_pre_ping=True, connect_args={"prepare_threshold": None})
    except ImportError as exc:
        raise StoreError(f"cannot open the store {_shown(url)}: {POSTGRESQL_MISSING}") from exc
    except (SQLAlchemyError, DBAPIError, OSError) as exc:
        raise StoreError(f"cannot open the store {_shown(url)}: {first_line(exc)}") from exc
    raise StoreError(f"unsupported --db URL {url!r}: use sqlite:///PATH or postgresql://…")


def _sqlite_has_table(path: str, table: str) -> bool:
    """Read-only: connecting the usual way would create the file, and turn on WAL."""
    if not Path(path).is_file():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"{Path(path).as_uri()}?mode=ro", uri=True)) as db:
            found = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            )
            return found.fetchone() is not None
    except sqlite3.DatabaseError:
        return True  # not a sound SQLite file: opening it says so in the usual words


def _shown(url: str) -> str:
    """The URL as an error may print it: never its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1]


# The pages SQLite keeps per connection. Band keys are random, so a new article's 58 band rows
# land on 58 pages all over their index: with SQLite's default 2 MB, a slice's transaction
# spilled half-written pages to the WAL and read the index's inner pages again for every key.
# With a million stored articles that doubled the CPU of saving one (bench_dedup_scale); 32 MB
# holds a 50-article slice's pages and the inner pages. Pages are taken only as they are read.
SQLITE_CACHE_KIB = 32 * 1024


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
