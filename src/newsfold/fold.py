"""One article into its story, as plain data: the plan, what the store found, the decision.

1. `plan` (before the store's transaction, in a worker process): the article's fingerprint, its
   exact-text hash, its LSH band keys and the keys the store locks while it folds it.
2. The store, inside the feed's transaction: locks every plan's `lock_keys` in one sweep
   (PostgreSQL), saves the article, and looks up what it `Found`: an article of the very same
   text, else the stored articles sharing a band key within the window. `linked_components`
   (pure) names the components those that fold belong to; the store locks them (PostgreSQL)
   and reads their articles (`Found.group`).
3. `decide` (pure): the group and the new article clustered afresh give a `FoldDecision`, which
   the store applies: the article's story, kept or new, and the merges, moves and split-off
   stories of the group.

A slice of new articles is looked up once first (`Held`): those that fold with nothing, stored
or earlier in the slice (`alone`), would each be decided a new story, whatever the stories are;
the store opens theirs together and takes the others through steps 2 and 3 one by one."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache

from newsfold import cluster, dedup
from newsfold.config import DedupSettings


@dataclass(frozen=True, slots=True)
class FoldPlan:
    """What folding one article needs that does not depend on the store, computed once."""

    fingerprint: dedup.Fingerprint
    band_keys: tuple[int, ...]
    lock_keys: tuple[int, ...]  # the band keys and the exact text's key

    @property
    def text_hash(self) -> str:
        """The exact layer: equal hashes are the same normalised text."""
        return self.fingerprint.text_hash.hex()


def plan(text: str, settings: DedupSettings) -> FoldPlan:
    return plan_of(dedup.fingerprint(text, settings), settings)


def plan_of(fingerprint: dedup.Fingerprint, settings: DedupSettings) -> FoldPlan:
    keys = tuple(dedup.band_keys(fingerprint, settings))
    return FoldPlan(fingerprint, keys, (*keys, text_lock_key(fingerprint.text_hash.hex())))


def plan_all(texts: list[str], settings: DedupSettings) -> list[FoldPlan]:
    """The plans of a feed's new articles, made in a worker process."""
    return [plan(text, settings) for text in texts]


def text_lock_key(text_hash: str) -> int:
    """The lock key of an exact text (a signed 64-bit number, like the LSH band keys)."""
    return int.from_bytes(hashlib.sha256(text_hash.encode()).digest()[:8], "big", signed=True)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A stored article: one that shares an LSH band with a new one, or a member of its group."""

    article_id: int
    story_id: int
    component: int  # the connected group its story belongs to (`Found.group`)
    fingerprint: bytes
    seen_at: datetime

    def print(self) -> dedup.Fingerprint:
        return _read_print(self.fingerprint)


# A stored article is read again for every new article that touches its group: read once, the
# same object also makes `cluster.verdict`'s remembered pairs cheap to find.
_read_print = lru_cache(maxsize=1 << 12)(dedup.Fingerprint.from_bytes)


@dataclass(frozen=True, slots=True)
class Found:
    """What the store found for one plan.

    `exact` is an article of the very same text; else `candidates` share an LSH band with it,
    and `group` holds every article of the components (`linked_components`) the folding ones
    belong to: the stories a new article can merge, split or join.
    """

    exact: Candidate | None
    candidates: tuple[Candidate, ...] = ()
    group: tuple[Candidate, ...] = ()


@dataclass(frozen=True, slots=True)
class Move:
    """A stored article that goes to another story, and its similarity there."""

    article_id: int
    similarity: float


@dataclass(frozen=True, slots=True)
class Placement:
    """One story after a fold: kept (its id) or new (None), the stored articles that move into
    it and the stories merged into it (they lead here from now on)."""

    story_id: int | None
    moves: tuple[Move, ...] = ()
    absorbed: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class FoldDecision:
    """The article's story and its similarity there, and the other stories of its group that
    change (an article that shows two stories to be one merges them; one that no longer fits
    its story moves)."""

    story: Placement
    similarity: float = 1.0
    others: tuple[Placement, ...] = ()

    @property
    def opened(self) -> int:
        return sum(p.story_id is None for p in (self.story, *self.others))

    @property
    def merged(self) -> int:
        return sum(len(p.absorbed) for p in (self.story, *self.others))


NEW_STORY = FoldDecision(Placement(None))
MAX_GROUP = 150  # articles regrouped at most; past it the article joins its best story


@dataclass(frozen=True, slots=True)
class FoldRules:
    """The settings a decision follows and the start of the window candidates come from."""

    settings: DedupSettings
    since: datetime

    def linked(self, plan: FoldPlan, found: Found) -> tuple[int, ...]:
        return linked_components(plan, found, self.settings)

    def decide(self, plan: FoldPlan, found: Found) -> FoldDecision:
        return decide(plan, found, self.settings)


@dataclass(frozen=True, slots=True)
class Held:
    """What the store held, before a slice was folded, for the slice's plans: the text hashes
    of its folded articles, and its candidates within the window by band key."""

    texts: frozenset[str]
    by_key: Mapping[int, Sequence[Candidate]]


def alone(plans: Sequence[tuple[FoldPlan, datetime]], held: Held, rules: FoldRules) -> list[bool]:
    """Which articles of a slice, each with the time it is seen at, fold with nothing when
    folded in order: no article of the same text and no candidate that folds with it, stored
    (`held`) or earlier in the slice. `decide` makes each of them a new story."""
    texts = set(held.texts)
    earlier: dict[int, list[dedup.Fingerprint]] = {}  # the slice's prints by band key
    result = []
    for plan, seen in plans:
        near = {c.article_id: c.print() for k in plan.band_keys for c in held.by_key.get(k, ())}
        prints = {id(p): p for k in plan.band_keys for p in earlier.get(k, ())}
        result.append(
            plan.text_hash not in texts
            and not any(
                cluster.verdict(plan.fingerprint, other, rules.settings).folds
                for other in (*near.values(), *prints.values())
            )
        )
        texts.add(plan.text_hash)
        if seen >= rules.since:  # the window holds it for the articles after it
            for key in plan.band_keys:
                earlier.setdefault(key, []).append(plan.fingerprint)
    return result


def linked_components(plan: FoldPlan, found: Found, settings: DedupSettings) -> tuple[int, ...]:
    """The components a new article touches: its exact text's, else those of the candidates it
    folds with, ascending. The store locks them and loads their articles as `Found.group`."""
    if found.exact is not None:
        return (found.exact.component,)
    folding = {
        c.component
        for c in found.candidates
        if cluster.verdict(plan.fingerprint, c.print(), settings).folds
    }
    return tuple(sorted(folding))


def decide(plan: FoldPlan, found: Found, settings: DedupSettings) -> FoldDecision:
    """The same text joins its story; an article that folds with none opens one; else its
    group (every article of the components it touches, and itself) is clustered afresh
    (`cluster.regroup`), so the stories are those of the set of articles, whatever the order
    they came in. A group past MAX_GROUP is not regrouped: the article joins its best story.
    """
    if found.exact is not None:
        return FoldDecision(Placement(found.exact.story_id))
    if not found.group:
        return NEW_STORY
    if len(found.group) >= MAX_GROUP:
        return _join_best(plan, found.candidates, settings)
    return _regroup(plan, found.group, settings)


def _regroup(plan: FoldPlan, group: Sequence[Candidate], settings: DedupSettings) -> FoldDecision:
    """The group with the new article (key None) clustered afresh, as placements."""
    placed: list[cluster.Placed[int | None]] = [
        cluster.Placed(m.article_id, m.story_id, m.print()) for m in group
    ]
    placed.append(cluster.Placed(None, None, plan.fingerprint))
    prints = {p.key: p.fingerprint for p in placed}
    story_of = {m.article_id: m.story_id for m in group}
    article = NEW_STORY
    others = []
    for regrouped in cluster.regroup(placed, settings):
        keys = regrouped.members
        moves = tuple(
            Move(key, _similarity_in(key, keys, prints, settings))
            for key in keys
            if key is not None and story_of[key] != regrouped.story
        )
        placement = Placement(regrouped.story, moves, regrouped.absorbed)
        if None in keys:
            article = FoldDecision(placement, _similarity_in(None, keys, prints, settings))
        elif moves or regrouped.absorbed:
            others.append(placement)
    return replace(article, others=tuple(others))


def _join_best(
    plan: FoldPlan, candidates: Sequence[Candidate], settings: DedupSettings
) -> FoldDecision:
    scored = [
        (c.story_id, cluster.verdict(plan.fingerprint, c.print(), settings)) for c in candidates
    ]
    story_id = cluster.choose_story(scored)
    return FoldDecision(Placement(story_id), _best(sim for sid, sim in scored if sid == story_id))


def _similarity_in(
    key: int | None,
    members: Sequence[int | None],
    prints: dict[int | None, dedup.Fingerprint],
    settings: DedupSettings,
) -> float:
    """An article's similarity in its story: its best against the other members."""
    return _best(cluster.verdict(prints[key], prints[k], settings) for k in members if k != key)


def _best(sims: Iterable[dedup.Similarity]) -> float:
    """The best estimate of some pairs (1.0 for none: a story's only article)."""
    return max((max(s.containment_est, s.jaccard_est) for s in sims), default=1.0)
