"""Crash safety: a `newsfold run` killed with SIGKILL at any moment loses nothing once run again.

Four outlets publish copies of the same wire stories (and one story each of their own); their
pages answer after a short delay, so a run spends measurable time fetching, extracting and
storing. Each trial starts a run on a fresh store and kills its main process (SIGKILL, as the
OOM killer or a power cut would) at a moment aimed by what the server and the store show: while
pages are being downloaded, right after a page went out (it is being extracted), or after the
first feed was committed (others are being folded and stored). Then: the store passes
`newsfold check`, the workers left behind exit on their own, a plain `newsfold run` (what cron
does next) completes despite the lock file and the leases the killed run left, `check` passes
again, and the stories and articles equal those of one clean run on a fresh store: nothing
missing, nothing twice. Kill moments come from a seeded generator.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from newsfold.pipeline import COMMIT_SLICE
from newsfold.store.sql import SqlStore
from tests.cli_helpers import Stories, Workspace, kill_session, live_processes, normalised
from tests.server import FeedServer, RequestHandler, article_text, rss

SEED = 20261125
OUTLETS = 4
WIRE_STORIES = 6  # each carried by all outlets but one
PAGES = WIRE_STORIES * (OUTLETS - 1) + OUTLETS  # and one story of its own per outlet
PAGE_DELAY = 0.12  # seconds each page takes to answer
WORKERS_EXIT_WITHIN = 15.0  # seconds for the killed run's workers to notice and exit
SETTINGS: dict[str, dict[str, Any]] = {
    "fetch": {"timeout": 5.0, "allowed_networks": ["127.0.0.0/8"], "per_host": 4},
    "extract": {"workers": 2},
}


class Site:
    """The outlets' feeds and delayed pages, and what the server has done so far."""

    def __init__(self, server: FeedServer) -> None:
        self.server = server
        self.asked = 0  # page requests received
        self.sent = 0  # pages answered in full
        self.changed = threading.Condition()
        self.feeds = [self._outlet(o) for o in range(OUTLETS)]

    def _outlet(self, outlet: int) -> str:
        stories = [f"wire-{s}" for s in range(WIRE_STORIES) if (s + outlet) % 4 != 0]
        stories.append(f"own-{outlet}")
        items = "".join(
            f"<item><title>{story} at outlet {outlet}</title><link>{self._page(outlet, story)}"
            f"</link><guid>{outlet}-{story}</guid></item>\n"
            for story in stories
        )
        return self.server.add(f"/crash/outlet-{outlet}.xml", rss(items, f"outlet {outlet}"))

    def _page(self, outlet: int, story: str) -> str:
        """A copy of `story` as `outlet` prints it: the same text, the outlet's own furniture."""
        text = "".join(f"<p>{p}</p>\n" for p in article_text(f"crash-{story}", 5))
        html = (
            f"<!doctype html><html><head><title>{story} | Outlet {outlet}</title></head><body>"
            f"<nav>Outlet {outlet} home</nav><article><h1>{story}</h1>\n{text}"
            f"<p>Distributed to outlet {outlet} by the wire service.</p></article>"
            f"<footer>Outlet {outlet}</footer></body></html>"
        ).encode()

        def answer(handler: RequestHandler) -> None:
            self._count("asked")
            if handler.wait(PAGE_DELAY):
                return
            handler.send_body(html, content_type="text/html; charset=utf-8")
            self._count("sent")

        return self.server.add_handler(f"/crash/{outlet}/{story}.html", answer)

    def _count(self, what: str) -> None:
        with self.changed:
            setattr(self, what, getattr(self, what) + 1)
            self.changed.notify_all()

    def wait_for(self, what: str, count: int, timeout: float = 60.0) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: getattr(self, what) >= count, timeout)


@dataclass(frozen=True)
class Trial:
    """Where to kill: after `count` page requests, pages sent, or articles committed, plus a
    random pause."""

    moment: str  # "fetching" | "extracting" | "storing"
    count: int
    pause: float

    def __str__(self) -> str:
        return f"{self.moment}-{self.count}-{self.pause:.3f}"


def trials(seed: int = SEED) -> list[Trial]:
    rng = random.Random(seed)
    return [
        Trial("fetching", rng.randint(1, PAGES // 2), rng.uniform(0.0, PAGE_DELAY)),
        Trial("fetching", rng.randint(PAGES // 2, PAGES), rng.uniform(0.0, PAGE_DELAY)),
        Trial("extracting", rng.randint(1, PAGES), rng.uniform(0.0, 0.05)),
        Trial("extracting", rng.randint(1, PAGES), rng.uniform(0.0, 0.05)),
        Trial("storing", 1, rng.uniform(0.0, 0.2)),
    ]


@pytest.fixture(scope="module")
def site(private_server: FeedServer) -> Site:
    return Site(private_server)


@pytest.fixture(scope="module")
def clean_store(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A fresh store after one uninterrupted run."""
    workspace = Workspace.create(tmp_path_factory.mktemp("clean"), site.feeds, **SETTINGS)
    assert workspace.run("run").returncode == 0
    return workspace


@pytest.fixture(scope="module")
def clean(clean_store: Workspace) -> tuple[Stories, frozenset[str], int]:
    """Stories and articles after one uninterrupted run on a fresh store."""
    return normalised(clean_store.export())


def test_the_clean_run_folds_the_copies(clean: tuple[Stories, frozenset[str], int]) -> None:
    """The reference itself is right: every wire story is one story of its copies."""
    stories, urls, count = clean
    assert count == len(urls) == PAGES
    sizes = sorted(len(story) for story in stories)
    assert sizes == [1] * OUTLETS + [OUTLETS - 1] * WIRE_STORIES


@pytest.mark.parametrize("trial", trials(), ids=str)
def test_a_killed_run_loses_nothing_once_run_again(
    site: Site,
    clean: tuple[Stories, frozenset[str], int],
    tmp_path: Path,
    trial: Trial,
) -> None:
    """SIGKILL mid-run; the store checks out, a plain rerun completes it, and the stories and
    articles equal a clean run's."""
    workspace = Workspace.create(tmp_path, site.feeds, **SETTINGS)
    process = workspace.start("run")
    try:
        kill_at(trial, site, workspace)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
        assert_workers_exit(process.pid)
    finally:
        kill_session(process)
        process.communicate()
    assert workspace.run("check").stdout == "store ok\n"
    rerun = workspace.run("run")
    assert rerun.returncode == 0, rerun.stderr
    assert workspace.run("check").stdout == "store ok\n"
    assert normalised(workspace.export()) == clean


def kill_at(trial: Trial, site: Site, workspace: Workspace) -> None:
    """Return at the trial's moment of the run that just started."""
    if trial.moment == "storing":
        wait_until(lambda: committed_articles(workspace.db) >= trial.count)
    else:
        counter = "asked" if trial.moment == "fetching" else "sent"
        site.wait_for(counter, getattr(site, counter) + trial.count)
    time.sleep(trial.pause)


def committed_articles(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1) as conn:
            return int(conn.execute("SELECT count(*) FROM articles").fetchone()[0])
    except sqlite3.OperationalError:  # no schema yet, or busy
        return 0


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.005)


def assert_workers_exit(pid: int) -> None:
    """Every process the killed run started (its process group) is gone, or a zombie, in time."""
    wait_until(lambda: not live_processes(pid), WORKERS_EXIT_WITHIN)


# What the SQLite file promises, and `newsfold check` when it is not kept.


def test_sqlite_runs_in_wal_mode_with_synchronous_normal(clean_store: Workspace) -> None:
    """The store's connections use WAL and synchronous=NORMAL: a crash of the process loses no
    committed run; a power cut may lose the last commits but never corrupts the file."""
    store = SqlStore(f"sqlite:///{clean_store.db}")
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        store.close()
    with clean_store.db.open("rb") as file:  # WAL is written in the file itself (bytes 18, 19)
        assert file.read(20)[18:20] == bytes([2, 2])


def damaged_copy(clean_store: Workspace, tmp_path: Path) -> Workspace:
    """A copy of the clean store (the WAL folded in first), to be damaged by the test."""
    with sqlite3.connect(clean_store.db) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    copy = Workspace.create(tmp_path)
    shutil.copyfile(clean_store.db, copy.db)
    return copy


def in_sql(*statements: str) -> Callable[[Path], None]:
    def damage(db: Path) -> None:
        with sqlite3.connect(db) as conn:
            for statement in statements:
                conn.execute(statement)

    return damage


def truncated(db: Path) -> None:
    with db.open("r+b") as file:
        file.truncate(db.stat().st_size // 2)


def garbage(db: Path) -> None:
    db.write_bytes(random.Random(SEED).randbytes(64 * 1024))


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (
            in_sql("PRAGMA foreign_keys=OFF", "UPDATE articles SET story_id = NULL WHERE id = 1"),
            "1 articles belong to no story",
        ),
        (
            in_sql(
                "INSERT INTO stories (first_seen, updated_at, article_count)"
                " VALUES ('2026-01-01', '2026-01-01', 1)"
            ),
            "1 stories have no article",
        ),
        (
            in_sql("PRAGMA foreign_keys=OFF", "UPDATE articles SET story_id = 999999 WHERE id = 1"),
            "foreign key: articles row 1 points to a missing stories",
        ),
        (
            in_sql("INSERT INTO schema_version VALUES (999, '2026-01-01')"),
            "the store is at schema version 999, newer than this newsfold",
        ),
        (truncated, "database disk image is malformed"),
        (garbage, "file is not a database"),
    ],
    ids=[
        "article-without-story",
        "empty-story",
        "dangling-story",
        "newer-schema",
        "truncated",
        "garbage",
    ],
)
def test_check_finds_a_damaged_store(
    clean_store: Workspace, tmp_path: Path, damage: Callable[[Path], None], problem: str
) -> None:
    """`newsfold check` exits 1 on a damaged store, naming the problem in one line."""
    store = damaged_copy(clean_store, tmp_path)
    assert store.run("check").returncode == 0
    damage(store.db)
    done = store.run("check")
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert problem in done.stderr


def test_a_run_killed_mid_feed_is_carried_on_by_the_next_one(
    private_server: FeedServer, tmp_path: Path
) -> None:
    """A feed longer than one commit slice, its run killed after the first slice: the very next
    plain `run` takes the feed again (it is due at once, not after schedule.min_interval) and
    stores the rest, each article once."""
    entries = 2 * COMMIT_SLICE + 10
    items = []
    for i in range(entries):
        body = "".join(f"<p>{p}</p>" for p in article_text(f"long-feed-{i}", 3))
        page = (
            f"<!doctype html><html><body><article><h1>Item {i}</h1>{body}</article></body></html>"
        )

        def answer(handler: RequestHandler, html: bytes = page.encode()) -> None:
            if not handler.wait(0.02):
                handler.send_body(html, content_type="text/html; charset=utf-8")

        url = private_server.add_handler(f"/crash/long/{i}.html", answer)
        items.append(f"<item><title>Item {i}</title><link>{url}</link><guid>long-{i}</guid></item>")
    feed = private_server.add("/crash/long.xml", rss("\n".join(items), "long feed"))
    workspace = Workspace.create(tmp_path, [feed], **SETTINGS)
    process = workspace.start("run")
    try:
        wait_until(lambda: committed_articles(workspace.db) >= COMMIT_SLICE)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        kill_session(process)
        process.communicate()
    assert committed_articles(workspace.db) < entries
    rerun = workspace.run("run")
    assert rerun.returncode == 0, rerun.stderr
    assert committed_articles(workspace.db) == entries
    assert workspace.run("check").stdout == "store ok\n"
