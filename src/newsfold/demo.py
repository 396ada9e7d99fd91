"""`newsfold demo`: a small, invented news world served on 127.0.0.1 for the whole job to run on.

demo_data/sample.toml holds five fictional outlets, a wire agency's stories and the outlets' own
stories; demo_data/page.html is the outlets' page chrome. At start they are rendered into feeds
(RSS 2.0, Atom 1.0, JSON Feed 1.1), article pages and a robots.txt, with links to the port the
server got and dates counted back from now, then served from a thread until the demo ends.
"""

from __future__ import annotations

import dataclasses
import html
import json
import threading
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from string import Template
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

from newsfold.config import Settings
from newsfold.model import FeedSource

DATA = files("newsfold") / "demo_data"
ATOM = "http://www.w3.org/2005/Atom"
A = "{" + ATOM + "}"  # Atom element names, in lxml's {namespace}name form
FEED_FILES = {"rss": "rss.xml", "atom": "atom.xml", "json": "feed.json"}
FEED_TYPES = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
}
ROBOTS_TXT = b"User-agent: *\nDisallow: /search\n"
HTML_TYPE = "text/html; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Outlet:
    slug: str
    name: str
    feed: str  # "rss" | "atom" | "json"
    sections: tuple[str, ...]
    tagline: str


@dataclass(frozen=True, slots=True)
class SampleArticle:
    """One article as its outlet published it."""

    outlet: Outlet
    slug: str
    headline: str
    credit: str
    paragraphs: tuple[str, ...]
    published: datetime
    note: str | None = None  # an editor's note above the text


@dataclass(frozen=True, slots=True)
class Resource:
    content_type: str
    body: bytes


def load_sample(now: datetime) -> list[SampleArticle]:
    """Every article of the sample, wire copies with their edits applied, newest first."""
    data = tomllib.loads((DATA / "sample.toml").read_text(encoding="utf-8"))
    outlets = {
        o["slug"]: Outlet(o["slug"], o["name"], o["feed"], tuple(o["sections"]), o["tagline"])
        for o in data["outlets"]
    }
    agency = data["agency"]["short"]
    made = [
        _article(item, outlets[item["outlet"]], data["wires"], agency, now)
        for item in data["articles"]
    ]
    return sorted(made, key=lambda a: a.published, reverse=True)


def _article(
    item: Mapping[str, Any],
    outlet: Outlet,
    wires: Mapping[str, Any],
    agency: str,
    now: datetime,
) -> SampleArticle:
    wire = wires.get(item.get("wire", ""))
    paragraphs = _republished(wire, item, agency) if wire else _paragraphs(item["text"])
    return SampleArticle(
        outlet=outlet,
        slug=item["slug"],
        headline=item.get("headline") or (wire or {})["headline"],
        credit=item["credit"],
        paragraphs=paragraphs,
        published=now - timedelta(hours=item["hours_ago"]),
        note=item.get("note"),
    )


def _republished(wire: Mapping[str, Any], item: Mapping[str, Any], agency: str) -> tuple[str, ...]:
    """The wire text as one outlet ran it: dateline, cut, sign-off kept or not, its own ending."""
    paragraphs = list(_paragraphs(wire["text"]))[: item.get("keep")]
    paragraphs[0] = f"{wire['dateline']} ({agency}) - {paragraphs[0]}"
    if item.get("signoff", True):
        paragraphs[-1] += f" {wire['signoff']}"
    if "extra" in item:
        paragraphs.append(item["extra"])
    return tuple(paragraphs)


def _paragraphs(text: str) -> tuple[str, ...]:
    return tuple(" ".join(p.split()) for p in text.split("\n\n") if p.strip())


# -- rendering -------------------------------------------------------------------------------------


def page_path(article: SampleArticle) -> str:
    return f"/{article.outlet.slug}/news/{article.slug}"


def feed_path(outlet: Outlet) -> str:
    return f"/{outlet.slug}/{FEED_FILES[outlet.feed]}"


def feed_sources(articles: list[SampleArticle], base: str) -> list[FeedSource]:
    """One feed per outlet, as served from `base`."""
    return [FeedSource(base + feed_path(o), o.name) for o in _outlets(articles)]


def build_site(articles: list[SampleArticle], base: str) -> dict[str, Resource]:
    """Every path the demo server answers: pages, one feed per outlet, robots.txt, an index."""
    outlets = _outlets(articles)
    site = {"/robots.txt": Resource("text/plain", ROBOTS_TXT), "/": _index(outlets, base)}
    template = Template((DATA / "page.html").read_text(encoding="utf-8"))
    for outlet in outlets:
        own = [a for a in articles if a.outlet == outlet]
        site[feed_path(outlet)] = Resource(FEED_TYPES[outlet.feed], _feed(outlet, own, base))
        for article in own:
            body = _page(template, article, own, base).encode("utf-8")
            site[page_path(article)] = Resource(HTML_TYPE, body)
    return site


def _outlets(articles: Iterable[SampleArticle]) -> list[Outlet]:
    return list(dict.fromkeys(a.outlet for a in articles))


def _index(outlets: list[Outlet], base: str) -> Resource:
    links = "".join(
        f'<li><a href="{base}{feed_path(o)}">{html.escape(o.name)}</a> ({o.feed})</li>'
        for o in outlets
    )
    heading = "<title>newsfold demo</title><h1>newsfold demo feeds</h1>"
    page = f"<!doctype html>{heading}<ul>{links}</ul>"
    return Resource(HTML_TYPE, page.encode("utf-8"))


def _page(
    template: Template, article: SampleArticle, others: list[SampleArticle], base: str
) -> str:
    outlet = article.outlet
    body = [f"<p>{html.escape(p)}</p>" for p in article.paragraphs]
    if article.note:
        body.insert(0, f'<p class="editors-note"><em>{html.escape(article.note)}</em></p>')
    most_read = [
        f'<li><a href="{base}{page_path(a)}">{html.escape(a.headline)}</a></li>'
        for a in others
        if a is not article
    ]
    nav = [f'<a href="/{outlet.slug}/{s.lower()}">{html.escape(s)}</a>' for s in outlet.sections]
    escaped = {
        "title": article.headline,
        "outlet": outlet.name,
        "tagline": outlet.tagline,
        "description": article.paragraphs[0],
        "credit": article.credit,
        "section": outlet.sections[0],
        "url": base + page_path(article),
        "feed_url": base + feed_path(outlet),
        "feed_type": FEED_TYPES[outlet.feed],
        "slug": outlet.slug,
        "published": article.published.isoformat(timespec="seconds"),
        "published_human": article.published.strftime("%d %B %Y, %H:%M UTC"),
    }
    return template.substitute(
        {key: html.escape(value) for key, value in escaped.items()},
        body="\n".join(body),
        most_read="".join(most_read),
        nav=" ".join(nav),
    )


def _feed(outlet: Outlet, articles: list[SampleArticle], base: str) -> bytes:
    if outlet.feed == "rss":
        return _rss(outlet, articles, base)
    if outlet.feed == "atom":
        return _atom(outlet, articles, base)
    return _json_feed(outlet, articles, base)


def _rss(outlet: Outlet, articles: list[SampleArticle], base: str) -> bytes:
    root = etree.Element("rss", version="2.0")
    channel = _add(root, "channel")
    _add(channel, "title", outlet.name)
    _add(channel, "link", f"{base}/{outlet.slug}/")
    _add(channel, "description", outlet.tagline)
    _add(channel, "language", "en")
    for article in articles:
        item = _add(channel, "item")
        url = base + page_path(article)
        _add(item, "title", article.headline)
        _add(item, "link", url)
        _add(item, "guid", url, isPermaLink="true")
        _add(item, "pubDate", format_datetime(article.published, usegmt=True))
        _add(item, "description", article.paragraphs[0])
    return bytes(etree.tostring(root, encoding="utf-8", xml_declaration=True))


def _atom(outlet: Outlet, articles: list[SampleArticle], base: str) -> bytes:
    root = etree.Element(A + "feed", nsmap={None: ATOM})
    _add(root, A + "title", outlet.name)
    _add(root, A + "id", f"{base}/{outlet.slug}/")
    _add(root, A + "link", rel="self", href=base + feed_path(outlet))
    _add(root, A + "link", rel="alternate", href=f"{base}/{outlet.slug}/")
    _add(root, A + "updated", articles[0].published.isoformat(timespec="seconds"))
    for article in articles:
        entry = _add(root, A + "entry")
        url = base + page_path(article)
        published = article.published.isoformat(timespec="seconds")
        _add(entry, A + "title", article.headline)
        _add(entry, A + "id", url)
        _add(entry, A + "link", rel="alternate", href=url)
        _add(entry, A + "published", published)
        _add(entry, A + "updated", published)
        _add(_add(entry, A + "author"), A + "name", article.credit)
        _add(entry, A + "summary", article.paragraphs[0])
    return bytes(etree.tostring(root, encoding="utf-8", xml_declaration=True))


def _json_feed(outlet: Outlet, articles: list[SampleArticle], base: str) -> bytes:
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": outlet.name,
        "home_page_url": f"{base}/{outlet.slug}/",
        "feed_url": base + feed_path(outlet),
        "items": [
            {
                "id": base + page_path(a),
                "url": base + page_path(a),
                "title": a.headline,
                "summary": a.paragraphs[0],
                "content_text": a.paragraphs[0],
                "date_published": a.published.isoformat(timespec="seconds"),
                "authors": [{"name": a.credit}],
            }
            for a in articles
        ],
    }
    return json.dumps(feed, ensure_ascii=False, indent=1).encode("utf-8")


def _add(parent: Any, tag: str, text: str | None = None, **attributes: str) -> Any:
    element = etree.SubElement(parent, tag, attributes)
    element.text = text
    return element


# -- serving ---------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _SiteServer

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def _answer(self, with_body: bool) -> None:
        found = self.server.site.get(urlsplit(self.path).path)
        resource = found or Resource(HTML_TYPE, b"<!doctype html><title>Not found</title>")
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", resource.content_type)
        self.send_header("Content-Length", str(len(resource.body)))
        self.end_headers()
        if with_body:
            self.wfile.write(resource.body)

    def log_message(self, format: str, *args: object) -> None:
        """Silent: the demo prints what newsfold made of the sample, not the server's log."""


class _SiteServer(ThreadingHTTPServer):
    daemon_threads = True
    site: dict[str, Resource]


class DemoServer:
    """The sample served on 127.0.0.1 at a free port, from a thread, for the `with` block."""

    host = "127.0.0.1"

    def __init__(self, now: datetime) -> None:
        self.articles = load_sample(now)
        self._server = _SiteServer((self.host, 0), _Handler)
        self.base_url = f"http://{self.host}:{self._server.server_address[1]}"
        self._server.site = build_site(self.articles, self.base_url)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="newsfold-demo-server", daemon=True
        )

    def __enter__(self) -> DemoServer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def feeds(self) -> list[FeedSource]:
        return feed_sources(self.articles, self.base_url)

    def settings(self, base: Settings) -> Settings:
        """`base` with the demo's feeds, and the address guard open to the demo server only."""
        allowed = base.replace("fetch", allowed_networks=(f"{self.host}/32",))
        return dataclasses.replace(allowed, feeds=tuple(self.feeds))
