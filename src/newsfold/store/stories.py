"""Stories, and the dedup rows that fold articles into them: fingerprints, LSH bands, locks.

On PostgreSQL a feed's transaction first locks every key its articles' dedup will look up (LSH
band keys and exact-text keys), in one statement, in ascending order: two transactions holding
copies of one story run their dedup one after the other and the second sees the first's story;
the one global order means these locks never deadlock. The locks are row locks on `dedup_locks`,
one row per key bucket (2^20 of them), not advisory locks: a feed of 300 new articles needs some
17,000, and advisory locks live in a shared table of max_locks_per_transaction * max_connections
entries (6,400 by default), where row locks cost nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    any_,
    bindparam,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from newsfold.fold import (
    NEW_STORY,
    Candidate,
    FoldDecision,
    FoldPlan,
    FoldRules,
    Found,
    Held,
    alone,
)
from newsfold.model import Story, StoryArticle
from newsfold.store import rows
from newsfold.store.base import SqlBase, chunks, insert_id
from newsfold.store.schema import (
    articles,
    dedup_bands,
    dedup_locks,
    entries,
    feeds,
    fingerprints,
    stories,
)

LOCK_BUCKETS = 1 << 20  # dedup keys share a lock row only by chance: 58 keys an article
COMPONENT_LOCKS = 0x6E66  # the first key of the advisory locks on components ("nf")


class Folded(NamedTuple):
    """How many stories a fold opened, and how many it merged into others."""

    opened: int
    merged: int


class ToFold(NamedTuple):
    """A saved article to place in its story, with its plan and the time it is seen at."""

    article_id: int
    plan: FoldPlan
    seen: datetime


class StoriesSql(SqlBase):
    def stories(self, since: datetime | None, limit: int | None) -> list[Story]:
        query = (
            select(stories.c.id)
            .where(stories.c.merged_into.is_(None))
            .order_by(stories.c.first_seen.desc(), stories.c.id.desc())
        )
        if since is not None:
            query = query.where(stories.c.updated_at >= since)
        if limit:
            query = query.limit(limit)
        with self._read() as conn:
            ids = list(conn.execute(query).scalars())
            return _load_stories(conn, ids)

    def story(self, story_id: int) -> Story | None:
        """The story of this id, or the one it was merged into (its `merged_ids` hold the id)."""
        # A merge points every id merged before at the new survivor: one step is enough.
        survivor = func.coalesce(stories.c.merged_into, stories.c.id)
        with self._read() as conn:
            into = conn.execute(select(survivor).where(stories.c.id == story_id)).scalar()
            found = [] if into is None else _load_stories(conn, [into])
        return found[0] if found else None

    def stories_by_id(self, ids: Sequence[int]) -> list[Story]:
        """The stories with these ids that exist, in the order given."""
        with self._read() as conn:
            return _load_stories(conn, list(ids))

    def prune_dedup(self, before: datetime) -> int:
        """Drop LSH band rows older than the window: nothing will be compared with them again."""
        with self._write() as conn:
            return int(
                conn.execute(
                    delete(dedup_bands).where(dedup_bands.c.seen_at < before.timestamp())
                ).rowcount
            )

    def texts_since(self, since: datetime) -> list[tuple[int, str]]:
        """(id, text) of the articles first seen since `since`, in the order they were folded."""
        with self._read() as conn:
            # Ids give the order articles were folded in; first_seen is their feed's check time,
            # and a feed checked earlier may commit later.
            query = select(articles.c.id, articles.c.text).where(articles.c.first_seen >= since)
            return [(row.id, row.text) for row in conn.execute(query.order_by(articles.c.id))]

    def refold(self, plans: dict[int, FoldPlan], rules: FoldRules) -> int:
        """Fold again the articles of `plans` (by id), in id order; returns how many.

        Their stories are emptied and removed, then each article is placed as if it were new, in
        its original order; stories of older articles keep their ids. One transaction: a failed
        refold leaves the stories as they were.
        """
        return self._transaction(lambda conn: _refold(conn, plans, rules))


def _refold(conn: Connection, plans: dict[int, FoldPlan], rules: FoldRules) -> int:
    ids = sorted(plans)
    for chunk in chunks(ids):
        conn.execute(delete(dedup_bands).where(dedup_bands.c.article_id.in_(chunk)))
        conn.execute(delete(fingerprints).where(fingerprints.c.article_id.in_(chunk)))
        conn.execute(update(articles).where(articles.c.id.in_(chunk)).values(story_id=None))
    _drop_empty_stories(conn)
    lock_keys(conn, [key for plan in plans.values() for key in plan.lock_keys])
    for chunk in chunks(ids):
        query = select(articles.c.id, articles.c.first_seen).where(articles.c.id.in_(chunk))
        seen = {row.id: row.first_seen for row in conn.execute(query)}
        fold_articles(conn, [ToFold(i, plans[i], seen[i]) for i in chunk], rules)
    _recount_stories(conn)
    return len(ids)


def lock_keys(conn: Connection, keys: Iterable[int]) -> None:
    """Lock, in one ascending sweep, the buckets of every dedup key a transaction will look up.

    PostgreSQL only (one SQLite writer works at a time). Taking them one article at a time would
    let two transactions each hold a key the other waits for; one global order cannot deadlock.
    A key another transaction holds makes this one wait for its commit, then see its stories.
    """
    if conn.dialect.name == "sqlite":
        return
    buckets = sorted({key % LOCK_BUCKETS for key in keys})
    if buckets:
        conn.execute(_ADD_BUCKETS, {"buckets": buckets})
        conn.execute(_LOCK_BUCKETS, {"buckets": buckets}).all()


def fold_articles(conn: Connection, batch: Sequence[ToFold], rules: FoldRules) -> Folded:
    """Place saved articles in their stories, in order, as `fold_article` would one by one.

    A batch of several is looked up once. An article that folds with nothing (`fold.alone`)
    is decided on its own (`Found(None)`: no stored story can change a new story); the new
    stories wait, and are opened together, in a few statements, before the next article that
    folds with something goes through `fold_article` (its look-up must see them). One article
    alone would only pay for both look-ups.
    """
    if len(batch) == 1:
        return fold_article(conn, batch[0], rules)
    lone = alone([(item.plan, item.seen) for item in batch], _held(conn, batch, rules), rules)
    opened = merged = 0
    waiting: list[tuple[ToFold, float]] = []
    for item, is_alone in zip(batch, lone, strict=True):
        decision = rules.decide(item.plan, Found(None)) if is_alone else None
        if decision is not None and decision.story == NEW_STORY.story and not decision.others:
            waiting.append((item, decision.similarity))
            continue
        opened += _open_alone(conn, waiting)
        waiting = []
        folded = fold_article(conn, item, rules)
        opened += folded.opened
        merged += folded.merged
    opened += _open_alone(conn, waiting)
    return Folded(opened, merged)


def _held(conn: Connection, batch: Sequence[ToFold], rules: FoldRules) -> Held:
    """The folded articles of the batch's texts, and the candidates of its band keys."""
    texts: set[str] = set()
    for chunk in chunks(sorted({item.plan.text_hash for item in batch})):
        texts.update(conn.execute(_TEXTS_HELD, {"hashes": chunk}).scalars())
    ids_by_key: dict[int, list[int]] = {}
    for chunk in chunks(sorted({key for item in batch for key in item.plan.band_keys})):
        for key, article_id in conn.execute(
            _BANDS_OF_KEYS[conn.dialect.name], {"keys": list(chunk)}
        ):
            ids_by_key.setdefault(key, []).append(article_id)
    members: dict[int, Candidate] = {}
    for chunk in chunks(sorted({i for ids in ids_by_key.values() for i in ids})):
        found = conn.execute(_MEMBERS_BY_ID, {"ids": list(chunk)})
        members.update((c.article_id, c) for c in _within(found, rules.since))
    by_key = {key: [members[i] for i in ids if i in members] for key, ids in ids_by_key.items()}
    return Held(frozenset(texts), by_key)


def _open_alone(conn: Connection, waiting: Sequence[tuple[ToFold, float]]) -> int:
    """A new story for each article (with its similarity there), opened and filled in one
    statement per table."""
    if not waiting:
        return 0
    opened = [
        {"first_seen": item.seen, "updated_at": item.seen, "article_count": 1}
        for item, _ in waiting
    ]
    story_ids = conn.execute(_OPEN_STORIES, opened).scalars().all()
    placed = [
        {"b_id": item.article_id, "story_id": story_id, "similarity": similarity}
        for (item, similarity), story_id in zip(waiting, story_ids, strict=True)
    ]
    conn.execute(_PLACE_ARTICLE, placed)
    _keep_dedup_rows(conn, [item for item, _ in waiting])
    return len(waiting)


def fold_article(conn: Connection, item: ToFold, rules: FoldRules) -> Folded:
    """Place a saved article in its story, regrouping the stories it links, and keep its dedup
    rows."""
    found, components = _look_up_locked(conn, item.article_id, item.plan, rules)
    decision = rules.decide(item.plan, found)
    _apply(conn, item.article_id, decision, components, item.seen)
    _keep_dedup_rows(conn, [item])
    return Folded(decision.opened, decision.merged)


def _keep_dedup_rows(conn: Connection, batch: Sequence[ToFold]) -> None:
    """The fingerprints and LSH band rows later articles are compared with."""
    conn.execute(
        fingerprints.insert(),
        [
            {"article_id": i.article_id, "data": i.plan.fingerprint.to_bytes(), "seen_at": i.seen}
            for i in batch
        ],
    )
    rows = [(key, i.article_id, int(i.seen.timestamp())) for i in batch for key in i.plan.band_keys]
    if not rows:
        return
    if conn.dialect.name == "sqlite":  # tuples straight to the driver: half the CPU of dicts
        conn.exec_driver_sql(_SQLITE_ADD_BANDS, rows)
    else:  # three arrays: thousands of rows bound and parsed in one statement's time
        columns = (list(column) for column in zip(*rows, strict=True))
        conn.execute(_ADD_BANDS, dict(zip(_BAND_COLUMNS, columns, strict=True)))


def look_up(conn: Connection, article_id: int, plan: FoldPlan, since: datetime) -> Found:
    """An article of the same text, else the candidates within the window."""
    params = {"content_hash": plan.text_hash, "exclude": article_id}
    exact = conn.execute(_ARTICLE_WITH_TEXT, params).first()
    if exact is not None or not plan.band_keys:
        return Found(None if exact is None else _candidate(exact))
    found = conn.execute(_CANDIDATES[conn.dialect.name], {"keys": list(plan.band_keys)})
    return Found(None, tuple(_within(found, since)))


def _within(rows: Iterable[Any], since: datetime) -> Iterator[Candidate]:
    """The candidates among stored articles' rows that were seen within the window."""
    return (_candidate(row) for row in rows if row.seen_at >= since)


def _look_up_locked(
    conn: Connection, article_id: int, plan: FoldPlan, rules: FoldRules
) -> tuple[Found, tuple[int, ...]]:
    """What the store holds for the article, the components it links, and their articles
    (`Found.group`) when it is no exact copy.

    On PostgreSQL each component is locked before its articles are read, so two workers never
    regroup one component at once. Another worker may have merged or regrouped components
    while this one waited: when a candidate is not in the group read after the locks, or an
    exact copy's component was not locked yet, the look-up runs again. (Two workers that lock
    components in opposite orders deadlock; PostgreSQL aborts one, whose transaction is run
    again.)
    """
    shared = conn.dialect.name != "sqlite"  # SQLite: one writer at a time
    locked: set[int] = set()
    while True:
        found = look_up(conn, article_id, plan, rules.since)
        components = rules.linked(plan, found)
        unlocked = sorted(set(components) - locked) if shared else []
        for component in unlocked:
            conn.execute(_LOCK_COMPONENT, {"component": component})
        locked.update(unlocked)
        if found.exact is not None:
            if unlocked:
                continue  # its story may have merged while this one waited
            return found, components
        if not components:
            return found, components
        group = _group(conn, components)
        held = {m.article_id for m in group}
        linked = (c.article_id for c in found.candidates if c.component in components)
        if not shared or all(article in held for article in linked):
            return replace(found, group=group), components


def _group(conn: Connection, components: Sequence[int]) -> tuple[Candidate, ...]:
    """Every folded article of the stories of these components."""
    found = conn.execute(_MEMBERS.where(_IN_COMPONENTS), {"components": list(components)})
    return tuple(_candidate(row) for row in found)


def _apply(
    conn: Connection,
    article_id: int,
    decision: FoldDecision,
    components: Sequence[int],
    now: datetime,
) -> None:
    """Place the article, then whatever its decision regroups: stored articles that move,
    stories merged away (they keep their row, empty, leading to the story that took them)."""
    component = components[0] if components else None
    story_id = _join_or_open(conn, decision.story.story_id, component, now)
    conn.execute(
        _PLACE_ARTICLE,
        {"b_id": article_id, "story_id": story_id, "similarity": decision.similarity},
    )
    placed = [(story_id, decision.story)]
    placed += [
        (_open(conn, component, now, 0) if p.story_id is None else p.story_id, p)
        for p in decision.others
    ]
    moved = [
        {"b_id": m.article_id, "story_id": target, "similarity": m.similarity}
        for target, placement in placed
        for m in placement.moves
    ]
    touched = {target for target, _ in placed}
    if moved:
        left = select(articles.c.story_id).where(articles.c.id.in_([m["b_id"] for m in moved]))
        touched.update(conn.execute(left).scalars())
        conn.execute(_PLACE_ARTICLE, moved)
    for target, placement in placed:
        if placement.absorbed:
            absorbed = list(placement.absorbed)
            redirect = update(stories).where(
                stories.c.id.in_(absorbed) | stories.c.merged_into.in_(absorbed)
            )
            conn.execute(redirect.values(merged_into=target, article_count=0, updated_at=now))
    if len(components) > 1:
        joined = update(stories).where(_IN_COMPONENTS).values(component=component)
        conn.execute(joined, {"components": list(components)})
    if moved:
        _recount_stories(conn, stories.c.id.in_(sorted(touched)), updated_at=now)


def _join_or_open(
    conn: Connection, story_id: int | None, component: int | None, now: datetime
) -> int:
    """The story the new article goes to: a kept one counts it, a new one is opened."""
    if story_id is None:
        return _open(conn, component, now, article_count=1)
    conn.execute(_JOIN_STORY, {"b_id": story_id, "updated_at": now})
    return story_id


def _open(conn: Connection, component: int | None, now: datetime, article_count: int) -> int:
    values = {"first_seen": now, "updated_at": now, "article_count": article_count}
    return insert_id(conn, stories.insert().values(component=component, **values))


def _candidate(row: Any) -> Candidate:
    return Candidate(row.id, row.story_id, row.component, row.data, row.seen_at)


def _load_stories(conn: Connection, ids: list[int]) -> list[Story]:
    copies: dict[int, list[StoryArticle]] = {i: [] for i in ids}
    heads: dict[int, Any] = {}
    merged: dict[int, list[int]] = {i: [] for i in ids}
    for chunk in chunks(ids):
        for row in conn.execute(_HEADS, {"ids": chunk}):
            heads[row.id] = row
        for row in conn.execute(_ABSORBED, {"ids": chunk}):
            merged[row.merged_into].append(row.id)
        for row in conn.execute(_COPIES, {"ids": chunk}):
            copies[row.story_id].append(rows.story_article(row._mapping))
    result = []
    for story_id in ids:
        if story_id not in heads or not copies[story_id]:
            continue
        first = copies[story_id][0]
        result.append(
            Story(
                id=story_id,
                title=first.title,
                url=first.url,
                first_seen=heads[story_id].first_seen,
                articles=tuple(copies[story_id]),
                merged_ids=tuple(merged[story_id]),
            )
        )
    return result


def _drop_empty_stories(conn: Connection) -> None:
    """Remove the stories that no article belongs to (a merged story's row stays: it leads to
    the story that took its articles)."""
    members = select(articles.c.id).where(articles.c.story_id == stories.c.id).exists()
    conn.execute(delete(stories).where(~members, stories.c.merged_into.is_(None)))


def _recount_stories(conn: Connection, which: Any = None, **values: Any) -> None:
    """Set the article count (and `values`) of the stories `which` selects, else of all."""
    count = select(func.count()).where(articles.c.story_id == stories.c.id).scalar_subquery()
    recount = update(stories).values(article_count=count, **values)
    conn.execute(recount if which is None else recount.where(which))


# Built once: statements run for every new article reuse their compiled form.
_IDS = bindparam("ids", type_=Integer, expanding=True)  # a chunk of story or article ids
_HEADS = select(stories).where(stories.c.id.in_(_IDS))
_ABSORBED = (
    select(stories.c.id, stories.c.merged_into)
    .where(stories.c.merged_into.in_(_IDS))
    .order_by(stories.c.id)
)
_FIRST_FEED = (
    select(feeds.c.url)
    .join(entries, entries.c.feed_id == feeds.c.id)
    .where(entries.c.article_id == articles.c.id)
    .order_by(entries.c.id)
    .limit(1)
    .scalar_subquery()
)
_COPIES = (
    select(articles, _FIRST_FEED.label("feed_url"))
    .where(articles.c.story_id.in_(_IDS))
    .order_by(articles.c.first_seen, articles.c.id)
)
_BUCKETS = bindparam("buckets", type_=postgresql.ARRAY(Integer))  # one array, however many
_ADD_BUCKETS = (
    postgresql.insert(dedup_locks)
    .from_select(["bucket"], select(func.unnest(_BUCKETS)))
    .on_conflict_do_nothing()
)
_BAND_COLUMNS = ("band_key", "article_id", "seen_at")
_SQLITE_ADD_BANDS = str(dedup_bands.insert().compile(dialect=sqlite.dialect()))
_ADD_BANDS = postgresql.insert(dedup_bands).from_select(
    list(_BAND_COLUMNS),
    select(
        *(
            func.unnest(bindparam(name, type_=postgresql.ARRAY(kind)))
            for name, kind in zip(_BAND_COLUMNS, (BigInteger, Integer, BigInteger), strict=True)
        )
    ),
)
_LOCK_BUCKETS = (
    select(dedup_locks.c.bucket)
    .where(dedup_locks.c.bucket == any_(_BUCKETS))
    .order_by(dedup_locks.c.bucket)
    .with_for_update()
)
_OPEN_STORIES = stories.insert().returning(stories.c.id, sort_by_parameter_order=True)
_JOIN_STORY = (
    update(stories)
    .where(stories.c.id == bindparam("b_id"))
    .values(article_count=stories.c.article_count + 1)
)
_PLACE_ARTICLE = update(articles).where(articles.c.id == bindparam("b_id"))
_LOCK_COMPONENT = text("SELECT pg_advisory_xact_lock(:space, :component)").bindparams(
    space=COMPONENT_LOCKS
)
# The stories of the given components (a story without one is its own).
_COMPONENTS = bindparam("components", type_=Integer, expanding=True)
_IN_COMPONENTS = stories.c.component.in_(_COMPONENTS) | (
    stories.c.component.is_(None) & stories.c.id.in_(_COMPONENTS)
)
_COMPONENT = func.coalesce(stories.c.component, stories.c.id).label("component")
_MEMBERS = (
    select(
        articles.c.id, articles.c.story_id, _COMPONENT, fingerprints.c.data, fingerprints.c.seen_at
    )
    .join(fingerprints, fingerprints.c.article_id == articles.c.id)
    .join(stories, stories.c.id == articles.c.story_id)
)
_ARTICLE_WITH_TEXT = (
    _MEMBERS.where(
        articles.c.content_hash == bindparam("content_hash"),
        articles.c.id != bindparam("exclude"),
    )
    .order_by(articles.c.id)
    .limit(1)
)
# A list of band keys, by dialect: PostgreSQL binds one array, where a parameter per key costs
# about a millisecond for a slice's keys.
_KEY_IN = {
    "sqlite": dedup_bands.c.band_key.in_(bindparam("keys", expanding=True)),
    "postgresql": dedup_bands.c.band_key
    == any_(bindparam("keys", type_=postgresql.ARRAY(BigInteger))),
}
# By key alone: rows past the window are pruned anyway, and a condition on seen_at would let
# the planner of a store without statistics walk the seen_at index, every row, per article.
_CANDIDATES = {
    dialect: _MEMBERS.where(
        articles.c.id.in_(select(dedup_bands.c.article_id).where(keys).distinct())
    )
    for dialect, keys in _KEY_IN.items()
}
_BANDS_OF_KEYS = {
    dialect: select(dedup_bands.c.band_key, dedup_bands.c.article_id).where(keys)
    for dialect, keys in _KEY_IN.items()
}
_MEMBERS_BY_ID = _MEMBERS.where(articles.c.id.in_(_IDS))
_TEXTS_HELD = (
    _MEMBERS.with_only_columns(articles.c.content_hash)
    .where(articles.c.content_hash.in_(bindparam("hashes", expanding=True)))
    .distinct()
)
