"""Feed discovery: the feeds a web page announces, and the usual places to probe for one.

Pure functions over bytes already fetched, and `find_feeds`, which `feeds add` calls: it
fetches the URL and, when that is a page rather than a feed, what the page points to.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from lxml import etree
from lxml import html as lxml_html

from newsfold import charset
from newsfold.config import FetchSettings
from newsfold.errors import FetchError, ParseError
from newsfold.fetch import Fetcher
from newsfold.parse import parse_feed, root_element
from newsfold.urls import canonicalize_url

# Tried in this order by `feeds add` when a page announces no feed: WordPress, Ghost and most
# CMSs (/feed, /rss), static site generators (Hugo /index.xml, Jekyll /feed.xml), Blogger.
COMMON_FEED_PATHS = (
    "/feed",
    "/rss",
    "/feed.xml",
    "/rss.xml",
    "/atom.xml",
    "/index.xml",
    "/feeds/posts/default",
    "/feed.json",
    "/index.rss",
    "/atom",
    "/rss/index.xml",
    "/?feed=rss2",
)

FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/feed+json",
        "application/json",
    }
)
Items = frozenset[tuple[str, str | None]]  # (link, title) of a feed's items
COMPARED_ITEMS = 100  # items read from each announced feed to tell RSS and Atom twins apart
_FEED_RELS = frozenset({"alternate", "feed"})
_FEED_ROOTS = frozenset({"rss", "feed", "rdf"})
# WordPress announces its REST API as rel="alternate" type="application/json" on every page.
_NOT_FEEDS = ("/wp-json/",)


async def find_feeds(
    url: str, settings: FetchSettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> list[str]:
    """The feed URL(s) behind `url`: itself if it serves a feed, else the feeds its page
    announces, else the first of COMMON_FEED_PATHS on its site that serves one.

    Raises FetchError when `url` cannot be fetched and ParseError when no feed is found.
    """
    async with Fetcher(settings, transport=transport) as fetcher:
        page = await fetcher.fetch(url)
        body = page.body or b""
        if looks_like_feed(body):
            return [url.strip()]
        announced = discover_feed_urls(body, page.final_url)
        if announced:
            return await _one_url_per_feed(fetcher, announced)
        for candidate in probe_urls(page.final_url):
            if await _serves_feed(fetcher, candidate):
                return [candidate]
    raise ParseError(url, "no feed found: the page announces none, and no usual feed path has one")


async def _one_url_per_feed(fetcher: Fetcher, urls: list[str]) -> list[str]:
    """The announced feeds, one URL each: a site that offers one feed as RSS and as Atom
    announces both, and subscribing to both would fetch every item twice. Two feeds are one
    when the items (link and title) of one are all in the other; the first announced is kept.
    A feed that cannot be read is kept: the run will report it."""
    if len(urls) < 2:
        return urls
    kept: list[tuple[str, Items]] = []
    for url in urls:
        items = await _item_links(fetcher, url)
        if not any(items and _same_items(items, other) for _, other in kept):
            kept.append((url, items))
    return [url for url, _ in kept]


def _same_items(a: Items, b: Items) -> bool:
    return bool(a and b) and (a <= b or b <= a)


async def _item_links(fetcher: Fetcher, url: str) -> Items:
    """The (link, title) of a feed's items; empty when it cannot be fetched or read."""
    try:
        result = await fetcher.fetch(url)
        parsed = parse_feed(
            result.body or b"",
            url=url,
            content_type=result.content_type,
            now=datetime.now(UTC),
            max_entries=COMPARED_ITEMS,
        )
    except (FetchError, ParseError):
        return frozenset()
    # With the titles: a comments feed links to its posts too ("post#comment-5", canonical
    # without the fragment) but under the comments' own titles.
    return frozenset((entry.link, entry.title) for entry in parsed.entries if entry.link)


async def _serves_feed(fetcher: Fetcher, url: str) -> bool:
    try:
        result = await fetcher.fetch(url)
    except FetchError:
        return False
    return looks_like_feed(result.body or b"")


def discover_feed_urls(html: bytes, base_url: str) -> list[str]:
    """Feed URLs that a page announces with <link rel="alternate" type="...">: resolved against
    the page's <base href> or `base_url`, made canonical, deduplicated, in page order."""
    document = _parse_html(html)
    if document is None:
        return []
    base = _base_href(document, base_url)
    found: list[str] = []
    for link in document.iter("link"):
        url = _announced_feed(link, base)
        if url is not None and url not in found:
            found.append(url)
    return found


def probe_urls(page_url: str) -> list[str]:
    """COMMON_FEED_PATHS on the page's site, in order, for the caller to try one by one."""
    urls = (canonicalize_url(path, page_url) for path in COMMON_FEED_PATHS)
    return [url for url in urls if url is not None]


def looks_like_feed(body: bytes) -> bool:
    """A cheap sniff of the first bytes: an RSS, Atom or RDF root, or a JSON Feed version."""
    text = charset.sniff(body).lstrip("\ufeff \t\r\n")
    if text.startswith("{"):
        return "jsonfeed.org/version" in text
    root = root_element(text)
    return root is not None and root.rsplit(":", 1)[-1] in _FEED_ROOTS


def _parse_html(html: bytes) -> etree._Element | None:
    if not html.strip():
        return None
    try:
        return lxml_html.document_fromstring(html, parser=_HTML_PARSER)
    except (etree.ParserError, ValueError):
        return None


_HTML_PARSER = lxml_html.HTMLParser(no_network=True, recover=True)


def _base_href(document: etree._Element, page_url: str) -> str:
    for base in document.iter("base"):
        href = base.get("href")
        if href:
            return canonicalize_url(href, page_url) or page_url
    return page_url


def _announced_feed(link: etree._Element, base: str) -> str | None:
    rels = set((link.get("rel") or "").lower().split())
    media_type = (link.get("type") or "").split(";", 1)[0].strip().lower()
    href = (link.get("href") or "").strip()
    if not (rels & _FEED_RELS) or media_type not in FEED_TYPES or not href:
        return None
    url = canonicalize_url(href, base)
    if url is None or any(marker in url for marker in _NOT_FEEDS):
        return None
    return url
