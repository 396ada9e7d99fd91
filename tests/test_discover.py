"""Feed discovery: announced feeds on real pages, probe paths, and the cheap feed sniff."""

from __future__ import annotations

import asyncio
import gzip
import re
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from newsfold.config import Settings
from newsfold.discover import (
    COMMON_FEED_PATHS,
    discover_feed_urls,
    find_feeds,
    looks_like_feed,
    probe_urls,
)
from newsfold.errors import FetchError, ParseError
from newsfold.parse import parse_feed
from tests.corpus import CORPUS, corpus_params, needs_corpus
from tests.server import FeedServer, rss

ARTICLES = CORPUS / "articles"
FEEDS = CORPUS / "feeds"


def page(name: str) -> bytes:
    return gzip.decompress((ARTICLES / name).read_bytes())


def head(links: str) -> bytes:
    return f"<!doctype html><html><head>{links}</head><body><p>x</p></body></html>".encode()


def test_real_page_announcing_atom_rss_and_rdf() -> None:
    """Tagesschau's page announces Atom, RSS 2.0 and RDF feeds: all three, in page order."""
    html = page("fundus/de/Tagesschau_2023_04_28.html.gz")
    announced = re.findall(
        rb'<link rel="alternate" type="application/(?:rss|atom|rdf)\+xml"[^>]*href="([^"]+)"', html
    )
    assert discover_feed_urls(html, "https://www.tagesschau.de/inland/x.html") == [
        href.decode() for href in announced
    ]
    assert len(announced) == 3


def test_real_page_with_site_relative_feed_links() -> None:
    """taz.de announces "/!p4616/rss.xml" and "/rss.xml": resolved against the page URL."""
    html = page("fundus/de/Taz_2023_04_28.html.gz")
    assert discover_feed_urls(html, "https://taz.de/Politik/!5930000/") == [
        "https://taz.de/!p4616/rss.xml",
        "https://taz.de/rss.xml",
    ]


ANNOUNCED_FEED = re.compile(
    rb"<link\b(?=[^>]*\brel=[\"']?alternate)[^>]*\btype=[\"']?application/(?:rss|atom)\+xml", re.I
)


@needs_corpus
def test_feeds_found_on_every_real_page_that_announces_one() -> None:
    """Each fundus news page whose HTML has an RSS/Atom alternate link gives absolute feed URLs."""
    pages = sorted((ARTICLES / "fundus").rglob("*.html.gz"))
    announcing = 0
    for path in pages:
        html = gzip.decompress(path.read_bytes())
        urls = discover_feed_urls(html, "https://news.example/section/story")
        if ANNOUNCED_FEED.search(html):
            announcing += 1
            assert urls, path.name
        assert all(url.startswith(("https://", "http://")) for url in urls)
    assert announcing >= 40


def test_types_rels_and_duplicates() -> None:
    """Only feed types on rel=alternate count; a repeated feed is listed once."""
    html = head(
        '<link rel="stylesheet" type="text/css" href="/style.css">'
        '<link rel="alternate" type="application/rss+xml" href="/rss.xml">'
        '<link rel="alternate" type="text/html" hreflang="de" href="/de/">'
        '<link rel="Alternate Feed" type="Application/Atom+XML; charset=utf-8" href="atom.xml">'
        '<link rel="alternate" type="application/feed+json" href="/feed.json">'
        '<link rel="alternate" type="application/json" href="/posts.json">'
        '<link rel="alternate" type="application/json" href="/wp-json/wp/v2/posts/12">'
        '<link rel="alternate" type="application/json+oembed" href="/oembed?url=x">'
        '<link rel="alternate" type="application/rss+xml" href="https://Example.com/rss.xml#x">'
        '<link rel="alternate" type="application/rss+xml" href="javascript:void(0)">'
        '<link rel="alternate" type="application/rss+xml" href="">'
        '<link rel="canonical" href="/a">'
    )
    assert discover_feed_urls(html, "https://example.com/blog/post.html") == [
        "https://example.com/rss.xml",
        "https://example.com/blog/atom.xml",
        "https://example.com/feed.json",
        "https://example.com/posts.json",
    ]


def test_base_href_decides_resolution() -> None:
    """A <base href> in the page is the base for relative feed links."""
    html = head(
        '<base href="https://cdn.example.net/site/">'
        '<link rel="alternate" type="application/rss+xml" href="feed.xml">'
    )
    assert discover_feed_urls(html, "https://example.com/a/b") == [
        "https://cdn.example.net/site/feed.xml"
    ]


@pytest.mark.parametrize("html", [b"", b"   ", b"\x00\x01\x02", b"plain text, no markup"])
def test_pages_without_feeds(html: bytes) -> None:
    """Empty, binary or plain-text bodies announce nothing and raise nothing."""
    assert discover_feed_urls(html, "https://example.com/") == []


def test_probe_urls_are_on_the_site_root() -> None:
    """Every common path is tried on the page's site, in order, without the page's own path."""
    urls = probe_urls("https://Example.com/news/2026/story.html?utm_source=x")
    assert urls[:3] == [
        "https://example.com/feed",
        "https://example.com/rss",
        "https://example.com/feed.xml",
    ]
    assert len(urls) == len(COMMON_FEED_PATHS)
    assert "https://example.com/feeds/posts/default" in urls
    assert "https://example.com/feed.json" in urls
    assert probe_urls("not a url") == []


@pytest.mark.parametrize(
    "name",
    [
        "miniflux/large_rss.xml",
        "miniflux/large_atom.xml",
        "miniflux/rdf_UTF8.xml",
        "feedparser/encoding/utf-16le-bom.xml",
        "fastfeedparser/odd/7ef13a42fa7e177a.xml",
        "fastfeedparser/integration/json_feed_sample.json",
        "rsparser/DaringFireball.json",
        "miniflux/encoding_WINDOWS-1251.xml",
    ],
)
def test_corpus_feeds_look_like_feeds(name: str) -> None:
    """RSS, Atom, RDF, UTF-16, prefixed-RSS and JSON Feed bodies all pass the sniff."""
    assert looks_like_feed((FEEDS / name).read_bytes())


@pytest.mark.parametrize(
    "body",
    [
        *corpus_params(lambda: [page("readability/bbc-1/source.html.gz")]),
        b"",
        b"\x89PNG\r\n\x1a\n",
        b'{"rss": {"channel": {}}}',
        b"<?xml version='1.0'?><svg/>",
        b"<!-- only a comment -->",
    ],
    ids=["html-page", "empty", "png", "json-not-feed", "svg", "comment"],
)
def test_non_feeds_do_not_look_like_feeds(body: bytes) -> None:
    """HTML pages, images, other JSON and other XML fail the sniff."""
    assert not looks_like_feed(body)


def test_discovery_end_to_end_over_http(server: FeedServer) -> None:
    """A page served on 127.0.0.1 announces its feed; fetching that URL gives a parsable feed."""
    feed_body = (FEEDS / "trafilatura/feed2.rss").read_bytes()
    server.add("/discover/rss.xml", feed_body, content_type="application/rss+xml")
    page_url = server.add(
        "/discover/index.html",
        head('<link rel="alternate" type="application/rss+xml" href="rss.xml">'),
        content_type="text/html",
    )
    with urllib.request.urlopen(page_url, timeout=5) as response:
        (feed_url,) = discover_feed_urls(response.read(), page_url)
    assert feed_url == server.url("/discover/rss.xml")
    with urllib.request.urlopen(feed_url, timeout=5) as response:
        body = response.read()
    assert looks_like_feed(body)
    feed = parse_feed(body, url=feed_url, content_type=None, now=datetime.now(UTC), max_entries=10)
    assert feed.entries[0].title == "Example entry"


# --- find_feeds over HTTP (its own server: the probe paths sit at the site root) --------------


@pytest.fixture
def site() -> Iterator[FeedServer]:
    """A fresh local server, so no other test's routes answer the root probe paths."""
    with FeedServer() as running:
        yield running


def find(url: str, settings: Settings) -> list[str]:
    return asyncio.run(asyncio.wait_for(find_feeds(url, settings.fetch), 30))


def test_find_feeds_on_a_feed_url(site: FeedServer, settings: Settings) -> None:
    """A URL that serves a feed is the feed."""
    url = site.add("/news/rss", (FEEDS / "trafilatura/feed2.rss").read_bytes())
    assert find(url, settings) == [url]


def test_find_feeds_announced_by_a_page(site: FeedServer, settings: Settings) -> None:
    """A real news page's announced feeds are returned, resolved against where it was served."""
    url = site.add(
        "/politik/artikel", page("fundus/de/Taz_2023_04_28.html.gz"), content_type="text/html"
    )
    assert find(url, settings) == [site.url("/!p4616/rss.xml"), site.url("/rss.xml")]


def test_find_feeds_by_probing_common_paths(site: FeedServer, settings: Settings) -> None:
    """A page that announces nothing: the first common path that serves a feed is taken."""
    site.add("/rss", b"<html><body>not a feed</body></html>", content_type="text/html")
    site.add("/feeds/posts/default", (FEEDS / "trafilatura/feed1.atom").read_bytes())
    url = site.add("/blog/post", head(""), content_type="text/html")
    assert find(url, settings) == [site.url("/feeds/posts/default")]


def test_find_feeds_finds_nothing(site: FeedServer, settings: Settings) -> None:
    """No announced feed and no feed at any common path: a ParseError naming the URL."""
    url = site.add("/plain", head(""), content_type="text/html")
    with pytest.raises(ParseError, match="no feed found") as caught:
        find(url, settings)
    assert caught.value.url == url


def test_find_feeds_on_a_missing_page(site: FeedServer, settings: Settings) -> None:
    """A URL that cannot be fetched is a FetchError, not a silent empty list."""
    with pytest.raises(FetchError):
        find(site.url("/fault/status/404"), settings)


def atom(items: list[tuple[str, str]]) -> bytes:
    entries = "".join(
        f"<entry><id>{link}</id><title>{title}</title><link href='{link}'/>"
        "<updated>2026-03-01T10:00:00Z</updated></entry>"
        for title, link in items
    )
    return (
        "<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom'>"
        f"<id>urn:twin</id><title>Twin</title><updated>2026-03-01T10:00:00Z</updated>{entries}</feed>"
    ).encode()


def test_find_feeds_takes_one_of_rss_and_atom_twins(site: FeedServer, settings: Settings) -> None:
    """A page announcing its one feed as RSS and as Atom (and a comments feed): `feeds add`
    gets the RSS, first announced, and the comments; the Atom twin lists the same items."""
    posts = [(f"Post {n}", site.url(f"/blog/post-{n}")) for n in range(3)]
    items = "".join(
        f"<item><title>{title}</title><link>{link}</link><guid>{link}</guid></item>"
        for title, link in posts
    )
    site.add("/blog/rss.xml", rss(items, title="Twin"))
    site.add("/blog/atom.xml", atom(posts[:2]))  # a shorter list of the same posts
    site.add("/blog/comments.xml", atom([("On post 0", site.url("/blog/post-0#c1"))]))
    links = (
        '<link rel="alternate" type="application/rss+xml" href="/blog/rss.xml">'
        '<link rel="alternate" type="application/atom+xml" href="/blog/atom.xml">'
        '<link rel="alternate" type="application/atom+xml" href="/blog/comments.xml">'
    )
    url = site.add("/blog/", head(links), content_type="text/html")
    assert find(url, settings) == [site.url("/blog/rss.xml"), site.url("/blog/comments.xml")]
