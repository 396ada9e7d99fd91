"""The fetch stage: one bounded, polite HTTP GET per call; every failure is a FetchError.

    async with Fetcher(settings.fetch) as fetcher:
        result = await fetcher.fetch(url, etag=state.etag, last_modified=state.last_modified)

Bounds and manners, all from FetchSettings:
- one deadline for the whole request, body and redirect hops included (httpx's own timeouts are
  per operation, so a server dripping one byte a second would never trip them);
- a body cap counted on decompressed bytes while streaming, inflated at most 64 KB at a time, so
  a gzip bomb stops at the cap having held no more than the cap in memory;
- redirects followed here, one hop at a time, each hop's URL and address checked;
- only http and https, and only public addresses unless allow_private_networks (never
  link-local or cloud metadata ones), or within allowed_networks (see netguard);
- requests in flight capped overall and per host, for feeds and article pages alike;
- a host that failed to resolve or connect twice in a run is not asked again in that run;
- conditional GET: a 304 comes back as a FetchResult without a body; a 304 to a request that
  sent no validators is a server fault (http_304).

FetchError kinds (transient ones may succeed later):
    http_<code>   an error status; 404, 408, 425, 429 and 5xx transient, Retry-After kept on
                  429/503; http_304: a 304 that answers no conditional request (transient)
    timeout       no complete answer within the deadline (transient)
    dns, connect, tls, network, protocol   failures below HTTP (transient)
    too_large     body over the cap          redirects   a loop, or more hops than allowed
    blocked       not http(s), or a non-public address    url   not a valid URL
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, NamedTuple, NoReturn, Protocol, Self

import httpx

from newsfold.config import FetchSettings
from newsfold.dates import parse_http_date
from newsfold.errors import FetchError
from newsfold.fetchfaults import (
    at,
    not_http,
    status_error,
    too_large,
    translate_failures,
    unasked_not_modified,
)
from newsfold.model import FetchResult
from newsfold.netguard import guarded_transport

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/rdf+xml;q=0.9, application/xml;q=0.9, text/xml;q=0.9, "
    "application/json;q=0.8, */*;q=0.5"
)
HTML_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
ACCEPT_ENCODING = "gzip, deflate"  # what Inflater decodes; never br or zstd, whatever is installed
LOCATION_ASIDE = "x-newsfold-location"
INFLATE_STEP = 64 * 1024  # most decompressed bytes produced from one step of input

# Failures that say the host cannot be reached, whatever the URL: counted per host and run.
HOST_FAILURE_KINDS = frozenset({"dns", "connect"})
HOST_FAILURES_BEFORE_SKIP = 2  # one lookup that fails may be a hiccup; two in a row are not

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")  # RFC 3986 section 3.1


class SharedHostLimit(Protocol):
    """fetch.per_host held together with other workers (hostslots.HostSlots)."""

    def slot(self, host: str) -> AbstractAsyncContextManager[None]: ...


class Fetcher:
    """One shared httpx client and the slots that keep every request within the limits."""

    def __init__(
        self,
        settings: FetchSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        shared_per_host: SharedHostLimit | None = None,
    ) -> None:
        """`transport` replaces the network (tests of faults a real server cannot make);
        `shared_per_host` makes the per-host limit one for every worker sharing a store."""
        self._settings = settings
        self._shared_per_host = shared_per_host
        self._client = httpx.AsyncClient(
            transport=transport or default_transport(settings),
            headers={"User-Agent": settings.user_agent},
            timeout=httpx.Timeout(settings.timeout),
            follow_redirects=False,
            trust_env=False,
            event_hooks={"response": [set_location_aside]},
        )
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self._unreachable = UnreachableHosts()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str = FEED_ACCEPT,
    ) -> FetchResult:
        """GET `url`, following redirects: a 2xx or a 304, or a FetchError naming `url`."""
        headers = request_headers(accept, etag, last_modified)
        budget = Budget(self._settings.timeout)
        target = checked_url(url, url)
        seen = {target}
        for _ in range(self._settings.max_redirects + 1):
            answer = await self._request(url, target, headers, budget)
            if isinstance(answer, FetchResult):
                return keep_validators(answer, etag, last_modified)
            target = checked_url(url, answer.location, answer.base)
            if target in seen:
                raise FetchError(
                    url, f"redirect loop at {target}", kind="redirects", transient=False
                )
            seen.add(target)
        raise FetchError(
            url,
            f"more than {self._settings.max_redirects} redirects (last to {target})",
            kind="redirects",
            transient=False,
        )

    async def _request(
        self, url: str, target: httpx.URL, headers: dict[str, str], budget: Budget
    ) -> FetchResult | Redirect:
        """One hop: a result, or where to go next."""
        async with self._host_slot(target.host):
            self._unreachable.check(url, target)  # asked again while this request waited
            async with self._shared_slot(target.host), self._slots:
                with (
                    self._unreachable.watching(target),
                    translate_failures(url, target, self._settings.timeout),
                ):
                    async with (
                        budget.running(),
                        self._client.stream("GET", target, headers=headers) as response,
                    ):
                        return await self._answer(url, response)

    def _shared_slot(self, host: str) -> AbstractAsyncContextManager[None]:
        shared = self._shared_per_host
        return shared.slot(host) if shared else contextlib.nullcontext()

    def _host_slot(self, host: str) -> asyncio.Semaphore:
        slot = self._host_slots.get(host)
        if slot is None:
            slot = self._host_slots[host] = asyncio.Semaphore(self._settings.per_host)
        return slot

    async def _answer(self, url: str, response: httpx.Response) -> FetchResult | Redirect:
        status = response.status_code
        location = response.headers.get(LOCATION_ASIDE)
        if status in REDIRECT_CODES and location:
            return Redirect(response.url, location)
        now = datetime.now(UTC)
        if status == 304:
            if not has_validators(response.request):
                raise unasked_not_modified(url, response)
            return fetch_result(url, response, None, now)
        if 200 <= status < 300:
            return fetch_result(url, response, await self._read_body(url, response), now)
        raise status_error(url, response, self._settings.max_retry_after.total_seconds(), now)

    async def _read_body(self, url: str, response: httpx.Response) -> bytes:
        """The decompressed body, stopped as soon as it passes the cap.

        The body is inflated here rather than by httpx, which inflates a whole network read at
        once: 64 KB of gzip of zeros becomes 64 MB in one piece, per request in flight.
        """
        cap = self._settings.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise too_large(url, response, cap, f" (announced {declared} bytes)")
        inflater = Inflater(url, response)
        chunks: list[bytes] = []
        size = 0
        async for raw in response.aiter_raw():
            for chunk in inflater.inflate(raw):
                size += len(chunk)
                if size > cap:
                    raise too_large(url, response, cap)
                chunks.append(chunk)
        return b"".join(chunks)


class UnreachableHosts:
    """Hosts that failed to resolve or to connect in this run.

    After HOST_FAILURES_BEFORE_SKIP such failures with no answer between them, a host is not
    asked again in this run: its requests fail at once with the reason of its last failure, so
    a feed whose pages all sit on a host that does not resolve costs a few lookups, not one (and
    a robots.txt) per page. The next run asks again.
    """

    def __init__(self) -> None:
        self._failures: dict[tuple[str, int | None], tuple[int, FetchError]] = {}

    def check(self, url: str, target: httpx.URL) -> None:
        """Raise the host's failure again, for `url`, if the host is given up for this run."""
        count, last = self._failures.get((target.host, target.port), (0, None))
        if last is None or count < HOST_FAILURES_BEFORE_SKIP:
            return
        cause = last.cause.replace(at(last.url, target), "", 1)
        cause += f" (not asked again: {target.host} failed {count} times in this run)"
        raise FetchError(url, cause, kind=last.kind, transient=True)

    @contextlib.contextmanager
    def watching(self, target: httpx.URL) -> Iterator[None]:
        """Count the request's failure to reach the host; any answer clears the count."""
        key = (target.host, target.port)
        try:
            yield
        except FetchError as exc:
            if exc.kind in HOST_FAILURE_KINDS:
                count = self._failures.get(key, (0, exc))[0]
                self._failures[key] = (count + 1, exc)
            else:
                self._failures.pop(key, None)
            raise
        self._failures.pop(key, None)


class Inflater:
    """Undoes a gzip or deflate Content-Encoding in steps of at most INFLATE_STEP bytes."""

    def __init__(self, url: str, response: httpx.Response) -> None:
        self._url = url
        self._where = at(url, response.url)
        header = response.headers.get("content-encoding", "")
        codings = [c for c in (c.strip().lower() for c in header.split(",")) if c != "identity"]
        self._coding = ", ".join(c for c in codings if c)
        self._fed = False
        self._zlib: Any = None
        if self._coding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self._coding == "deflate":
            self._zlib = zlib.decompressobj(32 + zlib.MAX_WBITS)  # zlib (or gzip) framing
        elif self._coding:
            self._fail(f"unsupported Content-Encoding {self._coding!r}")

    def inflate(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of the next piece of the body, a step at a time."""
        if self._zlib is None:
            yield data
            return
        first, self._fed = not self._fed, True
        try:
            yield from self._steps(data)
        except zlib.error as exc:
            if not (first and self._coding == "deflate"):
                self._fail(f"undecodable {self._coding} body ({exc})")
            # Some servers send deflate without its zlib framing.
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            try:
                yield from self._steps(data)
            except zlib.error as again:
                self._fail(f"undecodable {self._coding} body ({again})")

    def _steps(self, data: bytes) -> Iterator[bytes]:
        while True:
            # Output stops at the step; the input left over waits in unconsumed_tail.
            chunk = self._zlib.decompress(data, INFLATE_STEP)
            if not chunk:
                return
            yield chunk
            data = self._zlib.unconsumed_tail

    def _fail(self, cause: str) -> NoReturn:
        raise FetchError(
            self._url, f"broken HTTP answer{self._where}: {cause}", kind="protocol", transient=True
        )


def default_transport(settings: FetchSettings) -> httpx.AsyncBaseTransport:
    # Connections never wait for the pool: the semaphores admit at most `concurrency` requests.
    limits = httpx.Limits(
        max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency
    )
    return guarded_transport(
        limits,
        allow=settings.allowed_networks,
        private_allowed=settings.allow_private_networks,
    )


async def set_location_aside(response: httpx.Response) -> None:
    """Move Location where httpx does not look: even when not following redirects, httpx builds
    the next request from it and fails on a value it cannot parse (javascript:alert(1)), before
    checked_url could name it."""
    location = response.headers.pop("location", None)
    if location is not None:
        response.headers[LOCATION_ASIDE] = location


class Redirect(NamedTuple):
    base: httpx.URL  # the URL that answered with the redirect
    location: str  # the Location header as sent, maybe relative


class Budget:
    """The time one fetch may spend on the wire; waiting for a free slot does not count."""

    def __init__(self, seconds: float) -> None:
        self.left = seconds

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(self.left):
                yield
        finally:
            self.left -= loop.time() - started


def request_headers(accept: str, etag: str | None, last_modified: str | None) -> dict[str, str]:
    headers = {"Accept": accept, "Accept-Encoding": ACCEPT_ENCODING}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def checked_url(url: str, candidate: str, base: httpx.URL | None = None) -> httpx.URL:
    """`candidate` (the URL asked for, or a Location relative to `base`) if it is http(s)."""
    # The scheme first: httpx cannot even parse some (javascript:alert(1)) to say what they are.
    scheme, colon, _ = candidate.strip().partition(":")
    if colon and _SCHEME.fullmatch(scheme) and scheme.lower() not in ("http", "https"):
        raise not_http(url, candidate)
    try:
        target = base.join(candidate) if base else httpx.URL(candidate)
    except httpx.InvalidURL as exc:
        raise FetchError(url, f"not a valid URL: {exc}", kind="url", transient=False) from None
    if target.scheme not in ("http", "https"):
        raise not_http(url, candidate)
    if not target.host:
        raise FetchError(url, f"not a valid URL: {candidate}", kind="url", transient=False)
    return target


def has_validators(request: httpx.Request) -> bool:
    return "if-none-match" in request.headers or "if-modified-since" in request.headers


def keep_validators(
    result: FetchResult, etag: str | None, last_modified: str | None
) -> FetchResult:
    """A 304 that leaves out ETag or Last-Modified still means the ones sent are current."""
    if not result.not_modified:
        return result
    return dataclasses.replace(
        result,
        etag=result.etag or etag,
        last_modified=result.last_modified or last_modified,
    )


def fetch_result(
    url: str, response: httpx.Response, body: bytes | None, now: datetime
) -> FetchResult:
    headers = response.headers
    return FetchResult(
        url=url,
        final_url=str(response.url),
        status=response.status_code,
        body=body,
        content_type=headers.get("content-type"),
        etag=headers.get("etag"),
        last_modified=headers.get("last-modified"),
        max_age=max_age_seconds(headers, now),
    )


def max_age_seconds(headers: httpx.Headers, now: datetime) -> float | None:
    """How long the answer stays fresh: Cache-Control max-age, else Expires minus Date."""
    for directive in headers.get("cache-control", "").split(","):
        name, _, value = directive.strip().partition("=")
        if name.lower() == "max-age":
            value = value.strip().strip('"')
            return float(value) if value.isdigit() else None
    expires = headers.get("expires")
    if expires is None:
        return None
    moment = parse_http_date(expires)
    if moment is None:  # "0", "-1" and other invalid dates mean already expired
        return 0.0
    base = parse_http_date(headers.get("date", "")) or now
    return max((moment - base).total_seconds(), 0.0)
