"""A real HTTP/1.1 server on 127.0.0.1 for newsfold's tests and benchmarks.

    with FeedServer() as server:
        server.add("/feed.xml", b"<rss>...</rss>")
        url = server.url("/feed.xml")

Static routes answer conditional GETs (ETag from the body, Last-Modified from the time they were
added) and can send gzip to clients that accept it. Fault routes live under /fault/:

    /fault/status/<code>        that status (429 and 503 send Retry-After: 2)
    /fault/delay/<seconds>      a small feed after a pause (for concurrency checks)
    /fault/slow                 headers, then one body byte every 0.5 s for a very long time
    /fault/never-ending         a chunked body that never ends
    /fault/huge                 50 MB, announced by Content-Length
    /fault/huge-chunked         50 MB, without Content-Length
    /fault/gzip-bomb            ~120 KB of gzip that inflates to 120 MB (Content-Encoding: gzip)
    /fault/redirect-loop        302 to /fault/redirect-loop/back, which 302s back
    /fault/redirect-chain/<n>   n hops of 302, then a small feed at /fault/redirect-chain/0
    /fault/redirect-private     302 to http://10.0.0.1/feed.xml
    /fault/redirect-private/link-local   302 to http://169.254.169.254/latest/meta-data/
    /fault/redirect-private/<aws-ipv6|nat64>   302 to the AWS IPv6 metadata address, or to
                                169.254.169.254 behind the NAT64 prefix
    /fault/redirect-scheme      302 to file:///etc/passwd
    /fault/html /fault/empty /fault/binary   an HTML page, an empty 200, random bytes
    /fault/lying-length         Content-Length larger than the body, then the connection closes
    /fault/closed-mid-body      a chunked body cut off without its last chunk
    /fault/timeout              no headers for a very long time

Hostile feeds and pages (appended; their functions say more):

    /fault/article/<key>        a plain news page whose text belongs to <key> alone
    /fault/retry-after/<code>/<s>   that status with Retry-After: <s> (or /<code>/date/<s>)
    /fault/redirect-private-dns/<decimal|hex|metadata|mapped|ula>   302 to a host name that
                                resolves to 10.0.0.1, 169.254.169.254 or fd00::1
    /fault/redirect-other-scheme/<javascript|data|ftp|gopher>   302 to a URL that is not http(s)
    /fault/many-items/<n>       an RSS feed of n items (10,000 by default)
    /fault/big-feed/<mb> /fault/big-page/<mb>   a valid feed or page of about <mb> MB (14)
    /fault/no-identity /fault/bad-links /fault/dates   items without link, guid or title; links
                                to javascript:, data:, file: ...; dates in 1970 and 2999
    /fault/etag-changing /fault/etag-stuck   a new ETag on the same body; the same ETag on a
                                body with one more item on every request
    /fault/billion-laughs /fault/xxe /fault/deep-nesting   entity bombs, external entities (to
                                /fault/xxe-target/..., which no test may ever see asked for)
    /fault/invalid-utf8 /fault/wrong-encoding/<latin1-declared|utf8-declared|utf16-header>
    /fault/json-not-feed        JSON that is not a JSON Feed
    /fault/canonicals           a feed of /fault/canonical/<kind> pages, whose rel=canonical is
                                bare (a relative token), home (the site's root), absolute (another
                                path of the site) or og (a relative token og:url agrees with)

Fetch the redirect-private routes (and redirect-private-dns) only with the private-address guard
ON: a client that follows them would otherwise send packets to 10.0.0.1 or 169.254.169.254, which
a test must never do.
Every endless route stops when the client goes away or the server stops.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import random
import socket
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from tests.corpus import CORPUS as CORPUS

SMALL_FEED = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>t</title>'
    b"<link>http://example.com/</link><item><title>one</title>"
    b"<link>http://example.com/1</link><guid>1</guid></item></channel></rss>\n"
)
HTML_PAGE = (
    b"<!doctype html><html><head><title>Not a feed</title></head>"
    b"<body><h1>Welcome</h1><p>This is a web page, not a feed.</p></body></html>\n"
)
DRIP_INTERVAL = 0.5  # seconds between two bytes of /fault/slow
LONG_WAIT = 600.0  # seconds a stalling route waits: far beyond any client timeout
HUGE_SIZE = 50 * 1024 * 1024
BOMB_SIZE = 120 * 1024 * 1024
CHUNK = 64 * 1024

Handler = Callable[["RequestHandler"], None]
FEED_TYPES = {
    ".json": "application/feed+json",
    ".atom": "application/atom+xml",
    ".rss": "application/rss+xml",
    ".rdf": "application/rdf+xml",
}


@dataclass(frozen=True, slots=True)
class Route:
    """A static answer; `gzipped` is the body compressed, when the route offers gzip."""

    body: bytes
    content_type: str
    status: int
    headers: dict[str, str]
    etag: str
    last_modified: str
    gzipped: bytes | None = None


def make_route(
    body: bytes,
    *,
    content_type: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    gzipped: bytes | None = None,
) -> Route:
    return Route(
        body=body,
        content_type=content_type,
        status=status,
        headers=dict(headers or {}),
        etag='"' + hashlib.sha256(body).hexdigest()[:20] + '"',
        last_modified=formatdate(time.time(), usegmt=True),
        gzipped=gzipped,
    )


class QuietServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that does not print tracebacks when a client hangs up."""

    daemon_threads = True
    stopping: threading.Event
    owner: FeedServer

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class RequestHandler(BaseHTTPRequestHandler):
    """Dispatches to static routes, custom handlers, then the fault routes."""

    protocol_version = "HTTP/1.1"  # keep-alive
    timeout = 30  # an idle keep-alive connection's thread ends after this
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: QuietServer

    def log_message(self, format: str, *args: object) -> None:
        """Silence the per-request log line."""

    def do_GET(self) -> None:
        self.server.owner._serve(self)

    def do_HEAD(self) -> None:
        self.server.owner._serve(self)

    # Helpers for handlers, built-in and custom.

    @property
    def stopping(self) -> threading.Event:
        return self.server.stopping

    def send_body(
        self,
        body: bytes,
        *,
        status: int = 200,
        content_type: str = "application/xml",
        headers: dict[str, str] | None = None,
    ) -> None:
        """A complete answer with Content-Length; the body is left out for HEAD."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def send_redirect(self, location: str, status: int = 302) -> None:
        self.send_body(
            b"", status=status, content_type="text/plain", headers={"Location": location}
        )

    def send_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def wait(self, seconds: float) -> bool:
        """Sleep unless the server stops; True when it is time to give up."""
        return self.stopping.wait(seconds)


class FeedServer:
    """A threaded HTTP/1.1 server on 127.0.0.1, port chosen by the system."""

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}
        self._handlers: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._requests: list[tuple[str, str, Message]] = []
        self._spans: list[tuple[str, float, float]] = []
        self._httpd: QuietServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # Lifecycle.

    def start(self) -> FeedServer:
        httpd = QuietServer(("127.0.0.1", 0), RequestHandler)
        httpd.stopping = threading.Event()
        httpd.owner = self
        self._httpd = httpd
        self.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(0.05,), name="feed-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd = None

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # Routes.

    def url(self, path: str) -> str:
        return self.base_url + path

    def add(
        self,
        path: str,
        body: bytes,
        *,
        content_type: str = "application/xml",
        status: int = 200,
        headers: dict[str, str] | None = None,
        gzip: bool = False,
    ) -> str:
        """Serve `body` at `path` (a query string is part of the key); returns the URL."""
        gzipped = compress(body) if gzip else None
        route = make_route(
            body, content_type=content_type, status=status, headers=headers, gzipped=gzipped
        )
        return self._add_route(path, route)

    def add_html_gz(self, path: str, file: Path, *, encoded: bool = False) -> str:
        """Serve a stored .html.gz page decompressed; `encoded` also offers the gzip bytes as is."""
        raw = file.read_bytes()
        route = make_route(
            gzip.decompress(raw), content_type="text/html", gzipped=raw if encoded else None
        )
        return self._add_route(path, route)

    def add_handler(self, path: str, fn: Handler) -> str:
        """Let `fn(request_handler)` write the whole answer for `path`; returns the URL."""
        with self._lock:
            self._handlers[path] = fn
        return self.url(path)

    def _add_route(self, path: str, route: Route) -> str:
        with self._lock:
            self._routes[path] = route
        return self.url(path)

    # What the server saw.

    @property
    def requests(self) -> list[tuple[str, str, Message]]:
        """(method, path, headers) of every request so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def count(self, path: str) -> int:
        """How many requests asked for exactly `path`."""
        return sum(1 for _, seen, _ in self.requests if seen == path)

    def peak_concurrency(self, prefix: str) -> int:
        """Most requests under `prefix` that were in flight at one moment."""
        with self._lock:
            spans = [(start, end) for path, start, end in self._spans if path.startswith(prefix)]
        events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
        peak = current = 0
        for _, step in events:
            current += step
            peak = max(peak, current)
        return peak

    # Dispatch.

    def _serve(self, handler: RequestHandler) -> None:
        path = handler.path
        with self._lock:
            # Header names are case-insensitive (RFC 9110): kept so, as the server reads them.
            self._requests.append((handler.command, path, handler.headers))
        started = time.monotonic()
        try:
            self._dispatch(handler, path)
        finally:
            with self._lock:
                self._spans.append((path, started, time.monotonic()))

    def _dispatch(self, handler: RequestHandler, path: str) -> None:
        bare = urlsplit(path).path
        with self._lock:
            fn = self._handlers.get(path) or self._handlers.get(bare)
            route = self._routes.get(path) or self._routes.get(bare)
        if fn is not None:
            fn(handler)
        elif route is not None:
            serve_static(handler, route)
        else:
            serve_fault(handler, bare)


def compress(body: bytes) -> bytes:
    return gzip.compress(body, compresslevel=6, mtime=0)


def serve_static(handler: RequestHandler, route: Route) -> None:
    validators = {"ETag": route.etag, "Last-Modified": route.last_modified}
    if route.status == 200 and not_modified(handler, route):
        handler.send_response(304)
        for name, value in validators.items():
            handler.send_header(name, value)
        handler.end_headers()
        return
    headers = {**validators, **route.headers}
    body = route.body
    if route.gzipped is not None:
        headers["Vary"] = "Accept-Encoding"
        if "gzip" in handler.headers.get("Accept-Encoding", ""):
            headers["Content-Encoding"] = "gzip"
            body = route.gzipped
    handler.send_body(body, status=route.status, content_type=route.content_type, headers=headers)


def not_modified(handler: RequestHandler, route: Route) -> bool:
    """RFC 9110 precedence: If-None-Match decides when present, else If-Modified-Since."""
    if_none_match = handler.headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or route.etag in tags
    if_modified_since = handler.headers.get("If-Modified-Since")
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False
    return parsedate_to_datetime(route.last_modified) <= since


# Fault routes.


def serve_fault(handler: RequestHandler, path: str) -> None:
    name, _, arg = path.removeprefix("/fault/").partition("/")
    fault = FAULTS.get(name) if path.startswith("/fault/") else None
    if fault is None:
        handler.send_body(b"not found\n", status=404, content_type="text/plain")
        return
    fault(handler, arg)


def fault_status(handler: RequestHandler, arg: str) -> None:
    code = int(arg) if arg.isdigit() else 400
    headers = {"Retry-After": "2"} if code in (429, 503) else {}
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = ""
    if code in (204, 304):
        handler.send_response(code)
        handler.end_headers()
        return
    body = f"{code} {phrase}\n".encode()
    handler.send_body(body, status=code, content_type="text/plain", headers=headers)


def fault_delay(handler: RequestHandler, arg: str) -> None:
    if handler.wait(float(arg or "1")):
        return
    handler.send_body(SMALL_FEED)


def fault_slow(handler: RequestHandler, _: str) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/xml")
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    handler.wfile.flush()
    while not handler.wait(DRIP_INTERVAL):
        handler.wfile.write(b"<")
        handler.wfile.flush()
    handler.close_connection = True


def start_chunked(handler: RequestHandler, headers: dict[str, str] | None = None) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/xml")
    handler.send_header("Transfer-Encoding", "chunked")
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()


def fault_never_ending(handler: RequestHandler, _: str) -> None:
    start_chunked(handler)
    block = b"<item>" + b"x" * (CHUNK - 13) + b"</item>"
    while not handler.stopping.is_set():
        handler.send_chunk(block)
    handler.close_connection = True


def fault_huge(handler: RequestHandler, _: str) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/xml")
    handler.send_header("Content-Length", str(HUGE_SIZE))
    handler.end_headers()
    if handler.command != "HEAD":
        for block in blocks(HUGE_SIZE, handler):
            handler.wfile.write(block)


def fault_huge_chunked(handler: RequestHandler, _: str) -> None:
    start_chunked(handler)
    for block in blocks(HUGE_SIZE, handler):
        handler.send_chunk(block)
    handler.wfile.write(b"0\r\n\r\n")


def blocks(total: int, handler: RequestHandler) -> Iterator[bytes]:
    block = b" " * CHUNK
    for _ in range(total // CHUNK):
        if handler.stopping.is_set():
            return
        yield block


_bomb_lock = threading.Lock()
_bomb: list[bytes] = []


def gzip_bomb() -> bytes:
    """BOMB_SIZE zero bytes as gzip, built once (about 120 KB)."""
    with _bomb_lock:
        if not _bomb:
            packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
            zeros = bytes(1024 * 1024)
            parts = [packer.compress(zeros) for _ in range(BOMB_SIZE // len(zeros))]
            _bomb.append(b"".join(parts) + packer.flush())
        return _bomb[0]


def fault_gzip_bomb(handler: RequestHandler, _: str) -> None:
    headers = {"Content-Encoding": "gzip"}
    handler.send_body(gzip_bomb(), headers=headers)


def fault_redirect_loop(handler: RequestHandler, arg: str) -> None:
    handler.send_redirect("/fault/redirect-loop" if arg else "/fault/redirect-loop/back")


def fault_redirect_chain(handler: RequestHandler, arg: str) -> None:
    hops = int(arg) if arg.isdigit() else 0
    if hops == 0:
        handler.send_body(SMALL_FEED)
    else:
        handler.send_redirect(f"/fault/redirect-chain/{hops - 1}")


def fault_redirect_private(handler: RequestHandler, arg: str) -> None:
    targets = {
        "link-local": "http://169.254.169.254/latest/meta-data/",
        "aws-ipv6": "http://[fd00:ec2::254]/latest/meta-data/",
        "nat64": "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
    }
    handler.send_redirect(targets.get(arg, "http://10.0.0.1/feed.xml"))


def fault_redirect_scheme(handler: RequestHandler, _: str) -> None:
    handler.send_redirect("file:///etc/passwd")


def fault_html(handler: RequestHandler, _: str) -> None:
    handler.send_body(HTML_PAGE, content_type="text/html; charset=utf-8")


def fault_empty(handler: RequestHandler, _: str) -> None:
    handler.send_body(b"")


def fault_binary(handler: RequestHandler, _: str) -> None:
    body = b"\x89PNG\r\n\x1a\n" + os.urandom(4096)
    handler.send_body(body, content_type="application/octet-stream")


def fault_lying_length(handler: RequestHandler, _: str) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/xml")
    handler.send_header("Content-Length", str(len(SMALL_FEED) * 10))
    handler.end_headers()
    handler.wfile.write(SMALL_FEED)
    handler.close_connection = True


def fault_closed_mid_body(handler: RequestHandler, _: str) -> None:
    start_chunked(handler)
    handler.send_chunk(SMALL_FEED[: len(SMALL_FEED) // 2])
    handler.close_connection = True


def fault_timeout(handler: RequestHandler, _: str) -> None:
    handler.wait(LONG_WAIT)
    handler.close_connection = True


FAULTS: dict[str, Callable[[RequestHandler, str], None]] = {
    "status": fault_status,
    "delay": fault_delay,
    "slow": fault_slow,
    "never-ending": fault_never_ending,
    "huge": fault_huge,
    "huge-chunked": fault_huge_chunked,
    "gzip-bomb": fault_gzip_bomb,
    "redirect-loop": fault_redirect_loop,
    "redirect-chain": fault_redirect_chain,
    "redirect-private": fault_redirect_private,
    "redirect-scheme": fault_redirect_scheme,
    "html": fault_html,
    "empty": fault_empty,
    "binary": fault_binary,
    "lying-length": fault_lying_length,
    "closed-mid-body": fault_closed_mid_body,
    "timeout": fault_timeout,
}


# The corpus.


def corpus_files(kind: str, corpus: Path = CORPUS) -> list[Path]:
    """Every file of one `kind` ("feed", "article", "truth") listed in the corpus manifest."""
    with (corpus / "manifest.jsonl").open(encoding="utf-8") as manifest:
        entries = [json.loads(line) for line in manifest if line.strip()]
    return [corpus / entry["path"] for entry in entries if entry["kind"] == kind]


def serve_corpus_feeds(server: FeedServer, corpus: Path = CORPUS) -> dict[Path, str]:
    """Serve every corpus feed at /feeds/<path under feeds/>; maps each file to its URL."""
    root = corpus / "feeds"
    return {
        file: server.add(
            "/feeds/" + file.relative_to(root).as_posix(),
            file.read_bytes(),
            content_type=FEED_TYPES.get(file.suffix, "application/xml"),
        )
        for file in corpus_files("feed", corpus)
    }


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (for connection-refused checks)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Hostile feeds and pages: what a parser, the scheduler and the whole run must survive.

ARTICLE_WORDS = (
    "council", "harbour", "minister", "river", "festival", "budget", "station", "museum", "court",
    "engineers", "farmers", "island", "bridge", "election", "school", "market", "storm", "hospital",
    "library", "railway", "orchestra", "vineyard", "glacier", "factory", "parliament", "village",
    "satellite", "archive", "ferry", "stadium", "forest", "airport", "theatre", "clinic", "canal",
    "reported", "announced", "delayed", "opened", "repaired", "visited", "approved", "rejected",
    "planned", "measured", "described", "welcomed", "criticised", "expanded", "closed", "restored",
    "quietly", "early", "again", "finally", "together", "nearby", "overnight", "abroad", "today",
)  # fmt: skip


def article_text(key: str, paragraphs: int = 4, words: int = 45) -> list[str]:
    """Paragraphs of text that belong to page `key` alone: two keys never share a story."""
    rng = random.Random(key)
    return [
        " ".join(rng.choice(ARTICLE_WORDS) for _ in range(words)).capitalize()
        + f", {rng.randint(10, 99_999)} people said."
        for _ in range(paragraphs)
    ]


def article_page(key: str, head: str = "") -> bytes:
    """A plain news page for `key`: title, header, the article's paragraphs, a footer; `head`
    goes into its <head>."""
    body = "".join(f"<p>{p}</p>\n" for p in article_text(key))
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Story {key}</title>"
        f"{head}</head><body><header><a href='/'>Home</a></header><article><h1>Story {key}</h1>\n"
        f"{body}</article><footer>Contact us</footer></body></html>\n"
    ).encode()


def rss(items: str, title: str = "hostile", doctype: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n{doctype}<rss version="2.0"><channel><title>'
        f"{title}</title><link>http://example.com/</link>\n{items}</channel></rss>\n"
    ).encode()


def rss_item(base: str, key: str, *, pub_date: str | None = None) -> str:
    """An item with title, link (to /fault/article/<key> on `base`), guid and description."""
    date = f"<pubDate>{pub_date}</pubDate>" if pub_date else ""
    return (
        f"<item><title>Story {key}</title><link>{base}/fault/article/{key}</link>"
        f"<guid>{key}</guid>{date}<description>{article_text(key, 1)[0][:80]}</description>"
        "</item>\n"
    )


def base_of(handler: RequestHandler) -> str:
    return f"http://{handler.headers.get('Host', '127.0.0.1')}"


_counters_lock = threading.Lock()
_counters: dict[str, int] = {}


def next_count(path: str) -> int:
    """1, 2, 3... per request path: how many times this route was served so far."""
    with _counters_lock:
        _counters[path] = _counters.get(path, 0) + 1
        return _counters[path]


def fault_article(handler: RequestHandler, arg: str) -> None:
    handler.send_body(article_page(arg or "page"), content_type="text/html; charset=utf-8")


def fault_retry_after(handler: RequestHandler, arg: str) -> None:
    """/fault/retry-after/<code>/<seconds>, or /<code>/date/<seconds> for an HTTP date."""
    code, _, value = arg.partition("/")
    if value.startswith("date/"):
        value = formatdate(time.time() + float(value.removeprefix("date/")), usegmt=True)
    headers = {"Retry-After": value}
    handler.send_body(b"slow down\n", status=int(code), content_type="text/plain", headers=headers)


def fault_many_items(handler: RequestHandler, arg: str) -> None:
    """An RSS feed of <n> items (10,000 by default), newest first, each with its own page."""
    handler.send_body(many_items_feed(base_of(handler), int(arg) if arg.isdigit() else 10_000))


@functools.lru_cache(maxsize=4)
def many_items_feed(base: str, count: int) -> bytes:
    return rss("".join(rss_item(base, f"many-{i}") for i in range(count, 0, -1)), "many items")


def fault_no_identity(handler: RequestHandler, _: str) -> None:
    """Items lacking link, guid or title in every combination, and one complete item."""
    base = base_of(handler)
    items = (
        "<item><description>Only a description, no title, link or guid.</description></item>\n"
        "<item></item>\n<item><title></title><link></link><guid></guid></item>\n"
        f"<item><link>{base}/fault/article/no-title</link></item>\n"
        '<item><guid isPermaLink="false">only-a-guid</guid></item>\n'
        "<item><title>Only a title</title></item>\n" + rss_item(base, "identified")
    )
    handler.send_body(rss(items, "no identity"))


BAD_LINKS = (
    "javascript:alert(document.cookie)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "file:///etc/passwd",
    "ftp://127.0.0.1/feed.xml",
    "mailto:news@example.com",
    "http://",
    "http://[::1",
)


def fault_bad_links(handler: RequestHandler, _: str) -> None:
    """Items whose links are not web pages (javascript:, data:, file: ...), and one good one."""
    items = "".join(
        f"<item><title>Bad link {i}</title><link>{link.replace('&', '&amp;')}</link>"
        f"<guid>bad-link-{i}</guid><description>A link that must not be followed.</description>"
        "</item>\n"
        for i, link in enumerate(BAD_LINKS)
    )
    handler.send_body(rss(items + rss_item(base_of(handler), "good-link"), "bad links"))


def fault_dates(handler: RequestHandler, _: str) -> None:
    """Items dated 1970, 2999 and nonsense, each with a page that has no date of its own."""
    base = base_of(handler)
    items = (
        rss_item(base, "date-1970", pub_date="Thu, 01 Jan 1970 00:00:00 GMT")
        + rss_item(base, "date-2999", pub_date="Tue, 01 Jan 2999 00:00:00 GMT")
        + rss_item(base, "date-garbage", pub_date="yesterday-ish, 99:99")
    )
    handler.send_body(rss(items, "odd dates"))


def fault_etag_changing(handler: RequestHandler, _: str) -> None:
    """The same feed every time, under a new ETag every time (If-None-Match never matches)."""
    etag = f'"v{next_count(handler.path)}"'
    body = rss(rss_item(base_of(handler), "etag-changing"), "etag changing")
    handler.send_body(body, headers={"ETag": etag, "Cache-Control": "no-cache"})


def fault_etag_stuck(handler: RequestHandler, _: str) -> None:
    """One more item on every request, always under the same ETag, always a 200."""
    served = next_count(handler.path)
    base = base_of(handler)
    items = "".join(rss_item(base, f"etag-stuck-{i}") for i in range(served, 0, -1))
    handler.send_body(rss(items, "etag stuck"), headers={"ETag": '"forever"'})


def fault_billion_laughs(handler: RequestHandler, _: str) -> None:
    """The classic entity expansion bomb (10^9 'lol's if expanded) inside an RSS feed."""
    names = ["lol", *(f"lol{i}" for i in range(1, 10))]
    entities = "".join(
        f'<!ENTITY {name} "{(f"&{previous};" * 10) if previous else "lol"}">\n'
        for previous, name in zip([None, *names], names, strict=False)
    )
    item = "<item><title>&lol9;</title><guid>laughs</guid><description>&lol9;</description></item>"
    handler.send_body(rss(item, "laughs", f"<!DOCTYPE rss [\n{entities}]>\n"))


def fault_xxe(handler: RequestHandler, _: str) -> None:
    """External entities (general, parameter, file) that a parser must neither fetch nor read."""
    base = base_of(handler)
    doctype = (
        "<!DOCTYPE rss [\n"
        f'<!ENTITY ext SYSTEM "{base}/fault/xxe-target/general">\n'
        f'<!ENTITY % remote SYSTEM "{base}/fault/xxe-target/parameter">\n%remote;\n'
        '<!ENTITY passwd SYSTEM "file:///etc/passwd">\n]>\n'
    )
    item = (
        "<item><title>Leak &ext;</title><guid>xxe</guid>"
        f"<link>{base}/fault/article/xxe</link><description>&passwd;</description></item>"
    )
    handler.send_body(rss(item, "xxe", doctype))


def fault_xxe_target(handler: RequestHandler, _: str) -> None:
    """What an XXE would pull in; a test asserts nobody ever asks for it."""
    handler.send_body(b'<!ENTITY leaked "XXE-LEAKED">XXE-LEAKED\n', content_type="text/plain")


def fault_invalid_utf8(handler: RequestHandler, _: str) -> None:
    """Declared UTF-8, with bytes that are not UTF-8 in a title and a description."""
    item = rss_item(base_of(handler), "invalid-utf8").encode()
    item = item.replace(b"<title>Story", b"<title>Caf\xe9 \xff\xfe\xc3( Story", 1)
    item = item.replace(b"<description>", b"<description>\x80\x81\xfe ", 1)
    handler.send_body(rss("").replace(b"</channel>", item + b"</channel>"))


def fault_wrong_encoding(handler: RequestHandler, arg: str) -> None:
    """Declared one encoding, written in another: /latin1-declared (UTF-8 bytes declared
    ISO-8859-1), /utf8-declared (Windows-1252 bytes declared UTF-8), /utf16-header (UTF-8 bytes,
    Content-Type says UTF-16)."""
    title = "Müller's café \u2013 naïve résumé"
    key = f"wrong-encoding-{arg or 'latin1-declared'}"
    text = rss(rss_item(base_of(handler), key).replace(f"Story {key}", title)).decode()
    content_type = "application/xml"
    if arg == "utf8-declared":
        body = text.encode("windows-1252")
    elif arg == "utf16-header":
        body, content_type = text.encode(), "application/xml; charset=utf-16"
    else:
        body = text.replace('encoding="utf-8"', 'encoding="iso-8859-1"').encode()
    handler.send_body(body, content_type=content_type)


def fault_json_not_feed(handler: RequestHandler, _: str) -> None:
    body = b'{"status": "ok", "items": "none today", "data": [1, 2, 3]}\n'
    handler.send_body(body, content_type="application/json")


def fault_deep_nesting(handler: RequestHandler, arg: str) -> None:
    """An item nested inside <n> (100,000 by default) elements."""
    depth = int(arg) if arg.isdigit() else 100_000
    item = "<div>" * depth + "</div>" * depth
    handler.send_body(rss(f"<item><title>deep</title><description>{item}</description></item>"))


def fault_redirect_private_dns(handler: RequestHandler, arg: str) -> None:
    """302 to a name that only the resolver turns into a private address: /decimal and /hex
    (10.0.0.1), /metadata (169.254.169.254), /mapped (IPv4-mapped IPv6 of 10.0.0.1), /ula (fd00::1).
    Fetch only with the private-address guard ON."""
    targets = {
        "decimal": "http://167772161/feed.xml",
        "hex": "http://0x0a000001/feed.xml",
        "metadata": "http://2852039166/latest/meta-data/",
        "mapped": "http://[::ffff:a00:1]/feed.xml",
        "ula": "http://[fd00::1]/feed.xml",
    }
    handler.send_redirect(targets.get(arg, targets["decimal"]))


def fault_redirect_other_scheme(handler: RequestHandler, arg: str) -> None:
    """302 to a URL that is not http(s): /javascript, /data, /ftp, /gopher."""
    targets = {
        "javascript": "javascript:alert(1)",
        "data": "data:application/rss+xml,%3Crss%2F%3E",
        "ftp": "ftp://127.0.0.1/feed.xml",
        "gopher": "gopher://127.0.0.1:70/1",
    }
    handler.send_redirect(targets.get(arg, targets["javascript"]))


CANONICAL_KINDS = ("bare", "home", "absolute", "og")


def canonical_head(base: str, kind: str) -> str:
    """The <head> links of /fault/canonical/<kind> (see the module docstring)."""
    heads = {
        "bare": '<link rel="canonical" href="8003098">',
        "home": f'<link rel="canonical" href="{base}/">',
        "absolute": f'<link rel="canonical" href="{base}/news/canonical-absolute">',
        "og": '<link rel="canonical" href="8003098">'
        f'<meta property="og:url" content="{base}/fault/canonical/8003098">',
    }
    return heads[kind]


def fault_canonicals(handler: RequestHandler, _: str) -> None:
    base = base_of(handler)
    items = "".join(
        f"<item><title>Canonical {kind}</title><link>{base}/fault/canonical/{kind}</link>"
        f"<guid>canonical-{kind}</guid></item>\n"
        for kind in CANONICAL_KINDS
    )
    handler.send_body(rss(items, "canonicals"))


def fault_canonical(handler: RequestHandler, arg: str) -> None:
    page = article_page(f"canonical-{arg}", canonical_head(base_of(handler), arg))
    handler.send_body(page, content_type="text/html; charset=utf-8")


FAULTS.update(
    {
        "canonicals": fault_canonicals,
        "canonical": fault_canonical,
        "article": fault_article,
        "retry-after": fault_retry_after,
        "many-items": fault_many_items,
        "no-identity": fault_no_identity,
        "bad-links": fault_bad_links,
        "dates": fault_dates,
        "etag-changing": fault_etag_changing,
        "etag-stuck": fault_etag_stuck,
        "billion-laughs": fault_billion_laughs,
        "xxe": fault_xxe,
        "xxe-target": fault_xxe_target,
        "invalid-utf8": fault_invalid_utf8,
        "wrong-encoding": fault_wrong_encoding,
        "json-not-feed": fault_json_not_feed,
        "deep-nesting": fault_deep_nesting,
        "redirect-private-dns": fault_redirect_private_dns,
        "redirect-other-scheme": fault_redirect_other_scheme,
    }
)


@functools.lru_cache(maxsize=4)
def big_paragraphs(megabytes: float) -> tuple[str, ...]:
    """About `megabytes` MB of distinct HTML paragraphs of words."""
    count = int(megabytes * 1_000_000 / 430)
    return tuple(f"<p>{' '.join(article_text(f'big-{i}', 1, 50))}</p>\n" for i in range(count))


def fault_big_feed(handler: RequestHandler, arg: str) -> None:
    """A valid full-content RSS feed of about <n> MB (14 by default): items of 16 paragraphs."""
    paragraphs = big_paragraphs(float(arg or "14"))
    base = base_of(handler)
    items = []
    for n, start in enumerate(range(0, len(paragraphs), 16)):
        text = "".join(paragraphs[start : start + 16]).replace("<", "&lt;")
        items.append(
            f"<item><title>Big {n}</title><link>{base}/fault/article/big-{n}</link>"
            f"<guid>big-{n}</guid><description>{text}</description></item>\n"
        )
    handler.send_body(rss("".join(items), "big feed"))


def fault_big_page(handler: RequestHandler, arg: str) -> None:
    """A valid HTML article page of about <n> MB (14 by default)."""
    paragraphs = "".join(big_paragraphs(float(arg or "14")))
    body = f"<html><body><article><h1>Big</h1>{paragraphs}</article>"
    handler.send_body(body.encode() + b"</body></html>", content_type="text/html")


FAULTS.update({"big-feed": fault_big_feed, "big-page": fault_big_page})
