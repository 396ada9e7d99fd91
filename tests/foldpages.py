"""Dedup through the whole pipeline: the labelled set published as pages and feeds, scored.

    docs = labelled_docs(seed, originals, texts)         # tests/syndicate.py
    with FeedServer() as server:
        feed_urls = serve_docs(server, docs)             # every page, one RSS feed per section
        run_all(settings, store, feed_urls)              # pipeline.run on a fresh store
        result = score_run(docs, server.base_url, story_by_link(store))

Each doc is served where its outlet would publish it, /<outlet host>/news/<slug> on the test
server: a corpus page (the corpus groups, the originals of syndicated copies and every other
corpus article) as it was captured, a generated copy or trap story as `outlet_page` renders it in
its outlet's template. Each outlet lists its docs in section feeds of at most FEED_ITEMS items, so
feeds interleave as a run takes them. A page's canonical link names the outlet's real host,
another site than the test server, so newsfold keeps the served URL as the article's identity;
the labels are matched through the entries that link to the pages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import combinations
from urllib.parse import urlsplit

from sqlalchemy import select

from newsfold import pipeline
from newsfold.config import Settings
from newsfold.model import FeedSource, RunReport
from newsfold.store import schema
from newsfold.store.sql import SqlStore
from newsfold.urls import canonicalize_url
from tests.server import FeedServer
from tests.syndicate import OUTLETS, Doc, Outlet, Score, outlet_feed, outlet_page, score
from tests.textmetrics import CORPUS

FEED_ITEMS = 30  # items per section feed
RSS_TYPE = "application/rss+xml"
HTML_TYPE = "text/html; charset=utf-8"


def page_path(doc: Doc) -> str:
    """Where the test server serves `doc`: its outlet URL's path under the outlet's host."""
    url = urlsplit(doc.url)
    return f"/{url.hostname}{url.path}"


def is_corpus_page(doc: Doc) -> bool:
    """Whether `doc` is a corpus page served as captured (its id is the page's corpus path)."""
    return doc.id.endswith(".html.gz")


def page_html(doc: Doc) -> bytes:
    """The page of a generated doc (a copy or a trap story) in its outlet's template."""
    return outlet_page(doc).encode()


@dataclass(frozen=True, slots=True)
class Section:
    """One feed of an outlet: its path on the server and the docs it lists."""

    path: str
    outlet: Outlet
    docs: tuple[Doc, ...]


def sections(docs: Sequence[Doc]) -> list[Section]:
    """Each outlet's docs, oldest first, cut into feeds of at most FEED_ITEMS items."""
    found = []
    for outlet in OUTLETS:
        mine = sorted((d for d in docs if d.outlet == outlet), key=lambda d: (d.published, d.id))
        for number, start in enumerate(range(0, len(mine), FEED_ITEMS)):
            path = f"/feeds/{outlet.host}/{number}.xml"
            found.append(Section(path, outlet, tuple(mine[start : start + FEED_ITEMS])))
    return found


def feed_body(section: Section, base_url: str, *, oldest_first: bool = False) -> bytes:
    """The section's RSS feed, its links pointing at the test server instead of the outlet.

    Items come newest first, as outlets publish them; `oldest_first` reverses them.
    """
    host = section.outlet.host
    rss = outlet_feed(section.outlet, section.docs).replace(
        f"https://{host}/", f"{base_url}/{host}/"
    )
    if oldest_first:  # outlet_feed writes one item per line
        start, end = rss.index("<item>"), rss.rindex("</item>\n") + len("</item>\n")
        items = rss[start:end].splitlines(keepends=True)
        rss = rss[:start] + "".join(reversed(items)) + rss[end:]
    return rss.encode()


def serve_pages(server: FeedServer, docs: Sequence[Doc]) -> None:
    """Serve every doc's page: a corpus page as captured, any other in its outlet's template."""
    for doc in docs:
        if is_corpus_page(doc):
            server.add_html_gz(page_path(doc), CORPUS / doc.id)
        else:
            server.add(page_path(doc), page_html(doc), content_type=HTML_TYPE)


def serve_feeds(
    server: FeedServer, docs: Sequence[Doc], *, oldest_first: bool = False
) -> list[str]:
    """Serve the section feeds (under /oldest-first when so); their URLs, in `sections` order."""
    prefix = "/oldest-first" if oldest_first else ""
    return [
        server.add(
            prefix + s.path,
            feed_body(s, server.base_url, oldest_first=oldest_first),
            content_type=RSS_TYPE,
        )
        for s in sections(docs)
    ]


def serve_docs(server: FeedServer, docs: Sequence[Doc]) -> list[str]:
    """Serve every page and every section feed; the feed URLs, in `sections` order."""
    serve_pages(server, docs)
    return serve_feeds(server, docs)


def run_all(settings: Settings, store: SqlStore, feed_urls: Iterable[str]) -> RunReport:
    """newsfold's run over these feeds, as `newsfold run --all` does it: the feeds are added
    to the store in the order given (the order a run takes them in), then every feed is checked."""
    store.sync_feeds([FeedSource(url) for url in feed_urls], datetime.now(UTC))
    options = pipeline.RunOptions(include_all=True)
    return asyncio.run(pipeline.run(settings, store, lambda: datetime.now(UTC), options))


def story_by_link(store: SqlStore) -> dict[str, int]:
    """Each feed entry's link (canonical form) -> the story its article belongs to."""
    entries, articles = schema.entries, schema.articles
    query = select(entries.c.link, articles.c.story_id).join(
        articles, entries.c.article_id == articles.c.id
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return {canonicalize_url(row.link) or row.link: row.story_id for row in rows if row.link}


def doc_link(doc: Doc, base_url: str) -> str:
    """The link a feed gives for `doc`, in the canonical form newsfold keeps."""
    url = base_url + page_path(doc)
    return canonicalize_url(url) or url


@dataclass(frozen=True, slots=True)
class RunScore:
    """A run's stories against the labels; `missing` docs have no article (shown as singles)."""

    score: Score
    missing: tuple[str, ...]


def score_run(docs: Sequence[Doc], base_url: str, stories: Mapping[str, int]) -> RunScore:
    """Score the stories newsfold made of `docs` (`story_by_link` of its store)."""
    clusters: list[object] = []
    missing = []
    for doc in docs:
        story = stories.get(doc_link(doc, base_url))
        if story is None:
            missing.append(doc.id)
        clusters.append(("missing", doc.id) if story is None else story)
    return RunScore(score(docs, clusters), tuple(missing))


def family(doc: Doc) -> str:
    """Which kind of same-story pairs `doc` belongs to, for recall by family."""
    if doc.kind.startswith("group:"):
        return "corpus groups (captured pages)"
    if doc.story.startswith("trap-"):
        return "trap stories and their copies"
    return "syndicated corpus texts (outlet pages)"


def pair_recall(docs: Sequence[Doc], clusters: Sequence[object]) -> dict[str, tuple[int, int]]:
    """Per family: (same-story pairs put in one cluster, same-story pairs)."""
    by_story: dict[str, list[object]] = {}
    for doc, cluster in zip(docs, clusters, strict=True):
        by_story.setdefault(doc.story, []).append(cluster)
    counts: dict[str, tuple[int, int]] = {}
    for doc in {d.story: d for d in docs}.values():
        members = by_story[doc.story]
        pairs = list(combinations(members, 2))
        if pairs:
            joined, total = counts.get(family(doc), (0, 0))
            counts[family(doc)] = (joined + sum(a == b for a, b in pairs), total + len(pairs))
    return counts
