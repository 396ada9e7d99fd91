"""Parse stage: a fetched body -> ParsedFeed. RSS and Atom by feedparser, JSON Feed read here.

The body is decoded before feedparser sees it (newsfold.charset): feedparser without chardet
cannot tell an undeclared KOI8-R or Shift_JIS body from Windows-1252, and it trusts a prolog
that says windows-1252 or utf-16 over bytes that are plainly UTF-8.

The DOCTYPE's internal subset is cut down to plain entities before expat sees it: feedparser's
own filter misses declarations written on one line, and expat then spends seconds on a
billion-laughs body before its amplification limit stops it. External entities are never
fetched (feedparser turns external general entities off).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import xml.sax
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any, TypeVar

import feedparser

from newsfold import charset
from newsfold.dates import from_struct_time, parse_date
from newsfold.errors import NotAFeed
from newsfold.model import MAX_TEXT_CHARS, Entry, ParsedFeed
from newsfold.urls import canonicalize_url

EARLIEST_PLAUSIBLE = datetime(1995, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=2)
HTML_ROOTS = frozenset({"html", "head", "body"})
NO_USABLE_ITEMS = "its items have no id, link, title or text"

_Item = TypeVar("_Item")
_Body = tuple[str | None, bool]  # (text, is_html)

_PROLOG_ITEM = re.compile(
    r"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>)", re.DOTALL | re.IGNORECASE
)
_ROOT_TAG = re.compile(r"\s*<([A-Za-z_][\w:.-]*)")
_HTML_DOCTYPE = re.compile(r"<!DOCTYPE\s+html\b", re.IGNORECASE)
_DOCTYPE_START = re.compile(r"<!DOCTYPE\b", re.IGNORECASE)
_DOCTYPE = re.compile(
    r"<!DOCTYPE\s+([^\s\[>]+)([^\[>]*)(?:\[(.*?)\])?\s*>", re.DOTALL | re.IGNORECASE
)
_SAFE_ENTITY = re.compile(  # a plain-text value or one character reference, nothing nested
    r"<!ENTITY\s+[A-Za-z_][\w.-]*\s+"
    r"(?:\"(?:&#x?[0-9A-Fa-f]+;|[^&%\"<]*)\"|'(?:&#x?[0-9A-Fa-f]+;|[^&%'<]*)')\s*>"
)
_ITEM_END = re.compile(r"</(?:item|entry)\s*>")
_PREFIXED_CONTAINER = re.compile(r"<([A-Za-z_][\w.-]*):(?:item|entry|channel)\b")

_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_BLOCK_TAG = re.compile(
    r"</?(?:p|br|div|li|ul|ol|h[1-6]|tr|td|th|table|blockquote|pre|figure|figcaption|hr|section"
    r"|article|header|footer|dd|dt)\b[^>]*>",
    re.IGNORECASE,
)
_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_SPACE = re.compile(r"\s+")

_SY_PERIODS = {
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(weeks=1),
    "monthly": timedelta(days=30),
    "yearly": timedelta(days=365),
}


def parse_feed(
    body: bytes, *, url: str, content_type: str | None, now: datetime, max_entries: int
) -> ParsedFeed:
    """Read a feed body into entries; raise NotAFeed(url, cause) when it is not a feed.

    Keeps the first `max_entries` entries (the rest wait for a later run), each key once.
    `now` (UTC if naive) decides which dates are implausibly far in the future.
    """
    text = charset.decode(body, content_type)
    if not text.strip():
        raise NotAFeed(url, "empty body")
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    if text.lstrip("\ufeff \t\r\n")[:1] in ("{", "["):
        return _parse_json_feed(text, url, now, max_entries)
    if looks_like_html(text):
        raise NotAFeed(url, "an HTML page, not a feed")
    return _parse_xml_feed(text, url, now, max_entries)


def root_element(text: str) -> str | None:
    """The lower-cased name of the first element, after the prolog; None if there is none."""
    root = _ROOT_TAG.match(text, _prolog_end(text))
    return root.group(1).lower() if root else None


def looks_like_html(text: str) -> bool:
    """An HTML root element, or an HTML DOCTYPE (whose root tags HTML lets one leave out)."""
    end = _prolog_end(text)
    root = _ROOT_TAG.match(text, end)
    return bool(
        (root and root.group(1).lower() in HTML_ROOTS) or _HTML_DOCTYPE.search(text, 0, end)
    )


def _prolog_end(text: str) -> int:
    position = 0
    while match := _PROLOG_ITEM.match(text, position):
        position = match.end()
    return position


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment: tags gone, entities decoded, one line per block."""
    if "<" in html:
        html = _strip_tags(html)
    text = unescape(html) if "&" in html else html
    if "<" in text:  # escaped markup, a common feed fault: "&lt;p&gt;..."
        text = _strip_tags(text)
    # Paragraphs stay lines: dedup reads facts from sentences, and a sentence ends a line.
    lines = (_SPACE.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


# --- XML feeds (feedparser) ------------------------------------------------------------------


def _parse_xml_feed(text: str, url: str, now: datetime, max_entries: int) -> ParsedFeed:
    text = _defuse_doctype(text, url)
    # A little more than the cap survives the cut, so repeats and empty items can be made up.
    text = _drop_items_beyond(text, max_entries + max_entries // 10 + 10)
    raw = _feedparser(text, url)
    if not raw["entries"] and raw.get("bozo"):
        repaired = _drop_undeclared_prefixes(text)
        if repaired is not None:
            second = _feedparser(repaired, url)
            raw = second if second["entries"] else raw
    feed: Mapping[str, Any] = raw["feed"]
    entries = _collect(
        raw["entries"], lambda item: _entry_from_feedparser(item, url, now), max_entries
    )
    if not entries:
        _explain_no_entries(raw, url)
    return ParsedFeed(
        title=_text(feed.get("title"), _is_html(feed.get("title_detail"))),
        link=canonicalize_url(feed.get("link") or "", url),
        entries=entries,
        ttl=_ttl(feed),
    )


def _feedparser(text: str, url: str) -> Any:
    headers = {"content-type": "application/xml; charset=utf-8"}  # the text is UTF-8 by now
    # feedparser resolves GUIDs that look relative against Content-Location, and a GUID should
    # not change when a feed moves; so the feed URL is given only where xml:base needs it:
    # feedparser restores an item's enclosing base only when that base is not empty.
    if "xml:base" in text:
        headers["content-location"] = url
    return feedparser.parse(
        io.BytesIO(text.encode("utf-8", "replace")),
        response_headers=headers,
        sanitize_html=False,
        resolve_relative_uris=False,
    )


def _defuse_doctype(text: str, url: str) -> str:
    """Keep a DOCTYPE's name and plain entities; drop entity references and external entities."""
    # A closed DOCTYPE lies inside the prolog; an unclosed one right after where it stops.
    start = _DOCTYPE_START.search(text, 0, max(4096, _prolog_end(text) + 64))
    if start is None:
        return text
    doctype = _DOCTYPE.match(text, start.start())
    if doctype is None:
        raise NotAFeed(url, "not a feed (DOCTYPE never closed)")
    safe = "".join(m.group(0) for m in _SAFE_ENTITY.finditer(doctype.group(3) or ""))
    subset = f" [{safe}]" if safe else ""
    replacement = f"<!DOCTYPE {doctype.group(1)}{doctype.group(2).rstrip()}{subset}>"
    return text[: doctype.start()] + replacement + text[doctype.end() :]


def _drop_items_beyond(text: str, keep: int) -> str:
    """Cut the items after the first `keep` out of the text; feedparser costs ~0.15 ms per item,
    so a 10,000-item feed would take seconds to read only for most of it to be dropped."""
    cut_at = last_end = total = 0
    for match in _ITEM_END.finditer(text):
        total += 1
        if total == keep:
            cut_at = match.end()
        last_end = match.end()
    if total <= keep:
        return text
    return text[:cut_at] + text[last_end:]


def _drop_undeclared_prefixes(text: str) -> str | None:
    """`<rss:item>` with no xmlns:rss anywhere: read the elements without the prefix."""
    prefixes = {p for p in _PREFIXED_CONTAINER.findall(text) if f"xmlns:{p}=" not in text}
    if not prefixes:
        return None
    alternatives = "|".join(map(re.escape, sorted(prefixes)))
    pattern = re.compile(rf"<(/?)(?:{alternatives}):")
    return pattern.sub(r"<\1", text)


def _explain_no_entries(raw: Any, url: str) -> None:
    """Raise unless the body is a well-formed feed that simply lists no items."""
    if not raw.get("version"):
        raise NotAFeed(url, "not a feed (no RSS, Atom or JSON Feed root)")
    problem = raw.get("bozo_exception")
    if raw.get("bozo") and problem is not None:
        raise NotAFeed(url, f"not well-formed XML ({_describe(problem)}), no entries read")
    if raw["entries"]:
        raise NotAFeed(url, NO_USABLE_ITEMS)


def _describe(problem: Exception) -> str:
    if isinstance(problem, xml.sax.SAXParseException):
        line, column = problem.getLineNumber(), problem.getColumnNumber()
        return f"line {line}, column {column}: {problem.getMessage()}"
    return str(problem)


def _entry_from_feedparser(item: Mapping[str, Any], base: str, now: datetime) -> Entry | None:
    bodies: list[_Body] = [
        (part.get("value"), _is_html(part)) for part in item.get("content") or () if part
    ]
    bodies.append((item.get("summary"), _is_html(item.get("summary_detail"))))
    parsed = item.get("published_parsed") or item.get("updated_parsed")
    return _make_entry(
        guid=item.get("id"),
        link=item.get("link"),
        title=_text(item.get("title"), _is_html(item.get("title_detail"))),
        bodies=bodies,
        published=from_struct_time(parsed) if parsed else None,
        author=item.get("author"),
        base=base,
        now=now,
    )


def _is_html(detail: Any) -> bool:
    return isinstance(detail, Mapping) and "html" in str(detail.get("type") or "")


def _ttl(feed: Mapping[str, Any]) -> timedelta | None:
    minutes = _positive_int(feed.get("ttl"))
    if minutes:
        return timedelta(minutes=minutes)
    period = _SY_PERIODS.get(str(feed.get("sy_updateperiod") or "").strip().lower())
    if period is None:
        return None
    return period / (_positive_int(feed.get("sy_updatefrequency")) or 1)


def _positive_int(value: Any) -> int | None:
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number if number > 0 else None


# --- JSON Feed ---------------------------------------------------------------------------------


def _parse_json_feed(text: str, url: str, now: datetime, max_entries: int) -> ParsedFeed:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise NotAFeed(url, f"invalid JSON ({exc})") from None
    version = document.get("version") if isinstance(document, dict) else None
    items = document.get("items") if isinstance(document, dict) else None
    if not isinstance(items, list) or not (version is None or "jsonfeed.org" in str(version)):
        raise NotAFeed(url, "JSON but not a JSON Feed (no jsonfeed.org version and items)")
    entries = _collect(
        (item for item in items if isinstance(item, dict)),
        lambda item: _entry_from_json(item, url, now),
        max_entries,
    )
    if items and not entries:
        raise NotAFeed(url, NO_USABLE_ITEMS)
    return ParsedFeed(
        title=_text(_string(document.get("title")), True),
        link=canonicalize_url(_string(document.get("home_page_url")) or "", url),
        entries=entries,
    )


def _entry_from_json(item: Mapping[str, Any], base: str, now: datetime) -> Entry | None:
    identifier = item.get("id")
    # RFC 3339 as the spec says; RFC 822 as some feeds write anyway.
    published = parse_date(item.get("date_published")) or parse_date(item.get("date_modified"))
    return _make_entry(
        guid=str(identifier) if isinstance(identifier, str | int) else None,
        link=_string(item.get("url")) or _string(item.get("external_url")),
        # Plain text by the spec, but feeds from blog engines carry entities ("&#8211;").
        title=_text(_string(item.get("title")), True),
        bodies=[
            (_string(item.get("content_html")), True),
            (_string(item.get("content_text")), False),
            (_string(item.get("summary")), False),
        ],
        published=published,
        author=_json_author(item),
        base=base,
        now=now,
    )


def _json_author(item: Mapping[str, Any]) -> str | None:
    authors = item.get("authors")
    candidates = authors if isinstance(authors, list) else [item.get("author")]
    for author in candidates:
        if isinstance(author, dict) and _string(author.get("name")):
            return _string(author.get("name"))
    return None


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# --- entries, both formats -------------------------------------------------------------------


def _collect(
    items: Iterable[_Item], to_entry: Callable[[_Item], Entry | None], max_entries: int
) -> tuple[Entry, ...]:
    """The first `max_entries` distinct entries."""
    entries: dict[str, Entry] = {}
    for item in items:
        if len(entries) >= max_entries:
            break
        entry = to_entry(item)
        if entry is not None:
            entries.setdefault(entry.key, entry)  # the same key again: the first one stays
    return tuple(entries.values())


def _make_entry(
    *,
    guid: Any,
    link: Any,
    title: str | None,
    bodies: Sequence[_Body],
    published: datetime | None,
    author: Any,
    base: str,
    now: datetime,
) -> Entry | None:
    guid = guid.strip() if isinstance(guid, str) and guid.strip() else None
    canonical = canonicalize_url(link, base) if isinstance(link, str) and link.strip() else None
    longest = max((_text(value, is_html) or "" for value, is_html in bodies), key=len)
    summary = longest[:MAX_TEXT_CHARS] or None  # a 14 MB description is no summary
    key = guid or canonical or _content_key(title, summary)
    if key is None:
        return None
    return Entry(
        key=key,
        link=canonical,
        title=title,
        summary=summary,
        published=published,
        date_suspect=published is not None and not _plausible(published, now),
        author=_text(author, False) if isinstance(author, str) else None,
    )


def _content_key(title: str | None, summary: str | None) -> str | None:
    if not title and not summary:
        return None
    digest = hashlib.sha256(f"{title or ''}\n{summary or ''}".encode()).hexdigest()
    return f"sha256:{digest}"


def _plausible(published: datetime, now: datetime) -> bool:
    return EARLIEST_PLAUSIBLE <= published <= now + FUTURE_SLACK


def _text(value: Any, is_html: bool) -> str | None:
    if not isinstance(value, str):
        return None
    text = html_to_text(value) if is_html else _SPACE.sub(" ", value).strip()
    return text or None


def _strip_tags(html: str) -> str:
    html = _COMMENT.sub(" ", _SCRIPT_OR_STYLE.sub(" ", html))
    html = _SPACE.sub(" ", html)  # in HTML a newline is a space; blocks make the lines
    return _TAG.sub("", _BLOCK_TAG.sub("\n", html))
