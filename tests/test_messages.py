"""Messages that point to the fix, feeds named as users name them, and which store is in use:
the installed `newsfold` in a subprocess, the test server, real SQLite files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.cli_helpers import Workspace, stderr_lines
from tests.server import FeedServer, rss, rss_item

LOOPBACK = {"allowed_networks": ["127.0.0.1/32"], "timeout": 3}
FEED_TEXT_ONLY = {"workers": 1, "fetch_pages": False}


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = stderr_lines(done)
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


# -- errors that point to the fix ------------------------------------------------------------------


def test_a_refused_loopback_feed_names_the_setting(server: FeedServer, tmp_path: Path) -> None:
    """A feed on 127.0.0.1 without leave to fetch it: the line says which setting allows it."""
    url = server.add("/messages/loopback.xml", rss(rss_item(server.base_url, "loopback")))
    ws = Workspace.create(tmp_path, [url], fetch={"timeout": 3}, extract=FEED_TEXT_ONLY)
    done = ws.run("run")
    assert done.returncode == 0
    line = one_line(done)
    assert line.startswith(f"newsfold: {url}: refused: 127.0.0.1 is a loopback address")
    assert "fetch.allow_private_networks = true" in line
    assert "fetch.allowed_networks" in line
    assert server.count("/messages/loopback.xml") == 0


@pytest.mark.parametrize(
    "content",
    [b"Exported from MyReader\n<opml version='2.0'><body/></opml>", b"<opml><body><outline"],
)
def test_a_broken_opml_file_is_reported_as_opml(tmp_path: Path, content: bytes) -> None:
    """A .opml file with text before the XML, or that stops short: "not valid OPML"."""
    ws = Workspace.create(tmp_path)
    broken = tmp_path / "subscriptions.opml"
    broken.write_bytes(content)
    done = ws.run("feeds", "import", str(broken))
    assert done.returncode == 1
    line = one_line(done)
    assert line.startswith(f"newsfold: {broken}: not valid OPML (")
    assert "TOML" not in line


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[fetch]\ntimout = 3\n", "unknown config key: fetch.timout (did you mean timeout?)"),
        ("[fecth]\ntimeout = 3\n", "unknown config section or key: fecth (did you mean fetch?)"),
        (
            '[[feeds]]\nurl = "https://example.org/feed"\nnmae = "x"\n',
            "unknown config key: feeds[0].nmae (did you mean name?)",
        ),
        ("[dedup]\nzzz = 1\n", "unknown config key: dedup.zzz"),
    ],
)
def test_an_unknown_key_suggests_the_one_meant(tmp_path: Path, toml: str, message: str) -> None:
    """A misspelt key: exit 1 and the key it was probably meant to be (none when none is near)."""
    ws = Workspace.create(tmp_path)
    ws.config.write_text(toml, encoding="utf-8")
    done = ws.run("run")
    assert done.returncode == 1
    assert one_line(done) == f"newsfold: {message}"


@pytest.mark.parametrize("command", [("run",), ("stats",), ("feeds", "list")])
def test_db_pointing_to_a_directory_says_so(tmp_path: Path, command: tuple[str, ...]) -> None:
    """--db DIR: one line naming the directory and a file to use in it; nothing is written."""
    folder = tmp_path / "data"
    folder.mkdir()
    done = Workspace.create(tmp_path / "ws").run("--db", str(folder), *command)
    assert done.returncode == 1
    assert one_line(done) == (
        f"newsfold: --db {folder} is a directory: name a file in it,"
        f" such as --db {folder / 'newsfold.db'}"
    )
    assert list(folder.iterdir()) == []


def test_postgresql_without_psycopg_says_how_to_install_it(tmp_path: Path) -> None:
    """No psycopg installed (made so here by a package that fails to import, as a missing one
    does): the line says how to install newsfold[postgresql] and hides the password."""
    missing = tmp_path / "no-psycopg" / "psycopg"
    missing.mkdir(parents=True)
    (missing / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'psycopg'\", name='psycopg')\n"
    )
    ws = Workspace.create(tmp_path / "ws")
    ws.env["PYTHONPATH"] = str(missing.parent)
    done = ws.run("--db", "postgresql://newsfold:s3cret@127.0.0.1/test", "stats")
    assert done.returncode == 1
    line = one_line(done)
    assert "pip install 'newsfold[postgresql]'" in line
    assert "s3cret" not in line and "No module named" not in line


# -- feeds as users name them ----------------------------------------------------------------------


def test_feeds_remove_takes_a_name_or_a_url(server: FeedServer, tmp_path: Path) -> None:
    """`feeds remove` by URL, by name (case aside), or by the host an untitled feed is shown by;
    a name two feeds share is refused with both URLs."""
    one, two = (
        server.add(f"/messages/wire-{n}.xml", rss(rss_item(server.base_url, f"wire-{n}"),
                                                    title="Harbour Wire"))
        for n in (1, 2)
    )  # fmt: skip
    untitled = "https://feeds.example.org/untitled.xml"
    ws = Workspace.create(tmp_path, fetch=LOOPBACK, extract=FEED_TEXT_ONLY)
    listed = tmp_path / "list.toml"
    listed.write_text(f'[[feeds]]\nurl = "{one}"\n[[feeds]]\nurl = "{two}"\n', encoding="utf-8")
    ws.ok("feeds", "import", str(listed))
    ws.ok("run")  # each feed is named by its title
    assert {f["name"] for f in ws.feeds().values()} == {"Harbour Wire"}
    listed.write_text(f'[[feeds]]\nurl = "{untitled}"\n', encoding="utf-8")
    ws.ok("feeds", "import", str(listed))
    shared = ws.run("feeds", "remove", "harbour wire")
    assert shared.returncode == 1
    assert one_line(shared) == (
        f"newsfold: 2 feeds are called 'harbour wire'; give one: {one}, {two}"
    )
    assert ws.ok("feeds", "remove", "feeds.example.org") == f"removed: {untitled}\n"
    assert ws.ok("feeds", "remove", one) == f"removed: {one}\n"
    assert ws.ok("feeds", "remove", "Harbour Wire") == f"removed: {two}\n"
    assert ws.feeds() == {}
    assert one_line(ws.run("feeds", "remove", "Harbour Wire")) == (
        "newsfold: no such feed: Harbour Wire"
    )


def test_feeds_list_shows_an_untitled_feed_by_its_host(tmp_path: Path) -> None:
    """A feed not yet checked has no title: `feeds list` shows its host, and its URL once."""
    url = "https://feeds.example.org/news/all.xml"
    ws = Workspace.create(tmp_path)
    listed = tmp_path / "list.toml"
    listed.write_text(f'[[feeds]]\nurl = "{url}"\n', encoding="utf-8")
    ws.ok("feeds", "import", str(listed))
    table = ws.ok("feeds", "list")
    _header, row, url_line = table.splitlines()
    assert row.split()[:3] == ["new", "feeds.example.org", "0"]
    assert url_line.strip() == url
    assert table.count(url) == 1


def test_feeds_add_takes_one_of_a_pages_rss_and_atom_twins(
    server: FeedServer, tmp_path: Path
) -> None:
    """A home page announcing its feed as RSS and as Atom: `feeds add` subscribes to one."""
    posts = [(f"Twin post {n}", server.url(f"/messages/twins/post-{n}")) for n in range(3)]
    items = "".join(
        f"<item><title>{title}</title><link>{link}</link><guid>{link}</guid></item>"
        for title, link in posts
    )
    entries = "".join(
        f"<entry><id>{link}</id><title>{title}</title><link href='{link}'/>"
        "<updated>2026-03-01T10:00:00Z</updated></entry>"
        for title, link in posts
    )
    rss_url = server.add("/messages/twins/rss.xml", rss(items, title="Twins"))
    server.add(
        "/messages/twins/atom.xml",
        b"<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'><id>urn:twins</id>"
        b"<title>Twins</title><updated>2026-03-01T10:00:00Z</updated>"
        + entries.encode()
        + b"</feed>",
    )
    page = server.add(
        "/messages/twins/",
        b'<html><head><link rel="alternate" type="application/rss+xml" href="rss.xml">'
        b'<link rel="alternate" type="application/atom+xml" href="atom.xml"></head>'
        b"<body><p>Twins</p></body></html>",
        content_type="text/html",
    )
    ws = Workspace.create(tmp_path, fetch=LOOPBACK)
    assert ws.ok("feeds", "add", page) == f"added: {rss_url}\n"
    assert list(ws.feeds()) == [rss_url]


# -- which store, which config ---------------------------------------------------------------------


def test_stats_names_the_store_and_the_config(tmp_path: Path) -> None:
    """`stats` and `stats --json` say which store and which config file are in use."""
    ws = Workspace.create(tmp_path)
    ws.run("run")  # a run brings the store up (a command that only reads does not)
    stats = ws.stats()
    assert (stats["store"], stats["config"]) == (f"sqlite:///{ws.db}", str(ws.config))
    table = ws.ok("stats").splitlines()
    assert table[:2] == [f"store           sqlite:///{ws.db}", f"config          {ws.config}"]
    no_config = subprocess.run(
        [*ws.command("stats")[:1], "--db", str(ws.db), "stats", "--json"],
        env=ws.process_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(no_config.stdout)["config"] is None


def test_run_with_no_feeds_says_how_to_add_one(tmp_path: Path) -> None:
    """A run over a store without feeds: exit 0 and one line saying how to add a feed, naming
    the config file to list them in."""
    ws = Workspace.create(tmp_path)
    done = ws.run("run")
    assert done.returncode == 0
    assert one_line(done) == (
        "newsfold: no feeds to check: add one with `newsfold feeds add URL`, a list with"
        f" `newsfold feeds import FILE`, or [[feeds]] entries in {ws.config}"
    )
