"""`newsfold demo` as the README's first command runs it: the installed script, its own server on
127.0.0.1, a throwaway store, nothing fetched from anywhere else; and the sample it serves,
packaged in the wheel."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import lxml.html
import pytest

from newsfold.demo import FEED_TYPES, build_site, load_sample, page_path
from newsfold.parse import parse_feed
from tests.cli_helpers import Workspace

REPO = Path(__file__).resolve().parents[1]
SAMPLE = files("newsfold") / "demo_data"
WIDTH = 80
MAX_SAMPLE_BYTES = 200 * 1024


def sample_toml() -> dict[str, Any]:
    return tomllib.loads((SAMPLE / "sample.toml").read_text(encoding="utf-8"))


def expected_stories() -> set[frozenset[str]]:
    """The page paths each story must hold: one story per wire text, every other article alone."""
    groups: dict[str, set[str]] = {}
    for item in sample_toml()["articles"]:
        path = f"/{item['outlet']}/news/{item['slug']}"
        groups.setdefault(item.get("wire") or path, set()).add(path)
    return {frozenset(paths) for paths in groups.values()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Path, Any]:
    """One `newsfold demo --keep FILE` in a home of its own, every connection it makes logged."""
    ws = Workspace.create(tmp_path_factory.mktemp("demo")).audited()
    ws.env["COLUMNS"] = str(WIDTH)
    kept = ws.root / "kept" / "demo.db"
    kept.parent.mkdir()
    return ws, kept, ws.run("demo", "--keep", str(kept))


def test_demo_prints_the_stories_and_the_largest_one(
    demo: tuple[Workspace, Path, subprocess.CompletedProcess[str]],
) -> None:
    """The demo says what it serves, the run's summary, the stories table and the largest story."""
    _, kept, done = demo
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    # Only lines with a path or URL may be longer: those are printed whole, to be copied.
    whole = [line for line in lines if "://" in line or str(kept) in line]
    assert [line for line in lines if len(line) > WIDTH and line not in whole] == []
    assert lines[0] == "Serving 5 fictional outlets' feeds (RSS, Atom, JSON Feed) and 18 articles"
    assert re.match(r"at http://127\.0\.0\.1:\d+/ \.\.\.$", lines[1])
    summary = "5 feeds ok, 18 new articles, 14 new stories, "
    assert [line for line in lines if line.startswith(summary)] == [lines[3]]
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["id", "title"])
    rows = lines[header + 1 : header + 15]
    assert len([row for row in rows if re.match(r"^ *\d+  ", row)]) == 14
    assert "The largest story and its 4 copies:" in lines
    largest = lines.index("The largest story and its 4 copies:")
    assert lines[largest + 2].startswith("Engineers race to shore up Tarrow Dam")


def test_demo_folds_the_wire_copies_and_nothing_else(
    demo: tuple[Workspace, Path, subprocess.CompletedProcess[str]],
) -> None:
    """The kept store: each wire story's copies in one story; templated weather and market reports,
    and every other story, each alone."""
    ws, kept, _ = demo
    assert kept_stories(ws, kept) == expected_stories()


def test_demo_makes_the_same_stories_run_after_run(tmp_path: Path) -> None:
    """Feeds are checked concurrently, so copies arrive in another order each run: the stories
    are the same every time (bench/bench_demo.py runs it 50 times)."""
    ws = Workspace.create(tmp_path)
    for run in range(3):
        kept = tmp_path / f"run-{run}.db"
        ws.ok("demo", "--keep", str(kept))
        assert kept_stories(ws, kept) == expected_stories(), f"run {run}"


def kept_stories(ws: Workspace, kept: Path) -> set[frozenset[str]]:
    """The stories of a kept demo store, as the page paths each holds."""
    export = ws.ok("--db", str(kept), "export", "--format", "jsonl").splitlines()
    stories = [json.loads(line) for line in export]
    return {frozenset(urlsplit(a["url"]).path for a in s["articles"]) for s in stories}


def test_demo_texts_and_summaries_start_at_the_story(
    demo: tuple[Workspace, Path, subprocess.CompletedProcess[str]],
) -> None:
    """No page furniture before the text: each stored text begins with the page's first
    paragraph (the editor's note where there is one), not with its section ("Home", "Local") and
    headline; the HTML digest's summaries begin there too."""
    ws, kept, _ = demo
    first_words = {
        page_path(a): (a.note or a.paragraphs[0])[:40] for a in load_sample(datetime.now(UTC))
    }
    stories = [
        json.loads(line)
        for line in ws.ok("--db", str(kept), "export", "--format", "jsonl").splitlines()
    ]
    copies = [copy for story in stories for copy in story["articles"]]
    assert len(copies) == 18
    for copy in copies:
        assert copy["text"].startswith(first_words[urlsplit(copy["url"]).path]), copy["text"][:80]
    digest = lxml.html.fromstring(ws.ok("--db", str(kept), "export", "--format", "html"))
    summaries = [p.text_content() for p in digest.find_class("summary")]
    assert len(summaries) == len(stories)
    for story, summary in zip(stories, summaries, strict=True):
        assert summary.startswith(first_words[urlsplit(story["url"]).path])


def test_demo_stays_on_this_machine_and_leaves_the_users_store_alone(
    demo: tuple[Workspace, Path, subprocess.CompletedProcess[str]],
) -> None:
    """Every connection the demo makes goes to 127.0.0.1; the configured store is never created."""
    ws, _, _ = demo
    connects = [line for line in ws.connections() if line.startswith("connect (")]
    assert connects
    assert all(line.startswith("connect ('127.0.0.1', ") for line in connects), connects
    assert not ws.db.exists()
    assert not (ws.root / "xdg").exists() or not list((ws.root / "xdg").rglob("*.db"))


def test_demo_keep_refuses_an_existing_file(tmp_path: Path) -> None:
    """`demo --keep FILE` never overwrites a file: a usage error, exit 2."""
    existing = tmp_path / "mine.db"
    existing.write_bytes(b"precious")
    done = Workspace.create(tmp_path / "ws").run("demo", "--keep", str(existing))
    assert done.returncode == 2
    assert "already exists" in done.stderr
    assert existing.read_bytes() == b"precious"


def test_sample_has_every_feed_format_and_each_item_links_to_its_page() -> None:
    """The served sample: RSS, Atom and JSON Feed among 4-6 outlets; every item's page is there."""
    base, now = "http://127.0.0.1:8", datetime.now(UTC)
    site = build_site(load_sample(now), base)
    feeds = {path: r for path, r in site.items() if r.content_type in FEED_TYPES.values()}
    assert 4 <= len(feeds) <= 6
    assert {r.content_type for r in feeds.values()} == set(FEED_TYPES.values())
    for path, resource in feeds.items():
        parsed = parse_feed(
            resource.body,
            url=base + path,
            content_type=resource.content_type,
            now=now,
            max_entries=50,
        )
        assert parsed.entries
        for entry in parsed.entries:
            assert entry.link and entry.published and entry.title
            assert not entry.date_suspect
            page = site[urlsplit(entry.link).path]
            assert page.content_type.startswith("text/html")
            assert entry.title.encode() in page.body
    assert site["/robots.txt"].content_type == "text/plain"


def test_wheel_carries_the_sample_and_it_is_small(tmp_path: Path) -> None:
    """The wheel built from this tree holds demo_data (under 200 KB), so `pip install .` demos."""
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("newsfold-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packed: Mapping[str, int] = {
            info.filename: info.file_size
            for info in archive.infolist()
            if info.filename.startswith("newsfold/demo_data/")
        }
    assert {"newsfold/demo_data/sample.toml", "newsfold/demo_data/page.html"} <= set(packed)
    assert sum(packed.values()) < MAX_SAMPLE_BYTES
