"""Clustering: which texts make one story, and which copy represents it. Pure, no SQL, no clock.

`dedup.compare` says whether two texts fold; this module turns those pairwise verdicts into
stories. `cluster` groups one connected set of texts (average linkage, so no chain of look-alikes
grows a story), `regroup` turns that grouping into merges and moves of existing stories, so the
stories depend on the set of articles and not on the order they came in, `choose_story` is the
first-come rule (a new article joins the one story it matches best) and `choose_canonical` picks
the copy that represents a story.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Generic, Literal, TypeVar

import numpy as np

from newsfold.config import DedupSettings
from newsfold.dedup import Fingerprint, Similarity, compare

StoryId = TypeVar("StoryId")
Key = TypeVar("Key")
Linkage = Literal["average", "folds-only", "complete", "single"]
LINKAGE_SHARE = 0.5  # average linkage: more than this share of cross pairs must agree
RELATED = 0.1  # containment below the threshold but at least this: texts that share a part
NEAR_COPY = 0.6  # Jaccard index of a folding pair that is most of one text: a near-copy


def choose_story(candidates: Sequence[tuple[StoryId, Similarity]]) -> StoryId | None:
    """The one story a new article joins, or None for a new story.

    `candidates` pairs a candidate story with the article's similarity to one of its members;
    a story may appear once per member or once with its best member, the result is the same.
    Among the pairs that fold, the highest containment (then Jaccard) wins; ties keep the first
    given. It merges no stories (an article that bridges two joins one of them): the rule for
    a group too large to regroup (`fold.MAX_GROUP`) and the ablation's "first come".
    """
    folding = [
        (sim.containment_est, sim.jaccard_est, -i, story)
        for i, (story, sim) in enumerate(candidates)
        if sim.folds
    ]
    return max(folding, key=lambda item: item[:3])[3] if folding else None


@dataclass(frozen=True, slots=True)
class Placed(Generic[Key]):
    """An article of a connected group: its key, its story (None: not placed yet), its text."""

    key: Key
    story: int | None
    fingerprint: Fingerprint


@dataclass(frozen=True, slots=True)
class Group(Generic[Key]):
    """One story of a regrouped connected group.

    `story` is the story it keeps (None: a new story), `members` its articles, `absorbed` the
    other stories merged into it: their members are in `members`, their ids now lead here.
    """

    story: int | None
    members: tuple[Key, ...]
    absorbed: tuple[int, ...] = ()


def cluster(
    fingerprints: Sequence[Fingerprint],
    settings: DedupSettings,
    linkage: Linkage = "average",
) -> list[list[int]]:
    """The stories of one connected group of texts, as lists of indexes into `fingerprints`.

    Identical texts are one node. Nodes start alone and the two groups with the strongest
    link merge, again and again, while a link holds (`_Pairs.link`). With "average" linkage
    (the rule) two groups join when a pair across them folds and either more than half of
    the pairs across agree (fold, or share a part of their text without contradicting each
    other) or, with no pair across contradicting, a text of a folding pair has a near-copy in
    either group (an updated version that holds the whole original: a copy cut from its new
    part joins them). A contradiction that a near-copy explains does not count: when a
    near-copy of one text of the pair folds with the other, the two versions differ by a
    corrected figure or a new paragraph, which a copy cut short may hold or lack. So one text
    that folds with two stories whose own texts do not match (a roundup of two stories, a
    background shared by two live posts) never joins them.
    "folds-only" counts folding pairs alone, "complete" needs every pair, "single" one (the
    ablation of bench_fold_e2e). Ties go by the mean containment across, then by the text
    hashes: the outcome depends on the set of texts, never on the order they came in.
    """
    nodes: dict[bytes, list[int]] = {}
    for index, fp in enumerate(fingerprints):
        nodes.setdefault(fp.text_hash, []).append(index)
    order = sorted(nodes)
    pairs = _Pairs([fingerprints[nodes[h][0]] for h in order], settings)
    groups = _Agglomeration(pairs, linkage).groups()
    return sorted(sorted(i for node in group for i in nodes[order[node]]) for group in groups)


class _Pairs:
    """Every pair of a group's texts compared once: what `cluster` links groups by."""

    def __init__(self, prints: Sequence[Fingerprint], settings: DedupSettings) -> None:
        size = len(prints)
        self.folds = np.zeros((size, size), dtype=bool)
        self.agree = np.zeros((size, size), dtype=bool)  # folds, or shares a part, no contradiction
        self.contradict = np.zeros((size, size), dtype=bool)  # different news (`compare`)
        self.near = np.zeros((size, size), dtype=bool)  # folds and is most of the same text
        self.strength = np.zeros((size, size))
        for i in range(size):
            for j in range(i + 1, size):
                sim = verdict(prints[i], prints[j], settings)
                related = sim.containment_est >= RELATED
                values = {
                    "folds": sim.folds,
                    "agree": sim.folds or (related and not sim.contradicts),
                    "contradict": sim.contradicts,
                    "near": sim.folds and sim.jaccard_est >= NEAR_COPY,
                    "strength": sim.containment_est,
                }
                for name, value in values.items():
                    matrix = getattr(self, name)
                    matrix[i, j] = matrix[j, i] = value

    def anchored(self, x: list[int], y: list[int]) -> bool:
        """Whether a text of a folding pair across has a near-copy in either group."""
        both = x + y
        has_near = np.asarray(self.near[np.ix_(both, both)].any(axis=1))
        in_x, in_y = has_near[: len(x)], has_near[len(x) :]
        folds = self.folds[np.ix_(x, y)]
        return bool((folds & in_x[:, None]).any() or (folds & in_y[None, :]).any())

    def contradicted(self, x: list[int], y: list[int]) -> bool:
        """Whether a pair across contradicts that no near-copy of either text explains.

        Near-copies are versions of one text (a corrected figure, a new paragraph): when a
        near-copy of one text of the pair, in either group, folds with the other text, the pair
        contradicts over what the versions changed, not over different news.
        """
        both, cut = x + y, len(x)
        near = self.near[np.ix_(both, both)].astype(int)
        folds = self.folds[np.ix_(both, both)].astype(int)
        explained = (near[:cut] @ folds[:, cut:] + folds[:cut] @ near[:, cut:]) > 0
        return bool((self.contradict[np.ix_(x, y)] & ~explained).any())


def verdict(a: Fingerprint, b: Fingerprint, settings: DedupSettings) -> Similarity:
    """`compare`, remembered: a story regrouped as each copy arrives compares its pairs again.
    (`compare` is symmetric; one order of the two serves both.)"""
    return _remembered(*sorted((a, b), key=lambda fp: fp.text_hash), settings)


# Enough for the pairs of a story of 120 copies; each entry keeps two fingerprints (~2 KB each)
# alive, so the bound is also the cache's memory: at most some 32 MB.
@lru_cache(maxsize=1 << 13)
def _remembered(a: Fingerprint, b: Fingerprint, settings: DedupSettings) -> Similarity:
    return compare(a, b, settings)


class _Agglomeration:
    """Groups of nodes merged two at a time, the strongest link first, while a link holds.

    Sums over the pairs across every two groups are kept (a merge adds one group's rows and
    columns to the other's), so each step weighs every pair of groups at once. A group keeps
    the slot of its first node: slots order groups as the nodes are, and break ties.
    """

    def __init__(self, pairs: _Pairs, linkage: Linkage) -> None:
        self.pairs, self.linkage = pairs, linkage
        self.members = {i: [i] for i in range(len(pairs.folds))}
        self.folds = pairs.folds.astype(np.int64)
        self.agree = pairs.agree.astype(np.int64)
        self.contradict = pairs.contradict.astype(np.int64)
        self.strength = pairs.strength.copy()
        self.sizes = np.ones(len(pairs.folds), dtype=np.int64)

    def groups(self) -> list[list[int]]:
        while len(self.members) > 1:
            best = self._strongest_link()
            if best is None:
                break
            self._merge(*best)
        return list(self.members.values())

    def _strongest_link(self) -> tuple[int, int] | None:
        slots = np.array(sorted(self.members))
        across = np.ix_(slots, slots)
        pairs = self.sizes[slots][:, None] * self.sizes[slots][None, :]
        folds = self.folds[across]
        linked = np.triu(folds > 0, k=1)
        share = folds / pairs
        if self.linkage == "complete":
            linked &= folds == pairs
        elif self.linkage == "folds-only":
            linked &= share > LINKAGE_SHARE
        elif self.linkage == "average":
            agreed = self.agree[across] / pairs > LINKAGE_SHARE
            contradicting = self.contradict[across] > 0
            for x, y in np.argwhere(linked & ~agreed):
                gx, gy = self.members[slots[x]], self.members[slots[y]]
                contradicted = contradicting[x, y] and self.pairs.contradicted(gx, gy)
                agreed[x, y] = not contradicted and self.pairs.anchored(gx, gy)
            linked &= agreed
        xs, ys = np.nonzero(linked)
        if not len(xs):
            return None
        strength = self.strength[across][xs, ys] / pairs[xs, ys]
        best = np.lexsort((-ys, -xs, strength, share[xs, ys]))[-1]
        return int(slots[xs[best]]), int(slots[ys[best]])

    def _merge(self, x: int, y: int) -> None:
        for sums in (self.folds, self.agree, self.contradict, self.strength):
            sums[x, :] += sums[y, :]
            sums[:, x] += sums[:, y]
        self.sizes[x] += self.sizes[y]
        self.members[x] += self.members.pop(y)


def regroup(
    placed: Sequence[Placed[Key]], settings: DedupSettings, linkage: Linkage = "average"
) -> list[Group[Key]]:
    """The stories of a connected group after a new article joined it, as merges and moves.

    `placed` holds every article of the group (those already in stories and the new one).
    The group is clustered afresh (`cluster`), so the result does not depend on the order the
    articles came in. Each existing story, oldest (lowest id) first, stays with the group
    holding most of its members among those no older story kept; a story whose members all
    went to groups older stories kept is merged into the one holding most of them. A group
    left without a story is a new story.
    """
    groups = cluster([p.fingerprint for p in placed], settings, linkage)
    of_group = {member: g for g, members in enumerate(groups) for member in members}
    keeps: list[int | None] = [None] * len(groups)
    absorbed: list[list[int]] = [[] for _ in groups]
    for story in sorted({p.story for p in placed if p.story is not None}):
        held = Counter(of_group[i] for i, p in enumerate(placed) if p.story == story)
        free = [g for g in held if keeps[g] is None]
        if free:
            keeps[min(free, key=lambda g: (-held[g], g))] = story
        else:
            absorbed[min(held, key=lambda g: (-held[g], g))].append(story)
    return [
        Group(keeps[g], tuple(placed[i].key for i in members), tuple(absorbed[g]))
        for g, members in enumerate(groups)
    ]


@dataclass(frozen=True, slots=True)
class Copy(Generic[Key]):
    """What `choose_canonical` looks at in one copy of a story."""

    key: Key  # whatever identifies the copy for the caller (article id, URL, ...)
    site: str | None
    published: datetime | None
    text_chars: int


def choose_canonical(
    copies: Sequence[Copy[Key]], preferred_outlets: Sequence[str] = ()
) -> Copy[Key]:
    """The copy that represents a story.

    Rule, in order: a copy from the first outlet of `preferred_outlets` that has one (host names,
    matched exactly or as a parent domain, "afp.com" matches "www.afp.com"); then the earliest
    published (copies without a date come last); then the longest text; then the first given.
    """
    if not copies:
        raise ValueError("a story has at least one copy")

    def rank(item: tuple[int, Copy[Key]]) -> tuple[int, float, int, int]:
        index, copy = item
        when = copy.published.timestamp() if copy.published else float("inf")
        return (_preference(copy.site, preferred_outlets), when, -copy.text_chars, index)

    return min(enumerate(copies), key=rank)[1]


def _preference(site: str | None, preferred: Sequence[str]) -> int:
    host = (site or "").lower().rstrip(".")
    for rank, outlet in enumerate(preferred):
        outlet = outlet.lower()
        if host == outlet or host.endswith("." + outlet):
            return rank
    return len(preferred)
