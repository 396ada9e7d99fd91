"""Canonical URLs: one spelling per article, whatever link led to it."""

from __future__ import annotations

import pytest

from newsfold.urls import canonicalize_url, host_of, is_tracking_param


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM/a", "http://example.com/a"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com?", "https://example.com/"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("http://example.com:443/a", "http://example.com:443/a"),
        ("https://example.com/a#section-2", "https://example.com/a"),
        ("https://example.com./a", "https://example.com/a"),
        ("  https://example.com/a \n", "https://example.com/a"),
        ("https://bücher.de/seite", "https://xn--bcher-kva.de/seite"),
        ("https://BÜCHER.de/", "https://xn--bcher-kva.de/"),
        ("https://[2001:DB8::1]:8080/x", "https://[2001:db8::1]:8080/x"),
        ("https://user:pw@Example.com/x", "https://user:pw@example.com/x"),
    ],
    ids=lambda value: value,
)
def test_scheme_host_port_and_fragment(url: str, expected: str) -> None:
    """Scheme and host are lower-cased, IDNA-encoded, default ports and fragments dropped."""
    assert canonicalize_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://e.com/%7euser/%41%62%2D%5F%2e", "https://e.com/~user/Ab-_."),
        ("https://e.com/a%2fb%3a", "https://e.com/a%2Fb%3A"),
        ("https://e.com/caf%c3%a9", "https://e.com/caf%C3%A9"),
        ("https://e.com/café", "https://e.com/caf%C3%A9"),
        ("https://e.com/a b", "https://e.com/a%20b"),
        ("https://e.com/100%", "https://e.com/100%25"),
        ("https://e.com/%zz", "https://e.com/%25zz"),
        ("https://e.com/a/./b/../c", "https://e.com/a/c"),
        ("https://e.com/a/b/..", "https://e.com/a/"),
        ("https://e.com/..", "https://e.com/"),
        ("https://e.com/a//b", "https://e.com/a//b"),
        ("https://e.com/a/", "https://e.com/a/"),
        ("https://e.com/p;v=1,2:3@x", "https://e.com/p;v=1,2:3@x"),
    ],
    ids=lambda value: value,
)
def test_path_normalisation(url: str, expected: str) -> None:
    """Escapes of unreserved characters are decoded, other escapes upper-cased, dots removed."""
    assert canonicalize_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://e.com/a?utm_source=rss&utm_medium=feed&utm_campaign=x&id=7",
            "https://e.com/a?id=7",
        ),
        ("https://e.com/a?b=2&a=1&c=3", "https://e.com/a?b=2&a=1&c=3"),
        ("https://e.com/a?fbclid=IwAR0&gclid=1&dclid=2&msclkid=3", "https://e.com/a"),
        ("https://e.com/a?mc_cid=1&mc_eid=2&igshid=3&yclid=4&keep=1", "https://e.com/a?keep=1"),
        ("https://e.com/a?_hsenc=1&_hsmi=2&mkt_tok=3&ref_src=4&cmpid=5", "https://e.com/a"),
        ("https://e.com/a?oly_enc_id=1&oly_anon_id=2&vero_id=3&vero_conv=4", "https://e.com/a"),
        ("https://e.com/a?WT.mc_id=1&wt_mc=2&UTM_Source=3&page=2", "https://e.com/a?page=2"),
        ("https://e.com/a?%75tm_source=x&q=1", "https://e.com/a?q=1"),
        ("https://e.com/a?q=a b&x=%e2%82%ac&y=%7E", "https://e.com/a?q=a%20b&x=%E2%82%AC&y=~"),
        ("https://e.com/a?q=1+2&r=a/b?c", "https://e.com/a?q=1+2&r=a/b?c"),
        ("https://e.com/a?&&a=1&&", "https://e.com/a?a=1"),
        ("https://e.com/a?flag&x=", "https://e.com/a?flag&x="),
        ("https://e.com/a?id=1&id=2", "https://e.com/a?id=1&id=2"),
        ("https://e.com/?utm_source=x", "https://e.com/"),
    ],
    ids=lambda value: value,
)
def test_query_tracking_parameters(url: str, expected: str) -> None:
    """Tracking parameters go; the others stay in their order; an empty query goes."""
    assert canonicalize_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:void(0)",
        "data:text/html,<b>x</b>",
        "file:///etc/passwd",
        "mailto:desk@example.com",
        "ftp://example.com/file",
        "feed://example.com/rss",
        "/relative/path",
        "//example.com/no-scheme",
        "https:///no-host",
        "http://example.com:99999/",
        "http://[::1/",
        "",
        "   ",
    ],
    ids=repr,
)
def test_urls_without_a_canonical_http_form(url: str) -> None:
    """Anything that is not an absolute http(s) URL with a host has no canonical form."""
    assert canonicalize_url(url) is None


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        ("/blog/1", "https://e.com/feed.xml", "https://e.com/blog/1"),
        ("post-2", "https://e.com/blog/feed.xml", "https://e.com/blog/post-2"),
        ("../c?x=1#f", "https://e.com/a/b/feed", "https://e.com/a/c?x=1"),
        ("//cdn.e.com/x", "https://e.com/", "https://cdn.e.com/x"),
        ("https://other.org/x", "https://e.com/", "https://other.org/x"),
        ("javascript:alert(1)", "https://e.com/", None),
        ("", "https://e.com/a?utm_source=x", "https://e.com/a"),
    ],
)
def test_relative_urls_resolved_against_base(url: str, base: str, expected: str | None) -> None:
    """A relative link is resolved against the base before it is made canonical."""
    assert canonicalize_url(url, base) == expected


def test_canonical_form_is_stable() -> None:
    """Canonicalising a canonical URL changes nothing."""
    messy = "HTTPS://Bücher.DE:443/a/./b/%7e/c%2f?utm_source=x&b=2&a=%e2%82%ac#top"
    once = canonicalize_url(messy)
    assert once == "https://xn--bcher-kva.de/a/b/~/c%2F?b=2&a=%E2%82%AC"
    assert canonicalize_url(once) == once


def test_host_of() -> None:
    """host_of gives the lower-cased IDNA host without port, or "" when there is none."""
    assert host_of("https://WWW.Example.com:8080/x") == "www.example.com"
    assert host_of("https://bücher.de/") == "xn--bcher-kva.de"
    assert host_of("https://[::1]:80/") == "::1"
    assert host_of("/relative") == ""
    assert host_of("not a url") == ""


def test_is_tracking_param() -> None:
    """Known click ids and campaign families are tracking; ordinary names are not."""
    assert is_tracking_param("utm_content")
    assert is_tracking_param("FBCLID")
    assert is_tracking_param("oly_enc_id")
    assert not is_tracking_param("id")
    assert not is_tracking_param("page")
    assert not is_tracking_param("ref")
