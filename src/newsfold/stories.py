"""Stories as users read them, and why two stored articles fold or not.

Every reader of stories (the CLI's tables and JSON, the exports, the demo) gets each story with
its canonical copy first (`cluster.choose_canonical`, the preferred outlets honoured) and the other
copies in publishing order. `compare_stored` is `explain`: two stored articles compared the way
the fold compares them, and exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from newsfold import cluster, dedup
from newsfold.config import DedupSettings
from newsfold.model import Article, Story, StoryArticle
from newsfold.store import StoryReader
from newsfold.urls import canonicalize_url, host_of

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class NotStored(LookupError):
    """An article asked for by URL is not in the store."""


def recent_stories(
    store: StoryReader, preferred: Sequence[str], since: datetime | None, limit: int | None
) -> list[Story]:
    """Stories updated since `since` (all when None), newest first, canonical copy first."""
    return [canonical_first(story, preferred) for story in store.stories(since, limit)]


def one_story(store: StoryReader, story_id: int, preferred: Sequence[str]) -> Story | None:
    """One story, canonical copy first; None when there is no such story."""
    found = store.story(story_id)
    return canonical_first(found, preferred) if found else None


def canonical_first(story: Story, preferred: Sequence[str]) -> Story:
    """The story titled and linked by its canonical copy, which comes first; then the others
    in publishing order."""
    copies = [
        cluster.Copy(i, host_of(a.url), a.published, a.text_chars)
        for i, a in enumerate(story.articles)
    ]
    first = story.articles[cluster.choose_canonical(copies, preferred).key]
    rest = sorted((a for a in story.articles if a is not first), key=publishing_order)
    return replace(story, title=first.title, url=first.url, articles=(first, *rest))


def publishing_order(copy: StoryArticle) -> tuple[bool, datetime, int]:
    """Earliest published first, undated copies last, then in the order they were stored."""
    return (copy.published is None, copy.published or EPOCH, copy.article_id)


@dataclass(frozen=True, slots=True)
class Comparison:
    """Two stored articles side by side: the fold's estimate and verdict, the exact figures."""

    similarity: dedup.Similarity  # from MinHash fingerprints, as the fold decided
    exact_jaccard: float
    exact_containment: float
    story_ids: tuple[int | None, int | None]  # the stories they are stored in

    @property
    def same_story(self) -> bool:
        return self.story_ids[0] == self.story_ids[1]


def compare_stored(
    store: StoryReader, url_a: str, url_b: str, settings: DedupSettings
) -> Comparison:
    """Compare two stored articles by URL (any spelling of it); NotStored names a missing one."""
    (a, story_a), (b, story_b) = (_stored(store, url) for url in (url_a, url_b))
    similarity = dedup.compare(
        dedup.fingerprint(a.text, settings), dedup.fingerprint(b.text, settings), settings
    )
    jaccard, containment = dedup.exact_similarity(a.text, b.text, settings)
    return Comparison(similarity, jaccard, containment, (story_a, story_b))


def _stored(store: StoryReader, url: str) -> tuple[Article, int | None]:
    found = store.article_text(canonicalize_url(url) or url)
    if found is None:
        raise NotStored(f"{url}: not in the store")
    return found
