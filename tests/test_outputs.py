"""What users read, end to end: the installed `newsfold` in a subprocess over the demo's outlets
and an undated feed on the test server, a real SQLite store. The full text out (JSONL, CSV),
published times, and tables at 80 and 160 columns on a terminal and piped."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest

from newsfold.model import RunReport
from newsfold.report import summary_line, unfinished_line
from tests.cli_helpers import Workspace, run_in_terminal, stderr_lines
from tests.server import FeedServer, rss, rss_item

LOOPBACK = {"allowed_networks": ["127.0.0.1/32"], "timeout": 3}
ONE_WORKER = {"workers": 1}
UNDATED = "undated-story"  # the key of the one item whose feed and page give no date
URL_LINE = re.compile(r"^ +(https?://\S+)$")


@dataclass(frozen=True)
class Served:
    ws: Workspace
    feeds: list[str]  # the demo's five outlets, then the undated feed
    stories: list[dict[str, Any]]  # `export --format jsonl`


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, server: FeedServer, sample_feeds: list[str]
) -> Served:
    """One run over the demo's outlets and a feed whose item and page say nothing of a date."""
    undated = server.add("/outputs/undated.xml", rss(rss_item(server.base_url, UNDATED)))
    feeds = [*sample_feeds, undated]
    ws = Workspace.create(
        tmp_path_factory.mktemp("outputs"), feeds, fetch=LOOPBACK, extract=ONE_WORKER
    )
    done = ws.run("run")
    assert (done.returncode, done.stderr) == (0, "")
    return Served(ws, feeds, ws.export())


def wire_story(served: Served) -> dict[str, Any]:
    return next(s for s in served.stories if len(s["articles"]) == 4)


def undated_story(served: Served) -> dict[str, Any]:
    return next(s for s in served.stories if s["url"].endswith(f"/{UNDATED}"))


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- the full text out -----------------------------------------------------------------------------


def test_jsonl_carries_the_text_and_its_metadata(served: Served) -> None:
    """Each article: its whole extracted text, author, language, published and site, beside
    every field it had; each story: `published`, its earliest copy's time, null when none."""
    old = {"url", "feed", "title", "published", "text_chars", "outlet", "similarity"}
    copies = [copy for story in served.stories for copy in story["articles"]]
    assert len(copies) == 19
    for copy in copies:
        assert old | {"text", "author", "language", "site"} <= set(copy)
        assert len(copy["text"]) == copy["text_chars"] > 100
        assert copy["language"] == "en"
    wire = wire_story(served)
    assert {c["site"] for c in wire["articles"]} == {c["outlet"] for c in wire["articles"]}
    assert "\n" in wire["articles"][0]["text"]  # one line per paragraph, as extracted
    assert "Staff and agencies" in {c["author"] for c in wire["articles"]}
    times = [parse_time(c["published"]) for c in wire["articles"]]
    assert parse_time(wire["published"]) == min(times)
    dated = [s for s in served.stories if s is not undated_story(served)]
    assert all(s["published"] for s in dated)
    assert undated_story(served)["published"] is None
    assert undated_story(served)["articles"][0]["published"] is None


def test_csv_with_text_is_one_quoted_row_per_article(served: Served) -> None:
    """`export --format csv --text`: the JSONL's text and metadata in four more columns; texts
    with newlines and quotes stay one record each for a CSV reader."""
    plain = list(csv.DictReader(io.StringIO(served.ws.ok("export", "--format", "csv"))))
    full = list(csv.DictReader(io.StringIO(served.ws.ok("export", "--format", "csv", "--text"))))
    copies = {c["url"]: c for s in served.stories for c in s["articles"]}
    assert len(plain) == len(full) == len(copies)
    assert "text" not in plain[0]
    for before, row in zip(plain, full, strict=True):
        assert {k: row[k] for k in before} == before
        copy = copies[row["url"]]
        assert row["text"] == copy["text"]
        assert (row["site"], row["author"], row["language"]) == (
            copy["site"] or "",
            copy["author"] or "",
            copy["language"] or "",
        )
    assert any("\n" in row["text"] for row in full)
    assert any('"' in row["text"] for row in full)


def test_text_applies_to_csv_only(served: Served) -> None:
    """--text with atom or html is a usage error naming the option (jsonl always has the text)."""
    done = served.ws.run("export", "--format", "atom", "--text")
    assert done.returncode == 2
    assert "--text" in done.stderr
    assert served.ws.ok("export", "--format", "jsonl", "--text") == served.ws.ok(
        "export", "--format", "jsonl"
    )


# -- published times -------------------------------------------------------------------------------


def test_stories_show_published_times_and_mark_first_seen(served: Served) -> None:
    """`stories`: the story's published time; the undated story its first-seen time, marked."""
    out = served.ws.ok("stories")
    header, *rows = out.splitlines()
    assert header.split()[-1] == "published"
    by_id = {row.split()[0]: row for row in rows if row.split() and row.split()[0].isdigit()}
    for story in served.stories:
        row = by_id[str(story["id"])]
        when = parse_time(story["published"] or story["first_seen"]).astimezone()
        assert row.endswith(when.strftime("%b %d %H:%M") + ("" if story["published"] else "*"))
    assert out.splitlines()[-1] == "* first seen: no copy says when it was published"


def test_atom_and_html_use_the_published_time(served: Served) -> None:
    """Atom <published> and the digest's time: the earliest copy's date, else first seen."""
    atom = feedparser.parse(served.ws.ok("export", "--format", "atom"))
    entries = {e.link: e for e in atom.entries}
    digest = served.ws.ok("export", "--format", "html")
    for story in served.stories:
        expected = parse_time(story["published"] or story["first_seen"]).replace(microsecond=0)
        assert parse_time(entries[story["url"]].published) == expected
        assert f'datetime="{expected.isoformat().replace("+00:00", "Z")}"' in digest


def test_since_is_about_first_seen_and_says_so(served: Served) -> None:
    """--since counts from when newsfold first saw a copy, not from published times: the wire
    story, published hours ago, is within 1h of being seen; the help says so."""
    recent = json.loads(served.ws.ok("stories", "--since", "1h", "--json"))
    assert {s["id"] for s in recent} == {s["id"] for s in served.stories}
    assert parse_time(wire_story(served)["published"]) < datetime.now(UTC) - timedelta(hours=1)
    help_text = " ".join(served.ws.ok("stories", "--help").split())
    assert "first seen" in help_text
    assert "first seen" in " ".join(served.ws.ok("export", "--help").split())


# -- tables ----------------------------------------------------------------------------------------


def url_lines(text: str) -> list[str]:
    return [m.group(1) for line in text.splitlines() if (m := URL_LINE.match(line))]


def wider_than(text: str, columns: int) -> list[str]:
    """Lines past `columns` that are not a URL printed whole."""
    return [line for line in text.splitlines() if len(line) > columns and not URL_LINE.match(line)]


@pytest.mark.parametrize("columns", [80, 160])
def test_story_on_a_terminal_fits_and_keeps_urls_whole(served: Served, columns: int) -> None:
    """`story ID` on a terminal: every line fits but the URLs, each on a line of its own and
    whole; the `shared` column is explained and the canonical copy shares all of itself."""
    wire = wire_story(served)
    code, out = run_in_terminal(served.ws, "story", str(wire["id"]), columns=columns)
    assert code == 0
    assert wider_than(out, columns) == []
    assert url_lines(out) == [copy["url"] for copy in wire["articles"]]
    assert "shared: how much the copy and the canonical copy (first row) have in common" in out
    header = next(line for line in out.splitlines() if line.lstrip().startswith("shared "))
    assert header.split() == ["shared", "outlet", "published", "title"]
    shares = [int(m) for m in re.findall(r"^ *(\d+)%  ", out, re.M)]
    assert shares[0] == 100 and all(50 <= share <= 100 for share in shares)
    assert len(shares) == 4
    if columns == 160:
        assert all(copy["title"] in out for copy in wire["articles"])


@pytest.mark.parametrize("columns", [80, 160])
def test_feeds_list_on_a_terminal_keeps_urls_whole(served: Served, columns: int) -> None:
    """`feeds list`: each feed's URL on its own line, whole, at any width."""
    code, out = run_in_terminal(served.ws, "feeds", "list", columns=columns)
    assert code == 0
    assert wider_than(out, columns) == []
    assert sorted(url_lines(out)) == sorted(served.feeds)


def test_stories_at_160_columns_show_outlets_and_titles_whole(served: Served) -> None:
    """A wide terminal is used: "Lakeside Evening News" and every title read whole."""
    code, out = run_in_terminal(served.ws, "stories", columns=160)
    assert code == 0
    assert wider_than(out, 160) == []
    assert "…" not in out
    assert "Lakeside Evening News" in out
    assert all(story["title"] in out for story in served.stories)
    _, narrow = run_in_terminal(served.ws, "stories", columns=80)
    assert wider_than(narrow, 80) == []
    assert "…" in narrow


@pytest.mark.parametrize("args", [("stories",), ("story", "STORY"), ("feeds", "list"), ("stats",)])
def test_piped_tables_are_not_cut(served: Served, args: tuple[str, ...]) -> None:
    """Piped (no terminal, no COLUMNS): nothing is cut to 80 columns, nothing ends in "…"."""
    wire = wire_story(served)
    args = tuple(str(wire["id"]) if a == "STORY" else a for a in args)
    done = served.ws.run(*args)
    assert done.returncode == 0
    assert "…" not in done.stdout
    if args[0] in ("stories", "story"):
        shown = served.stories if args[0] == "stories" else wire["articles"]
        assert all(item["title"] in done.stdout for item in shown)
        assert any(len(line) > 80 for line in done.stdout.splitlines())
    if args[0] == "story":
        assert url_lines(done.stdout) == [copy["url"] for copy in wire["articles"]]


def test_run_summary_fits_80_columns_and_counts_in_words(
    tmp_path: Path, server: FeedServer
) -> None:
    """A run of one feed says "1 feed ok"; the largest counts still fit 80 columns with the
    "newsfold: " prefix, and what a run leaves for the next goes on a line of its own."""
    feed = server.add("/outputs/one.xml", rss(rss_item(server.base_url, "one-feed-story")))
    ws = Workspace.create(tmp_path, [feed], fetch=LOOPBACK, extract=ONE_WORKER)
    summary = stderr_lines(ws.run("run", "-v"))[-1]
    assert re.fullmatch(r"newsfold: 1 feed ok, 1 new article, 1 new story, \d+\.\d s", summary)
    largest = RunReport(feeds_ok=9_000, feeds_failed=999, articles_new=99_999, stories_new=99_999)
    largest.seconds, largest.stopped_early, largest.entries_deferred = 3599.6, True, 12_345
    line = "newsfold: " + summary_line(largest)
    assert len(line) <= 80, line
    assert line.endswith("9999 feeds (999 failed), 99999 new articles, 99999 new stories, 60m00s")
    assert unfinished_line(largest) == (
        "stopped at --max-time; 12345 new entries wait for the next run"
    )
    assert unfinished_line(RunReport()) is None


def test_a_terminal_run_ends_with_one_summary_line(served: Served) -> None:
    """On a terminal `run` ends with its summary line, 80 columns at most."""
    code, out = run_in_terminal(served.ws, "run", "--all", columns=80)
    assert code == 0
    summaries = [line for line in out.splitlines() if line.startswith("newsfold: 6 feeds")]
    assert len(summaries) == 1 and len(summaries[0]) <= 80, out


def test_story_json_is_the_jsonl_object(served: Served) -> None:
    """`story ID --json` is the story's JSONL object: the table's `shared` is for people."""
    wire = wire_story(served)
    assert json.loads(served.ws.ok("story", str(wire["id"]), "--json")) == wire
