"""One article into its story, as plain data: the plan, what the store found, the decision.

1. `plan` (before the store's transaction, in a worker process): the article's fingerprint, its
   exact-text hash, its LSH band keys and the keys the store locks while it folds it.
2. The store, inside the feed's transaction: locks every plan's `lock_keys` in one sweep
   (PostgreSQL), saves the article, and looks up what it `Found`: the story that holds the very
   same text, else the stored articles sharing a band key within the window.
3. `decide` (pure): dedup's rules over the plan and what was found give a `FoldDecision`, which
   the store applies: join a story or open one, and any merges and moves it carries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

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
    """A stored article that shares an LSH band with a new one."""

    article_id: int
    story_id: int
    fingerprint: bytes
    seen_at: datetime


@dataclass(frozen=True, slots=True)
class Found:
    """What the store found for one plan: the story of the same text, or the candidates."""

    exact_story: int | None
    candidates: tuple[Candidate, ...] = ()


@dataclass(frozen=True, slots=True)
class Merge:
    """Story `absorbed` is one text with story `story_id`: its articles join it and it goes."""

    story_id: int
    absorbed: int


@dataclass(frozen=True, slots=True)
class Move:
    """A stored article that belongs elsewhere: to `story_id`, or None: the decided story."""

    article_id: int
    story_id: int | None
    similarity: float


@dataclass(frozen=True, slots=True)
class FoldDecision:
    """Where the article goes (None: a new story), its similarity there, what else changes."""

    story_id: int | None
    similarity: float = 1.0
    merges: tuple[Merge, ...] = ()
    moves: tuple[Move, ...] = ()


@dataclass(frozen=True, slots=True)
class FoldRules:
    """The settings a decision follows and the start of the window candidates come from."""

    settings: DedupSettings
    since: datetime

    def decide(self, plan: FoldPlan, found: Found) -> FoldDecision:
        return decide(plan, found, self.settings)


def decide(plan: FoldPlan, found: Found, settings: DedupSettings) -> FoldDecision:
    """The same text joins its story; else the best verified candidate's story; else a new one.

    No chaining: a new article joins one story (cluster.choose_story).
    """
    if found.exact_story is not None:
        return FoldDecision(found.exact_story, 1.0)
    scored = [
        (
            c.story_id,
            dedup.compare(plan.fingerprint, dedup.Fingerprint.from_bytes(c.fingerprint), settings),
        )
        for c in found.candidates
    ]
    story_id = cluster.choose_story(scored)
    return FoldDecision(story_id, _similarity(story_id, scored))


def _similarity(story_id: int | None, scored: Sequence[tuple[int, dedup.Similarity]]) -> float:
    """The best estimate against the chosen story's members (1.0 for a new story)."""
    return max(
        (max(sim.containment_est, sim.jaccard_est) for sid, sim in scored if sid == story_id),
        default=1.0,
    )
