"""Canonical URLs: one spelling per page, so one article is stored once whatever link led to it.

Written on urllib.parse rather than courlan: courlan sorts query parameters, keeps fragments and
leaves host names and percent-escapes as they come, and the identity of an article here needs
the opposite on each point.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

_SCHEMES = {"http": 80, "https": 443}
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# "http://", "//" or "http:///x": an authority that names no host (urljoin would return the base)
_EMPTY_AUTHORITY = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*:)?//(?:[/?#]|$)")
# RFC 3986: what may stand unescaped in a path segment, and in one name=value pair of a query.
_PATH_SAFE = "/:@!$&'()*+,;=%"
_QUERY_PAIR_SAFE = "/?:@!$'()*+,;=%"

# Parameters that only say who sent the reader (campaigns, click ids, mail tools); matched on
# the lower-cased name. Prefixes cover families that mint new names (utm_*, oly_*, ...).
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "twclid",
        "ttclid",
        "li_fat_id",
        "mc_cid",
        "mc_eid",
        "igshid",
        "yclid",
        "_hsenc",
        "_hsmi",
        "__hssc",
        "__hstc",
        "__hsfp",
        "hsctatracking",
        "mkt_tok",
        "ref_src",
        "ref_url",
        "cmpid",
        "wt_mc",
        "wt_mc_id",
        "wt.mc_id",
        "wt.mc_ev",
        "s_cid",
        "s_kwcid",
        "ef_id",
        "_ga",
        "_gl",
        "mbid",
        "ncid",
        "ocid",
        "srsltid",
        "at_medium",
        "at_campaign",
        "rb_clickid",
    }
)
TRACKING_PREFIXES = ("utm_", "oly_", "vero_", "pk_", "mtm_", "piwik_", "matomo_")


def canonicalize_url(url: str, base: str | None = None) -> str | None:
    """The canonical http(s) form of `url` (resolved against `base`), or None if it has none.

    Scheme and host lower-cased, the host in IDNA (punycode), default port dropped, fragment
    dropped, tracking parameters removed (the others kept in their order), percent-escapes
    normalised (unreserved characters decoded, hex upper-cased), dot segments removed and an
    empty path made "/".
    """
    url = url.strip()
    if _EMPTY_AUTHORITY.match(url):
        return None
    try:
        if base:
            url = urljoin(base.strip(), url)
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a bad port or an unbalanced IPv6 bracket
        return None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        return None
    host = _canonical_host(parts.hostname or "")
    if not host:
        return None
    netloc = _netloc(parts.username, parts.password, host, port, _SCHEMES[scheme])
    path = _remove_dot_segments(_normalise_escapes(parts.path, _PATH_SAFE)) or "/"
    return urlunsplit((scheme, netloc, path, _clean_query(parts.query), ""))


def host_of(url: str) -> str:
    """The lower-cased (IDNA) host name of `url` without port; "" when it has none."""
    try:
        return _canonical_host(urlsplit(url.strip()).hostname or "")
    except ValueError:
        return ""


def is_tracking_param(name: str) -> bool:
    """Whether a query parameter name is a known tracking parameter."""
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def _canonical_host(hostname: str) -> str:
    host = hostname.lower().rstrip(".")
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:  # an empty or over-long label: no valid host name
        return ""


def _netloc(
    username: str | None, password: str | None, host: str, port: int | None, default_port: int
) -> str:
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != default_port:
        netloc = f"{netloc}:{port}"
    if username is not None:
        userinfo = username if password is None else f"{username}:{password}"
        netloc = f"{userinfo}@{netloc}"
    return netloc


def _clean_query(query: str) -> str:
    kept = [
        _normalise_escapes(pair, _QUERY_PAIR_SAFE)
        for pair in query.split("&")
        if pair and not is_tracking_param(_param_name(pair))
    ]
    return "&".join(kept)


def _param_name(pair: str) -> str:
    name = pair.split("=", 1)[0]
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), name.replace("+", " "))


def _normalise_escapes(text: str, safe: str) -> str:
    """Decode escaped unreserved characters, upper-case the other escapes, escape the rest."""
    if "%" in text:
        text = _LONE_PERCENT.sub("%25", text)
        text = _ESCAPE.sub(_decode_if_unreserved, text)
    return quote(text, safe=safe)


def _decode_if_unreserved(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4 for an absolute path: "/a/./b/../c" -> "/a/c"."""
    if "." not in path:
        return path
    segments = path.split("/")[1:]
    kept: list[str] = []
    for segment in segments:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    result = "/" + "/".join(kept)
    if segments[-1] in (".", "..") and not result.endswith("/"):
        result += "/"
    return result
