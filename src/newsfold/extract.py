"""Article pages -> main text and metadata (trafilatura), run in worker processes with a time limit.

extract_page() is the whole stage for one page: decode the bytes, take the main text with
trafilatura, read the metadata from the page's <head>. ExtractPool runs it in the run's worker
processes (pool.py) so the event loop keeps downloading while pages are extracted, and kills a
worker stuck on one page.

Speed: the metadata comes from one small lxml parse of <head> (meta tags, <link rel=canonical>,
<html lang>) and the page's JSON-LD, found by a regex; not from trafilatura's metadata pass
(htmldate and friends), which makes extraction about 1.3-1.4x slower. Ours adds about 1 ms a page
(3 %). bench/bench_extract.py measures both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml import etree
from tld import get_fld

from newsfold import charset
from newsfold.config import ExtractSettings
from newsfold.dates import parse_date
from newsfold.errors import ExtractError
from newsfold.model import Extracted
from newsfold.pool import Step, WorkerPool

# ---------------------------------------------------------------------------------------------
# Metadata from <head>

_HEAD_END = re.compile(r"</head\s*>|<body[\s>]", re.I)
_HEAD_LIMIT = 256_000  # characters read when a page has no </head> or <body>
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*>")
# JSON-LD sits in <head> or anywhere in <body>: a regex finds it without parsing the whole page.
_JSON_LD = re.compile(r"<script[^>]+application/ld\+json[^>]*>(.*?)</script", re.I | re.S)
_ARTICLE_TYPE = re.compile(r"(article|posting|report)$", re.I)
_BYLINE_PREFIX = re.compile(r"^(by|von|par|por|di)\s+", re.I)
_TITLE_KEYS = ("og:title", "twitter:title")
_AUTHOR_KEYS = (
    "author",
    "article:author",
    "byl",
    "parsely-author",
    "sailthru.author",
    "dc.creator",
)
_DATE_KEYS = (  # after article:published_time and JSON-LD datePublished, the most common two
    "og:article:published_time",
    "datepublished",
    "parsely-pub-date",
    "sailthru.date",
    "publishdate",
    "publish-date",
    "pubdate",
    "dc.date.issued",
    "dcterms.created",
    "dc.date",
    "date",
)
_LANGUAGE_KEYS = ("content-language", "og:locale")
# A BCP 47 tag: language, then script, region or variant subtags. Rejects "utf-8" (seen in the
# wild as a Content-Language).
_LANGUAGE_TAG = re.compile(r"([a-z]{2,3})(?:[-_](?:[a-z]{2}|[a-z]{4}|\d{3}|[a-z\d]{5,8}))*$", re.I)


@dataclass(frozen=True, slots=True)
class PageMeta:
    """What a page says about itself: <head> meta tags by lowercase name, and its JSON-LD."""

    meta: dict[str, str]
    title: str | None  # <title>
    lang: str | None  # <html lang>
    canonical: str | None  # <link rel=canonical href>
    article: dict[str, Any]  # the JSON-LD object describing the article, or {}
    nodes: dict[str, dict[str, Any]]  # every JSON-LD object with an @id, to follow references

    def first(self, keys: tuple[str, ...]) -> str | None:
        return next((self.meta[k] for k in keys if self.meta.get(k)), None)

    def names(self, key: str) -> list[str]:
        """Names of the article's JSON-LD `author` or `publisher`, references followed."""
        return list(dict.fromkeys(self._names(self.article.get(key))))

    def _names(self, value: Any) -> Iterator[str]:
        if isinstance(value, list):
            for item in value:
                yield from self._names(item)
            return
        if isinstance(value, dict):
            value = self.nodes.get(str(value.get("@id")), value).get("name")
        if isinstance(value, str) and (name := _clean(value)):
            yield name


def read_page_meta(html: str) -> PageMeta:
    """Meta tags from one small parse of <head> (a few KB), JSON-LD from wherever it is."""
    nodes = list(_json_ld_objects(html))
    article = next((node for node in nodes if _is_article(node)), {})
    by_id = {str(node["@id"]): node for node in nodes if "@id" in node}
    root = _head_root(html)
    if root is None:
        return PageMeta({}, None, None, None, article, by_id)
    return PageMeta(
        meta=_meta_tags(root),
        title=_clean(root.findtext(".//title")),
        lang=_clean(root.get("lang") or root.get("xml:lang")),
        canonical=_clean(_first(root.xpath("//link[@rel='canonical']/@href"))),
        article=article,
        nodes=by_id,
    )


def _head_root(html: str) -> lxml.html.HtmlElement | None:
    end = _HEAD_END.search(html)
    head = _XML_DECLARATION.sub("", html[: end.start() if end else _HEAD_LIMIT], count=1)
    if not head.strip():
        return None
    try:
        return lxml.html.document_fromstring(head)
    except (etree.ParserError, ValueError):  # a head lxml cannot read: go without it
        return None


def _meta_tags(root: lxml.html.HtmlElement) -> dict[str, str]:
    tags: dict[str, str] = {}
    for meta in root.iter("meta"):
        key = meta.get("property") or meta.get("name") or meta.get("itemprop")
        key = key or meta.get("http-equiv")
        content = _clean(meta.get("content"))
        if key and content:
            tags.setdefault(key.strip().lower(), content)
    return tags


def _json_ld_objects(html: str) -> Iterator[dict[str, Any]]:
    for match in _JSON_LD.finditer(html):
        try:
            data = json.loads(match.group(1), strict=False)
        except ValueError:
            continue
        yield from _flatten_json_ld(data)


def _flatten_json_ld(data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, list):
        for item in data:
            yield from _flatten_json_ld(item)
    elif isinstance(data, dict):
        yield data
        yield from _flatten_json_ld(data.get("@graph"))


def _is_article(node: dict[str, Any]) -> bool:
    types = node.get("@type")
    return any(
        isinstance(t, str) and _ARTICLE_TYPE.search(t)
        for t in (types if isinstance(types, list) else [types])
    )


def _first(values: list[Any]) -> Any:
    return values[0] if values else None


def _clean(value: Any) -> str | None:
    """Whitespace collapsed; None for anything that is not a non-empty string."""
    text = " ".join(value.split()) if isinstance(value, str) else ""
    return text or None


def _title(page: PageMeta) -> str | None:
    return page.first(_TITLE_KEYS) or _clean(page.article.get("headline")) or page.title


def _author(page: PageMeta) -> str | None:
    names = page.names("author") or [page.first(_AUTHOR_KEYS) or ""]
    # article:author is often the author's profile URL, which names no one.
    names = [_BYLINE_PREFIX.sub("", n) for n in names if n and "://" not in n]
    return "; ".join(names) or None


def _published(page: PageMeta) -> datetime | None:
    values = [page.meta.get("article:published_time"), page.article.get("datePublished")]
    values += [page.meta.get(key) for key in _DATE_KEYS]
    dates = (parse_date(value) for value in values)
    return next((date for date in dates if date), None)


def _site_name(page: PageMeta) -> str | None:
    publishers = page.names("publisher")
    return page.first(("og:site_name",)) or _first(publishers) or page.first(("application-name",))


def _language(page: PageMeta) -> str | None:
    """The primary language subtag, lowercase ("de" for "de-AT" or "de_AT")."""
    tags = [page.lang, *(page.meta.get(k) for k in _LANGUAGE_KEYS), page.article.get("inLanguage")]
    for tag in tags:
        match = _LANGUAGE_TAG.match(tag.split(",")[0].strip()) if isinstance(tag, str) else None
        if match:
            return match.group(1).lower()
    return None


# ---------------------------------------------------------------------------------------------
# Canonical URL


def canonical_url(page: PageMeta, page_url: str) -> str | None:
    """The address the page claims (rel=canonical, else og:url) when it is plausible, else None:
    the article then keeps the link that led to it.

    Plausible: http(s) on the page's own site, not the site's home page (unless the page is one),
    and absolute, or, when relative, naming the same page as og:url or as the page's own address.
    A bare token such as href="8003098" resolves to a path that does not exist: not trusted."""
    og_url = page.meta.get("og:url")
    candidate = page.canonical or og_url
    return _plausible_address(candidate, page_url, og_url) if candidate else None


def _plausible_address(candidate: str, page_url: str, og_url: str | None) -> str | None:
    resolved = urljoin(page_url, candidate)
    if urlsplit(resolved).scheme not in ("http", "https") or not same_site(page_url, resolved):
        return None
    if _is_home(resolved) and not _is_home(page_url):
        return None
    if urlsplit(candidate).netloc:  # absolute: "https://host/path" or "//host/path"
        return resolved
    witnesses = [page_url] if og_url in (None, candidate) else [page_url, urljoin(page_url, og_url)]
    return resolved if any(_same_page(resolved, other) for other in witnesses) else None


def _is_home(url: str) -> bool:
    return urlsplit(url).path.strip("/") == ""


def _same_page(url_a: str, url_b: str) -> bool:
    """Same host and path; the query may differ (tracking parameters, session ids)."""
    a, b = urlsplit(url_a), urlsplit(url_b)
    return a.hostname == b.hostname and a.path.rstrip("/") == b.path.rstrip("/")


def same_site(url_a: str, url_b: str) -> bool:
    """Same host, or hosts under one registrable domain (www.example.co.uk, m.example.co.uk)."""
    host_a, host_b = urlsplit(url_a).hostname, urlsplit(url_b).hostname
    if not host_a or not host_b:
        return False
    if host_a == host_b:
        return True
    site_a = get_fld(f"http://{host_a}", fail_silently=True)
    return site_a is not None and site_a == get_fld(f"http://{host_b}", fail_silently=True)


# ---------------------------------------------------------------------------------------------
# The stage


def extract_page(body: bytes, *, url: str, content_type: str | None) -> Extracted:
    """A page's bytes -> its main text and metadata. Raises ExtractError when no text comes out."""
    html = charset.decode(body, content_type)
    page = read_page_meta(html)
    text = _without_headline(_main_text(html, url), _headlines(page))
    return Extracted(
        text=text,
        title=_title(page),
        author=_author(page),
        published=_published(page),
        site_name=_site_name(page),
        language=_language(page),
        canonical_url=canonical_url(page, url),
    )


def _main_text(html: str, url: str) -> str:
    # Comments are left out: they are not the story, and leaving them out raised token F1 on
    # every corpus collection. fast=True is not used: it lost main-text snippets on the corpus.
    import trafilatura  # here: the main process imports this module but never extracts

    try:
        text = trafilatura.extract(html, url=url, include_comments=False)
    except Exception as exc:  # lxml and trafilatura raise many types on broken markup
        raise ExtractError(url, f"extraction failed: {type(exc).__name__}: {exc}") from exc
    if not text or not text.strip():
        raise ExtractError(url, "no main text found")
    return str(text)


# The headline is looked for this many lines down, past at most this many words of kicker or
# breadcrumb ("Home", "Local", "World > Europe") above it.
HEADLINE_LINES = 4
FURNITURE_WORDS = 6
_TITLE_SEPARATORS = re.compile(
    r"\s+[|\u2013\u2014-]\s+"
)  # "Headline | Outlet", "Headline - Outlet"


def _headlines(page: PageMeta) -> set[str]:
    """The ways a page names its article, normalised: og:title, JSON-LD headline, <title> and
    its part before the outlet's name."""
    names = [*(page.meta.get(key) for key in _TITLE_KEYS), page.article.get("headline")]
    if page.title:
        names += [page.title, _TITLE_SEPARATORS.split(page.title)[0]]
    return {_headline_key(name) for name in names if isinstance(name, str) and name.strip()}


def _headline_key(text: str) -> str:
    return " ".join(text.casefold().split()).strip(" .:")


def _without_headline(text: str, headlines: set[str]) -> str:
    """The text from the line after its headline, when trafilatura kept the headline (and a
    kicker or breadcrumb above it) as the text's first lines: a summary must start with the
    story, and copies of one story under other headlines compare better without them."""
    lines = text.split("\n")
    for index, line in enumerate(lines[:HEADLINE_LINES]):
        if _headline_key(line) in headlines:
            rest = "\n".join(lines[index + 1 :]).strip()
            return rest or text
        if len(line.split()) > FURNITURE_WORDS:
            break  # a sentence: the story has begun
    return text


# ---------------------------------------------------------------------------------------------
# Worker processes

PageExtractor = Callable[..., Extracted]  # extract_page's signature: (body, *, url, content_type)


def _extract_in_worker(
    extractor: PageExtractor, body: bytes, url: str, content_type: str | None
) -> Extracted:
    """The task a worker runs: any failure stays one page's ExtractError, never the pool's."""
    try:
        return extractor(body, url=url, content_type=content_type)
    except ExtractError:
        raise
    except Exception as exc:
        raise ExtractError(url, f"extraction failed: {type(exc).__name__}: {exc}") from None


EXTRACTION = Step("extraction", ExtractError)


class ExtractPool(WorkerPool):
    """The run's worker pool, which also extracts pages: extract_page, or `extractor` in tests."""

    def __init__(self, settings: ExtractSettings, *, extractor: PageExtractor = extract_page):
        super().__init__(settings)
        self._extractor = extractor

    async def extract(self, body: bytes, url: str, content_type: str | None) -> Extracted:
        """Extract one page in a worker. Raises ExtractError (no text, time-out, worker crash)."""
        return await self.call(
            EXTRACTION, url, _extract_in_worker, self._extractor, body, url, content_type
        )
