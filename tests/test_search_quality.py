"""Search quality on the generated syndicated web (tests/syndicate.py), on every store backend.

The labelled set is stored with its true stories (dedup is measured elsewhere): syndicated copies
with new headlines, cuts, notes and page chrome, templated look-alike stories that share most of
their wording, and every other corpus article. For 100 stories with several copies, a phrase of
five words from the middle of one copy's text must find its story among the first three results
in at least 95 queries: a user pasting a sentence remembered from an article finds that story.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator

import pytest

from newsfold.query import words_of
from newsfold.search import find_stories
from newsfold.store import Store
from tests.syndicate import Doc, labelled_docs
from tests.test_search import save

SEED = 1
QUERIES = 100
PHRASE_WORDS = 5
TOP = 3
FLOOR = 0.95


@pytest.fixture(scope="module")
def docs() -> list[Doc]:
    return labelled_docs(SEED, originals=100)


def phrase_queries(docs: list[Doc]) -> Iterator[tuple[str, str]]:
    """(query, story) for QUERIES stories with several copies: five words from the middle of
    one copy's text, quoted."""
    copies: dict[str, list[Doc]] = defaultdict(list)
    for doc in docs:
        copies[doc.story].append(doc)
    several = sorted(story for story, members in copies.items() if len(members) > 1)
    rng = random.Random(SEED)
    for story in rng.sample(several, QUERIES):
        words = words_of(rng.choice(copies[story]).text)
        middle = max(0, len(words) // 2 - PHRASE_WORDS // 2)
        yield '"' + " ".join(words[middle : middle + PHRASE_WORDS]) + '"', story


def store_docs(store: Store, docs: list[Doc]) -> dict[str, str]:
    """Every doc in `store`, in its true story; the story of each stored story's label."""
    by_story: dict[str, list[Doc]] = defaultdict(list)
    for doc in docs:
        by_story[doc.story].append(doc)
    story_of = {}
    for number, (story, members) in enumerate(sorted(by_story.items())):
        label = f"s{number}"
        story_of[label] = story
        first = min(members, key=lambda d: d.published)
        save(store, label, [d.text for d in members], at=first.published, title=first.title)
    return story_of


def phrase_misses(store: Store, docs: list[Doc]) -> list[str]:
    """The phrase queries whose story is not among the first TOP results."""
    story_of = store_docs(store, docs)
    misses = []
    for query, story in phrase_queries(docs):
        found = find_stories(store, query, None, TOP)
        top = [story_of[f.story.articles[0].url.rsplit("/", 1)[1]] for f in found]
        if story not in top:
            misses.append(query)
    return misses


@pytest.mark.slow
def test_a_phrase_from_a_copy_finds_its_story_in_the_top_3(store: Store, docs: list[Doc]) -> None:
    """>= 95 of 100 five-word phrases rank their story in the first three results."""
    misses = phrase_misses(store, docs)
    assert QUERIES - len(misses) >= FLOOR * QUERIES, f"missed: {misses}"
