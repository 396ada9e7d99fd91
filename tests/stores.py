"""Store fixtures: a real SQLite file, and a real PostgreSQL schema when the server is reachable.

PostgreSQL is found at NEWSFOLD_TEST_PG (default postgresql://root@127.0.0.1:5432/test); each test
gets a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from newsfold.config import DedupSettings
from newsfold.fold import FoldDecision, FoldPlan, FoldRules, Found, Placement, plan
from newsfold.model import Article
from newsfold.store import PlannedArticle, Store, open_store, schema
from newsfold.store.search import create_search_index

PG_URL = os.environ.get("NEWSFOLD_TEST_PG", "postgresql://root@127.0.0.1:5432/test")


def pg_reachable() -> bool:
    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def pg_available() -> bool:
    return pg_reachable()


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'newsfold.db'}"


@pytest.fixture
def pg_url(pg_available: bool) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh, empty schema."""
    if not pg_available:
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL}; .ci/run starts it")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    return str(request.getfixturevalue("pg_url"))


@contextlib.contextmanager
def migrated_store(url: str) -> Iterator[Store]:
    """A store at `url`, migrated to the current schema, closed afterwards."""
    opened = open_store(url)
    opened.migrate()
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with migrated_store(store_url) as opened:
        yield opened


# Stories named by the test: an article's plan stands for a label, and only equal labels fold.


@dataclass(frozen=True, slots=True)
class SameLabel(FoldRules):
    """Rules that fold an article only into the story of its label (its plan's text)."""

    similarity: float = 1.0

    def decide(self, plan: FoldPlan, found: Found) -> FoldDecision:
        story = None if found.exact is None else found.exact.story_id
        return FoldDecision(Placement(story), self.similarity)


def same_label(now: datetime, similarity: float = 1.0) -> SameLabel:
    settings = DedupSettings()
    return SameLabel(settings, now - settings.window, similarity)


def label_plan(label: str) -> FoldPlan:
    """A plan that stands for `label`: one label, one text hash."""
    return plan(label, DedupSettings())


def labelled(article: Article, label: str) -> PlannedArticle:
    return PlannedArticle(article, label_plan(label))


def schema_before_search() -> int:
    """The schema version of a store made before full-text search (its migration is next)."""
    return schema.MIGRATIONS.index(create_search_index)
