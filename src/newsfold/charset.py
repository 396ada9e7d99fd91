"""Bytes -> text for feeds and article pages alike, the way browsers read them.

The order: a byte order mark; a UTF-16/32 charset named by the Content-Type header; valid UTF-8;
the charset the header, the XML declaration or a <meta> tag names; a guess. Valid UTF-8 wins over
a declared charset because pages and feeds saved again as UTF-8 keep their old declaration, and
text in a legacy charset is almost never valid UTF-8 by chance. feedparser is handed text decoded
here: without chardet it cannot tell an undeclared KOI8-R or Shift_JIS body from Windows-1252.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator

import charset_normalizer

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Labels that browsers read as a superset (the WHATWG Encoding standard); pages rely on it: a
# "latin-1" page with curly quotes (bytes 0x80-0x9f) means Windows-1252's.
_WHATWG_SUPERSETS = {
    "ascii": "cp1252",
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
}
_WIDE = ("utf-16", "utf-32")
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_XML_ENCODING = re.compile(rb"\A[^>]{0,200}?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']")
_META_SCAN = 4096  # bytes searched for <meta charset>, as browsers do (the HTML standard: 1024)
_META_CHARSET = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_GUESS_BYTES = 65536  # charset_normalizer's cost grows with the input; 64 KB decide it


def _cp1252_gaps(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: the five bytes Windows-1252 leaves undefined read as C1 controls,
    as browsers read them."""
    assert isinstance(error, UnicodeDecodeError)
    return error.object[error.start : error.end].decode("latin-1"), error.end


def _utf8_with_cp1252(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: bytes that are not UTF-8 read as Windows-1252."""
    assert isinstance(error, UnicodeDecodeError)
    return decode_cp1252(error.object[error.start : error.end]), error.end


_CP1252_GAPS = "newsfold-cp1252-gaps"
_UTF8_WITH_CP1252 = "newsfold-utf8-with-cp1252"
codecs.register_error(_CP1252_GAPS, _cp1252_gaps)
codecs.register_error(_UTF8_WITH_CP1252, _utf8_with_cp1252)


def decode(body: bytes, content_type: str | None = None) -> str:
    """A feed's or a page's bytes as text (see the module's docstring for the order)."""
    bom = bom_codec(body)
    if bom:
        return body.decode(bom, "replace")
    header = _header_codec(content_type)
    if header and header.startswith(_WIDE):
        # Wide encodings without a BOM can look like valid UTF-8 (NUL bytes). Only the header
        # is believed: a declaration readable as ASCII cannot stand in a UTF-16 body.
        text = _decode_as(body, header)
        if text is not None:
            return text
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    for codec in _declared_codecs(body, header):
        text = _decode_as(body, codec)
        if text is not None:
            return text
    return _guess(body)


def sniff(body: bytes, limit: int = 4096) -> str:
    """The first `limit` bytes as text, enough to find the root element (markup is ASCII)."""
    head = body[:limit]
    return head.decode(bom_codec(head) or "utf-8", "ignore")


def bom_codec(body: bytes) -> str | None:
    """The codec a byte order mark names; UTF-16 also when a body starts `<` without one."""
    bom = next((codec for mark, codec in _BOMS if body.startswith(mark)), None)
    if bom:
        return bom
    if body.startswith(b"<\x00") and not body.startswith(b"<\x00\x00"):
        return "utf-16-le"
    if body.startswith(b"\x00<"):
        return "utf-16-be"
    return None


def codec_for(label: str) -> str | None:
    """A charset label -> the Python codec that reads it as browsers do; None if unknown."""
    try:
        name = codecs.lookup(label.strip()).name
    except LookupError:
        return None
    return _WHATWG_SUPERSETS.get(name, name)


def decode_cp1252(body: bytes) -> str:
    """Windows-1252 as the web means it: every byte decodes."""
    return body.decode("cp1252", _CP1252_GAPS)


def _header_codec(content_type: str | None) -> str | None:
    header = _HEADER_CHARSET.search(content_type or "")
    return codec_for(header.group(1)) if header else None


def _declared_codecs(body: bytes, header: str | None) -> Iterator[str]:
    """Known charsets named by the header, the XML declaration, then <meta>, in that order."""
    in_body = (_XML_ENCODING.match(body), _META_CHARSET.search(body, 0, _META_SCAN))
    labels = [codec_for(found.group(1).decode("ascii")) for found in in_body if found]
    for codec in (header, *labels):
        if codec and not codec.startswith(_WIDE):  # already tried, or an ASCII body's claim
            yield codec


def _decode_as(body: bytes, codec: str) -> str | None:
    """The body read with a declared codec, or None if the bytes do not fit it."""
    if codec == "utf-8":
        # Declared UTF-8 but not: legacy systems write Windows-1252, byte by byte, in between.
        return body.decode("utf-8", _UTF8_WITH_CP1252)
    if codec == "cp1252":
        return decode_cp1252(body)
    try:
        return body.decode(codec)
    except UnicodeDecodeError:
        return None


def _guess(body: bytes) -> str:
    """charset_normalizer's guess from the first 64 KB; among equally good guesses
    Windows-1252, the web's usual one (French or German text scores the same in cp1250)."""
    matches = list(charset_normalizer.from_bytes(body[:_GUESS_BYTES]))
    if not matches:
        return decode_cp1252(body)
    best = matches[0]
    for match in matches:
        same_score = (match.chaos, match.coherence) == (best.chaos, best.coherence)
        if same_score and match.encoding == "cp1252":
            best = match
            break
    return body.decode(best.encoding, "replace")
