"""What a failed fetch means: one FetchError that names the URL, its kind and its cause.

The kinds are listed in fetch.py's module note. A status, a body over the cap, a refused address
or a failure below HTTP (aiohttp's and httpx's exceptions, judged by what caused them) each
become one line a user can read, with the hop it happened at when a redirect led there.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Iterator
from datetime import datetime

import aiohttp
import httpx

from newsfold.dates import parse_http_date
from newsfold.errors import FetchError
from newsfold.netguard import AddressRefused

# Active feeds do answer 404 for a while and come back; 408, 425, 429 and 5xx say "later".
TRANSIENT_CODES = frozenset({404, 408, 425, 429})
RETRY_AFTER_CODES = frozenset({429, 503})


def not_http(url: str, candidate: str) -> FetchError:
    cause = f"refused: {candidate[:200]} is not an http or https URL"
    return FetchError(url, cause, kind="blocked", transient=False)


def unasked_not_modified(url: str, response: httpx.Response) -> FetchError:
    """A 304 to a request that sent no validators: there is no copy it could refer to."""
    cause = f"HTTP 304 Not Modified{at(url, response.url)} to a request without validators"
    return FetchError(url, cause, kind="http_304", transient=True, status=304)


def is_transient_status(status: int) -> bool:
    """Whether asking again later may get a different answer than this error status."""
    return status in TRANSIENT_CODES or status >= 500


def status_error(
    url: str, response: httpx.Response, max_retry_after: float, now: datetime
) -> FetchError:
    status = response.status_code
    retry_after = None
    if status in RETRY_AFTER_CODES:
        retry_after = retry_after_seconds(response.headers.get("retry-after"), now, max_retry_after)
    cause = f"HTTP {status} {httpx.codes.get_reason_phrase(status)}".rstrip()
    cause += at(url, response.url)
    if retry_after is not None:
        cause += f" (retry after {retry_after:g} s)"
    return FetchError(
        url,
        cause,
        kind=f"http_{status}",
        transient=is_transient_status(status),
        retry_after=retry_after,
        status=status,
    )


def too_large(url: str, response: httpx.Response, cap: int, detail: str = "") -> FetchError:
    cause = f"body over the {cap}-byte cap{detail}{at(url, response.url)}"
    return FetchError(url, cause, kind="too_large", transient=False, status=response.status_code)


def at(url: str, target: httpx.URL) -> str:
    """' at <hop>' when the answer came from another URL than the one asked for."""
    return "" if target == httpx.URL(url) else f" at {target}"


def retry_after_seconds(value: str | None, now: datetime, cap: float) -> float | None:
    """Retry-After (seconds or an HTTP date) as seconds from `now`, within 0 and `cap`."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        moment = parse_http_date(value)
        if moment is None:
            return None
        seconds = (moment - now).total_seconds()
    return min(max(seconds, 0.0), cap)


@contextlib.contextmanager
def translate_failures(url: str, target: httpx.URL, timeout: float) -> Iterator[None]:
    """Turn what the network, aiohttp and httpx raise into one FetchError that names `url`."""
    where = at(url, target)
    try:
        yield
    except AddressRefused as exc:
        cause = f"refused: {exc}" if exc.explained else f"refused: {exc} ({exc.remedy})"
        raise FetchError(url, cause, kind="blocked", transient=False) from None
    except httpx.InvalidURL as exc:
        raise FetchError(url, f"not a valid URL: {exc}", kind="url", transient=False) from None
    except (TimeoutError, httpx.RequestError, aiohttp.ClientError) as exc:
        kind, what = network_failure(exc)
        if kind == "timeout":
            cause = f"no complete answer within {timeout:g} s{where}"
            raise FetchError(url, cause, kind="timeout", transient=True) from None
        detail = " ".join(str(exc).split()) or type(exc).__name__
        cause = f"{what}{where}: {detail}"
        raise FetchError(url, cause, kind=kind, transient=kind != "blocked") from None


# A server that closes early, sends a body shorter than its Content-Length or an answer that is
# not HTTP: aiohttp's names for these (httpx-aiohttp hands some on as httpx errors that say
# "timeout" or "read", so the cause decides, not the outer type).
_PROTOCOL_FAILURES = (
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientPayloadError,
    aiohttp.ClientResponseError,
    httpx.ProtocolError,
    httpx.DecodingError,
)


def network_failure(exc: BaseException) -> tuple[str, str]:
    """(kind, description) of a failure below HTTP, judged by the errors that caused it."""
    causes = list(exception_chain(exc))

    def caused_by(*kinds: type[BaseException]) -> bool:
        return any(isinstance(cause, kinds) for cause in causes)

    if caused_by(aiohttp.InvalidUrlClientError):  # 167772161: 10.0.0.1 written as one number
        return "blocked", "refused"
    if caused_by(socket.gaierror, aiohttp.ClientConnectorDNSError):
        return "dns", "DNS lookup failed"
    if caused_by(ssl.SSLError, aiohttp.ClientSSLError):
        return "tls", "TLS handshake failed"
    if caused_by(*_PROTOCOL_FAILURES):
        return "protocol", "broken HTTP answer"
    if caused_by(aiohttp.ClientConnectorError, httpx.ConnectError):
        return "connect", "connection failed"
    if caused_by(TimeoutError):  # aiohttp's and asyncio's; not httpx-aiohttp's guess of one
        return "timeout", "no complete answer"
    return "network", "connection lost"


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__
