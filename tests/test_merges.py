"""Stories that merge and move as copies arrive: the store converges to one partition, whatever
the order, on both backends, and several PostgreSQL workers folding at once agree with it."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from newsfold.config import DedupSettings, Settings
from newsfold.dedup import fingerprint
from newsfold.fold import plan
from newsfold.model import FeedSource
from newsfold.pipeline import fold_rules
from newsfold.store import Store, schema
from tests.stores import migrated_store
from tests.syndicate import (
    BASE_TIME,
    Doc,
    fold,
    live_series,
    paragraphs,
    short_posts,
    syndicate,
    trap_stories,
)
from tests.test_workers import racing, save_copies, story_urls

SETTINGS = DedupSettings()
NOW = BASE_TIME + timedelta(days=4)
Partition = frozenset[frozenset[str]]


def evaluation_docs() -> list[Doc]:
    """Templated stories (some syndicated, copies cut short, corrected, updated), live-update
    series over one running text, and short posts: what order effects split or chain."""
    rng = random.Random(11)
    originals = trap_stories(seed=3, per_family=3)
    copies = [copy for doc in originals[::2] for copy in syndicate(doc, rng, 4)]
    return [*originals, *copies, *live_series(rng, 2), *short_posts(rng)]


@pytest.fixture(scope="module")
def docs() -> list[Doc]:
    return evaluation_docs()


@pytest.fixture(scope="module")
def expected(docs: list[Doc]) -> Partition:
    return expected_partition(docs)


def expected_partition(docs: Sequence[Doc]) -> Partition:
    """The partition of the set: the pure fold (order-independent by its own tests)."""
    folding = fold(docs, [fingerprint(d.text, SETTINGS) for d in docs], SETTINGS)
    groups: dict[int, set[str]] = {}
    for doc, story in zip(docs, folding.stories, strict=True):
        groups.setdefault(story, set()).add(doc.url)
    return frozenset(frozenset(g) for g in groups.values())


def add_feed(store: Store, url: str) -> int:
    store.add_feed(FeedSource(url), NOW)
    return next(f.id for f in store.feeds() if f.url == url)


@pytest.mark.parametrize(("seed", "per_commit"), [(1, 1), (2, 1), (3, 1), (1, 25), (2, 25)])
def test_any_arrival_order_makes_the_stories_of_the_set(
    store: Store, docs: list[Doc], expected: Partition, seed: int, per_commit: int
) -> None:
    """Copies folded in a random order, one by one or many in one feed's commit (where a copy
    of an article earlier in the same commit must find it), end in the stories the whole set
    makes; `refold` of everything makes them again, and the store stays sound."""
    assert sum(len(group) > 1 for group in expected) >= 8  # there is something to fold
    shuffled = random.Random(seed).sample(docs, len(docs))
    feed = add_feed(store, "https://feeds.example/all")
    for start in range(0, len(shuffled), per_commit):
        save_copies(store, feed, shuffled[start : start + per_commit], now=NOW)()
    assert story_urls(store) == expected
    assert store.check() == []
    texts = store.texts_since(NOW - timedelta(days=1))
    store.refold({i: plan(text, SETTINGS) for i, text in texts}, fold_rules(Settings(), NOW))
    assert story_urls(store) == expected
    assert store.check() == []


def test_a_merged_story_leads_to_the_one_that_took_it(store: Store, docs: list[Doc]) -> None:
    """A copy cut short and one without its opening open two stories (too little shared); the
    whole text shows them one: the older story keeps its id and the other id leads to it."""
    whole = max(docs, key=lambda d: len(paragraphs(d.text)))
    paras = paragraphs(whole.text)
    assert len(paras) >= 5
    cut = Doc("cut", whole.story, whole.title, "\n\n".join(paras[:3]), whole.outlet, NOW, "copy")
    tail = Doc("tail", whole.story, whole.title, "\n\n".join(paras[2:]), whole.outlet, NOW, "copy")
    feed = add_feed(store, "https://feeds.example/all")
    save_copies(store, feed, [cut], now=NOW)()
    save_copies(store, feed, [tail], now=NOW)()
    before = {s.url: s.id for s in store.stories(None, None)}
    if len(before) == 1:
        pytest.fail("the cut copy and the tail folded on their own: choose texts that do not")
    save_copies(store, feed, [whole], now=NOW)()
    [story] = store.stories(None, None)
    assert story.id == before[cut.url] < before[tail.url]
    assert {a.url for a in story.articles} == {cut.url, tail.url, whole.url}
    assert story.merged_ids == (before[tail.url],)
    merged = store.story(before[tail.url])
    assert merged is not None and merged.id == story.id
    assert store.stats()["stories"] == 1 and store.check() == []


@pytest.mark.postgres
@pytest.mark.parametrize("attempt", range(4))
def test_workers_folding_copies_in_opposite_orders_make_one_story(
    pg_url: str, docs: list[Doc], attempt: int
) -> None:
    """Two workers commit copies of one story at once, one in the order the other reverses:
    always one story, whichever commits first."""
    original = next(d for d in docs if d.kind.startswith("trap:") and d.id.endswith("-0"))
    copies = [original, *syndicate(original, random.Random(attempt), 5)]
    with migrated_store(pg_url) as store:
        feeds = [add_feed(store, f"https://feeds.example/{i}") for i in range(2)]
        halves = [copies[::2], copies[1::2][::-1]]
        racing(
            [save_copies(store, f, half, now=NOW) for f, half in zip(feeds, halves, strict=True)]
        )
        assert story_urls(store) == {frozenset(d.url for d in copies)}
        assert store.check() == []


def test_a_store_from_before_merges_migrates_and_folds_on(
    tmp_path: Path, docs: list[Doc], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store made before stories could merge gains the columns (each old story its own
    component) and folds later copies into the stories the whole set makes."""
    db = tmp_path / "old.db"
    monkeypatch.setattr(schema, "LATEST", schema.MIGRATIONS.index(schema._story_merges))
    with migrated_store(f"sqlite:///{db}") as store:
        feed = add_feed(store, "https://feeds.example/all")
        save_copies(store, feed, docs[:30], now=NOW)()
    with sqlite3.connect(db) as conn:  # the columns the schema had before
        for index in ("ix_stories_component", "ix_stories_merged_into"):
            conn.execute(f"DROP INDEX {index}")
        for column in ("merged_into", "component"):
            conn.execute(f"ALTER TABLE stories DROP COLUMN {column}")
    monkeypatch.undo()
    with migrated_store(f"sqlite:///{db}") as store:
        save_copies(store, feed, docs[30:], now=NOW)()
        assert story_urls(store) == expected_partition(docs)
        assert store.check() == []
