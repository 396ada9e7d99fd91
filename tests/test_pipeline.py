"""End to end through `pipeline.run`: real server, real feeds and pages, real SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from sqlalchemy import select

from newsfold import pipeline
from newsfold.articles import ArticleMaker, MadeArticles, PageJob
from newsfold.config import Settings
from newsfold.model import FeedSource, FeedState, RunReport
from newsfold.parse import parse_feed
from newsfold.store import Store, schema
from newsfold.store.sql import SqlStore
from tests.server import FeedServer, serve_corpus_feeds
from tests.textmetrics import (
    CorpusPage,
    corpus_pages,
    mean_f1_by_collection,
    plain_corpus_texts,
    snippet_counts,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def rss(items: list[tuple[str, str, str]], title: str = "Test feed") -> bytes:
    """An RSS 2.0 feed of (title, link, description) items."""
    body = "".join(
        f"<item><title>{escape(t)}</title><link>{escape(link)}</link><guid>{escape(link)}</guid>"
        f"<description>{escape(d)}</description><pubDate>{format_datetime(NOW)}</pubDate></item>"
        for t, link, d in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>http://example.org/</link>{body}</channel></rss>"
    ).encode()


def run(settings: Settings, store: Store, include_all: bool = True) -> RunReport:
    options = pipeline.RunOptions(include_all=include_all)
    return asyncio.run(pipeline.run(settings, store, lambda: datetime.now(UTC), options))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    opened = SqlStore(f"sqlite:///{tmp_path / 'newsfold.db'}")
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def site() -> Iterator[FeedServer]:
    """A server of this module's own, so its robots.txt cannot disturb other tests."""
    with FeedServer() as running:
        running.add(
            "/robots.txt", b"User-agent: *\nDisallow: /private/\n", content_type="text/plain"
        )
        yield running


def test_corpus_feeds_end_to_end(site: FeedServer, settings: Settings, store: SqlStore) -> None:
    """Every corpus feed yields its entries or a clear error on its state; a second run asks
    conditionally and stores nothing twice."""
    urls = serve_corpus_feeds(site)
    settings = settings.replace("extract", fetch_pages=False)
    store.sync_feeds([FeedSource(u) for u in urls.values()], NOW)
    first = run(settings, store)
    assert first.feeds_ok + first.feeds_failed == len(urls)
    states = {f.url: f for f in store.feeds()}
    cap = settings.fetch.max_new_per_feed
    for file, url in urls.items():
        state = states[url]
        try:
            parsed = parse_feed(
                file.read_bytes(), url=url, content_type=None, now=NOW, max_entries=10_000
            )
        except Exception as exc:  # a feed the parser refuses must be an error on its state
            assert state.status == "error" and state.last_error == str(exc)
            continue
        assert state.status == "ok", state.last_error
        assert state.entries == min(len(parsed.entries), cap), url
        assert state.name == parsed.title  # unnamed feeds are shown by their own title
    stats = store.stats()
    seen_before = len(site.requests)
    second = run(settings, store)
    # Feeds read whole last time carry validators; failed and capped ones are fetched again.
    complete = {u for u, f in states.items() if f.status == "ok" and f.entries < cap}
    asked = {site.url(path): h for _, path, h in site.requests[seen_before:]}
    assert all("If-None-Match" in asked[u] or "If-Modified-Since" in asked[u] for u in complete)
    assert second.feeds_not_modified >= len(urls) - first.feeds_failed - 1  # the capped feed
    assert store.stats()["articles"] == stats["articles"]
    assert store.stats()["stories"] == stats["stories"]


def test_article_text_matches_plain_trafilatura(
    site: FeedServer, settings: Settings, store: SqlStore
) -> None:
    """Stored article text scores, per corpus collection, within 0.01 token F1 of plain
    trafilatura.extract on the same bytes (both measured here)."""
    pages = corpus_pages()
    links: dict[Path, str] = {}
    by_collection: dict[str, list[tuple[str, str, str]]] = {}
    for page in pages:
        path = "/pages/" + page.path.relative_to(page.path.parents[1]).as_posix().removesuffix(
            ".gz"
        )
        links[page.path] = site.add_html_gz(path, page.path)
        by_collection.setdefault(page.collection, []).append((page.path.name, links[page.path], ""))
    feeds = [
        site.add(f"/collections/{name}.xml", rss(items)) for name, items in by_collection.items()
    ]
    store.sync_feeds([FeedSource(u) for u in feeds], NOW)
    report = run(settings, store)
    assert report.feeds_failed == 0
    texts = _page_texts_by_link(store)
    ours = [texts.get(links[p.path], "") for p in pages]
    plain = list(plain_corpus_texts())
    ours_f1, plain_f1 = mean_f1_by_collection(pages, ours), mean_f1_by_collection(pages, plain)
    for collection, score in plain_f1.items():
        assert ours_f1[collection] >= score - 0.01, (collection, ours_f1[collection], score)
        assert ours_f1[collection] >= 0.85
    snippets = [i for i, p in enumerate(pages) if p.truth_format == "trafilatura-with-without"]
    ours_found, ours_absent = snippet_counts(_pick(pages, snippets), _pick(ours, snippets))
    plain_found, plain_absent = snippet_counts(_pick(pages, snippets), _pick(plain, snippets))
    assert ours_found >= plain_found - 2 and ours_absent >= plain_absent - 2


def _pick(items: list[CorpusPage] | list[str], indexes: list[int]) -> list:  # type: ignore[type-arg]
    return [items[i] for i in indexes]


def _page_texts_by_link(store: SqlStore) -> dict[str, str]:
    """Entry link -> the text extracted from its page (pages may share a canonical URL)."""
    join = schema.entries.join(schema.articles, schema.entries.c.article_id == schema.articles.c.id)
    query = (
        select(schema.entries.c.link, schema.articles.c.text)
        .select_from(join)
        .where(schema.articles.c.text_source == "page")
    )
    with store.engine.connect() as conn:
        return {row.link: row.text for row in conn.execute(query)}


def test_page_faults_keep_the_feed_text(
    site: FeedServer, settings: Settings, store: SqlStore, corpus: Path
) -> None:
    """A page that 404s, times out, is too big, is a PDF or is disallowed by robots.txt is
    recorded with its reason; the entry keeps the feed's text; the feed's other articles land."""
    good = site.add_html_gz("/site/good.html", next(corpus.glob("articles/fundus/us/*.html.gz")))
    site.add("/site/doc.pdf", b"%PDF-1.4 not really", content_type="application/pdf")
    site.add(
        "/private/secret.html", b"<html><body><p>secret</p></body></html>", content_type="text/html"
    )
    faults = {
        site.url("/fault/status/404"): "HTTP 404",
        site.url("/fault/timeout"): "no complete answer within",
        site.url("/fault/huge"): "cap",
        site.url("/site/doc.pdf"): "not an HTML page (application/pdf)",
        site.url("/private/secret.html"): "disallowed by robots.txt",
    }
    items = [("Good", good, "short teaser")] + [
        (f"Fault {i}", url, f"Feed text of fault {i}, kept when the page fails.")
        for i, url in enumerate(faults)
    ]
    feed = site.add("/faults.xml", rss(items))
    store.sync_feeds([FeedSource(feed)], NOW)
    settings = settings.replace("fetch", max_bytes=5_000_000)
    report = run(settings, store)
    assert report.feeds_ok == 1 and report.articles_new == len(items)
    article, _story = store.article_text(good) or (None, None)
    assert article is not None and article.text_source == "page" and len(article.text) > 500
    for i, (url, reason) in enumerate(faults.items()):
        stored = store.article_text(url)
        assert stored is not None, url
        assert stored[0].text_source == "feed"
        assert stored[0].text == f"Feed text of fault {i}, kept when the page fails."
        assert reason in (stored[0].page_error or ""), (url, stored[0].page_error)


def test_same_article_from_two_feeds_is_one(
    site: FeedServer, settings: Settings, store: SqlStore, corpus: Path
) -> None:
    """One page listed by two feeds, once with tracking parameters, is one article."""
    page = site.add_html_gz("/shared/story.html", next(corpus.glob("articles/fundus/uk/*.html.gz")))
    one = site.add("/one.xml", rss([("Story", page, "")]))
    two = site.add("/two.xml", rss([("Story again", page + "?utm_source=rss&utm_medium=feed", "")]))
    store.sync_feeds([FeedSource(one), FeedSource(two)], NOW)
    report = run(settings, store)
    assert report.articles_new == 1
    assert site.count("/shared/story.html") == 1
    assert store.stats()["articles"] == 1
    assert {f.entries for f in store.feeds()} == {1}


def test_a_bug_in_one_feed_spares_the_others(
    site: FeedServer, settings: Settings, store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception while handling one feed is stored on that feed as an internal
    error; the other feeds of the run land."""
    good = site.add("/bug/good.xml", rss([("Fine", site.url("/bug/fine.html"), "Fine text.")]))
    bad = site.add("/bug/bad.xml", rss([("Boom", site.url("/bug/boom.html"), "Boom text.")]))
    original = ArticleMaker.finish

    async def finish_or_fail(
        self: ArticleMaker, feed: FeedState, *args: object
    ) -> tuple[MadeArticles, list[PageJob]]:
        if feed.url == bad:
            raise RuntimeError("simulated bug")
        return await original(self, feed, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ArticleMaker, "finish", finish_or_fail)
    store.sync_feeds([FeedSource(good), FeedSource(bad)], NOW)
    report = run(settings.replace("extract", fetch_pages=False), store)
    assert (report.feeds_ok, report.feeds_failed) == (1, 1)
    states = {f.url: f for f in store.feeds()}
    assert states[bad].status == "error" and states[bad].error_kind == "internal"
    assert states[bad].last_error == f"{bad}: internal error: RuntimeError: simulated bug"
    assert states[good].status == "ok" and store.stats()["articles"] == 1


def test_entries_past_the_cap_wait_for_the_next_run(
    site: FeedServer, settings: Settings, store: SqlStore
) -> None:
    """A feed with more new entries than fetch.max_new_per_feed stores the cap, reports the
    rest as deferred, and they arrive on the next run."""
    items = [(f"Item {i}", site.url(f"/cap/{i}.html"), f"Text of item {i}.") for i in range(25)]
    feed = site.add("/cap/feed.xml", rss(items))
    store.sync_feeds([FeedSource(feed)], NOW)
    settings = settings.replace("extract", fetch_pages=False).replace("fetch", max_new_per_feed=10)
    first = run(settings, store)
    assert (first.entries_new, first.entries_deferred) == (10, 15)
    second = run(settings, store)
    assert (second.entries_new, second.entries_deferred) == (10, 5)
    third = run(settings, store)
    assert (third.entries_new, third.entries_deferred) == (5, 0)
    assert store.stats()["articles"] == 25


@pytest.mark.parametrize("validators", [True, False], ids=["etag", "no-validators"])
def test_a_body_that_is_not_a_feed_is_not_parsed_again(
    site: FeedServer,
    settings: Settings,
    store: SqlStore,
    monkeypatch: pytest.MonkeyPatch,
    validators: bool,
) -> None:
    """A feed URL that answers an HTML page keeps failing with the same error while the page
    stays the same (asked with its validators when it had some: a 304), without a new parse;
    once the URL serves a feed again, the feed is read and its entries stored."""
    path = f"/not-a-feed/{'etag' if validators else 'plain'}.xml"
    body = b"<!DOCTYPE html><html><body><p>Moved to our new site.</p></body></html>"
    feed_body = rss([("Back", site.url("/not-a-feed/back.html"), "Back again.")])
    serving = {"body": body}
    if validators:
        url = site.add(path, body, content_type="text/html")
    else:
        url = site.add_handler(
            path, lambda h: h.send_body(serving["body"], content_type="text/html")
        )
    parsed: list[str] = []
    original = pipeline._FeedRunner._parse

    async def counted(self: pipeline._FeedRunner, feed: FeedState, result: object) -> object:
        parsed.append(feed.url)
        return await original(self, feed, result)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline._FeedRunner, "_parse", counted)
    store.sync_feeds([FeedSource(url)], NOW)
    settings = settings.replace("extract", fetch_pages=False)
    expected = f"{url}: an HTML page, not a feed"

    for checks in (1, 2, 3):
        report = run(settings, store)
        (state,) = store.feeds()
        assert (report.feeds_failed, report.failures_by_kind) == (1, {"parse": 1})
        assert (state.status, state.last_error, state.error_count) == ("error", expected, checks)
        assert parsed == [url]  # the first check only
    if validators:
        asked = [h for _, seen, h in site.requests if seen == path]
        assert [h.get("If-None-Match") is not None for h in asked] == [False, True, True]

    if validators:
        site.add(path, feed_body)
    else:
        serving["body"] = feed_body
    report = run(settings, store)
    (state,) = store.feeds()
    assert (report.feeds_ok, report.articles_new, state.status) == (1, 1, "ok")
    assert state.last_error is None and len(parsed) == 2
