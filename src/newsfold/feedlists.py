"""Feed lists in and out: OPML (what other readers export) and TOML ([[feeds]] as in the config).

The format is told by the content, not the file name: a body that starts with "<" is OPML,
anything else TOML; a file that is not valid TOML but is named .opml or .xml, or holds <opml, is
reported as the broken OPML it is. OPML is parsed by lxml with entities unresolved and the network
off.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import tomlkit
from lxml import etree
from tomlkit.items import AoT

from newsfold.config import format_duration, load_settings, parse_duration
from newsfold.errors import ConfigError
from newsfold.model import FeedSource, FeedState
from newsfold.urls import canonicalize_url, host_of

_OPML_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True
)
# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def read_feed_list(path: str | Path) -> list[FeedSource]:
    """The feeds listed in an OPML or TOML file, each URL once (the first listing wins)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read feed list ({exc.strerror})") from None
    feeds = _read_opml(data, path) if _is_xml(data) else _read_toml_or_opml(path, data)
    for index, feed in enumerate(feeds, start=1):
        if canonicalize_url(feed.url) is None:
            raise ConfigError(f"{path}: feed {index}: {feed.url!r} is not an http(s) URL")
    unique: dict[str, FeedSource] = {}
    for feed in feeds:
        unique.setdefault(feed.url, feed)
    return list(unique.values())


def feed_label(feed: FeedState) -> str:
    """How a feed is shown: its name; before it has one (its first check reads the title), its
    host."""
    return feed.name or host_of(feed.url) or feed.url


def matching_feeds(feeds: Sequence[FeedState], wanted: str) -> list[FeedState]:
    """The feeds a user means by `wanted`: the one with that URL, else those shown by that name
    (case aside). Several when a name is shared."""
    urls = {wanted.strip(), canonicalize_url(wanted.strip())}
    by_url = [feed for feed in feeds if feed.url in urls]
    if by_url:
        return by_url
    name = " ".join(wanted.split()).casefold()
    return [feed for feed in feeds if " ".join(feed_label(feed).split()).casefold() == name]


def write_opml(feeds: Iterable[FeedSource], title: str = "newsfold feeds") -> str:
    """An OPML 2.0 document with one outline per feed (interval as a newsfold attribute)."""
    opml = etree.Element("opml", version="2.0")
    head = etree.SubElement(opml, "head")
    etree.SubElement(head, "title").text = _xml_text(title)
    body = etree.SubElement(opml, "body")
    for feed in feeds:
        etree.SubElement(body, "outline", _outline_attributes(feed))
    document: bytes = etree.tostring(
        opml, xml_declaration=True, encoding="UTF-8", pretty_print=True
    )
    return document.decode("utf-8")


def write_toml(feeds: Iterable[FeedSource]) -> str:
    """[[feeds]] tables, readable by `feeds import` and as part of a config file."""
    table = feeds_table(feeds)
    return tomlkit.dumps({"feeds": table}) if table else ""


def feeds_table(feeds: Iterable[FeedSource]) -> AoT:
    """The feeds as TOML's array of tables, [[feeds]] as the config file has them."""
    table = tomlkit.aot()
    for feed in feeds:
        item = {"url": feed.url}
        if feed.name:
            item["name"] = feed.name
        if feed.interval:
            item["interval"] = format_duration(feed.interval)
        table.append(item)
    return table


def _read_toml_or_opml(path: Path, data: bytes) -> list[FeedSource]:
    """TOML; but a file that fails as TOML and is named .opml or .xml, or holds <opml, is a
    broken OPML file, and its OPML error is the one that helps."""
    try:
        return _read_toml(path)
    except ConfigError:
        if path.suffix.lower() in (".opml", ".xml") or b"<opml" in data[:4096].lower():
            return _read_opml(data, path)
        raise


def _is_xml(data: bytes) -> bool:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or data[:2] in (
        b"<\x00",
        b"\x00<",
    ):
        return True  # UTF-16: TOML is UTF-8 only
    return data.removeprefix(codecs.BOM_UTF8).lstrip()[:1] == b"<"


def _read_opml(data: bytes, path: Path) -> list[FeedSource]:
    try:
        root = etree.fromstring(data, _OPML_PARSER)
    except etree.XMLSyntaxError as exc:
        raise ConfigError(f"{path}: not valid OPML ({exc})") from None
    if not isinstance(root.tag, str) or etree.QName(root).localname.lower() != "opml":
        raise ConfigError(f"{path}: not an OPML document (root element <{root.tag}>)")
    feeds = []
    for index, outline in enumerate(root.iter("{*}outline"), start=1):
        attributes = {name.lower(): (value or "").strip() for name, value in outline.items()}
        if attributes.get("xmlurl"):
            feeds.append(_outline_feed(attributes, f"{path}: outline {index}"))
    return feeds


def _outline_feed(attributes: dict[str, str], where: str) -> FeedSource:
    url = attributes["xmlurl"]
    name = attributes.get("title") or attributes.get("text") or None
    interval = attributes.get("interval")
    return FeedSource(
        url=url,
        name=None if name == url else name,
        interval=parse_duration(interval, f"{where}: interval") if interval else None,
    )


def _read_toml(path: Path) -> list[FeedSource]:
    # The config loader: one validation of [[feeds]] for config files and feed lists alike.
    try:
        return list(load_settings(path, env={}).feeds)
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(message if str(path) in message else f"{path}: {message}") from None


def _outline_attributes(feed: FeedSource) -> dict[str, str]:
    attributes = {"type": "rss", "text": feed.name or feed.url}
    if feed.name:
        attributes["title"] = feed.name
    attributes["xmlUrl"] = feed.url
    if feed.interval:
        attributes["interval"] = format_duration(feed.interval)
    return {name: _xml_text(value) for name, value in attributes.items()}


def _xml_text(text: str) -> str:
    return _NOT_XML_CHARS.sub("", text)
