"""Decoding feed and page bytes: one order for both, the labels read as browsers read them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from newsfold import charset
from newsfold.extract import extract_page
from newsfold.parse import parse_feed

NOW = datetime(2026, 2, 18, 12, 0, tzinfo=UTC)
QUOTED = "\u201cQuoted\u201d \u2013 caf\u00e9"
PAGE = "<html><head>{meta}<title>t</title></head><body><article><p>{text}</p></article></body>"


def rss_bytes(title: str, codec: str, prolog: str = "") -> bytes:
    body = f'{prolog}<rss version="2.0"><channel><title>{title}</title><item><guid>1</guid>'
    return (body + "<title>x</title></item></channel></rss>").encode(codec)


@pytest.mark.parametrize("label", ["iso-8859-1", "latin1", "US-ASCII"])
def test_latin1_labels_read_as_windows_1252_in_feeds_and_pages(label: str) -> None:
    """Curly quotes (bytes 0x93, 0x94) under a "latin-1" label come out as quotes, not controls."""
    feed = rss_bytes(QUOTED, "cp1252", f'<?xml version="1.0" encoding="{label}"?>')
    parsed = parse_feed(feed, url="http://e.com/f", content_type=None, now=NOW, max_entries=10)
    assert parsed.title == QUOTED
    page = PAGE.format(meta=f'<meta charset="{label}">', text=QUOTED).encode("cp1252")
    assert QUOTED in charset.decode(page)
    undeclared = page.replace(label.encode(), b"x")
    assert QUOTED in charset.decode(undeclared, f"text/html; charset={label}")


def test_bytes_windows_1252_leaves_undefined_still_decode() -> None:
    """0x81 has no character in Windows-1252; the rest of a declared page still reads right."""
    body = PAGE.format(meta='<meta charset="windows-1252">', text=QUOTED).encode("cp1252")
    text = charset.decode(body.replace(b"<title>t", b"<title>\x81"))
    assert "<title>\x81</title>" in text
    assert QUOTED in text


def test_utf16_claimed_inside_an_ascii_body_is_not_believed() -> None:
    """A <meta charset=utf-16> in a body whose markup is plain bytes cannot be true (the HTML
    standard reads it as UTF-8); the page is read by its bytes, not turned into CJK noise."""
    body = PAGE.format(meta='<meta charset="utf-16">', text=QUOTED).encode("cp1252")
    assert QUOTED in charset.decode(body)


def test_utf16_from_the_header_wins_over_utf8() -> None:
    """A BOM-less UTF-16 page whose header says so is read as UTF-16, although its bytes would
    also pass as UTF-8 (every ASCII character followed by a NUL)."""
    body = PAGE.format(meta="", text="plain").encode("utf-16-be")
    assert charset.decode(body, "text/html; charset=utf-16be") == PAGE.format(meta="", text="plain")


def test_declared_utf8_with_stray_windows_1252_bytes() -> None:
    """A page that says UTF-8 but has Windows-1252 quotes in between keeps both right."""
    body = b'<meta charset="utf-8"><p>' + "café ".encode() + b"\x93x\x94</p>"
    assert charset.decode(body).endswith("<p>café \u201cx\u201d</p>")


def test_extraction_and_parsing_read_the_same_text() -> None:
    """A page and a feed carrying the same undeclared KOI8-R text decode it alike."""
    text = "Первая новость: в Москве открылась выставка современного искусства и дизайна"
    page = PAGE.format(meta="", text=" ".join([text] * 5)).encode("koi8-r")
    extracted = extract_page(page, url="http://e.com/a", content_type="text/html")
    feed = parse_feed(
        rss_bytes(text, "koi8-r"), url="http://e.com/f", content_type=None, now=NOW, max_entries=1
    )
    assert feed.title == text
    assert text in extracted.text
