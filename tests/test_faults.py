"""Hostile feeds and pages in real runs of the installed `newsfold` console script.

One `newsfold run` reads good feeds beside about sixty fault routes of tests/server.py (bad
statuses, Retry-After, redirect tricks, private addresses, slow, endless, cut-off, oversized and
bomb bodies, not-a-feed bodies, entity attacks, broken encodings, 10,000 items, items without
identity, bad links, odd dates, and the same faults as article pages behind a good feed). The
private-address guard is ON for everything but 127.0.0.0/8, where the server lives. Each test then
checks one property the way a user would: the run's stderr, `feeds list --json`, `export`, the
SQLite file, and the connections the run's processes opened (an audit hook logs every connect()).
"""

from __future__ import annotations

import ast
import ipaddress
import json
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest

from newsfold.model import MAX_TEXT_CHARS
from tests.cli_helpers import Measured, Workspace, line_about
from tests.server import (
    CANONICAL_KINDS,
    FeedServer,
    RequestHandler,
    article_page,
    big_paragraphs,
    free_port,
    gzip_bomb,
    rss,
)

STATUS_CODES = (400, 401, 403, 404, 405, 410, 418, 429, 451, 500, 502, 503, 504)
GOOD_FEEDS, GOOD_ITEMS = 3, 4
PER_RUN = 40  # fetch.max_new_per_feed in these runs
RETRY_CAP = timedelta(hours=3)  # fetch.max_retry_after in these runs
SPREAD = 0.05  # schedule adds up to 5% per feed
TWINS = ("twin", "triplet")  # the same Retry-After route under other URLs
RUN_BOUND = 90.0  # seconds: a run that takes longer than this is stuck, and fails the test
# Peak resident memory of the run's largest process, and of all its processes together (main
# process, fork server, extraction workers), whatever the feeds hold. README.md "Guarantees"
# documents both and what they were measured at.
PROCESS_MEMORY_BOUND = 512 * 1024 * 1024
RUN_MEMORY_BOUND = 1024 * 1024 * 1024
SETTINGS: dict[str, dict[str, Any]] = {
    "fetch": {
        "timeout": 2.0,
        "allowed_networks": ["127.0.0.0/8"],
        "concurrency": 32,
        "per_host": 16,
        "max_new_per_feed": PER_RUN,
        "max_retry_after": "3h",
    },
    "extract": {"workers": 2, "page_timeout": 12.0},
}


@dataclass(frozen=True)
class Failing:
    """A feed route that must fail: the error kind stored, and words of its one line."""

    path: str
    kind: str
    cause: str

    def __str__(self) -> str:
        return self.path.removeprefix("/fault/")


FAILING = (
    *(Failing(f"/fault/status/{code}", f"http_{code}", f"HTTP {code} ") for code in STATUS_CODES),
    # Nothing was asked conditionally: there is no copy a 304 could refer to.
    Failing(
        "/fault/status/304",
        "http_304",
        "HTTP 304 Not Modified to a request without validators",
    ),
    Failing("/fault/retry-after/429/7200", "http_429", "(retry after 7200 s)"),
    *(
        Failing(f"/fault/retry-after/429/7200?{twin}", "http_429", "(retry after 7200 s)")
        for twin in TWINS
    ),
    Failing("/fault/retry-after/503/date/604800", "http_503", "(retry after 10800 s)"),
    Failing("/fault/redirect-loop", "redirects", "redirect loop at"),
    Failing("/fault/redirect-chain/9", "redirects", "more than 5 redirects"),
    Failing("/fault/redirect-private", "blocked", "refused: 10.0.0.1 is a private address"),
    Failing(
        "/fault/redirect-private/link-local",
        "blocked",
        "refused: 169.254.169.254 is a link-local address",
    ),
    # 10.0.0.1 and 169.254.169.254 written as one number: refused before any lookup.
    Failing(
        "/fault/redirect-private-dns/decimal",
        "blocked",
        "167772161 - is not a canonical IPv4 address",
    ),
    Failing(
        "/fault/redirect-private-dns/hex",
        "blocked",
        "refused: 0x0a000001 resolves to 10.0.0.1, a private address",
    ),
    Failing(
        "/fault/redirect-private-dns/metadata",
        "blocked",
        "2852039166 - is not a canonical IPv4 address",
    ),
    Failing(
        "/fault/redirect-private-dns/mapped",
        "blocked",
        "refused: ::ffff:a00:1 resolves to 10.0.0.1, a private address",
    ),
    Failing("/fault/redirect-private-dns/ula", "blocked", "refused: fd00::1 is a private address"),
    Failing("/fault/redirect-scheme", "blocked", "refused: file:///etc/passwd is not an http"),
    Failing("/fault/redirect-other-scheme/javascript", "blocked", "refused: javascript:alert(1)"),
    Failing("/fault/redirect-other-scheme/data", "blocked", "refused: data:application/rss+xml"),
    Failing("/fault/redirect-other-scheme/ftp", "blocked", "refused: ftp://127.0.0.1/feed.xml"),
    Failing("/fault/slow", "timeout", "no complete answer within 2 s"),
    Failing("/fault/timeout", "timeout", "no complete answer within 2 s"),
    Failing("/fault/never-ending", "too_large", "body over the 15000000-byte cap"),
    Failing("/fault/huge", "too_large", "cap (announced 52428800 bytes)"),
    Failing("/fault/huge-chunked", "too_large", "body over the 15000000-byte cap"),
    Failing("/fault/gzip-bomb", "too_large", "body over the 15000000-byte cap"),
    Failing("/fault/closed-mid-body", "protocol", "broken HTTP answer"),
    Failing("/fault/lying-length", "protocol", "broken HTTP answer"),
    Failing("/fault/html", "parse", "an HTML page, not a feed"),
    Failing("/fault/empty", "parse", "empty body"),
    Failing("/fault/binary", "parse", "not a feed"),
    Failing("/fault/json-not-feed", "parse", "JSON but not a JSON Feed"),
)

# Feeds that are odd but readable: each must be stored as "ok" with these articles (by key of
# /fault/article/<key>) and no other.
READABLE: dict[str, set[str]] = {
    "/fault/invalid-utf8": {"invalid-utf8"},
    "/fault/wrong-encoding/latin1-declared": {"wrong-encoding-latin1-declared"},
    "/fault/wrong-encoding/utf8-declared": {"wrong-encoding-utf8-declared"},
    "/fault/wrong-encoding/utf16-header": {"wrong-encoding-utf16-header"},
    "/fault/no-identity": {"no-title", "identified"},
    "/fault/bad-links": {"good-link"},
    "/fault/dates": {"date-1970", "date-2999", "date-garbage"},
    "/fault/deep-nesting/50000": set(),
    "/fault/xxe": {"xxe"},
    "/fault/many-items": {f"many-{i}" for i in range(10_000, 10_000 - PER_RUN, -1)},
    "/fault/big-feed": {f"big-{i}" for i in range(PER_RUN)},
}
ENTITY_BOMBS = ("/fault/billion-laughs", "/fault/xxe")

# Article pages that fail, listed by one good feed: the feed's own text must be kept instead.
PAGE_FAULTS = (
    "/fault/status/410",
    "/fault/slow",
    "/fault/closed-mid-body",
    "/fault/gzip-bomb",
    "/fault/binary",
    "/fault/redirect-private",
    "/fault/redirect-private-dns/metadata",
    "/fault/redirect-other-scheme/javascript",
)
BIG_PAGE = "/fault/big-page/4"  # 4 MB of HTML: seconds of extraction, ~100 MB in a worker


@dataclass(frozen=True)
class FaultRun:
    server: FeedServer
    good: dict[str, list[str]]  # good feed URL -> its pages' URLs
    workspace: Workspace
    measured: Measured
    feeds: dict[str, dict[str, Any]]
    export: list[dict[str, Any]]

    def url(self, path: str) -> str:
        return self.server.url(path)

    def articles_of(self, feed: str) -> set[str]:
        """The URLs of the articles first listed by `feed` (a URL, or a path on the server)."""
        feed = feed if "://" in feed else self.url(feed)
        return {a["url"] for s in self.export for a in s["articles"] if a["feed"] == feed}

    def article(self, url: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = [
            a for s in self.export for a in s["articles"] if a["url"] == url
        ]
        assert len(found) == 1, f"{url} stored {len(found)} times"
        return found[0]

    def rows(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.workspace.db) as db:
            return db.execute(query, args).fetchall()


def page_url(run: FaultRun, key: str) -> str:
    return run.url(f"/fault/article/{key}")


def good_feeds(server: FeedServer) -> dict[str, list[str]]:
    """Static feeds of plain pages: each feed's URL and the URLs of its pages."""
    feeds = {}
    for k in range(GOOD_FEEDS):
        keys = [f"good-{k}-{i}" for i in range(GOOD_ITEMS)]
        pages = [
            server.add(f"/faults/good/{key}.html", article_page(key), content_type="text/html")
            for key in keys
        ]
        items = "".join(
            f"<item><title>Good {key}</title><link>{page}</link><guid>{key}</guid></item>\n"
            for key, page in zip(keys, pages, strict=True)
        )
        feeds[server.add(f"/faults/good/{k}.xml", rss(items, f"good {k}"))] = pages
    return feeds


def page_faults_feed(server: FeedServer) -> str:
    """A good feed whose items link to failing pages (`?page` keeps them apart from the feeds)."""
    items = "".join(
        f"<item><title>Page fault {i}</title><link>{escape(server.url(path))}?page</link>"
        f"<guid>page-fault-{i}</guid><description>Feed text of page fault {i}.</description>"
        "</item>\n"
        for i, path in enumerate(PAGE_FAULTS)
    )
    big = server.url(BIG_PAGE)
    items += f"<item><title>Big page</title><link>{big}</link><guid>big-page</guid>"
    items += "<description>Feed text of the big page.</description></item>\n"
    return server.add("/faults/pages.xml", rss(items, "page faults"))


@pytest.fixture(scope="module")
def fault_run(private_server: FeedServer, tmp_path_factory: pytest.TempPathFactory) -> FaultRun:
    """One `newsfold run` over every good and hostile feed, then what a user can read back."""
    gzip_bomb()  # built once, before the run's clock starts
    big_paragraphs(14.0)
    good = good_feeds(private_server)
    feeds = [
        *good,
        page_faults_feed(private_server),
        *(private_server.url(f.path) for f in FAILING),
        *(private_server.url(path) for path in READABLE),
        private_server.url("/fault/billion-laughs"),
        private_server.url("/fault/canonicals"),
    ]
    workspace = Workspace.create(tmp_path_factory.mktemp("faults"), feeds, **SETTINGS).audited()
    measured = workspace.run_measured("run", timeout=RUN_BOUND)
    return FaultRun(
        private_server, good, workspace, measured, workspace.feeds(), workspace.export()
    )


def test_the_run_completes_with_one_line_per_failure(fault_run: FaultRun) -> None:
    """The run exits 0; off a terminal its stderr is one line per failed feed, nothing else."""
    done = fault_run.measured.done
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    errors = [f["last_error"] for f in fault_run.feeds.values() if f["status"] == "error"]
    assert len(errors) == len(FAILING)
    assert sorted(done.stderr.splitlines()) == sorted(f"newsfold: {e}" for e in errors)


@pytest.mark.parametrize("fault", FAILING, ids=str)
def test_a_failing_feed_is_reported_and_kept_on_its_state(
    fault_run: FaultRun, fault: Failing
) -> None:
    """The feed's failure is stored on it (status, kind, last error) and printed once."""
    url = fault_run.url(fault.path)
    feed = fault_run.feeds[url]
    assert (feed["status"], feed["error_kind"], feed["error_count"]) == ("error", fault.kind, 1)
    assert feed["last_error"].startswith(f"{url}: ")
    assert fault.cause in feed["last_error"]
    assert line_about(fault_run.measured.done, url) == [f"newsfold: {feed['last_error']}"]
    assert feed["entries"] == 0


def test_every_good_feed_lands(fault_run: FaultRun) -> None:
    """All articles of the good feeds are stored, each once, with the page's text."""
    for feed, pages in fault_run.good.items():
        assert fault_run.feeds[feed]["status"] == "ok"
        assert fault_run.articles_of(feed) == set(pages)
        for page in pages:
            assert fault_run.article(page)["text_chars"] > 500


def next_check_delay(feed: dict[str, Any]) -> timedelta:
    checked = datetime.fromisoformat(feed["last_checked"])
    return datetime.fromisoformat(feed["next_check"]) - checked


@pytest.mark.parametrize(
    ("path", "wait"),
    [
        ("/fault/retry-after/429/7200", timedelta(seconds=7200)),
        ("/fault/retry-after/503/date/604800", RETRY_CAP),
    ],
    ids=["honoured", "capped"],
)
def test_retry_after_pushes_the_next_check_out(
    fault_run: FaultRun, path: str, wait: timedelta
) -> None:
    """A 429/503 is not asked again before its Retry-After, capped at fetch.max_retry_after."""
    delay = next_check_delay(fault_run.feeds[fault_run.url(path)])
    assert wait <= delay <= wait * (1 + SPREAD)


def test_retry_after_is_spread_per_feed(fault_run: FaultRun) -> None:
    """Feeds told the same Retry-After are not all due again at the same moment."""
    path = "/fault/retry-after/429/7200"
    paths = [path, *(f"{path}?{twin}" for twin in TWINS)]
    delays = {next_check_delay(fault_run.feeds[fault_run.url(p)]) for p in paths}
    assert len(delays) > 1


def test_private_addresses_are_refused_without_a_packet(fault_run: FaultRun) -> None:
    """Redirects to 10/8, 169.254/16, fd00::/8 (by address or by a name that resolves there)
    were refused, names after resolving them, and no process of the run ever connected anywhere
    but 127/8."""
    log = fault_run.workspace.connections()
    resolved = {
        ast.literal_eval(line.removeprefix("resolve ")) for line in log if "resolve" in line
    }
    assert "0x0a000001" in resolved
    dialled = [
        ast.literal_eval(line.removeprefix("connect "))
        for line in log
        if line.startswith("connect (")  # IP sockets; the others are the workers' Unix sockets
    ]
    assert dialled
    for address in dialled:
        ip = ipaddress.ip_address(address[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        assert ip in ipaddress.ip_network("127.0.0.0/8"), address


@pytest.mark.parametrize("path", ENTITY_BOMBS)
def test_entities_are_neither_expanded_nor_fetched(fault_run: FaultRun, path: str) -> None:
    """Billion laughs and XXE: the feed is read (or refused) quickly, no entity is expanded,
    no external entity is requested from the server or read from the disk."""
    assert fault_run.feeds[fault_run.url(path)]["status"] in ("ok", "error")
    assert fault_run.server.count("/fault/xxe-target/general") == 0
    assert fault_run.server.count("/fault/xxe-target/parameter") == 0
    leaks = fault_run.rows(
        "SELECT count(*) FROM articles WHERE text LIKE '%lollollol%' OR text LIKE '%XXE-LEAKED%'"
        " OR text LIKE '%root:x:0%' OR title LIKE '%lollollol%' OR title LIKE '%XXE-LEAKED%'"
    )
    assert leaks == [(0,)]


@pytest.mark.parametrize("path", list(READABLE), ids=lambda p: p.removeprefix("/fault/"))
def test_an_odd_but_readable_feed_lands(fault_run: FaultRun, path: str) -> None:
    """The feed is stored as ok and exactly its usable items became articles."""
    feed = fault_run.feeds[fault_run.url(path)]
    assert (feed["status"], feed["last_error"]) == ("ok", None)
    expected = {page_url(fault_run, key) for key in READABLE[path]}
    assert fault_run.articles_of(path) == expected


def test_items_past_the_cap_wait_for_later_runs(fault_run: FaultRun) -> None:
    """10,000 items: this run took fetch.max_new_per_feed of them and did not stall."""
    feed = fault_run.feeds[fault_run.url("/fault/many-items")]
    assert feed["entries"] == PER_RUN
    next_check = next_check_delay(feed)
    assert next_check <= timedelta(minutes=5) * (1 + SPREAD)  # schedule.min_interval: soon


def test_links_that_are_not_web_pages_are_not_followed(fault_run: FaultRun) -> None:
    """javascript:, data:, file:, ftp:, mailto: and host-less links make no request and no
    article; the feed's good item lands."""
    feed = fault_run.feeds[fault_run.url("/fault/bad-links")]
    assert feed["entries"] == 8
    assert fault_run.server.count("/fault/bad-links") == 1  # "http://" did not become the feed
    asked = [path for _, path, _ in fault_run.server.requests]
    signs = ("alert(", "base64,", "/etc/passwd", "news@example.com")
    assert not [path for path in asked if any(sign in path for sign in signs)]


@pytest.mark.parametrize(
    "path",
    ["/fault/wrong-encoding/latin1-declared", "/fault/wrong-encoding/utf16-header"],
    ids=["latin1-declared", "utf16-header"],
)
def test_a_wrong_declared_encoding_is_overruled_by_the_bytes(
    fault_run: FaultRun, path: str
) -> None:
    """UTF-8 bytes under a wrong declaration keep their accents."""
    (url,) = fault_run.articles_of(path)
    assert fault_run.article(url)["title"] == "Müller's café \u2013 naïve résumé"


def test_windows_1252_bytes_declared_utf8_keep_their_accents(fault_run: FaultRun) -> None:
    """Windows-1252 bytes under a UTF-8 declaration are read as Windows-1252."""
    (url,) = fault_run.articles_of("/fault/wrong-encoding/utf8-declared")
    assert fault_run.article(url)["title"] == "Müller's café \u2013 naïve résumé"


def test_implausible_dates_are_not_kept_as_publication_dates(fault_run: FaultRun) -> None:
    """Items dated 1970 and 2999 land, but without those dates."""
    for key in ("date-1970", "date-2999"):
        assert fault_run.article(page_url(fault_run, key))["published"] is None


@pytest.mark.parametrize("path", PAGE_FAULTS, ids=lambda p: p.removeprefix("/fault/"))
def test_a_failing_page_keeps_the_feed_text(fault_run: FaultRun, path: str) -> None:
    """A page that fails does not fail its feed: the article keeps the feed's text and the
    reason, which names the page."""
    assert fault_run.feeds[fault_run.url("/faults/pages.xml")]["status"] == "ok"
    page = fault_run.url(path) + "?page"
    index = PAGE_FAULTS.index(path)
    rows = fault_run.rows("SELECT text, text_source, page_error FROM articles WHERE url = ?", page)
    assert len(rows) == 1
    text, source, error = rows[0]
    assert (text, source) == (f"Feed text of page fault {index}.", "feed")
    assert error.startswith(page)


def test_an_implausible_canonical_keeps_the_link(fault_run: FaultRun) -> None:
    """A page's rel=canonical is trusted only when plausible: a bare relative token or the
    site's home page leaves the article under the feed's link; an absolute one on the site, or
    a relative one og:url agrees with, names the article."""
    stored = {
        kind: {a["url"] for s in fault_run.export for a in s["articles"] if a["title"] == title}
        for kind in CANONICAL_KINDS
        if (title := f"Canonical {kind}")
    }
    assert stored == {
        "bare": {fault_run.url("/fault/canonical/bare")},
        "home": {fault_run.url("/fault/canonical/home")},
        "absolute": {fault_run.url("/news/canonical-absolute")},
        "og": {fault_run.url("/fault/canonical/8003098")},
    }


def test_a_very_big_page_lands_without_stalling_the_run(fault_run: FaultRun) -> None:
    """4 MB of article HTML is extracted within extract.page_timeout (its text cut to a bound),
    or the feed's text is kept and the reason names the page; either way it lands once."""
    rows = fault_run.rows(
        "SELECT text_source, length(text), page_error FROM articles WHERE url = ?",
        fault_run.url(BIG_PAGE),
    )
    assert len(rows) == 1
    source, length, error = rows[0]
    if source == "page":
        assert length == MAX_TEXT_CHARS  # cut: megabytes of text are no article
    else:
        assert error.startswith(fault_run.url(BIG_PAGE))


def test_peak_memory_is_bounded(fault_run: FaultRun) -> None:
    """Bombs, 50 MB bodies, a 14 MB feed, a 4 MB page and 10,000 items stay within the bounds,
    for the largest process and for all of them together."""
    assert fault_run.measured.done.returncode == 0
    assert 0 < fault_run.measured.peak_rss < PROCESS_MEMORY_BOUND
    assert 0 < fault_run.measured.peak_total_pss < RUN_MEMORY_BOUND


def test_raw_bodies_are_not_kept(fault_run: FaultRun) -> None:
    """The store holds articles and entries, not the >100 MB of bodies the run downloaded: its
    size is within a small multiple of the text it keeps."""
    ((kept,),) = fault_run.rows(
        "SELECT (SELECT coalesce(sum(length(text)), 0) FROM articles)"
        " + (SELECT coalesce(sum(length(summary)), 0) FROM entries)"
    )
    with sqlite3.connect(fault_run.workspace.db) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = fault_run.workspace.db.stat().st_size
    assert size < 3 * kept + 1024 * 1024
    assert size < 14_000_000  # less than the one big feed body alone


# Feeds that take more than one run.

LATER_PER_RUN = 10  # fetch.max_new_per_feed in the repeated runs


@dataclass(frozen=True)
class Repeated:
    """A store after two runs of feeds whose validators lie and a feed of 10,000 items."""

    feeds: dict[str, dict[str, Any]]
    urls: list[str]  # every stored article's URL, as often as it is stored


@pytest.fixture(scope="module")
def repeated(private_server: FeedServer, tmp_path_factory: pytest.TempPathFactory) -> Repeated:
    paths = ("/fault/etag-changing", "/fault/etag-stuck", "/fault/many-items")
    settings = {**SETTINGS, "fetch": {**SETTINGS["fetch"], "max_new_per_feed": LATER_PER_RUN}}
    workspace = Workspace.create(
        tmp_path_factory.mktemp("repeated"), [private_server.url(p) for p in paths], **settings
    )
    for args in (["run"], ["run", "--all"]):
        assert workspace.run(*args).returncode == 0
    urls = [a["url"] for story in workspace.export() for a in story["articles"]]
    return Repeated(workspace.feeds(), urls)


def test_a_new_etag_on_the_same_body_is_unchanged(
    private_server: FeedServer, repeated: Repeated
) -> None:
    """An ETag that changes on every request cannot hide that the body did not: one entry, its
    page downloaded once."""
    feed = repeated.feeds[private_server.url("/fault/etag-changing")]
    assert (feed["status"], feed["entries"]) == ("ok", 1)
    assert private_server.count("/fault/article/etag-changing") == 1


def test_the_same_etag_on_a_new_body_is_read(
    private_server: FeedServer, repeated: Repeated
) -> None:
    """An ETag that never changes, sent back as If-None-Match, cannot hide the new items."""
    assert repeated.feeds[private_server.url("/fault/etag-stuck")]["entries"] == 2
    expected = {private_server.url(f"/fault/article/etag-stuck-{i}") for i in (1, 2)}
    assert expected <= set(repeated.urls)
    sent = [
        h.get("If-None-Match") for _, p, h in private_server.requests if p == "/fault/etag-stuck"
    ]
    assert sent[-1] == '"forever"'


def test_the_rest_of_a_long_feed_arrives_in_later_runs(
    private_server: FeedServer, repeated: Repeated
) -> None:
    """Each run takes the next fetch.max_new_per_feed items of the 10,000, none twice."""
    assert repeated.feeds[private_server.url("/fault/many-items")]["entries"] == 2 * LATER_PER_RUN
    urls = [url for url in repeated.urls if "/many-" in url]
    newest = range(10_000, 10_000 - 2 * LATER_PER_RUN, -1)
    assert sorted(urls) == sorted(private_server.url(f"/fault/article/many-{i}") for i in newest)


# Article hosts that cannot be reached: a few attempts per run, not one per page.

UNREACHABLE_PAGES = 20  # per host
NO_SUCH_HOST = "news.no-such-host.invalid"  # RFC 6761: never resolves


@dataclass(frozen=True)
class UnreachableRun:
    done: Any  # the run's CompletedProcess
    feed: dict[str, Any]
    workspace: Workspace
    dead: str  # 127.0.0.1:<a port nothing listens on>


@pytest.fixture(scope="module")
def unreachable_run(
    private_server: FeedServer, tmp_path_factory: pytest.TempPathFactory
) -> UnreachableRun:
    """One run of a feed whose 40 article links sit on a host that does not resolve and on one
    that refuses connections."""
    dead = f"127.0.0.1:{free_port()}"
    items = "".join(
        f"<item><title>Unreachable {host} {i}</title><link>http://{host}/story/{i}</link>"
        f"<guid>{host}-{i}</guid><description>Story {i} from {host}.</description></item>\n"
        for host in (NO_SUCH_HOST, dead)
        for i in range(UNREACHABLE_PAGES)
    )
    url = private_server.add("/faults/unreachable.xml", rss(items, "unreachable"))
    workspace = Workspace.create(
        tmp_path_factory.mktemp("unreachable"),
        [url],
        fetch={"timeout": 5.0, "allowed_networks": ["127.0.0.0/8"]},
        extract={"workers": 1},
    ).audited()
    done = workspace.run("run", "-v")  # -v: the summary line off a terminal too
    return UnreachableRun(done, workspace.feeds()[url], workspace, dead)


def test_an_unreachable_host_is_asked_a_few_times_per_run(unreachable_run: UnreachableRun) -> None:
    """A host that does not resolve, and one that refuses connections, each get a few attempts
    in a run (robots.txt, the first pages), not one per page."""
    log = unreachable_run.workspace.connections()
    lookups = [line for line in log if NO_SUCH_HOST in line]
    host, port = unreachable_run.dead.split(":")
    dials = [line for line in log if line == f"connect ('{host}', {port})"]
    for attempts in (lookups, dials):
        assert 1 <= len(attempts) <= 3, log


def test_pages_of_an_unreachable_host_keep_the_feed_text(unreachable_run: UnreachableRun) -> None:
    """Every article lands with its feed's text; each page error names the page, and the pages
    not asked say why with the host's own failure."""
    assert unreachable_run.done.returncode == 0, unreachable_run.done.stderr
    assert unreachable_run.feed["status"] == "ok"
    with sqlite3.connect(unreachable_run.workspace.db) as db:
        rows = db.execute("SELECT url, text, text_source, page_error FROM articles").fetchall()
    assert len(rows) == 2 * UNREACHABLE_PAGES
    skipped = {NO_SUCH_HOST: 0, unreachable_run.dead: 0}
    for url, text, source, error in rows:
        host = url.split("/")[2]
        assert (source, text) == ("feed", f"Story {url.rsplit('/', 1)[1]} from {host}.")
        assert error.startswith(f"{url}: ")
        cause = "DNS lookup failed" if host == NO_SUCH_HOST else "connection failed"
        assert cause in error
        if "not asked again" in error:
            assert f"(not asked again: {host.split(':')[0]} failed " in error
            skipped[host] += 1
    assert all(count >= UNREACHABLE_PAGES - 2 for count in skipped.values()), skipped


def test_page_failures_are_counted_in_the_summary_line(unreachable_run: UnreachableRun) -> None:
    """The run's one summary line counts the pages that kept the feed's text, by reason."""
    (line,) = unreachable_run.done.stderr.splitlines()
    assert line.startswith("newsfold: 1 feed ok, 40 new articles, ")
    assert line.endswith(" s, 40 pages kept the feed's text (connect 20, dns 20)")


def test_feeds_list_shows_the_page_failures_of_the_last_check(
    unreachable_run: UnreachableRun,
) -> None:
    """`feeds list --json` and the table show the feed's page failures of its last check."""
    assert unreachable_run.feed["page_failures"] == {"connect": 20, "dns": 20}
    table = " ".join(unreachable_run.workspace.ok("feeds", "list").split())
    assert "last check: 40 pages kept the feed's text (connect 20, dns 20)" in table


def test_story_shows_a_copys_page_error(unreachable_run: UnreachableRun) -> None:
    """`story ID` (and --json) shows why a copy kept the feed's text."""
    workspace = unreachable_run.workspace
    (story,) = [s for s in workspace.export() if s["url"].endswith(f"{NO_SUCH_HOST}/story/3")]
    as_json = json.loads(workspace.ok("story", str(story["id"]), "--json"))
    (copy,) = as_json["articles"]
    assert copy["page_error"].startswith(f"http://{NO_SUCH_HOST}/story/3: DNS lookup failed")
    workspace.env["COLUMNS"] = "400"  # the whole error on one line
    shown = workspace.ok("story", str(story["id"]))
    assert f"page: {copy['page_error']}" in shown


# An intranet setup: private networks allowed, link-local and cloud metadata still refused.

METADATA_REDIRECTS = {
    "/fault/redirect-private/link-local": "169.254.169.254 is a link-local address",
    "/fault/redirect-private/aws-ipv6": "fd00:ec2::254 is a cloud metadata address",
    "/fault/redirect-private/nat64": "64:ff9b::a9fe:a9fe resolves to 169.254.169.254, a link-local",
}


@dataclass(frozen=True)
class IntranetRun:
    done: Any  # the run's CompletedProcess
    feeds: dict[str, dict[str, Any]]
    workspace: Workspace
    page: str  # an article link that redirects to 169.254.169.254


@pytest.fixture(scope="module")
def intranet_run(
    private_server: FeedServer, tmp_path_factory: pytest.TempPathFactory
) -> IntranetRun:
    """A run with fetch.allow_private_networks = true of feeds that redirect to metadata
    addresses, and of a good feed whose article link does."""
    page = private_server.url("/fault/redirect-private/link-local") + "?intranet-page"
    item = (
        f"<item><title>Metadata page</title><link>{escape(page)}</link><guid>metadata</guid>"
        "<description>Feed text of the metadata page.</description></item>"
    )
    good = private_server.add("/faults/intranet.xml", rss(item, "intranet"))
    feeds = [good, *(private_server.url(path) for path in METADATA_REDIRECTS)]
    fetch = {"timeout": 2.0, "allow_private_networks": True}
    workspace = Workspace.create(tmp_path_factory.mktemp("intranet"), feeds, fetch=fetch).audited()
    done = workspace.run("run")
    return IntranetRun(done, workspace.feeds(), workspace, page)


@pytest.mark.parametrize("path", list(METADATA_REDIRECTS))
def test_metadata_stays_refused_with_private_networks_allowed(
    private_server: FeedServer, intranet_run: IntranetRun, path: str
) -> None:
    """A feed that redirects to a link-local or cloud metadata address is refused on that hop
    even with allow_private_networks: one line naming the feed, kept as its last error."""
    assert intranet_run.done.returncode == 0, intranet_run.done.stderr
    url = private_server.url(path)
    feed = intranet_run.feeds[url]
    assert (feed["status"], feed["error_kind"]) == ("error", "blocked")
    expected = f"{url}: refused: {METADATA_REDIRECTS[path]}"
    assert feed["last_error"].startswith(expected)
    assert feed["last_error"].endswith("(allowed only through fetch.allowed_networks)")
    assert line_about(intranet_run.done, url) == [f"newsfold: {feed['last_error']}"]


def test_an_article_link_to_metadata_keeps_the_feed_text(intranet_run: IntranetRun) -> None:
    """An article link that redirects to 169.254.169.254 is refused there; the article keeps
    the feed's text and the reason."""
    with sqlite3.connect(intranet_run.workspace.db) as db:
        rows = db.execute(
            "SELECT text, text_source, page_error FROM articles WHERE url = ?",
            (intranet_run.page,),
        ).fetchall()
    assert len(rows) == 1
    text, source, error = rows[0]
    assert (text, source) == ("Feed text of the metadata page.", "feed")
    assert error.startswith(f"{intranet_run.page}: refused: 169.254.169.254 is a link-local")


def test_no_metadata_address_is_ever_dialled(intranet_run: IntranetRun) -> None:
    """Every connection the run opened went to the loopback server, none to a metadata
    address, although private networks were allowed."""
    dialled = [
        ast.literal_eval(line.removeprefix("connect "))
        for line in intranet_run.workspace.connections()
        if line.startswith("connect (")
    ]
    assert dialled
    for address in dialled:
        assert ipaddress.ip_address(address[0]) in ipaddress.ip_network("127.0.0.0/8"), address


# A big feed on a slow site under --max-time: work kept in slices, every run a step further.

SLOW_ITEMS = 60
SLOW_PAGE = 0.5  # seconds each page takes to answer: 15 s of pages at fetch.per_host = 2
MAX_TIME = 10.0  # --max-time of each run, in seconds
MAX_RUNS = 10
SUMMARY_SECONDS = re.compile(r"new stor(?:y|ies), (\d+\.\d) s")  # the run's seconds


@dataclass(frozen=True)
class SlowRuns:
    server: FeedServer
    feed: str
    stored: list[int]  # articles in the store after each run
    seconds: list[float]  # what each run's summary line says it took
    pending_after_first: list[str]  # entry keys the first run left unfinished
    pages_asked_in_first: int  # page requests of the first run
    new_key: str  # an item published between the first run and the second


@pytest.fixture(scope="module")
def slow_runs(server: FeedServer, tmp_path_factory: pytest.TempPathFactory) -> SlowRuns:
    """`run --all --max-time 10s` over a feed of 60 items whose pages answer in half a second,
    again and again until every item is stored; an item is published after the first run."""

    def slow_page(handler: RequestHandler) -> None:
        if not handler.wait(SLOW_PAGE):
            handler.send_body(article_page(handler.path), content_type="text/html")

    def item(key: str) -> str:
        link = server.add_handler(f"/slow/{key}", slow_page)
        return f"<item><title>{key}</title><link>{link}</link><guid>{key}</guid></item>\n"

    items = [item(f"slow-{i}") for i in range(SLOW_ITEMS)]
    feed = server.add("/faults/slow.xml", rss("".join(items), "slow"))
    workspace = Workspace.create(
        tmp_path_factory.mktemp("slow"),
        [feed],
        fetch={"timeout": 5.0, "allowed_networks": ["127.0.0.0/8"], "per_host": 2},
        extract={"workers": 1},
    )
    stored: list[int] = []
    seconds: list[float] = []
    pending: list[str] = []
    asked_in_first = 0
    new_key = "slow-new"
    while len(stored) < MAX_RUNS and (not stored or stored[-1] < SLOW_ITEMS + 1):
        done = workspace.run("run", "--all", "--max-time", f"{MAX_TIME:g}s", "-v")
        assert done.returncode == 0, done.stderr
        match = SUMMARY_SECONDS.search(done.stderr)
        assert match, done.stderr
        seconds.append(float(match.group(1)))
        with sqlite3.connect(workspace.db) as db:
            stored.append(db.execute("SELECT count(*) FROM articles").fetchone()[0])
            if len(stored) == 1:
                (keys,) = db.execute("SELECT pending_entries FROM feeds").fetchone()
                pending = json.loads(keys or "[]")
                asked_in_first = len(slow_pages_asked(server))
                server.add("/faults/slow.xml", rss(item(new_key) + "".join(items), "slow"))
    return SlowRuns(server, feed, stored, seconds, pending, asked_in_first, new_key)


def slow_pages_asked(server: FeedServer) -> list[str]:
    """The keys of the slow pages asked for, in order."""
    return [p.removeprefix("/slow/") for _, p, _ in server.requests if p.startswith("/slow/")]


def test_max_time_never_starves_a_slow_feed(slow_runs: SlowRuns) -> None:
    """A feed too slow to finish within --max-time keeps what each run did: the count of its
    articles grows run after run, and the feed completes in a few runs, each article once."""
    assert slow_runs.stored[-1] == SLOW_ITEMS + 1, slow_runs.stored
    assert len(slow_runs.stored) > 1  # it did take several runs
    assert slow_runs.stored == sorted(slow_runs.stored)
    assert slow_runs.stored[-2] < slow_runs.stored[-1]


def test_max_time_still_stops_near_its_limit(slow_runs: SlowRuns) -> None:
    """Each run stops within a few seconds of --max-time: what it has done is committed
    then, not after its pages."""
    assert all(seconds <= MAX_TIME + 7.0 for seconds in slow_runs.seconds), slow_runs.seconds


def test_unfinished_entries_are_taken_first_next_run(slow_runs: SlowRuns) -> None:
    """The entries a run left go before an item published since: the second run asked for
    their pages first."""
    assert slow_runs.pending_after_first
    asked = slow_pages_asked(slow_runs.server)
    first_two = asked[slow_runs.pages_asked_in_first :][:2]
    assert set(first_two) <= set(slow_runs.pending_after_first), first_two


def test_a_bad_allowed_network_is_one_config_error(tmp_path: Path) -> None:
    """fetch.allowed_networks that is not a CIDR range stops the run with one line, exit 1."""
    workspace = Workspace.create(tmp_path, fetch={"allowed_networks": ["127.0.0.0/8", "lan"]})
    done = workspace.run("run")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "newsfold: fetch.allowed_networks: expected CIDR ranges such as 10.8.0.0/16, got 'lan'"
    ]
