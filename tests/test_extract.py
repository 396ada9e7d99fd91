"""Extraction: text quality on the whole corpus against plain trafilatura, charsets, metadata,
canonical URLs, and the worker pool's time limit."""

from __future__ import annotations

import asyncio
import codecs
import functools
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from newsfold import charset
from newsfold.config import ExtractSettings
from newsfold.errors import ExtractError
from newsfold.extract import (
    ExtractPool,
    canonical_url,
    extract_page,
    read_page_meta,
)
from newsfold.model import Extracted
from tests.textmetrics import (
    CorpusPage,
    corpus_pages,
    mean_f1_by_collection,
    plain_corpus_texts,
    snippet_counts,
    token_f1,
)

TEXT_COLLECTIONS = ["scrapinghub-aeb", "fundus", "readability", "newspaper4k"]
F1_FLOOR = 0.85  # well under what both extractors reach on every collection (0.92-0.96)
ALLOWED_F1_LOSS = 0.01  # against plain trafilatura.extract, per collection
NO_CHARSET = "text/html"  # a Content-Type that names no charset: the page must say it itself
EMPTY_PAGE = b"<html><head><title>Nothing</title></head><body><script>x=1</script></body></html>"
GERMAN_PHRASE = "Gesine aus Tübingen läuft die Zeit davon"  # badische-zeitung.de, ISO-8859-1


def stuck_on_marker(body: bytes, *, url: str, content_type: str | None) -> Extracted:
    """extract_page, except that a URL ending in /stuck never returns."""
    if url.endswith("/stuck"):
        time.sleep(3600)
    return extract_page(body, url=url, content_type=content_type)


def crash_on_marker(body: bytes, *, url: str, content_type: str | None) -> Extracted:
    """extract_page, except that a URL ending in /crash kills its worker process."""
    if url.endswith("/crash"):
        os._exit(3)
    return extract_page(body, url=url, content_type=content_type)


@dataclass(frozen=True)
class CorpusRun:
    """Every corpus page through ExtractPool, and through plain trafilatura for comparison."""

    pages: list[CorpusPage]
    ours: list[Extracted | BaseException]
    plain: list[str]

    @property
    def ours_texts(self) -> list[str]:
        return [r.text if isinstance(r, Extracted) else "" for r in self.ours]


async def _extract_all(
    pool: ExtractPool, pages: list[CorpusPage]
) -> list[Extracted | BaseException]:
    jobs = (pool.extract(page.body(), page.url, NO_CHARSET) for page in pages)
    return await asyncio.gather(*jobs, return_exceptions=True)


@pytest.fixture(scope="module")
def corpus_run() -> CorpusRun:
    """All 398 corpus pages, extracted in pools sized to the machine."""
    pages = corpus_pages()
    settings = ExtractSettings(workers=0, page_timeout=120)
    with ExtractPool(settings) as pool:
        ours = asyncio.run(_extract_all(pool, pages))
    return CorpusRun(pages, ours, list(plain_corpus_texts()))


@pytest.mark.parametrize("collection", TEXT_COLLECTIONS)
def test_text_quality_matches_plain_trafilatura(corpus_run: CorpusRun, collection: str) -> None:
    """Mean token F1 against the truth is within 0.01 of plain trafilatura's, per collection."""
    ours = mean_f1_by_collection(corpus_run.pages, corpus_run.ours_texts)[collection]
    plain = mean_f1_by_collection(corpus_run.pages, corpus_run.plain)[collection]
    assert ours >= plain - ALLOWED_F1_LOSS, f"{collection}: {ours:.4f} vs plain {plain:.4f}"
    assert ours >= F1_FLOOR


def test_trafilatura_eval_snippets_no_worse_than_plain(corpus_run: CorpusRun) -> None:
    """trafilatura-eval: main-text snippets kept and boilerplate dropped at least as plain."""
    ours_found, ours_absent = snippet_counts(corpus_run.pages, corpus_run.ours_texts)
    plain_found, plain_absent = snippet_counts(corpus_run.pages, corpus_run.plain)
    assert ours_found >= plain_found
    assert ours_absent >= plain_absent


def test_every_page_with_text_for_trafilatura_gives_text(corpus_run: CorpusRun) -> None:
    """No corpus page fails that plain trafilatura can read."""
    assert len(corpus_run.pages) == 398
    failed = [
        (page.path.name, ours)
        for page, ours, plain in zip(
            corpus_run.pages, corpus_run.ours, corpus_run.plain, strict=True
        )
        if plain and not isinstance(ours, Extracted)
    ]
    assert failed == []


def test_pool_results_equal_in_process_results(corpus_run: CorpusRun) -> None:
    """A page extracted in a worker gives exactly what extract_page gives in this process."""
    for index in range(0, len(corpus_run.pages), 25):
        page = corpus_run.pages[index]
        expected = extract_page(page.body(), url=page.url, content_type=NO_CHARSET)
        assert corpus_run.ours[index] == expected, page.path.name


def test_fundus_titles_and_dates_match_the_publishers_truth(corpus_run: CorpusRun) -> None:
    """Title and publication date (UTC) agree with the fundus truth on nearly every page."""
    titles = dates = 0
    pairs = zip(corpus_run.pages, corpus_run.ours, strict=True)
    rows = [(page, ours) for page, ours in pairs if page.collection == "fundus"]
    for page, ours in rows:
        assert isinstance(ours, Extracted)
        truth = json.loads(page.path.with_name(page.path.name[:-8] + ".truth.json").read_text())
        titles += token_f1(ours.title or "", truth["title"]) >= 0.8
        published = datetime.fromisoformat(truth["publishing_date"])
        published = published if published.tzinfo else published.replace(tzinfo=UTC)
        if ours.published is not None:
            assert ours.published.tzinfo == UTC
            dates += abs(ours.published - published) < timedelta(days=1)
    assert titles >= 0.85 * len(rows)
    assert dates >= 0.95 * len(rows)


@functools.cache
def _corpus_page(name: str) -> CorpusPage:
    (page,) = (p for p in corpus_pages() if p.path.name.startswith(name))
    return page


def test_charset_declared_only_in_meta_is_honoured() -> None:
    """An ISO-8859-1 page that says so only in <meta> keeps its umlauts."""
    page = _corpus_page("badische-zeitung.de-Wohnungssuche")
    extracted = extract_page(page.body(), url=page.url, content_type=NO_CHARSET)
    assert GERMAN_PHRASE in extracted.text
    assert "\ufffd" not in extracted.text


def test_undeclared_legacy_charset_is_detected() -> None:
    """The same page with its <meta charset> removed is still read as Latin-1, by detection."""
    body = _corpus_page("badische-zeitung.de-Wohnungssuche").body()
    undeclared = body.replace(b"charset=iso-8859-1", b"").replace(b"charset=ISO-8859-1", b"")
    assert b"charset=" not in undeclared[:4096].lower()
    assert GERMAN_PHRASE in charset.decode(undeclared, NO_CHARSET)


def test_utf8_page_with_a_stale_meta_charset_reads_as_utf8() -> None:
    """A page saved again as UTF-8 that still declares GB2312 keeps its Chinese text."""
    page = _corpus_page("People_2024_04_24")
    extracted = extract_page(page.body(), url=page.url, content_type=NO_CHARSET)
    assert "习近平主席向首届" in extracted.text
    assert extracted.title and extracted.title.startswith("促进航天技术更好惠及人民")


def test_content_type_charset_wins_over_meta() -> None:
    """The HTTP header's charset is used before a contradicting <meta charset>."""
    body = '<html><head><meta charset="iso-8859-5"></head><p>Привет, мир</p></html>'
    encoded = body.encode("windows-1251")
    assert "Привет, мир" in charset.decode(encoded, "text/html; charset=windows-1251")
    assert "Привет, мир" not in charset.decode(encoded, NO_CHARSET)


def test_byte_order_mark_wins() -> None:
    """A UTF-16 byte order mark decides the encoding whatever else is declared."""
    body = codecs.BOM_UTF16_LE + '<meta charset="utf-8"><p>Grüße</p>'.encode("utf-16-le")
    assert charset.decode(body, "text/html; charset=iso-8859-1").endswith("<p>Grüße</p>")


def test_metadata_of_a_news_page() -> None:
    """Title, author, UTC date, site, language and canonical URL come from the page's head."""
    page = _corpus_page("DW_2024_01_30")
    extracted = extract_page(page.body(), url=page.url, content_type=NO_CHARSET)
    assert extracted.title and extracted.title.startswith("Russland-Wahl: Nadeschdin setzt auf")
    assert extracted.author == "Jennifer Pahlke"
    assert extracted.published == datetime(2024, 1, 30, 14, 13, 12, 269000, tzinfo=UTC)
    assert extracted.site_name == "dw.com"
    assert extracted.language == "de"
    assert extracted.canonical_url == page.url.split("?")[0]  # the feed's tracking query dropped


def test_canonical_on_another_site_is_ignored() -> None:
    """An MSN copy whose canonical points to nbcnews.com keeps no canonical URL."""
    page = _corpus_page("abd9d6291b6b")
    html = charset.decode(page.body(), NO_CHARSET)
    assert "nbcnews.com" in str(read_page_meta(html).canonical)
    assert extract_page(page.body(), url=page.url, content_type=None).canonical_url is None


def test_canonical_ignored_when_the_page_came_from_elsewhere() -> None:
    """A corpus page served from 127.0.0.1 does not claim its original site's address."""
    page = _corpus_page("DW_2024_01_30")
    local = extract_page(page.body(), url="http://127.0.0.1:8080/dw.html", content_type=None)
    assert local.canonical_url is None


@pytest.mark.parametrize(
    ("head", "page_url", "expected"),
    [
        (
            '<link rel="canonical" href="/world/story?id=7">',
            "https://m.example.co.uk/world/story?id=7&utm_source=rss",
            "https://m.example.co.uk/world/story?id=7",
        ),
        (
            '<meta property="og:url" content="https://www.example.co.uk/a">',
            "https://m.example.co.uk/a?ref=rss",
            "https://www.example.co.uk/a",
        ),
        ('<link rel="canonical" href="https://example.com/a">', "https://example.co.uk/a", None),
        ('<link rel="canonical" href="https://other.co.uk/a">', "https://example.co.uk/a", None),
        ('<link rel="canonical" href="javascript:void(0)">', "https://example.com/a", None),
        # A bare token resolves to a path that does not exist: the link is kept.
        ('<link rel="canonical" href="8003098">', "https://example.com/news/a-story", None),
        ('<link rel="canonical" href="/news/other">', "https://example.com/news/a-story", None),
        # ... unless og:url names the same page.
        (
            '<link rel="canonical" href="8003098">'
            '<meta property="og:url" content="https://example.com/news/8003098">',
            "https://example.com/news/a-story",
            "https://example.com/news/8003098",
        ),
        # An implausible canonical keeps the link, whatever og:url says.
        (
            '<link rel="canonical" href="8003098">'
            '<meta property="og:url" content="https://www.example.com/news/a-story">',
            "https://example.com/news/a-story?utm_source=rss",
            None,
        ),
        # Absolute on the same site is trusted, protocol-relative too.
        (
            '<link rel="canonical" href="https://example.com/2024/a-story">',
            "https://example.com/a-story",
            "https://example.com/2024/a-story",
        ),
        (
            '<link rel="canonical" href="//www.example.com/a-story">',
            "https://example.com/a-story",
            "https://www.example.com/a-story",
        ),
        # The site's home page is nobody's article.
        ('<link rel="canonical" href="https://example.com/">', "https://example.com/a", None),
        ('<link rel="canonical" href="/">', "https://example.com/a", None),
        (
            '<link rel="canonical" href="https://example.com/">',
            "https://example.com/",
            "https://example.com/",
        ),
    ],
)
def test_canonical_url_resolution(head: str, page_url: str, expected: str | None) -> None:
    """Only a plausible canonical is trusted: on the page's own site, not its home page, and
    absolute or, when relative, agreeing with og:url or the page's own address."""
    page = read_page_meta(f"<html><head>{head}</head><body></body></html>")
    assert canonical_url(page, page_url) == expected


def test_page_without_text_raises_extract_error() -> None:
    """A page with nothing to read fails with one line naming the URL."""
    with pytest.raises(ExtractError, match=r"^https://example\.com/empty: no main text found$"):
        extract_page(EMPTY_PAGE, url="https://example.com/empty", content_type=None)


def test_stuck_page_is_killed_while_others_finish() -> None:
    """A page that never finishes times out, its worker is replaced, the other pages are intact."""
    pages = [_corpus_page(name) for name in ("DW_2024_01_30", "People_2024_04_24", "Taz_2024")]
    settings = ExtractSettings(workers=2, page_timeout=1.0)

    async def run(pool: ExtractPool) -> list[Extracted | BaseException]:
        stuck = pool.extract(pages[0].body(), "https://example.com/stuck", None)
        others = [pool.extract(p.body(), p.url, NO_CHARSET) for p in pages]
        results = await asyncio.gather(stuck, *others, return_exceptions=True)
        return [*results, await pool.extract(pages[0].body(), pages[0].url, NO_CHARSET)]

    with ExtractPool(settings, extractor=stuck_on_marker) as pool:
        stuck, *others, after = asyncio.run(run(pool))
    assert isinstance(stuck, ExtractError)
    assert str(stuck) == "https://example.com/stuck: extraction took longer than 1 s"
    expected = [extract_page(p.body(), url=p.url, content_type=NO_CHARSET) for p in pages]
    assert others == expected
    assert after == expected[0]


def test_worker_crash_is_an_extract_error() -> None:
    """A worker that dies mid-page fails that page only; the pool carries on."""
    page = _corpus_page("DW_2024_01_30")

    async def run(pool: ExtractPool) -> list[Extracted | BaseException]:
        crashed = pool.extract(page.body(), "https://example.com/crash", None)
        results = await asyncio.gather(crashed, return_exceptions=True)
        return [*results, await pool.extract(page.body(), page.url, NO_CHARSET)]

    with ExtractPool(ExtractSettings(workers=1), extractor=crash_on_marker) as pool:
        crashed, after = asyncio.run(run(pool))
    assert isinstance(crashed, ExtractError)
    assert str(crashed).startswith("https://example.com/crash: extraction worker died")
    assert isinstance(after, Extracted) and after.language == "de"


def test_no_text_error_crosses_the_pool() -> None:
    """ExtractError raised in a worker reaches the caller with its URL and cause."""
    with (
        ExtractPool(ExtractSettings(workers=1)) as pool,
        pytest.raises(ExtractError, match=r"^https://example\.com/e: no main text found$"),
    ):
        asyncio.run(pool.extract(EMPTY_PAGE, "https://example.com/e", None))


def test_closed_pool_refuses_pages_with_extract_error() -> None:
    """Handing a page to a closed pool is one page's ExtractError, not a crash or a hang."""
    page = _corpus_page("DW_2024_01_30")
    pool = ExtractPool(ExtractSettings(workers=1))
    pool.close()
    with pytest.raises(
        ExtractError, match=r"^https://www\.dw\.com/.*: extraction pool unavailable"
    ):
        asyncio.run(pool.extract(page.body(), page.url, NO_CHARSET))
