"""Stories as users read them: the canonical copy first and titling the story, the rest in
publishing order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from newsfold.model import Story, StoryArticle
from newsfold.stories import canonical_first

NOON = datetime(2026, 2, 18, 12, 0, tzinfo=UTC)


def copy(article_id: int, host: str, hours: float | None) -> StoryArticle:
    published = NOON + timedelta(hours=hours) if hours is not None else None
    url = f"https://{host}/story-{article_id}"
    return StoryArticle(article_id, url, None, f"title at {host}", host, published, 900, 0.9)


# Stored order: an undated copy, a late one, the earliest, an AFP copy in between.
COPIES = (
    copy(1, "undated.example", None),
    copy(2, "late.example", 5),
    copy(3, "early.example", 0),
    copy(4, "www.afp.com", 2),
)
STORY = Story(7, "stored title", "https://stored.example/", NOON, COPIES)


def test_earliest_copy_leads_and_the_rest_follow_by_date_undated_last() -> None:
    ordered = canonical_first(STORY, ())
    assert [a.article_id for a in ordered.articles] == [3, 4, 2, 1]
    assert (ordered.title, ordered.url) == ("title at early.example", COPIES[2].url)
    assert (ordered.id, ordered.first_seen) == (STORY.id, STORY.first_seen)


def test_a_preferred_outlet_leads_even_when_later() -> None:
    ordered = canonical_first(STORY, ("reuters.com", "afp.com"))
    assert [a.article_id for a in ordered.articles] == [4, 3, 2, 1]
    assert ordered.url == "https://www.afp.com/story-4"
