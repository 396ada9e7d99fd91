"""Fixtures shared by every test module: the local HTTP server, the corpus, test settings."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsfold.config import Settings
from newsfold.demo import build_site, feed_sources, load_sample
from tests.corpus import CORPUS, HAVE_CORPUS, MISSING, read_missing_corpus
from tests.server import FeedServer

pytest_plugins = ["tests.stores"]

TEST_TIMEOUT = 3.0  # seconds per request: faults end quickly, loopback answers well within it


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A test (or its fixture) that reads a corpus file in a clone without the corpus is
    skipped with MISSING, not failed: the one reason a bare clone gives."""
    report: pytest.TestReport = yield
    if call.excinfo is not None and read_missing_corpus(call.excinfo.value):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {MISSING}")
    return report


@pytest.fixture(scope="session")
def server() -> Iterator[FeedServer]:
    """One real HTTP/1.1 server on 127.0.0.1 for the whole session (see tests/server.py)."""
    with FeedServer() as running:
        yield running


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared test corpus (tests/corpus.py says where); a test asking for it skips without."""
    if not HAVE_CORPUS:
        pytest.skip(MISSING)
    return CORPUS


@pytest.fixture(scope="session")
def sample_feeds(server: FeedServer) -> list[str]:
    """The demo's fictional outlets (feeds and pages) on the test server; their feed URLs."""
    articles = load_sample(datetime.now(UTC))
    for path, resource in build_site(articles, server.base_url).items():
        if path not in ("/", "/robots.txt"):
            server.add(path, resource.body, content_type=resource.content_type)
    return [feed.url for feed in feed_sources(articles, server.base_url)]


@pytest.fixture
def settings() -> Settings:
    """Defaults, but loopback allowed (the server is on it) and short request timeouts."""
    return Settings().replace("fetch", allow_private_networks=True, timeout=TEST_TIMEOUT)


@pytest.fixture(scope="module")
def private_server() -> Iterator[FeedServer]:
    """A server of one module's own, in place of the session's: for runs that ask for fault
    routes that other modules count requests to."""
    with FeedServer() as running:
        yield running
