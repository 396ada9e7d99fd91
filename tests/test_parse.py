"""Parse stage: real corpus feeds in, entries (or one clear ParseError) out."""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin

import pytest

from newsfold import charset
from newsfold.errors import ParseError
from newsfold.model import ParsedFeed
from newsfold.parse import html_to_text, parse_feed, root_element
from newsfold.urls import canonicalize_url
from tests.corpus import CORPUS, corpus_params, needs_corpus
from tests.server import FeedServer

FEEDS = CORPUS / "feeds"
NEWS = FEEDS / "fastfeedparser" / "news-2026-02-17"
NOW = datetime(2026, 2, 18, 12, 0, tzinfo=UTC)  # the news feeds were fetched on 2026-02-17/18
URL = "https://example.org/feed.xml"
TRUTH_SUFFIXES = (".expected.json", ".serde.json")

# Corpus files that must fail, and the cause each one's error must give.
FAILING = {
    # cut off right after the channel header, no item at all: feed-rs's "meant to fail" case
    "feed-rs/rss2/rss_2.0_invalid_1.xml": "not well-formed XML (line 19",
    # the closing "</rss" has no ">" and the channel lists no item
    "feedparser/entities/8217.xml": "not well-formed XML (line 10",
    # a comment and nothing else
    "feedparser/illformed/rss_empty_document.xml": "not a feed (no RSS, Atom or JSON Feed root)",
    # the only item stops inside "<![CD" at the end of the file
    "feedparser/illformed/rss_incomplete_cdata.xml": "not well-formed XML",
    # itunes: prefix never declared, and the channel lists no item
    "feedparser/illformed/undeclared_namespace.xml": "unbound prefix",
    # Scripting News' own RSS-in-JSON ({"rss": ...}), not a JSON Feed
    "rsparser/ScriptingNews.json": "JSON but not a JSON Feed",
}
# Well-formed feeds that list no items: zero entries is what they hold.
EMPTY = {
    "feedparser/encoding/big5.xml": "<rss></rss> declared big5",
    "feedparser/encoding/utf-16le-bom.xml": "<rss></rss> in UTF-16LE with BOM",
    "feedparser/illformed/http_high_bit_date.xml": "a channel with only a Greek pubDate",
    "miniflux/encoding/windows-1252-incorrect-prolog.xml": "a channel with only a title",
}


def corpus_feeds() -> list[str]:
    return sorted(
        str(path.relative_to(FEEDS))
        for path in FEEDS.rglob("*")
        if path.is_file() and not path.name.endswith(TRUTH_SUFFIXES)
    )


def parse(
    name: str,
    *,
    url: str = URL,
    content_type: str | None = None,
    max_entries: int = 100_000,
) -> ParsedFeed:
    return parse_body(
        (FEEDS / name).read_bytes(), url=url, content_type=content_type, max_entries=max_entries
    )


def parse_body(
    body: bytes,
    *,
    url: str = URL,
    content_type: str | None = None,
    max_entries: int = 100_000,
    now: datetime = NOW,
) -> ParsedFeed:
    return parse_feed(body, url=url, content_type=content_type, now=now, max_entries=max_entries)


def rss(items: str, channel: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"{channel}{items}</channel></rss>"
    ).encode()


# --- the whole corpus --------------------------------------------------------------------------


@needs_corpus
def test_corpus_has_the_86_feeds_this_file_describes() -> None:
    """The corpus still holds 86 feeds and every listed failure or empty feed is among them."""
    names = corpus_feeds()
    assert len(names) == 86
    assert set(FAILING) | set(EMPTY) <= set(names)


@pytest.mark.parametrize("name", corpus_params(corpus_feeds))
def test_every_corpus_feed_yields_entries_or_a_clear_error(name: str) -> None:
    """Each feed gives entries, or is a known empty feed, or fails naming the URL and cause."""
    if name in FAILING:
        with pytest.raises(ParseError) as caught:
            parse(name)
        assert FAILING[name] in caught.value.cause
        assert str(caught.value).startswith(f"{URL}: ")
        return
    feed = parse(name)
    if name in EMPTY:
        assert feed.entries == ()
        return
    assert feed.entries
    assert all(entry.key for entry in feed.entries)
    assert len({entry.key for entry in feed.entries}) == len(feed.entries)
    for entry in feed.entries:
        assert entry.published is None or entry.published.tzinfo == UTC
        assert entry.link is None or canonicalize_url(entry.link) == entry.link


# --- independent entry counts ------------------------------------------------------------------


def readme_item_counts() -> dict[str, int]:
    """The item counts table of the corpus README: file name -> items."""
    readme = (CORPUS / "README.md").read_text()
    rows = re.findall(r"^\| `([0-9a-f]{16}\.xml)` \|[^|]*\|[^|]*\| (\d+) \|$", readme, re.M)
    return {file: int(count) for file, count in rows}


AL_MONITOR = "72fea1ebfd02e90a.xml"


def test_readme_lists_all_26_news_feeds() -> None:
    """The README table names the 26 news feeds of 2026-02-17 and their item counts."""
    counts = readme_item_counts()
    assert len(counts) == 26
    assert sorted(counts) == sorted(path.name for path in NEWS.iterdir())


@pytest.mark.parametrize(
    ("file", "items"), corpus_params(lambda: sorted(readme_item_counts().items()), arity=2)
)
def test_news_feed_entry_counts_match_the_readme(file: str, items: int) -> None:
    """Every item of a news feed becomes one entry; repeated GUIDs count once."""
    body = (NEWS / file).read_bytes()
    guids = re.findall(rb"<guid[^>]*>([^<]+)</guid>", body)
    repeats = len(guids) - len(set(guids))
    feed = parse_body(body)
    assert len(feed.entries) == items - repeats
    if file != AL_MONITOR:
        assert repeats == 0


def test_al_monitor_repeated_item_is_stored_once() -> None:
    """Al-Monitor lists one GUID four times in a row: one entry, the first copy."""
    groups = json.loads((CORPUS / "syndication" / "feed-item-groups.json").read_text())["groups"]
    (group,) = [g for g in groups if g["label"] == "exact_same_item_repeated_in_one_feed"]
    guid = group["members"][0]["guid"]
    assert {member["guid"] for member in group["members"]} == {guid}
    assert len(group["members"]) == 4
    feed = parse_body((NEWS / AL_MONITOR).read_bytes())
    matching = [entry for entry in feed.entries if entry.key == guid]
    assert len(matching) == 1
    assert matching[0].title == group["members"][0]["title"]
    # The README's 20 items are 11 distinct GUIDs: three stories are listed four times each.
    assert len(feed.entries) == 11


TRUTHS = sorted(
    str(path.relative_to(FEEDS)) for suffix in TRUTH_SUFFIXES for path in FEEDS.rglob(f"*{suffix}")
)


def truth_entries(truth_name: str) -> list[tuple[str, str | None, str | None]]:
    """(title, link, published or updated) of each entry in a fastfeedparser or feed-rs truth."""
    document = json.loads((FEEDS / truth_name).read_text())
    rows = []
    for entry in document["entries"]:
        title = entry.get("title")
        title = title["content"] if isinstance(title, dict) else title
        links = [link["href"] for link in entry.get("links") or []]
        link = links[0] if links else entry.get("link")
        rows.append((title, link, entry.get("published") or entry.get("updated")))
    return rows


def feed_for_truth(truth_name: str) -> str:
    stem = truth_name.removesuffix(".expected.json").removesuffix(".serde.json")
    (feed,) = [name for name in corpus_feeds() if name.rsplit(".", 1)[0] == stem]
    return feed


@pytest.mark.parametrize("truth_name", corpus_params(lambda: TRUTHS))
def test_entries_match_fastfeedparser_and_feed_rs_truths(truth_name: str) -> None:
    """Count, titles, links and dates agree with the upstream parsers' expected output."""
    assert len(TRUTHS) == 11
    feed_url = "https://example.com/blog/feed.xml"
    feed = parse(feed_for_truth(truth_name), url=feed_url)
    expected = truth_entries(truth_name)
    assert len(feed.entries) == len(expected)
    for entry, (title, link, published) in zip(feed.entries, expected, strict=True):
        assert entry.title == title
        assert entry.link == canonicalize_url(urljoin(feed_url, link or ""))
        when = datetime.fromisoformat(published) if published else None
        assert entry.published == when


# --- encodings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("feedparser/illformed/chardet/koi8r.xml", "Как пережить новогоднюю ночь"),
        ("miniflux/encoding/koi8r.xml", "Первая новость"),
        ("miniflux/encoding_WINDOWS-1251.xml", "Цитата #17703"),
        ("feedparser/illformed/chardet/shiftjis.xml", "DrecomRSSに記事投稿が反映されない…"),
        (
            "feed-rs/rss1/rss_1.0_iso8859.xml",
            "Digitalministerium: Neue Glasfaserförderung mit Schnellkasse",
        ),
        ("feed-rs/rss0/rss_0.91_encoding_1.xml", "bash - Expansão de Parâmetros"),
        ("miniflux/no_encoding_ISO-8859-1.xml", "La criminalité liée surtout à... l'ennui ?"),
        ("fastfeedparser/integration/utf16_encoded.xml", "UTF-16 Entry 1"),
        ("fastfeedparser/odd/9e0834333e854116.xml", "So you want to parse a PDF?"),
        ("miniflux/urdu_UTF8.xml", "امریکی عسکری امداد کی بندش کی وجوہات"),
    ],
    ids=lambda value: value if "/" in value else None,
)
def test_titles_decoded_from_their_charset(name: str, title: str) -> None:
    """Declared, undeclared and misdeclared charsets all give the right characters."""
    titles = [entry.title or "" for entry in parse(name).entries]
    assert any(t.startswith(title) for t in titles), titles[:3]


def test_windows_1252_prolog_over_utf8_bytes() -> None:
    """A prolog saying windows-1252 over UTF-8 bytes: the bytes win, the euro sign survives."""
    assert parse("miniflux/encoding/windows-1252-incorrect-prolog.xml").title == "Euro €"


def test_windows_1252_smart_quote_in_utf8() -> None:
    """A C1 control meant as a Windows-1252 quote reads as that quote (feedparser fixes it)."""
    (entry,) = parse("feedparser/encoding/demoronize-1.xml").entries
    assert entry.summary == "don\u2019t"


def test_corpus_big5_feed_is_an_empty_rss() -> None:
    """The corpus Big5 file declares big5 and holds an empty <rss>: a valid feed, no entries."""
    feed = parse("feedparser/encoding/big5.xml")
    assert feed.entries == ()


@pytest.mark.parametrize(
    ("codec", "title"),
    [
        ("big5", "台灣選舉結果"),
        ("windows-1252", "Euro \u20ac \u2013 \u201cquoted\u201d na\u00efve"),
        ("windows-1251", "Новости дня"),
        ("koi8-r", "Новости дня"),
        ("iso-8859-7", "Ειδήσεις"),
        ("shift_jis", "日本のニュース"),
    ],
)
def test_declared_legacy_charsets(codec: str, title: str) -> None:
    """A title in a legacy charset named by the XML declaration decodes to the right text."""
    body = f'<?xml version="1.0" encoding="{codec}"?><rss version="2.0"><channel><title>{title}'
    body += f"</title><item><title>{title}</title><link>https://e.example/1</link></item>"
    feed = parse_body((body + "</channel></rss>").encode(codec))
    assert feed.title == title
    assert feed.entries[0].title == title


def test_charset_from_the_content_type_header() -> None:
    """With no prolog, the charset in the HTTP Content-Type decides."""
    body = rss("<item><title>Привет мир</title><link>https://e.ru/1</link></item>")
    body = body.decode().replace('encoding="utf-8"', "").encode("windows-1251")
    feed = parse_body(body, content_type="application/rss+xml; charset=windows-1251")
    assert feed.entries[0].title == "Привет мир"


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-8-sig", "utf-32"])
def test_unicode_encodings_with_and_without_bom(codec: str) -> None:
    """UTF-16/32 with a BOM, UTF-16 without one, and UTF-8 with a BOM all decode."""
    text = (FEEDS / "miniflux/encoding/koi8r.xml").read_bytes().decode("koi8-r")
    text = text.replace('encoding="KOI8-R"', f'encoding="{codec.removesuffix("-sig")}"')
    feed = parse_body(text.encode(codec))
    assert feed.title == "Пример RSS ленты"
    assert [entry.title for entry in feed.entries] == ["Первая новость", "Вторая новость"]


def test_stray_bytes_in_utf8_are_replaced_not_misread() -> None:
    """A UTF-8 feed with one bad byte keeps its other non-ASCII characters."""
    (entry,) = parse("feedparser/encoding/bozo_linenoise.xml").entries
    assert entry.summary is not None
    assert entry.summary.startswith("\u2019<>\u201d")


def test_decode_body_order() -> None:
    """BOM first, then valid UTF-8, then the declared charset."""
    assert charset.decode("é".encode("utf-16")) == "é"
    assert charset.decode('<?xml encoding="koi8-r"?>é'.encode()) == '<?xml encoding="koi8-r"?>é'
    assert charset.decode('<?xml encoding="koi8-r"?>Ж'.encode("koi8-r")).endswith("Ж")
    assert charset.decode("café".encode("latin-1"), "text/xml; charset=ISO-8859-1") == "café"


# --- links and identity ------------------------------------------------------------------------


def test_xml_base_resolves_kottke_links() -> None:
    """kottke.org's Atom feed has relative links under xml:base: entries get absolute ones."""
    feed = parse("fastfeedparser/odd/e44e7aea7e34bb52.xml", url="https://feeds.kottke.org/main")
    assert len(feed.entries) == 60
    assert (
        feed.entries[0].link == "https://kottke.org/26/02/reimagining-the-origins-of-winter-sports"
    )
    assert all((e.link or "").startswith("https://kottke.org/") for e in feed.entries)


def test_relative_atom_link_resolved_against_feed_url() -> None:
    """feed-rs's relative Atom link is resolved against the URL the feed came from."""
    feed = parse("feed-rs/atom/atom_relative.xml", url="https://example.com/blog/feed.xml")
    assert feed.entries[0].link == "https://example.com/blog/2003/12/13/atom03"
    assert feed.link == "https://example.com/blog/"


def test_relative_rss_link_and_item_xml_base() -> None:
    """An RSS link relative to the item's xml:base, and one relative to the feed URL."""
    body = rss(
        '<item xml:base="https://cdn.example.net/news/"><title>a</title><link>one.html</link></item>'
        "<item><title>b</title><link>/two.html?utm_source=rss</link></item>"
    )
    feed = parse_body(body, url="https://example.org/feeds/main.xml")
    assert [e.link for e in feed.entries] == [
        "https://cdn.example.net/news/one.html",
        "https://example.org/two.html",
    ]


def test_entry_key_prefers_guid_then_link_then_content_hash() -> None:
    """GUID, else canonical link, else a hash of title and summary."""
    body = rss(
        "<item><guid> g-1 </guid><link>https://e.com/1</link><title>a</title></item>"
        "<item><guid>   </guid><link>https://E.com/2#top</link><title>b</title></item>"
        "<item><title>c</title><description>text</description></item>"
    )
    first, second, third = parse_body(body).entries
    assert first.key == "g-1"
    assert second.key == "https://e.com/2"
    assert third.key.startswith("sha256:")
    assert third.link is None


def test_unsafe_link_schemes_are_dropped() -> None:
    """javascript:, data: and file: links give no link; the entry is kept by its title."""
    body = rss(
        "<item><title>a</title><link>javascript:alert(1)</link></item>"
        "<item><title>b</title><link>data:text/html,x</link></item>"
        "<item><title>c</title><link>file:///etc/passwd</link></item>"
    )
    entries = parse_body(body).entries
    assert [e.title for e in entries] == ["a", "b", "c"]
    assert [e.link for e in entries] == [None, None, None]


def test_same_key_kept_once_first_wins() -> None:
    """A GUID repeated inside one feed gives one entry: the first."""
    body = rss(
        "<item><guid>x</guid><title>first</title></item>"
        "<item><guid>y</guid><title>other</title></item>"
        "<item><guid>x</guid><title>second</title></item>"
    )
    assert [e.title for e in parse_body(body).entries] == ["first", "other"]


def test_items_with_nothing_to_identify_are_skipped() -> None:
    """An empty item (no id, link, title or text) is skipped; a feed of only those fails."""
    body = rss("<item></item><item><title>kept</title></item>")
    assert [e.title for e in parse_body(body).entries] == ["kept"]
    with pytest.raises(ParseError, match="its items have no id, link, title or text"):
        parse_body(rss("<item></item><item><link>  </link></item>"))


# --- text, dates, ttl --------------------------------------------------------------------------


def test_summary_is_plain_text_of_the_longer_of_content_and_summary() -> None:
    """Tags stripped, entities decoded, whitespace collapsed, one line per paragraph, the
    longer text chosen."""
    body = rss(
        '<item xmlns:content="http://purl.org/rss/1.0/modules/content/"><title>a</title>'
        "<description>Short &amp; sweet</description>"
        "<content:encoded><![CDATA[<p>The <b>full</b>\n\n text &mdash; with"
        "<script>var x = 1;</script> more&nbsp;words.</p><p>Second</p>]]></content:encoded>"
        "</item>"
        "<item><title>b</title><description>&lt;p&gt;Only a &lt;i&gt;summary&lt;/i&gt;"
        "&lt;/p&gt;</description></item>"
    )
    first, second = parse_body(body).entries
    assert first.summary == "The full text — with more words.\nSecond"
    assert second.summary == "Only a summary"


def test_html_to_text() -> None:
    """Block tags end lines, inline tags vanish, comments and scripts go."""
    html = "<div>One<br/>two</div><!-- note --><p>thr<em>ee</em> &amp; <style>p{}</style>four</p>"
    assert html_to_text(html) == "One\ntwo\nthree & four"
    assert html_to_text("a < b and c > d") == "a < b and c > d"


def test_dates_are_utc() -> None:
    """A +0100 pubDate becomes 22:39:15 UTC."""
    feed = parse("feed-rs/rss2/rss_2.0_relurl_1.xml")
    assert feed.entries[0].published == datetime(2021, 3, 2, 22, 39, 15, tzinfo=UTC)


def test_unparseable_date_is_none() -> None:
    """Korea Times writes 'Thu,28 Jul 2022 4:35:5 GMT+9': no date rather than a wrong one."""
    feed = parse("mediacloud-rss-fetcher/real-korean-times.rss")
    assert len(feed.entries) == 195
    assert all(entry.published is None for entry in feed.entries)


def test_updated_used_when_published_is_missing() -> None:
    """An Atom entry with only <updated> takes that date."""
    feed = parse("trafilatura/feed1.atom")
    assert feed.entries[0].published == datetime(2003, 12, 13, 18, 30, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("date", "suspect"),
    [
        ("Thu, 01 Jan 1970 00:00:00 GMT", True),
        ("Sat, 31 Dec 1994 23:59:59 GMT", True),
        ("Sun, 01 Jan 1995 00:00:00 GMT", False),
        ("Thu, 19 Feb 2026 12:00:00 GMT", False),  # tomorrow: clocks and time zones differ
        ("Sat, 21 Feb 2026 12:00:00 GMT", True),  # three days ahead
        ("Wed, 01 Jan 2999 00:00:00 GMT", True),
    ],
)
def test_absurd_dates_are_kept_but_flagged(date: str, suspect: bool) -> None:
    """Dates before 1995 or over two days ahead of now are kept with date_suspect set."""
    body = rss(f"<item><title>t</title><pubDate>{date}</pubDate></item>")
    (entry,) = parse_body(body).entries
    assert entry.published is not None
    assert entry.published.year in (1970, 1994, 1995, 2026, 2999)
    assert entry.date_suspect is suspect


def test_naive_now_is_taken_as_utc() -> None:
    """A naive `now` is read as UTC, not refused."""
    body = rss("<item><title>t</title><pubDate>Wed, 01 Jan 2999 00:00:00 GMT</pubDate></item>")
    (entry,) = parse_body(body, now=NOW.replace(tzinfo=None)).entries
    assert entry.date_suspect


def test_ttl_from_rss_ttl_and_syndication_module() -> None:
    """RSS <ttl> minutes, or sy:updatePeriod divided by sy:updateFrequency."""
    assert parse("trafilatura/feed2.rss").ttl == timedelta(minutes=1800)
    assert parse("fastfeedparser/news-2026-02-17/14dda539770f94e3.xml").ttl == timedelta(hours=1)
    sy = 'xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"'
    body = rss(
        "<item><title>t</title></item>",
        f"<sy:updatePeriod {sy}>daily</sy:updatePeriod>"
        f"<sy:updateFrequency {sy}>4</sy:updateFrequency>",
    )
    assert parse_body(body).ttl == timedelta(hours=6)
    assert parse("miniflux/large_rss.xml").ttl is None


# --- caps and repairs --------------------------------------------------------------------------

BIG = "fastfeedparser/odd/cc314ce5dfbb3adc.xml"


def test_max_entries_keeps_the_first() -> None:
    """With a cap of 20 on 50 items the first 20 are kept; with no cap all 50."""
    items = "".join(f"<item><guid>id-{i}</guid><title>n{i}</title></item>" for i in range(50))
    feed = parse_body(rss(items), max_entries=20)
    assert [entry.title for entry in feed.entries] == [f"n{i}" for i in range(20)]
    assert len(parse_body(rss(items)).entries) == 50


@pytest.mark.parametrize("kind", ["rss", "atom"])
def test_long_feed_cut_keeps_what_follows_the_items(kind: str) -> None:
    """Items past the cap are cut before parsing; channel data after the items survives."""
    if kind == "rss":
        items = "".join(f"<item><guid>g{i}</guid><title>n{i}</title></item>" for i in range(500))
        body = rss(items + "<ttl>45</ttl>")
    else:
        entries = "".join(f"<entry><id>g{i}</id><title>n{i}</title></entry>" for i in range(500))
        body = (
            f'<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>{entries}</feed>'.encode()
        )
    feed = parse_body(body, max_entries=5)
    assert [entry.key for entry in feed.entries] == [f"g{i}" for i in range(5)]
    assert feed.ttl == (timedelta(minutes=45) if kind == "rss" else None)


def test_max_entries_on_the_1046_item_feed() -> None:
    """A cap of 300 keeps the same first 300 entries as no cap."""
    whole = parse(BIG)
    capped = parse(BIG, max_entries=300)
    assert capped.entries == whole.entries[:300]
    assert len(whole.entries) > 300


def test_items_without_guid_or_link_are_told_apart_by_content() -> None:
    """The 1046 items of AreWeAntiCheatYet have no GUID or link: 14 repeat a title and text."""
    feed = parse(BIG)
    assert all(entry.key.startswith("sha256:") for entry in feed.entries)
    assert len(feed.entries) == 1032


def test_undeclared_rss_prefix_is_read() -> None:
    """<rss:item> with no xmlns:rss (dylanharris.org) is read as plain RSS."""
    body = (FEEDS / "fastfeedparser/odd/7ef13a42fa7e177a.xml").read_bytes()
    feed = parse_body(body)
    assert feed.title == "arts and ego"
    assert len(re.findall(rb"<rss:item>", body)) == 35
    assert len(feed.entries) == len(set(re.findall(rb"<rss:guid[^>]*>([^<]+)<", body))) == 34
    assert feed.entries[0].link == "https://dylanharris.org/blog/2026/b5.shtml"


# --- JSON Feed ---------------------------------------------------------------------------------

JSON_FEEDS = [name for name in corpus_feeds() if name.endswith(".json")]


@pytest.mark.parametrize("name", corpus_params(lambda: [n for n in JSON_FEEDS if n not in FAILING]))
def test_json_feeds_give_every_item(name: str) -> None:
    """Every item of a corpus JSON Feed becomes an entry with a key and a title or text."""
    document = json.loads((FEEDS / name).read_text())
    feed = parse(name)
    assert len(feed.entries) == len(document["items"])
    assert feed.title == html_to_text(document["title"])


def test_json_feed_fields() -> None:
    """id, url, title, content, dates and authors are read from JSON Feed 1.1."""
    feed = parse("fastfeedparser/integration/json_feed_sample.json")
    assert feed.link == "https://example.org/"
    first, second = feed.entries
    assert (first.key, first.link, first.author) == (
        "https://example.org/item1",
        "https://example.org/item1",
        "Jane Smith",
    )
    assert first.summary == "This is the first item in our JSON feed."
    assert first.published == datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
    assert second.summary == "This is plain text content for the second item."


def test_json_feed_external_url_rfc822_dates_and_1_0_author() -> None:
    """external_url stands in for url; RFC 822 dates are read; 1.0's single author is used."""
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1",
            "title": "J",
            "author": {"name": "Feed Author"},
            "items": [
                {
                    "id": 7,
                    "external_url": "/elsewhere?utm_medium=x",
                    "title": "A &amp; B",
                    "date_published": "Fri, 31 May 2019 12:17:58 -0700",
                    "author": {"name": "Item Author"},
                },
                {"title": "no date", "date_published": "yesterday-ish", "content_text": "t"},
            ],
        }
    ).encode()
    first, second = parse_body(body, url="https://j.example/feed.json").entries
    assert (first.key, first.link, first.title) == ("7", "https://j.example/elsewhere", "A & B")
    assert first.published == datetime(2019, 5, 31, 19, 17, 58, tzinfo=UTC)
    assert first.author == "Item Author"
    assert second.published is None
    assert second.key.startswith("sha256:")


@pytest.mark.parametrize(
    ("body", "cause"),
    [
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": [', "invalid JSON"),
        (b'{"rss": {"channel": {}}}', "JSON but not a JSON Feed"),
        (b'[{"items": []}]', "JSON but not a JSON Feed"),
        (b'{"version": "https://example.com/other", "items": []}', "JSON but not a JSON Feed"),
    ],
)
def test_json_that_is_not_a_json_feed(body: bytes, cause: str) -> None:
    """Broken JSON and JSON of another shape fail with a cause that says which."""
    with pytest.raises(ParseError, match=re.escape(cause)):
        parse_body(body)


def test_json_feed_with_no_items_is_valid() -> None:
    """A JSON Feed whose items list is empty is a valid feed with zero entries."""
    feed = parse_body(b'{"version": "https://jsonfeed.org/version/1.1", "title": "x", "items": []}')
    assert feed.entries == ()


# --- what is not a feed ------------------------------------------------------------------------


def test_html_page_is_not_a_feed() -> None:
    """A real article page from the corpus fails as 'an HTML page, not a feed'."""
    page = gzip.decompress((CORPUS / "articles/readability/bbc-1/source.html.gz").read_bytes())
    with pytest.raises(ParseError) as caught:
        parse_body(page, url="https://www.bbc.com/news/x", content_type="text/html")
    assert caught.value.cause == "an HTML page, not a feed"
    assert str(caught.value) == "https://www.bbc.com/news/x: an HTML page, not a feed"


@pytest.mark.parametrize(
    ("body", "cause"),
    [
        (b"", "empty body"),
        (b" \r\n\t ", "empty body"),
        (b"\xef\xbb\xbf", "empty body"),
        (b"Service temporarily unavailable", "not a feed (no RSS, Atom or JSON Feed root)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a feed (no RSS, Atom or JSON Feed root)"),
        (b"<?xml version='1.0'?><svg><g/></svg>", "not a feed (no RSS, Atom or JSON Feed root)"),
        (b"<!-- nothing -->", "not a feed (no RSS, Atom or JSON Feed root)"),
        (b"<!DOCTYPE html><title>x</title>", "an HTML page, not a feed"),
        (b"/etc/passwd", "not a feed (no RSS, Atom or JSON Feed root)"),
        (b"<?xml version='1.0'?><!DOCTYPE rss [<!ENTITY a 'b'", "DOCTYPE never closed"),
    ],
    ids=repr,
)
def test_garbage_fails_clearly(body: bytes, cause: str) -> None:
    """Empty, binary, HTML and other non-feed bodies each fail with their own cause."""
    with pytest.raises(ParseError) as caught:
        parse_body(body)
    assert cause in caught.value.cause


def test_root_element() -> None:
    """The root is found after the XML declaration, comments and DOCTYPE."""
    assert (
        root_element('<?xml version="1.0"?>\n<!-- c -->\n<!DOCTYPE x [<!ENTITY a "b">]><rss>')
        == "rss"
    )
    assert root_element("  <RDF:RDF xmlns:RDF='x'>") == "rdf:rdf"
    assert root_element("no markup") is None


# --- hostile XML -------------------------------------------------------------------------------


def billion_laughs(one_line: bool, comment: str = "") -> bytes:
    levels = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">' for i in range(1, 10)
    ]
    separator = "" if one_line else "\n"
    doctype = f"<!DOCTYPE rss [{separator}{separator.join(levels)}{separator}]>"
    return (
        f'<?xml version="1.0"?>\n{comment}{doctype}\n<rss version="2.0"><channel><title>t</title>'
        "<item><title>A&lol9;B</title><link>https://e.com/1</link></item></channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    ("one_line", "comment"),
    [(False, ""), (True, ""), (True, f"<!-- {'x' * 10_000} -->\n")],
    ids=["multi-line", "one-line", "after-a-long-comment"],
)
def test_billion_laughs_is_not_expanded(one_line: bool, comment: str) -> None:
    """Nested entity definitions are dropped: the entry keeps the reference, not 10^9 lols."""
    (entry,) = parse_body(billion_laughs(one_line, comment)).entries
    assert entry.title is not None
    assert "lollol" not in entry.title
    assert len(entry.title) < 20


@pytest.mark.parametrize("one_line", [False, True], ids=["multi-line", "one-line"])
def test_external_entities_are_not_fetched(server: FeedServer, one_line: bool) -> None:
    """file:///etc/passwd and http://127.0.0.1 entities are neither read nor requested."""
    path = f"/xxe-target-{int(one_line)}"
    server.add(path, b'<!ENTITY leak "FETCHED">')
    target = server.url(path)
    separator = "" if one_line else "\n"
    doctype = separator.join(
        [
            "<!DOCTYPE rss [",
            '<!ENTITY passwd SYSTEM "file:///etc/passwd">',
            f'<!ENTITY remote SYSTEM "{target}">',
            f'<!ENTITY % dtd SYSTEM "{target}"> %dtd;',
            "]>",
        ]
    )
    body = (
        f'<?xml version="1.0"?>\n{doctype}\n<rss version="2.0"><channel><title>t</title>'
        "<item><title>A&passwd;B&remote;C&leak;</title><link>https://e.com/1</link></item>"
        f"</channel></rss>"
    ).encode()
    (entry,) = parse_body(body).entries
    assert "root:" not in (entry.title or "")
    assert "FETCHED" not in (entry.title or "")
    assert server.count(path) == 0


def test_external_dtd_is_not_fetched(server: FeedServer) -> None:
    """A DOCTYPE pointing at a DTD on 127.0.0.1 is not requested."""
    target = server.add("/external.dtd", b'<!ENTITY x "FETCHED">')
    body = (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss SYSTEM "{target}">\n<rss version="2.0"><channel>'
        "<title>t</title><item><title>A&x;B</title><link>https://e.com/1</link></item>"
        "</channel></rss>"
    ).encode()
    (entry,) = parse_body(body).entries
    assert "FETCHED" not in (entry.title or "")
    assert server.count("/external.dtd") == 0


def test_plain_internal_entities_still_work() -> None:
    """Harmless entities (a character reference, plain text) declared in the DOCTYPE expand."""
    body = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY nbsp "&#160;"><!ENTITY co \'ACME\'>]>'
        b'<rss version="2.0"><channel><title>t</title><item><title>&co;&nbsp;news</title>'
        b"<link>https://e.com/1</link></item></channel></rss>"
    )
    assert parse_body(body).entries[0].title == "ACME news"
