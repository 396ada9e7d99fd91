"""`newsfold search` as a user runs it: the console script on a real SQLite store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from newsfold.store import open_store, schema
from tests.cli_helpers import Workspace, run_in_terminal
from tests.stores import schema_before_search
from tests.test_search import save

WIRE = (
    "The mayor of Zürich said on Monday that the central bank would keep its rates unchanged "
    "until the spring, citing the strength of the franc."
)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A workspace whose store holds a wire story in three copies and two other stories."""
    workspace = Workspace.create(tmp_path)
    store = open_store(f"sqlite:///{workspace.db}")
    try:
        store.migrate()
        now = datetime.now(UTC)
        save(store, "wire", [WIRE, WIRE + " Reporting by AP.", WIRE + " (AFP)"], at=now)
        save(store, "bank", ["A river bank collapsed near the old mill."], at=now)
        save(store, "old", ["Zürich zoo welcomes an elephant calf."], at=now - timedelta(days=30))
    finally:
        store.close()
    return workspace


def test_json_lists_each_story_once_with_score_and_snippet(ws: Workspace) -> None:
    """--json: story objects as in the JSONL export, plus score and snippet, best first."""
    found = json.loads(ws.ok("search", "zurich", "--json"))
    assert sorted(len(story["articles"]) for story in found) == [1, 3]
    exported = {story["id"]: story for story in ws.export()}
    for story in found:
        assert {k: v for k, v in story.items() if k in exported[story["id"]]} == exported[
            story["id"]
        ]
        assert story["score"] > 0
        marked = [story["snippet"][s:e] for s, e in story["snippet_marks"]]
        assert marked and all(m == "Zürich" for m in marked)
    assert found[0]["score"] >= found[1]["score"] > 0


def test_since_phrase_and_exclusion_from_the_command_line(ws: Workspace) -> None:
    """--since drops old stories; phrases and -words reach the store as typed."""
    assert len(json.loads(ws.ok("search", "zurich", "--since", "7d", "--json"))) == 1
    phrase = json.loads(ws.ok("search", '"central bank" -franc', "--json"))
    assert phrase == []
    assert len(json.loads(ws.ok("search", '"central bank"', "--json"))) == 1
    assert len(json.loads(ws.ok("search", "--json", "--", "-mill bank"))) == 1


def test_no_match_prints_an_empty_array_and_exits_0(ws: Workspace) -> None:
    """A query matching nothing: [] with --json, one line without, exit 0 both times."""
    assert json.loads(ws.ok("search", "xylophone", "--json")) == []
    assert ws.ok("search", "xylophone").strip() == "No stories match 'xylophone'."


@pytest.mark.parametrize(
    "query",
    ["-zurich", '""', "x" * 10_000, "word " * 2_000],
)
def test_a_bad_query_is_one_line_and_exit_2(ws: Workspace, query: str) -> None:
    """Nothing to search: one line on stderr naming why, usage exit code, no traceback."""
    done = ws.run("search", "--", query)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("newsfold: ")
    assert done.stdout == ""


@pytest.mark.parametrize("query", ['"unbalanced', "NEAR(zurich bank)", "title:zurich*", "^ (OR"])
def test_search_syntax_of_other_engines_is_read_as_text(ws: Workspace, query: str) -> None:
    """Other engines' operators are plain text: results or none, exit 0."""
    done = ws.run("search", query, "--json")
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout), list)


def test_a_terminal_shows_the_match_in_bold(ws: Workspace) -> None:
    """On a terminal each result shows title, copies, outlet and a snippet, the match bold."""
    ws.env["FORCE_COLOR"] = "1"
    ws.env["COLUMNS"] = "120"
    out = ws.ok("search", "central bank")
    assert "\x1b[1m" in out and "central" in out
    [row] = [line for line in out.splitlines() if "A headline" in line]
    assert "  3  Outlet " in row


def test_the_upgrade_that_builds_the_index_shows_a_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store made before search gets its index on the next command, a bar on a terminal."""
    workspace = Workspace.create(tmp_path)
    monkeypatch.setattr(schema, "LATEST", schema_before_search())
    store = open_store(f"sqlite:///{workspace.db}")
    try:
        store.migrate()
        save(store, "many", [f"Copy {n} of a long archive about glaciers." for n in range(5000)])
    finally:
        store.close()
    code, output = run_in_terminal(workspace, "search", "glaciers")
    assert code == 0, output
    assert "upgrading the store" in output and "5000/5000" in output
    assert "Copy" in output
