"""Fixtures shared by every test module: the local HTTP server, the corpus, test settings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsfold.config import Settings
from newsfold.demo import build_site, feed_sources, load_sample
from tests.server import FeedServer

pytest_plugins = ["tests.stores"]

TEST_TIMEOUT = 3.0  # seconds per request: faults end quickly, loopback answers well within it


@pytest.fixture(scope="session")
def server() -> Iterator[FeedServer]:
    """One real HTTP/1.1 server on 127.0.0.1 for the whole session (see tests/server.py)."""
    with FeedServer() as running:
        yield running


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared test corpus beside the repository (README.md there describes it)."""
    return Path(__file__).resolve().parents[2] / "shared" / "corpus"


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
