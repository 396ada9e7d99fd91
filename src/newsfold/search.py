"""`newsfold search`: stories whose copies match a query, best first, each story once.

    found = find_stories(store, 'zurich "central bank" -football', since=None, limit=20)

The query is read by `query.parse_query`; the store's index finds the matching articles and ranks
their stories (store/search.py); here each hit becomes its story with every copy and a snippet of
the copy that matched best.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from newsfold.model import Story
from newsfold.query import Snippet, highlight, parse_query
from newsfold.store import StorySearch


class SearchableStore(StorySearch, Protocol):
    def stories_by_id(self, ids: Sequence[int]) -> list[Story]: ...


@dataclass(frozen=True, slots=True)
class Found:
    """One story a query found: its score (higher is better) and a snippet of its best copy."""

    story: Story
    score: float
    snippet: Snippet


def find_stories(
    store: SearchableStore, text: str, since: datetime | None, limit: int
) -> list[Found]:
    """The stories matching `text`, best first; a QueryError when it holds nothing to search."""
    query = parse_query(text)
    hits = store.search_stories(query, since, limit)
    stories = {s.id: s for s in store.stories_by_id([hit.story_id for hit in hits])}
    return [
        Found(stories[hit.story_id], hit.score, highlight(hit.text, query))
        for hit in hits
        if hit.story_id in stories  # not folded away between the two reads
    ]
