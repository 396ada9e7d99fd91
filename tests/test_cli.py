"""The command line as its users meet it: the installed `newsfold` script in a subprocess, against
the test server and real SQLite files. Tables and JSON, exit codes, cron manners, metrics, feed
lists."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cli_helpers import RUN_TIMEOUT, Workspace, finish, run_in_terminal, stderr_lines
from tests.server import SMALL_FEED, FeedServer, RequestHandler, free_port
from tests.stores import PG_URL

REPO = Path(__file__).resolve().parents[1]
WIDTH = 80
LOOPBACK = {"allowed_networks": ["127.0.0.1/32"], "timeout": 3}
ONE_WORKER = {"workers": 1}  # the quickest pool to start, on a small run
# For feeds whose items link off this machine: take the feed's text, download no page.
FEED_TEXT_ONLY = {"workers": 1, "fetch_pages": False}
CONTRACT_STORY = {"id": int, "title": str, "url": str, "first_seen": str, "articles": list}
CONTRACT_COPY = {"url": str, "feed": str, "title": str, "text_chars": int}
SUMMARY = re.compile(
    r"^newsfold: (\d+) feeds? (?:ok|\((\d+) failed\)), "
    r"(\d+) new articles?, (\d+) new stor(?:y|ies), (?:\d+\.\d s|\d+m\d\ds)$"
)
BRACKETS_FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Brackets</title><link>http://127.0.0.1/</link>
<item><title>Live [updated] results [/x] from the count</title>
<link>http://127.0.0.1/brackets/1</link><guid>brackets-1</guid>
<description>Counting went on through the night in the northern districts, where turnout
reached a record for a local election, officials said on Sunday morning.</description></item>
</channel></rss>
"""


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ran(
    tmp_path_factory: pytest.TempPathFactory, sample_feeds: list[str]
) -> tuple[Workspace, subprocess.CompletedProcess[str]]:
    """A store after one `newsfold run` over the sample, run as cron runs it: pipes, no TTY."""
    ws = Workspace.create(
        tmp_path_factory.mktemp("ran"), sample_feeds, fetch=LOOPBACK, extract=ONE_WORKER
    )
    ws.env["COLUMNS"] = str(WIDTH)
    return ws, ws.run("run")


@dataclass(frozen=True)
class Mixed:
    """A workspace with a good feed (a headline with brackets) and a 404, after its first run."""

    ws: Workspace
    good: str
    bad: str
    first_run: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def mixed(server: FeedServer, tmp_path_factory: pytest.TempPathFactory) -> Mixed:
    good = server.add("/cli/brackets.xml", BRACKETS_FEED)
    bad = server.url("/fault/status/404")
    ws = Workspace.create(
        tmp_path_factory.mktemp("mixed"), [good, bad], fetch=LOOPBACK, extract=FEED_TEXT_ONLY
    )
    ws.env["COLUMNS"] = str(WIDTH)
    return Mixed(ws, good, bad, ws.run("run"))


def too_wide(text: str) -> list[str]:
    return [line for line in text.splitlines() if len(line) > WIDTH]


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed command, checked to be one line and no traceback."""
    lines = stderr_lines(done)
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- cron manners ----------------------------------------------------------------------------------


def test_a_good_run_off_a_terminal_prints_nothing(
    ran: tuple[Workspace, subprocess.CompletedProcess[str]],
) -> None:
    """Cron mails whatever a job prints: a run where every feed went well prints nothing."""
    ws, done = ran
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert ws.stats()["articles"] == 18


def test_a_failed_feed_is_one_line_on_stderr(mixed: Mixed) -> None:
    """Off a terminal a failed feed says one line naming it and the cause; the run exits 0."""
    done, bad = mixed.first_run, mixed.bad
    assert (done.returncode, done.stdout) == (0, "")
    line = one_line(done)
    assert line.startswith(f"newsfold: {bad}: ")
    assert "404" in line


def test_log_format_json_gives_json_lines(mixed: Mixed) -> None:
    """--log-format json: each stderr line is one JSON object that names the failed feed."""
    ws, bad = mixed.ws, mixed.bad
    done = ws.run("--log-format", "json", "run", "--all")
    assert done.returncode == 0
    record = json.loads(one_line(done))
    assert record["level"] == "warning"
    assert record["event"] == "feed_failed"
    assert record["feed"] == bad
    assert "404" in record["message"]
    parse_time(record["time"])


def test_verbose_adds_one_summary_line(mixed: Mixed) -> None:
    """-v (here after the command, where people put it) off a terminal: the failure line, then
    one summary line with the run's counts."""
    ws, bad = mixed.ws, mixed.bad
    done = ws.run("run", "--all", "-v")
    failure, summary = stderr_lines(done)
    assert failure.startswith(f"newsfold: {bad}: ")
    match = SUMMARY.match(summary)
    assert match, summary
    assert match.groups()[:2] == ("2", "1")


def test_quiet_run_writes_metrics_for_prometheus(mixed: Mixed, tmp_path: Path) -> None:
    """`-q run --metrics-file`: silent; gauges for feeds by outcome, failures by kind, articles,
    stories and time, read back by Prometheus's own parser; the failure kept on the feed."""
    ws, bad = mixed.ws, mixed.bad
    path = tmp_path / "textfile" / "newsfold.prom"
    done = ws.run("-q", "run", "--all", "--metrics-file", str(path))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    families = list(text_string_to_metric_families(path.read_text(encoding="utf-8")))
    assert all(f.type == "gauge" and f.documentation for f in families)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples
    }
    stats = ws.stats()
    assert samples[("newsfold_run_feeds", (("outcome", "failed"),))] == 1
    assert samples[("newsfold_run_feed_failures", (("kind", "http_404"),))] == 1
    assert samples[("newsfold_feeds", ())] == 2
    assert samples[("newsfold_feeds_failing", ())] == 1
    assert samples[("newsfold_articles", ())] == stats["articles"]
    assert samples[("newsfold_stories", ())] == stats["stories"]
    assert samples[("newsfold_run_duration_seconds", ())] > 0
    finished = samples[("newsfold_run_finished_timestamp_seconds", ())]
    assert parse_time(stats["last_run"]).timestamp() <= finished <= time.time()
    feed = ws.feeds()[bad]
    assert (feed["status"], feed["error_count"] >= 1) == ("error", True)
    assert "404" in feed["last_error"]


def test_a_terminal_gets_a_progress_bar_and_a_summary(server: FeedServer, tmp_path: Path) -> None:
    """On a terminal: a bar with feeds done of due, the rate and failures, then the summary."""
    # The second feed answers long after the first is done, worker processes started included.
    feeds = [server.url("/fault/delay/0.2?cli-bar"), server.url("/fault/delay/4?cli-bar")]
    patient = {**LOOPBACK, "timeout": 10}
    ws = Workspace.create(tmp_path, feeds, fetch=patient, extract=FEED_TEXT_ONLY)
    code, output = run_in_terminal(ws, "run")
    assert code == 0
    assert re.search(r"feeds .*\b1/2\b.*feeds/s +0 failed", output), output
    summaries = [line for line in output.splitlines() if SUMMARY.match(line.strip())]
    assert len(summaries) == 1, output


# -- exit codes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [("fetch", "timeuot", "3"), ("dedup", "window", '"a week"')],
)
def test_bad_config_exits_1_with_one_line_naming_the_key(
    tmp_path: Path, section: str, key: str, value: str
) -> None:
    """A bad key or value in the config: exit 1, one line that names the key, no traceback."""
    ws = Workspace.create(tmp_path)
    ws.config.write_text(f"[{section}]\n{key} = {value}\n", encoding="utf-8")
    done = ws.run("run")
    assert done.returncode == 1
    assert f"{section}.{key}" in one_line(done)


@pytest.mark.parametrize(
    "args", [("stories", "--since", "soon"), ("no-such-command",), ("story", "seven")]
)
def test_usage_errors_exit_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    """A mistyped command line exits 2 with click's usage message, no traceback."""
    done = Workspace.create(tmp_path).run(*args)
    assert done.returncode == 2
    assert "Usage:" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "db",
    ["sqlite:////dev/null/newsfold.db", "postgresql://nobody@127.0.0.1:{port}/newsfold"],
)
def test_an_unreachable_store_exits_1_with_one_line(tmp_path: Path, db: str) -> None:
    """A store that cannot be opened: exit 1, one line naming it, nothing run."""
    db = db.format(port=free_port())  # a port nobody listens on, picked as the test runs
    done = Workspace.create(tmp_path).run("--db", db, "run")
    assert done.returncode == 1
    line = one_line(done)
    assert line.startswith("newsfold: ")
    assert db.split("//")[-1].split("/")[0] in line


def test_a_second_run_exits_75_while_the_first_holds_the_lock(
    server: FeedServer, tmp_path: Path
) -> None:
    """Two runs on one SQLite store: the second exits 75 at once; with --wait it waits, then 0."""
    release = threading.Event()

    def held_feed(handler: RequestHandler) -> None:  # answers once the test lets it
        release.wait(RUN_TIMEOUT)
        handler.send_body(SMALL_FEED)

    url = server.add_handler("/cli/held-feed.xml", held_feed)
    patient = {**LOOPBACK, "timeout": RUN_TIMEOUT}  # the first run must not give up on the feed
    ws = Workspace.create(tmp_path, [url], fetch=patient, extract=FEED_TEXT_ONLY)
    first = ws.start("run")
    waiting = None
    try:
        while server.count("/cli/held-feed.xml") == 0 and first.poll() is None:
            time.sleep(0.05)  # until the first run is fetching, with the lock held
        locked = ws.run("run")
        assert locked.returncode == 75
        assert "lock" in one_line(locked)
        waiting = ws.start("run", "--wait")
    finally:
        release.set()
        assert finish(first, RUN_TIMEOUT).returncode == 0
    waited = finish(waiting, RUN_TIMEOUT)
    assert (waited.returncode, waited.stderr) == (0, "")


def test_a_tick_with_nothing_due_fetches_nothing_and_says_when(
    server: FeedServer, tmp_path: Path
) -> None:
    """cron's next tick before any feed is due: nothing fetched or stored, exit 0, silent; with
    -v one line naming when the next feed is due; the metrics file still describes the last run.
    A feed new in the config is checked at once, and --all checks every feed whatever the
    schedule."""
    first = server.add("/cli/tick/first.xml", SMALL_FEED)
    ws = Workspace.create(tmp_path, [first], fetch=LOOPBACK, extract=FEED_TEXT_ONLY)
    metrics = tmp_path / "newsfold.prom"
    assert ws.run("run", "--metrics-file", str(metrics)).stderr == ""
    before = (ws.feeds(), ws.stats(), metrics.read_text(encoding="utf-8"))

    quiet = ws.run("run", "--metrics-file", str(metrics))
    verbose = ws.run("run", "-v")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    assert verbose.returncode == 0
    next_check = before[0][first]["next_check"]
    assert one_line(verbose).startswith("newsfold: no feed due; the next is due at ")
    assert next_check[:16].replace("T", " ") in verbose.stderr
    assert server.count("/cli/tick/first.xml") == 1
    assert (ws.feeds(), ws.stats(), metrics.read_text(encoding="utf-8")) == before

    second = server.add("/cli/tick/second.xml", SMALL_FEED.replace(b"<guid>1<", b"<guid>2<"))
    ws.write_config([first, second], fetch=LOOPBACK, extract=FEED_TEXT_ONLY)
    assert ws.run("run").returncode == 0
    counts = [server.count(f"/cli/tick/{name}.xml") for name in ("first", "second")]
    assert counts == [1, 1]
    assert ws.run("run", "--all").returncode == 0
    assert server.count("/cli/tick/first.xml") == 2


# Commands that only read: the contract's list, and `feeds export`.
READ_ONLY = (
    ("stories",),
    ("story", "1"),
    ("export", "--format", "jsonl"),
    ("stats",),
    ("explain", "https://a.example/1", "https://b.example/2"),
    ("check",),
    ("feeds", "list"),
    ("feeds", "export"),
)


def files_under(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.name != "newsfold.toml"}


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_a_command_that_only_reads_creates_no_store(tmp_path: Path, args: tuple[str, ...]) -> None:
    """Pointed at a store that is not there (a typo, a directory that does not exist), a
    command that only reads says "no store at PATH" in one line, exits 1, and creates nothing."""
    ws = Workspace.create(tmp_path)
    typo = tmp_path / "typo.db"
    done = ws.run("--db", str(typo), *args)
    assert (done.returncode, done.stdout) == (1, "")
    assert one_line(done) == f"newsfold: no store at {typo}"
    nowhere = tmp_path / "nonexistent_dir" / "x.db"
    done = ws.run("--db", f"sqlite:///{nowhere}", *args)
    assert (done.returncode, one_line(done)) == (1, f"newsfold: no store at {nowhere}")
    assert files_under(tmp_path) == set()


def test_the_default_store_is_not_created_by_a_read(tmp_path: Path) -> None:
    """Without --db, a read of the per-user store that was never made creates neither the store
    nor its directory."""
    ws = Workspace.create(tmp_path)
    done = subprocess.run(
        [ws.command()[0], "--config", str(ws.config), "stats"],
        env=ws.process_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    default = tmp_path / "xdg" / "xdg_data_home" / "newsfold" / "newsfold.db"
    assert (done.returncode, one_line(done)) == (1, f"newsfold: no store at {default}")
    assert files_under(tmp_path) == set()


def test_a_read_of_an_empty_postgresql_database_creates_no_tables(
    tmp_path: Path, pg_url: str
) -> None:
    """A PostgreSQL database (here a schema) with no store in it: one line, exit 1, no table."""
    done = Workspace.create(tmp_path).run("--db", pg_url, "stories")
    assert done.returncode == 1
    assert one_line(done).startswith("newsfold: no store at postgresql://")
    schema = pg_url.rsplit("%3D", 1)[1]
    with psycopg.connect(PG_URL) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchone()
    assert tables == (0,)


def test_a_read_of_an_existing_store_works(tmp_path: Path) -> None:
    """Once a command that writes made the store, the reads work on it."""
    ws = Workspace.create(tmp_path)
    ws.ok("feeds", "import", str(REPO / "config" / "feeds.toml"))
    for args in READ_ONLY:
        if args[0] not in ("story", "explain"):  # an empty store has no story 1, no articles
            ws.ok(*args)


CONFIG_FAULTS = {
    "missing": None,
    "not TOML": "[fetch\n",
    "unknown key": "[fetch]\ntimeuot = 3\n",
    "bad value": '[dedup]\nwindow = "a week"\n',
}


@pytest.mark.parametrize("fault", list(CONFIG_FAULTS))
def test_every_command_checks_the_config_it_is_given(tmp_path: Path, fault: str) -> None:
    """A missing or invalid --config fails every command, whether it uses the settings or not
    (`stats`, `check`, `feeds list` do not): one line, exit 1, and `check` says no "store ok"."""
    ws = Workspace.create(tmp_path)
    ws.ok("run")  # a store that is fine: only the config is wrong
    text = CONFIG_FAULTS[fault]
    config = tmp_path / "given.toml"
    if text is not None:
        config.write_text(text, encoding="utf-8")
    for args in (("stats",), ("check",), ("feeds", "list")):
        done = ws.run("--config", str(config), *args)
        assert (done.returncode, done.stdout) == (1, ""), args
        line = one_line(done)
        assert line.startswith("newsfold: ")
        assert str(config) in line or "fetch.timeuot" in line or "dedup.window" in line


def test_removing_an_unknown_feed_exits_1(tmp_path: Path) -> None:
    """`feeds remove` of a feed that is not there: exit 1 and one line naming it."""
    done = Workspace.create(tmp_path).run("feeds", "remove", "https://example.org/feed.xml")
    assert done.returncode == 1
    assert one_line(done) == "newsfold: no such feed: https://example.org/feed.xml"


# -- what users read -------------------------------------------------------------------------------


STORY_ROW = re.compile(r"^ *(\d+)  (.+?) +(\d+)  (.+?) +(\w{3} \d\d \d\d:\d\d) *$")
COPY_ROW = re.compile(r"^ *(\d+)%  ", re.M)


def test_stories_table_fits_80_columns(
    ran: tuple[Workspace, subprocess.CompletedProcess[str]],
) -> None:
    """`stories`: one line per story (id, title, copies, first outlet, published) in 80 columns."""
    ws, _ = ran
    out = ws.ok("stories")
    assert too_wide(out) == []
    header, *rows = out.splitlines()
    assert header.split() == ["id", "title", "copies", "first", "outlet", "published"]
    parsed = [STORY_ROW.match(row) for row in rows]
    assert all(parsed), out
    copies = sorted(int(m.group(3)) for m in parsed if m)
    assert copies == [1] * 12 + [2, 4]
    assert ws.ok("stories", "--since", "24h") == out


def test_stories_default_to_the_last_24_hours(tmp_path: Path) -> None:
    """`stories` without --since looks back 24 hours, says so in its help and when it finds none."""
    ws = Workspace.create(tmp_path)
    ws.ok("run")  # an empty store
    assert re.search(r"--since TEXT .*\[default: 24h\]", " ".join(ws.ok("stories", "-h").split()))
    assert ws.ok("stories") == "No stories updated in the last 24h.\n"


def test_story_shows_every_copy(ran: tuple[Workspace, subprocess.CompletedProcess[str]]) -> None:
    """`story ID`: the title, then each copy with the text it shares with the canonical copy,
    outlet, published, title and URL (on a line of its own, whole)."""
    ws, _ = ran
    wire = next(s for s in ws.export() if len(s["articles"]) == 4)
    narrow = ws.ok("story", str(wire["id"]))
    assert [line for line in too_wide(narrow) if "://" not in line] == []
    assert narrow.splitlines()[0] == wire["title"]
    assert len(COPY_ROW.findall(narrow)) == 4
    assert [line.strip() for line in narrow.splitlines() if "://" in line] == [
        copy["url"] for copy in wire["articles"]
    ]
    ws.env["COLUMNS"] = "200"
    try:
        wide = ws.ok("story", str(wire["id"]))
    finally:
        ws.env["COLUMNS"] = str(WIDTH)
    for copy in wire["articles"]:
        assert copy["url"] in wide
        assert copy["title"] in wide


def test_stories_json_is_the_jsonl_export(
    ran: tuple[Workspace, subprocess.CompletedProcess[str]], sample_feeds: list[str]
) -> None:
    """`stories --json` and `export --format jsonl` give the same objects, shaped as documented."""
    ws, _ = ran
    stories = json.loads(ws.ok("stories", "--json"))
    assert stories == ws.export()
    for story in stories:
        assert {k: type(story[k]) for k in CONTRACT_STORY} == CONTRACT_STORY
        parse_time(story["first_seen"])
        assert story["url"] == story["articles"][0]["url"]
        for copy in story["articles"]:
            assert {k: type(copy[k]) for k in CONTRACT_COPY} == CONTRACT_COPY
            assert copy["feed"] in sample_feeds
            assert copy["published"] is None or parse_time(copy["published"])
    outlets = sorted(len({c["feed"] for c in s["articles"]}) for s in stories)
    assert outlets == [1] * 12 + [2, 4]


def test_stats_as_json_and_as_a_table(
    ran: tuple[Workspace, subprocess.CompletedProcess[str]],
) -> None:
    """`stats --json` has the documented counts; `stats` shows them in a table within 80 columns."""
    ws, _ = ran
    stats = ws.stats()
    counts = {k: stats[k] for k in ("feeds", "feeds_failing", "articles", "stories")}
    assert counts == {"feeds": 5, "feeds_failing": 0, "articles": 18, "stories": 14}
    assert parse_time(stats["last_run"]) <= datetime.now(UTC)
    table = ws.ok("stats")
    counted = [line for line in table.splitlines() if not line.startswith(("store ", "config "))]
    assert too_wide("\n".join(counted)) == []  # the store's path and the config's are whole
    rows = {" ".join(line.split()[:-1]): line.split()[-1] for line in counted[:4]}
    assert rows == {"feeds": "5", "feeds failing": "0", "articles": "18", "stories": "14"}


def test_feeds_list_as_json_and_as_a_table(
    ran: tuple[Workspace, subprocess.CompletedProcess[str]], sample_feeds: list[str]
) -> None:
    """`feeds list --json` has each feed's documented state; the table fits 80 columns."""
    ws, _ = ran
    feeds = ws.feeds()
    assert sorted(feeds) == sorted(sample_feeds)
    for feed in feeds.values():
        assert (feed["status"], feed["last_error"], feed["error_count"]) == ("ok", None, 0)
        assert feed["entries"] >= 3
        assert parse_time(feed["last_checked"]) < parse_time(feed["next_check"])
    table = ws.ok("feeds", "list")
    assert [line for line in too_wide(table) if "://" not in line] == []
    urls = [line.strip() for line in table.splitlines() if "://" in line]
    assert sorted(urls) == sorted(sample_feeds)


def test_titles_print_as_they_are(mixed: Mixed) -> None:
    """A headline with [brackets] prints verbatim: web text is never read as terminal markup."""
    assert "Live [updated] results [/x] from the count" in mixed.ws.ok("story", "1")


# -- feed lists ------------------------------------------------------------------------------------


def feed_table(text: str) -> list[dict[str, object]]:
    return sorted(tomllib.loads(text)["feeds"], key=lambda feed: str(feed["url"]))


def test_feed_lists_round_trip_through_opml_and_toml(tmp_path: Path) -> None:
    """OPML in, TOML out, TOML in, OPML out, OPML in: the same feeds, names and intervals."""
    expected = feed_table((REPO / "config" / "feeds.toml").read_text(encoding="utf-8"))
    first = Workspace.create(tmp_path / "first")
    assert "imported 8 feeds (8 new)" in first.ok(
        "feeds", "import", str(REPO / "config" / "feeds.opml")
    )
    as_toml = first.ok("feeds", "export", "--format", "toml")
    assert feed_table(as_toml) == expected
    second = Workspace.create(tmp_path / "second")
    (tmp_path / "feeds.toml").write_text(as_toml, encoding="utf-8")
    second.ok("feeds", "import", str(tmp_path / "feeds.toml"))
    (tmp_path / "feeds.opml").write_text(second.ok("feeds", "export"), encoding="utf-8")
    third = Workspace.create(tmp_path / "third")
    third.ok("feeds", "import", str(tmp_path / "feeds.opml"))
    assert feed_table(third.ok("feeds", "export", "--format", "toml")) == expected
    assert {f["status"] for f in third.feeds().values()} == {"new"}


def test_feeds_add_finds_a_pages_feed_and_remove_drops_it(
    sample_feeds: list[str], server: FeedServer, tmp_path: Path
) -> None:
    """`feeds add PAGE` adds the feed the page announces; `feeds remove` takes it off the list."""
    ws = Workspace.create(tmp_path, fetch=LOOPBACK, extract=ONE_WORKER)
    feed = next(url for url in sample_feeds if "/harbour-courier/" in url)
    page = server.url("/harbour-courier/news/winter-ferry-timetable")
    assert ws.ok("feeds", "add", page, "--name", "Courier") == f"added: {feed}\n"
    assert ws.ok("feeds", "add", feed) == f"already there: {feed}\n"
    assert {url: f["name"] for url, f in ws.feeds().items()} == {feed: "Courier"}
    assert ws.ok("feeds", "remove", feed) == f"removed: {feed}\n"
    assert ws.feeds() == {}
    assert ws.ok("feeds", "list").startswith("No feeds yet")


def test_every_command_has_help(tmp_path: Path) -> None:
    """`newsfold --help` lists the documented commands, demo among them."""
    out = Workspace.create(tmp_path).ok("--help")
    listed = set(re.findall(r"^  (\S+)", out.split("Commands:")[1], re.M))
    assert {"run", "feeds", "stories", "story", "export", "stats", "demo"} <= listed
