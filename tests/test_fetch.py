"""The fetch stage against the real local server: answers, faults, limits, the address guard."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import ssl
from collections.abc import Coroutine, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest

from newsfold.config import FetchSettings, Settings
from newsfold.errors import FetchError
from newsfold.fetch import HTML_ACCEPT, Fetcher, max_age_seconds
from newsfold.fetchfaults import retry_after_seconds
from newsfold.model import FetchResult
from newsfold.netguard import (
    AddressGuard,
    AddressRefused,
    AddrInfo,
    guarded_transport,
    plain_socket,
)
from tests.server import SMALL_FEED, FeedServer, RequestHandler, free_port, serve_corpus_feeds

T = TypeVar("T")
HARD_STOP = 30.0  # a test that hangs fails instead of blocking the suite
NOW = datetime(2026, 2, 17, 12, 0, tzinfo=UTC)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coroutine, HARD_STOP))


def fetch(settings: FetchSettings, url: str, **options: Any) -> FetchResult:
    async def go() -> FetchResult:
        async with Fetcher(settings) as fetcher:
            return await fetcher.fetch(url, **options)

    return run(go())


def fetch_error(settings: FetchSettings, url: str, **options: Any) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(settings, url, **options)
    error = caught.value
    assert str(error).startswith(f"{url}: ")
    assert "\n" not in str(error)
    return error


def fetch_all(settings: FetchSettings, urls: Iterable[str]) -> list[FetchResult]:
    async def go() -> list[FetchResult]:
        async with Fetcher(settings) as fetcher:
            return list(await asyncio.gather(*(fetcher.fetch(url) for url in urls)))

    return run(go())


# Answers.


def test_feed_comes_back_with_its_headers(server: FeedServer, settings: Settings) -> None:
    """A 200 gives the body, the final URL and the validators the next fetch will send."""
    url = server.add("/fetch/plain.xml", SMALL_FEED, content_type="application/rss+xml")
    result = fetch(settings.fetch, url)
    assert result.status == 200
    assert result.body == SMALL_FEED
    assert result.final_url == url
    assert result.content_type == "application/rss+xml"
    assert result.etag and result.last_modified


def test_request_says_who_we_are_and_what_we_accept(server: FeedServer, settings: Settings) -> None:
    """Every request carries our User-Agent, the Accept asked for and gzip/deflate support."""
    url = server.add("/fetch/headers.html", b"<html></html>", content_type="text/html")
    fetch(settings.fetch, url, accept=HTML_ACCEPT)
    headers = next(h for _, path, h in server.requests if path == "/fetch/headers.html")
    assert headers["User-Agent"] == settings.fetch.user_agent
    assert headers["Accept"] == HTML_ACCEPT
    assert {"gzip", "deflate"} <= {e.strip() for e in headers["Accept-Encoding"].split(",")}


def test_gzip_body_is_decoded(server: FeedServer, settings: Settings) -> None:
    """A gzip-encoded answer comes back as the original bytes."""
    url = server.add("/fetch/gzipped.xml", SMALL_FEED * 50, gzip=True)
    assert fetch(settings.fetch, url).body == SMALL_FEED * 50


def test_unchanged_feed_answers_304_without_body(server: FeedServer, settings: Settings) -> None:
    """Sending back the ETag or the Last-Modified of the last fetch gives a bodiless 304."""
    url = server.add("/fetch/conditional.xml", SMALL_FEED)
    first = fetch(settings.fetch, url)
    by_etag = fetch(settings.fetch, url, etag=first.etag)
    by_date = fetch(settings.fetch, url, last_modified=first.last_modified)
    for result in (by_etag, by_date):
        assert result.status == 304 and result.not_modified
        assert result.body is None
        assert result.etag == first.etag
    sent = [h for _, path, h in server.requests if path == "/fetch/conditional.xml"]
    assert sent[1]["If-None-Match"] == first.etag
    assert sent[2]["If-Modified-Since"] == first.last_modified


def test_304_without_validators_keeps_those_sent(server: FeedServer, settings: Settings) -> None:
    """A 304 that repeats no validator still leaves the caller with the ones it sent."""
    result = fetch(
        settings.fetch, server.url("/fault/status/304"), etag='"v1"', last_modified=NOW.ctime()
    )
    assert result.not_modified
    assert (result.etag, result.last_modified) == ('"v1"', NOW.ctime())


def test_max_age_comes_from_cache_control(server: FeedServer, settings: Settings) -> None:
    """Cache-Control max-age tells how long the feed stays fresh."""
    url = server.add(
        "/fetch/cached.xml", SMALL_FEED, headers={"Cache-Control": "public, max-age=600"}
    )
    assert fetch(settings.fetch, url).max_age == 600


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Cache-Control": "max-age=300"}, 300.0),
        ({"Cache-Control": "no-cache, max-age=0"}, 0.0),
        ({"Expires": "Tue, 17 Feb 2026 13:00:00 GMT"}, 3600.0),
        (
            {"Expires": "Tue, 17 Feb 2026 13:00:00 GMT", "Date": "Tue, 17 Feb 2026 12:30:00 GMT"},
            1800.0,
        ),
        ({"Cache-Control": "max-age=60", "Expires": "Tue, 17 Feb 2026 13:00:00 GMT"}, 60.0),
        ({"Expires": "0"}, 0.0),
        ({}, None),
    ],
)
def test_max_age_from_headers(headers: dict[str, str], expected: float | None) -> None:
    """Freshness: max-age wins, else Expires minus the server's Date (or now); bad Expires is 0."""
    assert max_age_seconds(httpx.Headers(headers), NOW) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("Tue, 17 Feb 2026 12:05:00 GMT", 300.0),
        ("Tue, 17 Feb 2026 11:00:00 GMT", 0.0),
        ("86400", 3600.0),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_values(value: str | None, expected: float | None) -> None:
    """Retry-After in seconds or as an HTTP date, never negative, capped."""
    assert retry_after_seconds(value, NOW, cap=3600.0) == expected


# Status codes.


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, True),
        (408, True),
        (410, False),
        (425, True),
        (429, True),
        (451, False),
        (500, True),
        (502, True),
        (503, True),
        (599, True),
    ],
)
def test_error_status_is_classified(
    server: FeedServer, settings: Settings, status: int, transient: bool
) -> None:
    """Each error status gets its own kind; 404, 408, 425, 429 and 5xx may go away by themselves."""
    error = fetch_error(settings.fetch, server.url(f"/fault/status/{status}"))
    assert error.kind == f"http_{status}"
    assert error.status == status
    assert error.transient is transient
    assert f"HTTP {status}" in str(error)


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_reported(server: FeedServer, settings: Settings, status: int) -> None:
    """A 429 or 503 carries the server's Retry-After, in seconds, into the error and its message."""
    url = server.url(f"/fault/status/{status}")
    error = fetch_error(settings.fetch, url)
    assert error.retry_after == 2.0
    assert str(error).endswith("(retry after 2 s)")


def test_long_retry_after_is_capped(server: FeedServer, settings: Settings) -> None:
    """A Retry-After longer than max_retry_after is cut down to it."""
    url = server.add("/fetch/busy", b"", status=503, headers={"Retry-After": "999999"})
    error = fetch_error(settings.fetch, url)
    assert error.retry_after == settings.fetch.max_retry_after.total_seconds()


def test_redirect_without_location_is_an_error(server: FeedServer, settings: Settings) -> None:
    """A 3xx with nowhere to go is a permanent error, not a result."""
    error = fetch_error(settings.fetch, server.url("/fault/status/301"))
    assert (error.kind, error.transient) == ("http_301", False)


# Redirects.


def test_redirects_are_followed_to_the_final_url(server: FeedServer, settings: Settings) -> None:
    """Up to max_redirects hops are followed; the result names the URL that answered."""
    url = server.url(f"/fault/redirect-chain/{settings.fetch.max_redirects}")
    result = fetch(settings.fetch, url)
    assert result.url == url
    assert result.final_url == server.url("/fault/redirect-chain/0")
    assert result.body == SMALL_FEED


def test_too_many_redirects(server: FeedServer, settings: Settings) -> None:
    """One hop past max_redirects is a permanent "redirects" error."""
    url = server.url(f"/fault/redirect-chain/{settings.fetch.max_redirects + 1}")
    error = fetch_error(settings.fetch, url)
    assert (error.kind, error.transient) == ("redirects", False)
    assert "more than 5 redirects" in str(error)


def test_redirect_loop(server: FeedServer, settings: Settings) -> None:
    """A redirect back to a URL already visited is reported as a loop."""
    error = fetch_error(settings.fetch, server.url("/fault/redirect-loop"))
    assert (error.kind, error.transient) == ("redirects", False)
    assert "redirect loop" in str(error)


def test_redirect_to_another_scheme_is_refused(server: FeedServer, settings: Settings) -> None:
    """A redirect to file:///etc/passwd is refused, whatever the address guard says."""
    error = fetch_error(settings.fetch, server.url("/fault/redirect-scheme"))
    assert (error.kind, error.transient) == ("blocked", False)
    assert "file:///etc/passwd" in str(error)


@pytest.mark.parametrize("url", ["ftp://example.com/feed", "file:///etc/passwd", "feed.xml"])
def test_only_http_urls_are_fetched(settings: Settings, url: str) -> None:
    """Any URL that is not http or https is refused before anything is sent."""
    error = fetch_error(settings.fetch, url)
    assert (error.kind, error.transient) == ("blocked", False)


# Bodies that are too big, too slow or broken.


@pytest.mark.parametrize("path", ["/fault/huge", "/fault/huge-chunked", "/fault/never-ending"])
def test_big_bodies_stop_at_the_cap(server: FeedServer, settings: Settings, path: str) -> None:
    """A body past max_bytes stops the download: a permanent "too_large" error."""
    error = fetch_error(settings.fetch, server.url(path))
    assert (error.kind, error.transient) == ("too_large", False)
    assert f"body over the {settings.fetch.max_bytes}-byte cap" in str(error)


def test_announced_length_over_the_cap_fails_at_once(
    server: FeedServer, settings: Settings
) -> None:
    """A Content-Length over the cap is refused from the headers alone."""
    error = fetch_error(settings.fetch, server.url("/fault/huge"))
    assert "(announced 52428800 bytes)" in str(error)


def test_gzip_bomb_counts_decompressed_bytes(server: FeedServer, settings: Settings) -> None:
    """A small gzip body that inflates past the cap is stopped as too large."""
    fetch_settings = dataclasses.replace(settings.fetch, max_bytes=1_000_000)
    error = fetch_error(fetch_settings, server.url("/fault/gzip-bomb"))
    assert error.kind == "too_large"
    assert "announced" not in str(error)  # the gzip itself is under the cap
    sent = [h for _, path, h in server.requests if path == "/fault/gzip-bomb"]
    assert sent and "gzip" in sent[-1]["Accept-Encoding"]


@pytest.mark.parametrize("path", ["/fault/slow", "/fault/timeout"])
def test_deadline_covers_the_whole_request(
    server: FeedServer, settings: Settings, path: str
) -> None:
    """A server that never finishes (slow drip, or no headers) ends in a transient timeout."""
    fetch_settings = dataclasses.replace(settings.fetch, timeout=1.0)
    error = fetch_error(fetch_settings, server.url(path))
    assert (error.kind, error.transient) == ("timeout", True)
    assert "no complete answer within 1 s" in str(error)


@pytest.mark.parametrize("path", ["/fault/lying-length", "/fault/closed-mid-body"])
def test_cut_off_bodies_are_protocol_errors(
    server: FeedServer, settings: Settings, path: str
) -> None:
    """A body shorter than announced, or cut off mid-chunk, is a transient protocol error."""
    error = fetch_error(settings.fetch, server.url(path))
    assert (error.kind, error.transient) == ("protocol", True)


def test_corrupt_gzip_is_a_protocol_error(server: FeedServer, settings: Settings) -> None:
    """A body that claims gzip but is not gzip is reported, not returned as garbage."""
    url = server.add("/fetch/bad-gzip.xml", b"plain text", headers={"Content-Encoding": "gzip"})
    assert fetch_error(settings.fetch, url).kind == "protocol"


@pytest.mark.parametrize(
    ("path", "content_type", "size"),
    [
        ("/fault/html", "text/html; charset=utf-8", None),
        ("/fault/empty", "application/xml", 0),
        ("/fault/binary", "application/octet-stream", 4104),
    ],
)
def test_odd_bodies_are_returned_as_they_are(
    server: FeedServer, settings: Settings, path: str, content_type: str, size: int | None
) -> None:
    """HTML, empty and binary answers are results: judging them is the parser's job."""
    result = fetch(settings.fetch, server.url(path))
    assert result.status == 200 and result.body is not None
    assert result.content_type == content_type
    assert size is None or len(result.body) == size


def test_connection_refused(settings: Settings) -> None:
    """Nothing listening on the port is a transient "connect" error."""
    error = fetch_error(settings.fetch, f"http://127.0.0.1:{free_port()}/feed.xml")
    assert (error.kind, error.transient) == ("connect", True)


def failing_transport(cause: BaseException) -> httpx.MockTransport:
    """A network that fails every connection as the transport reports it: ConnectError from
    `cause`."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(str(cause), request=request) from cause

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("cause", "kind"),
    [
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "dns"),
        (ssl.SSLCertVerificationError("certificate verify failed: self-signed certificate"), "tls"),
    ],
)
def test_dns_and_tls_failures_are_named(
    settings: Settings, cause: BaseException, kind: str
) -> None:
    """A failed lookup and a failed certificate check each get their own transient kind."""
    url = "https://feeds.example.com/rss"

    async def go() -> None:
        async with Fetcher(settings.fetch, transport=failing_transport(cause)) as fetcher:
            await fetcher.fetch(url)

    with pytest.raises(FetchError) as caught:
        run(go())
    assert (caught.value.kind, caught.value.transient) == (kind, True)
    assert str(caught.value).startswith(f"{url}: ")


# Limits.


def slow_route(server: FeedServer, path: str, seconds: float) -> str:
    def answer(handler: RequestHandler) -> None:
        handler.wait(seconds)
        handler.send_body(SMALL_FEED)

    return server.add_handler(path, answer)


def test_requests_per_host_are_limited(server: FeedServer, settings: Settings) -> None:
    """However many fetches are asked for at once, one host sees at most per_host of them."""
    fetch_settings = dataclasses.replace(settings.fetch, per_host=2, concurrency=8)
    urls = [slow_route(server, f"/per-host/{i}", 0.2) for i in range(8)]
    assert all(r.status == 200 for r in fetch_all(fetch_settings, urls))
    assert server.peak_concurrency("/per-host/") == 2


def test_requests_overall_are_limited(server: FeedServer, settings: Settings) -> None:
    """Across two hosts, no more than `concurrency` requests are in flight."""
    fetch_settings = dataclasses.replace(settings.fetch, per_host=2, concurrency=2)
    urls = [slow_route(server, f"/overall/{i}", 0.2) for i in range(8)]
    urls = [url.replace("127.0.0.1", "localhost") if i % 2 else url for i, url in enumerate(urls)]
    assert all(r.status == 200 for r in fetch_all(fetch_settings, urls))
    assert server.peak_concurrency("/overall/") == 2


def test_waiting_for_a_slot_does_not_count_against_the_deadline(
    server: FeedServer, settings: Settings
) -> None:
    """Queued fetches each get the full timeout once they start, even when the queue is long."""
    fetch_settings = dataclasses.replace(settings.fetch, per_host=1, timeout=1.0)
    urls = [slow_route(server, f"/queued/{i}", 0.4) for i in range(4)]
    assert [r.status for r in fetch_all(fetch_settings, urls)] == [200] * 4


# The address guard.


def guarded(settings: Settings) -> FetchSettings:
    return dataclasses.replace(settings.fetch, allow_private_networks=False)


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("127.0.0.1", "refused: 127.0.0.1 is a loopback address"),
        ("localhost", "refused: localhost resolves to 127.0.0.1, a loopback address"),
        ("[::ffff:127.0.0.1]", "resolves to 127.0.0.1, a loopback address"),
    ],
)
def test_guard_refuses_the_loopback_server(
    server: FeedServer, settings: Settings, host: str, message: str
) -> None:
    """With the guard on, the local server itself is refused, by address, name or mapped IPv6."""
    url = server.add("/guard/feed.xml", SMALL_FEED).replace("127.0.0.1", host)
    error = fetch_error(guarded(settings), url)
    assert (error.kind, error.transient) == ("blocked", False)
    assert message in str(error)
    assert server.count("/guard/feed.xml") == 0


def loopback_only(addr_info: AddrInfo) -> socket.socket:
    """Makes sockets for 127.0.0.1 only, so a guard that let 10.0.0.1 through cannot dial it."""
    address = addr_info[4][0]
    assert address == "127.0.0.1", f"the guard let {address} through"
    return plain_socket(addr_info)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "/fault/redirect-private",
            "refused: 10.0.0.1 is a private address (to allow it: fetch.allow_private_networks"
            " = true, or its range in fetch.allowed_networks)",
        ),
        (
            "/fault/redirect-private/link-local",
            "refused: 169.254.169.254 is a link-local address"
            " (allowed only through fetch.allowed_networks)",
        ),
    ],
)
def test_guard_checks_every_redirect_hop(
    server: FeedServer, settings: Settings, path: str, message: str
) -> None:
    """A public first hop that redirects to a private or metadata address is refused there."""
    limits = httpx.Limits(max_connections=4)
    transport = guarded_transport(limits, allow=["127.0.0.1"], connect_with=loopback_only)
    url = server.url(path)
    asked_before = server.count(path)  # the session's server: other tests may ask it too

    async def go() -> FetchResult:
        async with Fetcher(guarded(settings), transport=transport) as fetcher:
            return await fetcher.fetch(url)

    with pytest.raises(FetchError) as caught:
        run(go())
    assert (caught.value.kind, caught.value.transient) == ("blocked", False)
    assert str(caught.value) == f"{url}: {message}"
    assert server.count(path) == asked_before + 1


@pytest.mark.parametrize(
    ("address", "category"),
    [
        ("10.0.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("172.16.0.1", "a private address"),
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("169.254.169.254", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("0.0.0.0", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("fd00::1", "a private address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("100.64.0.1", "a non-public address"),
        ("240.0.0.1", "a reserved address"),
    ],
)
def test_guard_refuses_non_public_addresses(address: str, category: str) -> None:
    """Every address class that is not the public internet is refused, without any traffic."""
    with pytest.raises(AddressRefused) as caught:
        run(AddressGuard().checked_addresses(address, 80))
    assert str(caught.value).endswith(category)


@pytest.mark.parametrize(
    ("address", "category"),
    [
        ("169.254.169.254", "a link-local address"),  # AWS, Google, Azure, DigitalOcean...
        ("169.254.170.2", "a link-local address"),  # AWS ECS task credentials
        ("fe80::a9fe:a9fe", "a link-local address"),
        ("fd00:ec2::254", "a cloud metadata address"),  # AWS over IPv6
        ("fd20:ce::254", "a cloud metadata address"),  # Google Cloud over IPv6
        ("100.100.100.200", "a cloud metadata address"),  # Alibaba Cloud
        ("192.0.0.192", "a cloud metadata address"),  # Oracle Cloud
        ("::ffff:169.254.169.254", "a link-local address"),
        ("64:ff9b::a9fe:a9fe", "a link-local address"),  # NAT64
        ("2002:a9fe:a9fe::1", "a link-local address"),  # 6to4
    ],
)
@pytest.mark.parametrize("private_allowed", [False, True], ids=["guard", "private-allowed"])
def test_guard_refuses_metadata_addresses_even_with_private_networks_allowed(
    address: str, category: str, private_allowed: bool
) -> None:
    """Link-local and cloud metadata addresses are refused whether or not private networks
    are allowed, however the address is spelt."""
    with pytest.raises(AddressRefused) as caught:
        run(AddressGuard(private_allowed=private_allowed).checked_addresses(address, 80))
    assert category in str(caught.value)
    assert str(caught.value).endswith("fetch.allowed_networks)") == private_allowed


@pytest.mark.parametrize("address", ["10.0.0.1", "192.168.1.1", "127.0.0.1", "::1", "fd00::1"])
def test_private_networks_allowed_lets_private_addresses_through(address: str) -> None:
    """fetch.allow_private_networks opens loopback and private ranges (an intranet feed)."""
    assert run(AddressGuard(private_allowed=True).checked_addresses(address, 80)) == [address]


@pytest.mark.parametrize(
    ("address", "network"),
    [("169.254.169.254", "169.254.169.254/32"), ("fd00:ec2::254", "fd00:ec2::/32")],
)
def test_allowed_networks_let_a_metadata_address_through(address: str, network: str) -> None:
    """A metadata range named in fetch.allowed_networks is reached, and only that one."""
    backend = AddressGuard([network], private_allowed=True)
    assert run(backend.checked_addresses(address, 80)) == [address]
    with pytest.raises(AddressRefused):
        run(backend.checked_addresses("169.254.170.2", 80))


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_guard_lets_public_addresses_through(address: str) -> None:
    """Public IPv4 and IPv6 addresses pass the check (checking sends nothing)."""
    assert run(AddressGuard().checked_addresses(address, 80)) == [address]


# The corpus.


def test_every_corpus_feed_comes_back_byte_identical(
    server: FeedServer, settings: Settings
) -> None:
    """All 86 corpus feeds, fetched at once through one Fetcher, arrive unchanged."""
    served = serve_corpus_feeds(server)
    results = fetch_all(settings.fetch, served.values())
    assert len(served) == 86
    for (file, url), result in zip(served.items(), results, strict=True):
        assert result.final_url == url
        assert result.body == file.read_bytes(), file.name
