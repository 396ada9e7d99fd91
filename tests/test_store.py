"""One contract suite for every store backend (SQLite file, PostgreSQL schema)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from newsfold.config import DedupSettings
from newsfold.errors import LockedError, StoreError
from newsfold.fold import FoldDecision, FoldPlan, FoldRules, Found, Move, Placement, plan
from newsfold.model import Article, Entry, FeedSource
from newsfold.store import FeedUpdate, PlannedArticle, Store, schema
from newsfold.store.sql import SqlStore
from newsfold.tick import run_lock
from tests.stores import sqlite_url

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def entry(key: str, title: str = "A title", link: str | None = None) -> Entry:
    return Entry(
        key=key,
        link=link or f"https://news.example/{key}",
        title=title,
        summary="feed text",
        published=NOW - timedelta(hours=1),
    )


SETTINGS = DedupSettings()


def article(url: str, text: str = "the story text", feed_id: int = 1) -> PlannedArticle:
    saved = Article(
        url=url,
        feed_id=feed_id,
        title="Title",
        text=text,
        text_source="page",
        published=NOW,
    )
    return PlannedArticle(saved, plan(text, SETTINGS))


SINCE = NOW - SETTINGS.window
NEW_STORY = FoldDecision(Placement(None))


@dataclass(frozen=True, slots=True)
class Decided(FoldRules):
    """Rules whose decision is given: the store applies whatever it is told."""

    decision: FoldDecision = NEW_STORY

    def decide(self, plan: FoldPlan, found: Found) -> FoldDecision:
        return self.decision


new_story_each_time = Decided(SETTINGS, SINCE)
join_same_text = FoldRules(SETTINGS, SINCE)  # the real rules: the same text joins its story


def ok(feed_id: int, at: datetime = NOW) -> FeedUpdate:
    return FeedUpdate(feed_id, at, at + timedelta(minutes=30), etag='"v1"', body_hash="h1")


def feed_id(store: Store, url: str) -> int:
    return next(f.id for f in store.feeds() if f.url == url)


def test_migrate_is_idempotent_and_recorded(store: Store) -> None:
    """Migrating twice leaves the schema at the latest version."""
    assert store.migrate() == schema.LATEST
    assert store.stats()["schema_version"] == schema.LATEST


def test_newer_schema_is_refused(store: Store) -> None:
    """A store written by a newer newsfold is not touched."""
    assert isinstance(store, SqlStore)
    with store.engine.begin() as conn:
        conn.execute(
            schema.schema_version.insert().values(version=schema.LATEST + 1, applied_at=NOW)
        )
    with pytest.raises(StoreError, match="newer than this newsfold"):
        store.migrate()


def test_feeds_add_sync_list_remove(store: Store) -> None:
    """Feeds are added once, renamed by sync, listed with state 'new', removed by URL."""
    assert store.add_feed(FeedSource("https://a.example/feed"), NOW)
    assert not store.add_feed(FeedSource("https://a.example/feed"), NOW)
    assert (
        store.sync_feeds(
            [
                FeedSource("https://a.example/feed", "A"),
                FeedSource("https://b.example/rss", interval=timedelta(hours=1)),
            ],
            NOW,
        )
        == 1
    )
    listed = {f.url: f for f in store.feeds()}
    assert listed["https://a.example/feed"].name == "A"
    assert listed["https://b.example/rss"].interval == timedelta(hours=1)
    assert all(f.status == "new" and f.next_check is None for f in listed.values())
    assert store.remove_feed("https://a.example/feed")
    assert not store.remove_feed("https://a.example/feed")
    assert [f.url for f in store.feeds()] == ["https://b.example/rss"]


def test_due_feeds_are_leased_once(store: Store) -> None:
    """A due feed is handed to one worker; a feed not due waits unless --all."""
    store.sync_feeds([FeedSource("https://a.example/1"), FeedSource("https://a.example/2")], NOW)
    later = feed_id(store, "https://a.example/2")
    store.record_feed(ok(later), [], [], {}, new_story_each_time)
    assert store.count_due_feeds(NOW, include_all=False) == 1  # what the progress bar counts
    assert store.count_due_feeds(NOW + timedelta(minutes=1), include_all=True) == 2
    first = [
        f.url
        for f in store.lease_due_feeds(
            NOW, include_all=False, worker="w1", lease=timedelta(minutes=5)
        )
    ]
    assert first == ["https://a.example/1"]
    later_run = NOW + timedelta(minutes=1)
    again = list(
        store.lease_due_feeds(later_run, include_all=True, worker="w2", lease=timedelta(minutes=5))
    )
    assert [f.url for f in again] == ["https://a.example/2"]  # 1 is still leased to w1
    expired = NOW + timedelta(minutes=7)
    assert (
        len(
            list(
                store.lease_due_feeds(
                    expired, include_all=True, worker="w3", lease=timedelta(minutes=5)
                )
            )
        )
        == 2
    )


def test_all_leases_each_feed_once_per_run(store: Store) -> None:
    """`run --all` hands out each feed once: a feed recorded in this run is not leased again."""
    store.sync_feeds([FeedSource("https://a.example/1"), FeedSource("https://a.example/2")], NOW)
    leased = []
    for feed in store.lease_due_feeds(NOW, include_all=True, worker="w", lease=timedelta(hours=1)):
        store.record_feed(ok(feed.id), [], [], {}, new_story_each_time)
        leased.append(feed.url)
    assert sorted(leased) == ["https://a.example/1", "https://a.example/2"]


def test_entries_stored_once_and_updated_when_edited(store: Store) -> None:
    """The same entry twice is one row; an edited title updates it instead of adding one."""
    store.add_feed(FeedSource("https://a.example/feed"), NOW)
    fid = feed_id(store, "https://a.example/feed")
    url = "https://news.example/e1"
    commit = store.record_feed(
        ok(fid), [entry("e1")], [article(url)], {"e1": url}, new_story_each_time
    )
    assert (commit.entries_new, commit.articles_new, commit.stories_new) == (1, 1, 1)
    edited = store.record_feed(
        ok(fid), [entry("e1", "A better title")], [], {"e1": url}, new_story_each_time
    )
    assert (edited.entries_new, edited.entries_updated) == (0, 1)
    assert store.feeds()[0].entries == 1
    assert set(store.entry_hashes(fid, ["e1", "zz"])) == {"e1"}


def test_one_article_listed_by_two_feeds(store: Store) -> None:
    """An article two feeds list is one article in one story, linked to the first feed."""
    store.sync_feeds([FeedSource("https://a.example/f"), FeedSource("https://b.example/f")], NOW)
    url = "https://news.example/shared"
    a, b = feed_id(store, "https://a.example/f"), feed_id(store, "https://b.example/f")
    store.record_feed(ok(a), [entry("x")], [article(url)], {"x": url}, new_story_each_time)
    commit = store.record_feed(ok(b), [entry("y", link=url)], [], {"y": url}, new_story_each_time)
    assert commit.articles_new == 0
    assert store.known_article_urls([url, "https://news.example/other"]) == {url}
    stories = store.stories(None, None)
    assert len(stories) == 1 and len(stories[0].articles) == 1
    assert stories[0].articles[0].feed_url == "https://a.example/f"


def test_changed_page_is_a_new_version(store: Store) -> None:
    """A page whose text changed under the same URL stays one article, one story."""
    store.add_feed(FeedSource("https://a.example/feed"), NOW)
    fid = feed_id(store, "https://a.example/feed")
    url = "https://news.example/e1"
    store.record_feed(
        ok(fid), [entry("e1")], [article(url, "first text")], {"e1": url}, new_story_each_time
    )
    commit = store.record_feed(
        ok(fid),
        [entry("e1", "new")],
        [article(url, "second, longer text")],
        {"e1": url},
        new_story_each_time,
    )
    assert (commit.articles_new, commit.articles_updated, commit.stories_new) == (0, 1, 0)
    [story] = store.stories(None, None)
    assert story.articles[0].text_chars == len("second, longer text")


@pytest.mark.parametrize("per_commit", [1, 3])
def test_copies_fold_into_one_story(store: Store, per_commit: int) -> None:
    """Articles the fold function places in one story are listed under it, oldest first, saved
    one by one or in one commit."""
    store.add_feed(FeedSource("https://a.example/feed"), NOW)
    fid = feed_id(store, "https://a.example/feed")
    urls = [f"https://outlet{i}.example/story" for i in range(3)]
    for start in range(0, len(urls), per_commit):
        part = urls[start : start + per_commit]
        keys = [f"e{start + i}" for i in range(len(part))]
        store.record_feed(
            ok(fid, NOW + timedelta(minutes=start)),
            [entry(key, link=url) for key, url in zip(keys, part, strict=True)],
            [article(url, "same wire text") for url in part],
            dict(zip(keys, part, strict=True)),
            join_same_text,
        )
    [story] = store.stories(None, None)
    assert [a.url for a in story.articles] == urls
    assert store.story(story.id) == story
    assert store.stats()["stories"] == 1 and store.stats()["articles"] == 3


def test_a_text_seen_before_the_window_still_joins_its_story(store: Store) -> None:
    """Candidates come from the dedup window, but the very same text joins its story however
    old, alone in its commit or with a text that opens a story of its own."""
    store.add_feed(FeedSource("https://a.example/feed"), NOW)
    fid = feed_id(store, "https://a.example/feed")
    old = NOW - 2 * SETTINGS.window
    url = "https://old.example/story"
    store.record_feed(
        ok(fid, old),
        [entry("old", link=url)],
        [article(url)],
        {"old": url},
        FoldRules(SETTINGS, old - SETTINGS.window),
    )
    new = ["https://new.example/story", "https://other.example/news"]
    store.record_feed(
        ok(fid),
        [entry("new", link=new[0]), entry("other", link=new[1])],
        [article(new[0]), article(new[1], "a different story altogether")],
        {"new": new[0], "other": new[1]},
        join_same_text,
    )
    stories = {frozenset(a.url for a in s.articles) for s in store.stories(None, None)}
    assert stories == {frozenset({url, new[0]}), frozenset({new[1]})}


def test_decisions_merge_stories_and_move_articles(store: Store) -> None:
    """A decision's merges and moves are applied: articles change story, a merged story's id
    leads to the story that took its articles, a group moved out opens a story."""
    store.add_feed(FeedSource("https://a.example/feed"), NOW)
    fid = feed_id(store, "https://a.example/feed")

    def save(key: str, rules: FoldRules) -> None:
        url = f"https://news.example/{key}"
        copy = article(url, f"the text of {key}")
        store.record_feed(ok(fid), [entry(key, link=url)], [copy], {key: url}, rules)

    def article_id(key: str) -> int:
        copies = (a for s in store.stories(None, None) for a in s.articles)
        return next(a.article_id for a in copies if a.url.endswith(key))

    for key in "abc":
        save(key, new_story_each_time)
    ids = {s.url[-1]: s.id for s in store.stories(None, None)}
    merge = Placement(ids["a"], (Move(article_id("b"), 0.95),), (ids["b"],))
    save("d", Decided(SETTINGS, SINCE, FoldDecision(merge, 0.9)))
    split = Placement(None, (Move(article_id("c"), 0.8), Move(article_id("d"), 0.7)))
    save("e", Decided(SETTINGS, SINCE, FoldDecision(Placement(ids["c"]), 1.0, (split,))))
    found = {s.id: {a.url[-1]: a.similarity for a in s.articles} for s in store.stories(None, None)}
    assert found == {
        ids["a"]: {"a": 1.0, "b": 0.95},
        ids["c"]: {"e": 1.0},
        max(found): {"c": 0.8, "d": 0.7},
    }
    merged = store.story(ids["b"])
    assert merged is not None and merged.id == ids["a"] and merged.merged_ids == (ids["b"],)
    assert store.stats()["stories"] == 3
    assert store.check() == []


def test_failure_is_counted_and_keeps_validators(store: Store) -> None:
    """A failed check keeps the feed's ETag, counts the error and stores its message."""
    store.add_feed(FeedSource("https://a.example/feed"), NOW)
    fid = feed_id(store, "https://a.example/feed")
    store.record_feed(ok(fid), [], [], {}, new_story_each_time)
    for _ in range(2):
        store.record_feed(
            FeedUpdate(
                fid,
                NOW,
                NOW + timedelta(hours=1),
                error="https://a.example/feed: HTTP 503",
                error_kind="http_503",
                etag='"v1"',
            ),
            [],
            [],
            {},
            new_story_each_time,
        )
    [feed] = store.feeds()
    assert (feed.status, feed.error_count, feed.etag) == ("error", 2, '"v1"')
    assert feed.last_error == "https://a.example/feed: HTTP 503"
    assert store.stats()["feeds_failing"] == 1


def test_stories_since_and_limit(store: Store) -> None:
    """`stories` lists newest first and honours --since and --limit."""
    store.add_feed(FeedSource("https://a.example/feed"), NOW)
    fid = feed_id(store, "https://a.example/feed")
    for i in range(3):
        url = f"https://news.example/{i}"
        store.record_feed(
            ok(fid, NOW + timedelta(hours=i)),
            [entry(str(i), link=url)],
            [article(url, f"text {i}")],
            {str(i): url},
            new_story_each_time,
        )
    assert isinstance(store, SqlStore)
    with store.engine.begin() as conn:  # story i last updated at NOW + i hours
        for i in range(3):
            conn.execute(
                update(schema.stories)
                .where(schema.stories.c.id == i + 1)
                .values(updated_at=NOW + timedelta(hours=i), first_seen=NOW + timedelta(hours=i))
            )
    newest = store.stories(None, 2)
    assert [s.url for s in newest] == ["https://news.example/2", "https://news.example/1"]
    assert len(store.stories(NOW + timedelta(minutes=30), None)) == 2


def test_run_lock_excludes_a_second_run(tmp_path: Path) -> None:
    """On SQLite a second run fails fast with LockedError while the first holds the lock;
    PostgreSQL has no run lock (workers share feeds by lease)."""
    url = sqlite_url(tmp_path)
    with run_lock(url, wait=False) as first, pytest.raises(LockedError), run_lock(url, False):
        pass
    with run_lock(url, wait=False) as second:
        pass
    assert first and second
    with run_lock("postgresql://nobody@127.0.0.1/none", wait=False) as exclusive:
        assert not exclusive
