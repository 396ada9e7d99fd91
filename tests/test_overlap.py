"""Overlapping runs on one SQLite store: one runs, the other says so and exits 75, or waits.

cron starts `newsfold run` every few minutes whether the last one finished or not. Two runs are
started at the same moment on a fresh store (both migrate it, then race for the run lock); one
feed answers only after a pause, so the winner is still running when the loser asks for the lock.
"""

from __future__ import annotations

import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from tests.cli_helpers import RUN_TIMEOUT, Stories, Workspace, finish, normalised
from tests.server import FeedServer, RequestHandler, article_page, rss

SLOW_FEED_DELAY = 3.0  # seconds: far longer than the second run needs to reach the lock
EXIT_LOCKED = 75
SETTINGS: dict[str, dict[str, Any]] = {
    "fetch": {"timeout": 10.0, "allowed_networks": ["127.0.0.0/8"]},
    "extract": {"workers": 1},
}


@dataclass(frozen=True)
class Both:
    """Two runs started together: what each printed, and the store they shared."""

    runs: list[subprocess.CompletedProcess[str]]
    workspace: Workspace

    def run_times(self) -> list[tuple[datetime, datetime]]:
        """(started, finished) of every run the store recorded, oldest first."""
        with sqlite3.connect(self.workspace.db) as db:
            rows = db.execute("SELECT started_at, finished_at FROM runs ORDER BY started_at")
            return [(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in rows]


@pytest.fixture(scope="module")
def feeds(private_server: FeedServer) -> list[str]:
    """Two quick feeds of plain pages and one that answers after SLOW_FEED_DELAY."""
    return [
        feed(private_server, "quick-a"),
        feed(private_server, "quick-b"),
        feed(private_server, "slow", SLOW_FEED_DELAY),
    ]


def feed(server: FeedServer, name: str, delay: float = 0.0) -> str:
    """A feed of three plain pages, answering after `delay` seconds."""
    keys = [f"overlap-{name}-{i}" for i in range(3)]
    items = "".join(
        f"<item><title>{key}</title><guid>{key}</guid><link>"
        + server.add(f"/overlap/{key}.html", article_page(key), content_type="text/html")
        + "</link></item>\n"
        for key in keys
    )
    body = rss(items, name)

    def answer(handler: RequestHandler) -> None:
        if not handler.wait(delay):
            handler.send_body(body)

    return server.add_handler(f"/overlap/{name}.xml", answer)


def start_both(workspace: Workspace, *args: str) -> Both:
    first, second = workspace.start(*args), workspace.start(*args)
    return Both([finish(first, RUN_TIMEOUT), finish(second, RUN_TIMEOUT)], workspace)


@pytest.fixture(scope="module")
def without_wait(feeds: list[str], tmp_path_factory: pytest.TempPathFactory) -> Both:
    workspace = Workspace.create(tmp_path_factory.mktemp("overlap"), feeds, **SETTINGS)
    return start_both(workspace, "run")


@pytest.fixture(scope="module")
def with_wait(feeds: list[str], tmp_path_factory: pytest.TempPathFactory) -> Both:
    workspace = Workspace.create(tmp_path_factory.mktemp("overlap-wait"), feeds, **SETTINGS)
    return start_both(workspace, "run", "--all", "--wait")


def test_the_second_run_exits_75_with_one_line(without_wait: Both) -> None:
    """One run does the work; the other exits 75 at once, saying why in one line."""
    ran, refused = sorted(without_wait.runs, key=lambda done: done.returncode)
    assert (ran.returncode, refused.returncode) == (0, EXIT_LOCKED), ran.stderr + refused.stderr
    lock = f"{without_wait.workspace.db}.lock"
    assert refused.stderr.splitlines() == [f"newsfold: another newsfold run holds the lock {lock}"]
    assert len(without_wait.run_times()) == 1


def test_one_run_fetched_every_feed(without_wait: Both, feeds: list[str]) -> None:
    """The run that got the lock checked every feed and stored all nine articles."""
    states = without_wait.workspace.feeds()
    assert {url: states[url]["status"] for url in feeds} == dict.fromkeys(feeds, "ok")
    assert len(normalised(without_wait.workspace.export())[1]) == 9


def test_with_wait_the_second_run_waits_then_runs(with_wait: Both) -> None:
    """Both runs exit 0, and the store saw them one after the other, never at once."""
    assert [done.returncode for done in with_wait.runs] == [0, 0], with_wait.runs
    (first_start, first_end), (second_start, second_end) = with_wait.run_times()
    assert first_start < first_end <= second_start < second_end


def test_waiting_runs_end_as_one_run(with_wait: Both, without_wait: Both) -> None:
    """Two runs that waited for each other leave the same stories and articles as one run."""
    reference: tuple[Stories, frozenset[str], int] = normalised(without_wait.workspace.export())
    assert normalised(with_wait.workspace.export()) == reference
    assert with_wait.workspace.run("check").stdout == "store ok\n"
