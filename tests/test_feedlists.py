"""Feed lists: OPML and TOML read, written and read back."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree

from newsfold.config import load_settings
from newsfold.errors import ConfigError
from newsfold.feedlists import read_feed_list, write_opml, write_toml
from newsfold.model import FeedSource

REPO = Path(__file__).resolve().parents[1]

NESTED_OPML = """<?xml version="1.0" encoding="UTF-8"?>
<!-- exported by another reader -->
<opml version="1.0">
  <head><title>Subscriptions</title></head>
  <body>
    <outline text="News" title="News">
      <outline text="BBC" title="BBC News" type="rss" xmlUrl="https://feeds.bbci.co.uk/news/rss.xml"
               htmlUrl="https://www.bbc.co.uk/news"/>
      <outline text="Wire">
        <outline type="rss" text="AP via ABC" xmlurl="https://abcnews.go.com/abcnews/internationalheadlines"/>
      </outline>
    </outline>
    <outline text="Untitled" type="rss" XMLURL=" https://example.org/feed.xml "/>
    <outline text="A bookmark, not a feed" type="link" url="https://example.org/"/>
  </body>
</opml>
"""


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def test_opml_nested_outlines(tmp_path: Path) -> None:
    """Feeds in nested folders are all found, with title (else text) as name; folders are not."""
    feeds = read_feed_list(write(tmp_path, "subs.opml", NESTED_OPML))
    assert feeds == [
        FeedSource("https://feeds.bbci.co.uk/news/rss.xml", "BBC News"),
        FeedSource("https://abcnews.go.com/abcnews/internationalheadlines", "AP via ABC"),
        FeedSource("https://example.org/feed.xml", "Untitled"),
    ]


def test_toml_feed_list(tmp_path: Path) -> None:
    """[[feeds]] with url, name and interval, as in the config file."""
    text = '[[feeds]]\nurl = "https://a.example/rss"\nname = "A"\ninterval = "15m"\n\n'
    text += '[[feeds]]\nurl = "https://b.example/atom.xml"\n'
    assert read_feed_list(write(tmp_path, "feeds.toml", text)) == [
        FeedSource("https://a.example/rss", "A", timedelta(minutes=15)),
        FeedSource("https://b.example/atom.xml"),
    ]


def test_format_is_sniffed_not_taken_from_the_extension(tmp_path: Path) -> None:
    """OPML saved as .txt and TOML saved as .opml are both read right."""
    opml = read_feed_list(write(tmp_path, "export.txt", NESTED_OPML))
    toml = read_feed_list(write(tmp_path, "list.opml", '[[feeds]]\nurl = "https://a.example/"\n'))
    assert len(opml) == 3
    assert toml == [FeedSource("https://a.example/")]


def test_opml_with_bom_and_in_utf16(tmp_path: Path) -> None:
    """A UTF-8 BOM or a UTF-16 OPML export is still OPML."""
    with_bom = write(tmp_path, "bom.opml", b"\xef\xbb\xbf" + NESTED_OPML.encode())
    utf16 = write(tmp_path, "u16.opml", NESTED_OPML.replace("UTF-8", "UTF-16").encode("utf-16"))
    assert read_feed_list(with_bom) == read_feed_list(utf16)
    assert len(read_feed_list(utf16)) == 3


def test_same_url_listed_twice_is_kept_once(tmp_path: Path) -> None:
    """The first listing of a URL wins; order is kept."""
    text = "".join(
        f'[[feeds]]\nurl = "{url}"\nname = "{name}"\n'
        for url, name in [("https://a/", "first"), ("https://b/", "b"), ("https://a/", "again")]
    )
    feeds = read_feed_list(write(tmp_path, "dup.toml", text))
    assert [(f.url, f.name) for f in feeds] == [("https://a/", "first"), ("https://b/", "b")]


SAMPLE = [
    FeedSource(
        "https://feeds.bbci.co.uk/news/world/rss.xml", "BBC News, World", timedelta(minutes=15)
    ),
    FeedSource("https://example.org/feed?lang=en&x=1", 'Quotes "and" <angles> & ampersands'),
    FeedSource("https://example.org/unnamed.xml"),
    FeedSource("https://xn--bcher-kva.de/feed", "Bücher — Übersicht 📚", timedelta(hours=2)),
    FeedSource("https://example.org/multi", "back\\slash\ttab\nnewline", timedelta(days=1)),
]


@pytest.mark.parametrize("fmt", ["opml", "toml"])
def test_round_trip(tmp_path: Path, fmt: str) -> None:
    """write_opml / write_toml then read_feed_list gives back the same feeds."""
    text = write_opml(SAMPLE) if fmt == "opml" else write_toml(SAMPLE)
    assert read_feed_list(write(tmp_path, f"out.{fmt}", text)) == SAMPLE


def test_written_toml_is_a_valid_config_fragment() -> None:
    """write_toml's output parses as TOML and as the [[feeds]] of a config file."""
    document = tomllib.loads(write_toml(SAMPLE))
    assert [feed["url"] for feed in document["feeds"]] == [f.url for f in SAMPLE]


def test_control_characters_survive_toml_and_are_dropped_from_opml(tmp_path: Path) -> None:
    """A name with characters TOML must escape reads back whole; OPML (XML 1.0 cannot carry
    them at all) drops only those characters."""
    feeds = [FeedSource("https://example.org/bell", "bell\x07 del\x7f nul\x00 esc\x1b end")]
    assert read_feed_list(write(tmp_path, "out.toml", write_toml(feeds))) == feeds
    (opml,) = read_feed_list(write(tmp_path, "out.opml", write_opml(feeds)))
    assert opml.name == "bell del\x7f nul esc end"


def test_written_opml_declares_itself() -> None:
    """The OPML output is version 2.0 with a title and one outline per feed."""
    text = write_opml(SAMPLE, title="My & feeds")
    document = etree.fromstring(text.encode("utf-8")).getroottree()
    assert (document.docinfo.xml_version, document.docinfo.encoding) == ("1.0", "UTF-8")
    assert (document.getroot().tag, document.getroot().get("version")) == ("opml", "2.0")
    assert "<title>My &amp; feeds</title>" in text
    assert text.count("<outline ") == len(SAMPLE)


def test_example_lists_hold_the_same_feeds() -> None:
    """config/feeds.toml and config/feeds.opml list the same 5-10 real feeds."""
    toml_feeds = read_feed_list(REPO / "config" / "feeds.toml")
    opml_feeds = read_feed_list(REPO / "config" / "feeds.opml")
    assert toml_feeds == opml_feeds
    assert 5 <= len(toml_feeds) <= 10
    assert all(feed.url.startswith("https://") and feed.name for feed in toml_feeds)
    assert load_settings(REPO / "config" / "feeds.toml", env={}).feeds == tuple(toml_feeds)


@pytest.mark.parametrize(
    ("name", "content", "cause"),
    [
        ("broken.opml", "<opml><body><outline xmlUrl='https://a/'></body>", "not valid OPML"),
        (
            "feed.xml",
            "<rss version='2.0'><channel/></rss>",
            "not an OPML document (root element <rss>)",
        ),
        ("bad.toml", "[[feeds]\nurl = 1", "not valid TOML"),
        ("nourl.toml", '[[feeds]]\nname = "x"\n', "feeds[0].url"),
        (
            "badinterval.toml",
            '[[feeds]]\nurl = "https://a/"\ninterval = "soon"\n',
            "feeds[0].interval",
        ),
        (
            "ftp.toml",
            '[[feeds]]\nurl = "ftp://a/feed"\n',
            "feed 1: 'ftp://a/feed' is not an http(s) URL",
        ),
        (
            "js.opml",
            '<opml><body><outline text="x" xmlUrl="javascript:alert(1)"/></body></opml>',
            "is not an http(s) URL",
        ),
        (
            "interval.opml",
            '<opml><body><outline xmlUrl="https://a/" interval="often"/></body></opml>',
            "outline 1: interval",
        ),
    ],
)
def test_errors_name_the_file_and_the_cause(
    tmp_path: Path, name: str, content: str, cause: str
) -> None:
    """Each bad list fails with a ConfigError naming the file and what is wrong."""
    path = write(tmp_path, name, content)
    with pytest.raises(ConfigError) as caught:
        read_feed_list(path)
    assert str(path) in str(caught.value)
    assert cause in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    """A missing file is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="cannot read feed list"):
        read_feed_list(tmp_path / "nope.opml")


def test_empty_lists(tmp_path: Path) -> None:
    """An empty TOML file and an OPML body without outlines list no feeds."""
    assert read_feed_list(write(tmp_path, "empty.toml", "")) == []
    assert read_feed_list(write(tmp_path, "empty.opml", "<opml><head/><body/></opml>")) == []


@pytest.mark.parametrize("one_line", [False, True])
def test_hostile_opml_is_not_expanded_or_fetched(tmp_path: Path, one_line: bool) -> None:
    """Billion laughs and external entities in OPML are refused, not expanded or read."""
    levels = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">' for i in range(1, 10)
    ]
    sep = "" if one_line else "\n"
    laughs = f"<!DOCTYPE opml [{sep.join(levels)}]><opml><body><outline text='&lol9;' xmlUrl='https://a/'/></body></opml>"
    with pytest.raises(ConfigError, match="not valid OPML"):
        read_feed_list(write(tmp_path, "laughs.opml", laughs))
    xxe = (
        '<!DOCTYPE opml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        '<opml><body><outline text="a&x;" xmlUrl="https://a/"/></body></opml>'
    )
    with pytest.raises(ConfigError, match="external entity"):
        read_feed_list(write(tmp_path, "xxe.opml", xxe))
