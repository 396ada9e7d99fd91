"""Export formats for `newsfold export`: JSONL, CSV, Atom 1.0 and an HTML digest.

Atom and HTML are built as element trees and serialised by lxml, so every title, summary and URL is
escaped by the serializer, never by hand. A story handed here has its canonical copy first.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

from lxml import etree

from newsfold import __version__, output
from newsfold.model import Story, StoryArticle

ATOM = "http://www.w3.org/2005/Atom"
XHTML = "http://www.w3.org/1999/xhtml"
# Entry ids are UUIDs named in this namespace: changing it would show every story again as new.
ID_NAMESPACE = uuid.UUID("5b0d8f43-6c1e-4f57-9a63-2f1f0c7d9e21")
FEED_TITLE = "newsfold: stories"
SUMMARY_CHARS = 280
WEB_SCHEMES = ("http://", "https://")


def render(fmt: str, stories: Sequence[Story], now: datetime, *, with_text: bool = False) -> str:
    """The whole export in one format: "jsonl", "csv", "atom" or "html". `with_text`: CSV gets
    the text and its metadata too (JSONL always has them)."""
    if fmt == "jsonl":
        return output.jsonl(stories)
    if fmt == "csv":
        return output.csv_text(stories, with_text=with_text)
    if fmt == "atom":
        return atom(stories, now)
    if fmt == "html":
        return html_digest(stories, now)
    raise ValueError(f"unknown export format: {fmt}")


# -- shared ----------------------------------------------------------------------------------------


def entry_id(story: Story) -> str:
    """The story's permanent id: its store id salted with its first-seen time.

    Neither changes when copies join the story, so a feed reader shows it once; the salt keeps
    story 7 of one store apart from story 7 of another (or from a story that reuses a freed id).
    """
    first_seen = story.first_seen.astimezone(UTC).isoformat()
    return uuid.uuid5(ID_NAMESPACE, f"story:{story.id}:{first_seen}").urn


def published(story: Story) -> datetime:
    """When the story was published: its earliest copy's time, else when it was first seen."""
    return story.published or story.first_seen


def last_update(story: Story, now: datetime) -> datetime:
    """The newest time a copy carries, never before the story was first seen nor after now."""
    times = [copy.published for copy in story.articles if copy.published]
    return min(max([story.first_seen, *times]), max(now, story.first_seen))


def summary(copy: StoryArticle) -> str | None:
    """The copy's opening words on one line, cut at a word and marked when the text goes on."""
    head = copy.text[: 2 * SUMMARY_CHARS]  # whitespace collapses: take more than will show
    text = " ".join(head.split())
    if len(text) <= SUMMARY_CHARS and len(head) == len(copy.text):
        return text or None
    return text[:SUMMARY_CHARS].rsplit(" ", 1)[0].rstrip(".,;:") + "…"


def outlet_count(story: Story) -> int:
    return len({output.outlet(copy) for copy in story.articles})


def _web_url(url: str) -> str | None:
    """Only http(s) links are written out: a `javascript:` URL in a feed must not become a link."""
    return url if url.lower().startswith(WEB_SCHEMES) else None


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(microsecond=0)


def _child(
    parent: Any, tag: str, text: str | None = None, attrib: dict[str, str] | None = None
) -> Any:
    element = etree.SubElement(parent, tag, attrib or {})
    element.text = text
    return element


# -- Atom 1.0 --------------------------------------------------------------------------------------


def atom(stories: Sequence[Story], now: datetime) -> str:
    """An Atom 1.0 feed, one entry per story: the canonical copy, the other copies listed."""
    feed = etree.Element(f"{{{ATOM}}}feed", nsmap={None: ATOM})
    _atom_child(feed, "id", uuid.uuid5(ID_NAMESPACE, "feed").urn)
    _atom_child(feed, "title", FEED_TITLE)
    updated = max((last_update(s, now) for s in stories), default=now)
    _atom_child(feed, "updated", output.iso(_utc(updated)))
    author = _atom_child(feed, "author")
    _atom_child(author, "name", "newsfold")
    _atom_child(feed, "generator", "newsfold", version=__version__)
    for story in stories:
        _atom_entry(feed, story, now)
    body: bytes = etree.tostring(feed, xml_declaration=True, encoding="utf-8", pretty_print=True)
    return body.decode("utf-8")


def _atom_child(parent: Any, name: str, text: str | None = None, **attrib: str) -> Any:
    return _child(parent, f"{{{ATOM}}}{name}", text, attrib)


def _atom_entry(feed: Any, story: Story, now: datetime) -> None:
    canonical, others = story.articles[0], story.articles[1:]
    entry = _atom_child(feed, "entry")
    _atom_child(entry, "id", entry_id(story))
    _atom_child(entry, "title", story.title or story.url)
    _atom_link(entry, "alternate", story.url, output.outlet(canonical))
    for copy in others:
        _atom_link(entry, "related", copy.url, output.outlet(copy))
    updated = last_update(story, now)
    _atom_child(entry, "published", output.iso(_utc(min(published(story), updated))))
    _atom_child(entry, "updated", output.iso(_utc(updated)))
    _atom_child(entry, "summary", summary(canonical) or story.title or story.url)
    if others:
        _atom_copies(_atom_child(entry, "content", type="xhtml"), story, others)


def _atom_link(entry: Any, rel: str, url: str, title: str) -> None:
    href = _web_url(url)
    if href:
        _atom_child(entry, "link", rel=rel, type="text/html", href=href, title=title)


def _atom_copies(content: Any, story: Story, others: Sequence[StoryArticle]) -> None:
    """XHTML content: who carried the story first, then every other copy as a link."""
    div = etree.SubElement(content, f"{{{XHTML}}}div", nsmap={None: XHTML})
    first = output.outlet(story.articles[0])
    more = output.counted(len(others), "other copy", "other copies")
    _child(div, f"{{{XHTML}}}p", f"First seen at {first}. {more}:")
    items = _child(div, f"{{{XHTML}}}ul")
    for copy in others:
        item = _child(items, f"{{{XHTML}}}li")
        _xhtml_copy(item, copy)


def _xhtml_copy(item: Any, copy: StoryArticle) -> None:
    name = _child(item, f"{{{XHTML}}}strong", output.outlet(copy))
    href = _web_url(copy.url)
    title = copy.title or copy.url
    if href:
        name.tail = ": "
        _child(item, f"{{{XHTML}}}a", title, {"href": href})
    else:
        name.tail = f": {title}"


# -- HTML digest -----------------------------------------------------------------------------------

# Only the inline style may load: the page makes no request of its own and runs no script.
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
PAGE_META = (
    {"name": "viewport", "content": "width=device-width, initial-scale=1"},
    {"name": "color-scheme", "content": "light dark"},
    {"http-equiv": "Content-Security-Policy", "content": PAGE_POLICY},
    {"name": "referrer", "content": "no-referrer"},
    {"name": "generator", "content": f"newsfold {__version__}"},
)


def html_digest(stories: Sequence[Story], now: datetime) -> str:
    """A self-contained page (inline CSS, no scripts, no external requests) of the stories."""
    page = etree.Element("html", lang="en")
    _html_head(page, f"newsfold: {output.counted(len(stories), 'story', 'stories')}")
    body = _child(page, "body")
    header = _child(body, "header")
    _child(header, "h1", "newsfold")
    updated = _child(header, "p", f"{_digest_counts(stories)} · updated ", {"class": "updated"})
    _html_time(updated, now)
    main = _child(body, "main")
    for story in stories:
        _html_story(main, story)
    if not stories:
        _child(main, "p", "Nothing yet: no stories have been folded so far.", {"class": "empty"})
    footer = _child(body, "footer")
    _child(footer, "p", f"Made by newsfold {__version__}: each story once, its copies beneath.")
    page_html: bytes = etree.tostring(
        page, method="html", encoding="utf-8", doctype="<!DOCTYPE html>"
    )
    return page_html.decode("utf-8") + "\n"


def _html_head(page: Any, title: str) -> None:
    head = _child(page, "head")
    _child(head, "meta", None, {"charset": "utf-8"})
    for attrib in PAGE_META:
        _child(head, "meta", None, attrib)
    _child(head, "title", title)
    _child(head, "style", files("newsfold").joinpath("templates", "digest.css").read_text("utf-8"))


def _digest_counts(stories: Sequence[Story]) -> str:
    copies = sum(len(story.articles) for story in stories)
    stories_text = output.counted(len(stories), "story", "stories")
    return f"{stories_text} from {output.counted(copies, 'copy', 'copies')}"


def _html_story(main: Any, story: Story) -> None:
    canonical, others = story.articles[0], story.articles[1:]
    article = _child(main, "article", None, {"class": "story", "id": f"story-{story.id}"})
    _html_link(_child(article, "h2"), story.title or story.url, story.url)
    meta = _child(article, "p", None, {"class": "meta"})
    outlets = outlet_count(story)
    count = _child(meta, "span", output.counted(outlets, "outlet", "outlets"), {"class": "count"})
    count.tail = " · first " if outlets > 1 else " · "
    _child(meta, "span", output.outlet(canonical), {"class": "outlet"}).tail = " · "
    _html_time(meta, published(story))
    lede = summary(canonical)
    if lede:
        _child(article, "p", lede, {"class": "summary"})
    if others:
        copies = _child(article, "ul", None, {"class": "copies"})
        for copy in others:
            _html_copy(_child(copies, "li"), copy)


def _html_copy(item: Any, copy: StoryArticle) -> None:
    _child(item, "span", output.outlet(copy), {"class": "outlet"}).tail = " "
    link = _html_link(item, copy.title or copy.url, copy.url)
    if copy.published:
        link.tail = " "
        _html_time(item, copy.published)


def _html_link(parent: Any, text: str, url: str) -> Any:
    href = _web_url(url)
    return _child(parent, "a" if href else "span", text, {"href": href} if href else None)


def _html_time(parent: Any, value: datetime) -> Any:
    return _child(parent, "time", _short_time(value), {"datetime": output.iso(_utc(value)) or ""})


def _short_time(value: datetime) -> str:
    return _utc(value).strftime("%Y-%m-%d %H:%M UTC")
