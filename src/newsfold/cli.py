"""The command line: a thin shell over the library. One function per command.

Exit codes: 0 it ran (feeds may have failed, each reported), 1 it could not run (bad config,
store unreachable), 2 usage error, 75 another run holds the lock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from newsfold import __version__, logs
from newsfold.config import Settings, load_settings, parse_duration
from newsfold.errors import ConfigError, LockedError, NewsfoldError
from newsfold.model import FeedSource, Story
from newsfold.store import Store, default_db_path, open_store

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 75
log = logging.getLogger("newsfold")


@dataclass
class Context:
    config_path: Path | None
    db_url: str
    verbosity: int
    log_format: str
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    @contextmanager
    def store(self) -> Iterator[Store]:
        store = open_store(self.db_url)
        try:
            store.migrate()
            yield store
        finally:
            store.close()


def utcnow() -> datetime:
    return datetime.now(UTC)


def _default_config() -> Path | None:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    path = Path(base) / "newsfold" / "newsfold.toml"
    return path if path.exists() else None


def _default_db() -> str:
    return f"sqlite:///{default_db_path(dict(os.environ))}"


def _db_url(value: str) -> str:
    """Accept a plain path as well as a sqlite:/// or postgresql:// URL."""
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="newsfold")
@click.option(
    "--config",
    "config_path",
    envvar="NEWSFOLD_CONFIG",
    type=click.Path(path_type=Path),
    help="TOML config file [default: $XDG_CONFIG_HOME/newsfold/newsfold.toml].",
)
@click.option(
    "--db",
    "db",
    envvar="NEWSFOLD_DB",
    help="sqlite:///PATH or postgresql://USER@HOST/DB [default: per-user data dir].",
)
@click.option("-q", "--quiet", count=True, help="Only errors.")
@click.option("-v", "--verbose", count=True, help="More detail (-vv for debug).")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    envvar="NEWSFOLD_LOG_FORMAT",
    help="json: one JSON object per log line.",
)
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: Path | None,
    db: str | None,
    quiet: int,
    verbose: int,
    log_format: str,
) -> None:
    """newsfold: watch news feeds and get each story once."""
    verbosity = verbose - quiet
    logs.configure(verbosity, log_format)
    ctx.obj = Context(
        config_path=config_path or _default_config(),
        db_url=_db_url(db) if db else _default_db(),
        verbosity=verbosity,
        log_format=log_format,
    )


def main() -> None:
    """Console entry point: every NewsfoldError becomes one line and an exit code."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_FAILED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE if isinstance(exc, click.UsageError) else exc.exit_code)
    except LockedError as exc:
        click.echo(f"newsfold: {exc}", err=True)
        sys.exit(EXIT_LOCKED)
    except NewsfoldError as exc:
        click.echo(f"newsfold: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        click.echo("newsfold: interrupted", err=True)
        sys.exit(130)
    sys.exit(EXIT_OK)


def _duration(value: str | None, option: str) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value, option)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


# -- run -------------------------------------------------------------------------------------------


@cli.command()
@click.option("--all", "include_all", is_flag=True, help="Check every feed now, due or not.")
@click.option("--max-time", help="Stop cleanly after this long (e.g. 10m), keeping what was done.")
@click.option("--wait", is_flag=True, help="Wait for another run to finish instead of exiting 75.")
@click.option(
    "--metrics-file",
    type=click.Path(path_type=Path),
    help="Write Prometheus text-format metrics here (node_exporter textfile collector).",
)
@click.pass_obj
def run(
    obj: Context, include_all: bool, max_time: str | None, wait: bool, metrics_file: Path | None
) -> None:
    """Fetch due feeds, download and extract new articles, fold copies into stories."""
    from newsfold import pipeline, report

    settings = obj.settings
    options = pipeline.RunOptions(
        include_all=include_all, max_time=_duration(max_time, "--max-time")
    )
    with obj.store() as store, store.run_lock(wait):
        store.sync_feeds(settings.feeds, utcnow())
        progress = report.make_progress(obj.verbosity)
        with progress:
            result = asyncio.run(pipeline.run(settings, store, utcnow, options, progress))
        report.log_summary(result, obj.verbosity)
        if metrics_file:
            report.write_metrics(metrics_file, result, store.stats())


# -- feeds -----------------------------------------------------------------------------------------


@cli.group()
def feeds() -> None:
    """Add, list, remove, import and export feeds."""


@feeds.command("add")
@click.argument("url")
@click.option("--name", help="A display name.")
@click.pass_obj
def feeds_add(obj: Context, url: str, name: str | None) -> None:
    """Add a feed; a site's home page is searched for its feed(s)."""
    from newsfold.discover import find_feeds

    found = asyncio.run(find_feeds(url, obj.settings.fetch))
    with obj.store() as store:
        for feed_url in found:
            added = store.add_feed(FeedSource(url=feed_url, name=name), utcnow())
            click.echo(f"{'added' if added else 'already there'}: {feed_url}")


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON array, one object per feed.")
@click.pass_obj
def feeds_list(obj: Context, as_json: bool) -> None:
    """Each feed's state, last error and next check."""
    from newsfold import output

    with obj.store() as store:
        states = store.feeds()
    if as_json:
        _print_json([output.feed_json(f) for f in states])
    else:
        output.print_feeds(states)


@feeds.command("remove")
@click.argument("url")
@click.pass_obj
def feeds_remove(obj: Context, url: str) -> None:
    """Stop watching a feed (its articles and stories stay)."""
    with obj.store() as store:
        if not store.remove_feed(url):
            raise click.ClickException(f"no such feed: {url}")
    click.echo(f"removed: {url}")


@feeds.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def feeds_import(obj: Context, file: Path) -> None:
    """Import feeds from an OPML or TOML file."""
    from newsfold.feedlists import read_feed_list

    sources = read_feed_list(file)
    with obj.store() as store:
        added = store.sync_feeds(sources, utcnow())
    click.echo(f"imported {len(sources)} feeds ({added} new) from {file}")


@feeds.command("export")
@click.option("--format", "fmt", type=click.Choice(["opml", "toml"]), default="opml")
@click.pass_obj
def feeds_export(obj: Context, fmt: str) -> None:
    """Print the feed list as OPML or TOML."""
    from newsfold.feedlists import write_opml, write_toml

    with obj.store() as store:
        sources = [FeedSource(f.url, f.name, f.interval) for f in store.feeds()]
    click.echo(write_opml(sources) if fmt == "opml" else write_toml(sources), nl=False)


# -- stories and outputs ---------------------------------------------------------------------------


def _canonical_first(story: Story, preferred: tuple[str, ...]) -> Story:
    from newsfold.dedup import Copy, choose_canonical
    from newsfold.urls import host_of

    copies = [
        Copy(i, host_of(a.url), a.published, a.text_chars) for i, a in enumerate(story.articles)
    ]
    first = story.articles[int(str(choose_canonical(copies, preferred).key))]
    rest = tuple(a for a in story.articles if a is not first)
    return replace(story, title=first.title, url=first.url, articles=(first, *rest))


def _load_stories(obj: Context, since: str | None, limit: int | None) -> list[Story]:
    window = _duration(since, "--since")
    with obj.store() as store:
        found = store.stories(utcnow() - window if window else None, limit)
    return [_canonical_first(s, obj.settings.dedup.preferred_outlets) for s in found]


@cli.command()
@click.option("--since", default="24h", show_default=True, help="Stories updated within this long.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="A JSON array, as in export --format jsonl.")
@click.pass_obj
def stories(obj: Context, since: str, limit: int, as_json: bool) -> None:
    """Newest stories first: title, copies, first outlet, first seen."""
    from newsfold import output

    found = _load_stories(obj, since, limit)
    if as_json:
        _print_json([output.story_json(s) for s in found])
    else:
        output.print_stories(found)


@cli.command()
@click.argument("story_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def story(obj: Context, story_id: int, as_json: bool) -> None:
    """One story and every copy: outlet, URL, published, similarity."""
    from newsfold import output

    with obj.store() as store:
        found = store.story(story_id)
    if found is None:
        raise click.ClickException(f"no story {story_id}")
    found = _canonical_first(found, obj.settings.dedup.preferred_outlets)
    if as_json:
        _print_json(output.story_json(found))
    else:
        output.print_story(found)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "atom", "html"]), required=True)
@click.option("--since", help="Stories updated within this long [default: all].")
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), help="File [default: stdout]."
)
@click.pass_obj
def export(obj: Context, fmt: str, since: str | None, output: Path | None) -> None:
    """Export stories as JSONL, CSV, Atom 1.0 or a self-contained HTML digest."""
    from newsfold import exports

    text = exports.render(fmt, _load_stories(obj, since, None), utcnow())
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def stats(obj: Context, as_json: bool) -> None:
    """Counts of feeds (ok / failing), articles, stories, and the last run."""
    with obj.store() as store:
        counts = store.stats()
    counts["last_run"] = counts["last_run"].isoformat() if counts["last_run"] else None
    if as_json:
        _print_json(counts)
        return
    for key, value in counts.items():
        click.echo(f"{key.replace('_', ' '):<16} {value if value is not None else '-'}")


@cli.command("config")
@click.option("--example", is_flag=True, help="Print every setting at its default, commented.")
@click.pass_obj
def config_cmd(obj: Context, example: bool) -> None:
    """Print the settings in force (file + environment) as TOML."""
    from newsfold import configdoc

    click.echo(
        configdoc.example_toml() if example else configdoc.effective_toml(obj.settings), nl=False
    )


# -- dedup: explain and redo -----------------------------------------------------------------------


@cli.command()
@click.argument("url1")
@click.argument("url2")
@click.pass_obj
def explain(obj: Context, url1: str, url2: str) -> None:
    """Why two stored articles did or did not fold: Jaccard, containment, facts."""
    from newsfold import dedup
    from newsfold.urls import canonicalize_url

    settings = obj.settings.dedup
    with obj.store() as store:
        found = [(url, store.article_text(canonicalize_url(url) or url)) for url in (url1, url2)]
    for url, item in found:
        if item is None:
            raise click.ClickException(f"{url}: not in the store")
    (a, story_a), (b, story_b) = (item for _, item in found if item is not None)
    similarity = dedup.compare(
        dedup.fingerprint(a.text, settings), dedup.fingerprint(b.text, settings), settings
    )
    jaccard, containment = dedup.exact_similarity(a.text, b.text, settings)
    verdict = "fold" if similarity.folds else "do not fold"
    stored = "the same story" if story_a == story_b else "different stories"
    sim = similarity
    click.echo(f"estimated  Jaccard {sim.jaccard_est:.3f}  containment {sim.containment_est:.3f}")
    click.echo(f"exact      Jaccard {jaccard:.3f}  containment {containment:.3f}")
    click.echo(f"facts      overlap {similarity.fact_overlap:.3f}")
    click.echo(f"verdict    {verdict}: {similarity.reason}")
    click.echo(f"stored in  {stored} ({story_a}, {story_b})")


@cli.command()
@click.option("--since", default="7d", show_default=True, help="Refold articles first seen since.")
@click.pass_obj
def refold(obj: Context, since: str) -> None:
    """Recompute stories after a change of [dedup] settings."""
    from newsfold import pipeline

    window = _duration(since, "--since")
    assert window is not None
    with obj.store() as store, store.run_lock(wait=True):
        count = pipeline.refold(obj.settings, store, utcnow() - window, utcnow())
    click.echo(f"refolded {count} articles")


@cli.command()
@click.pass_obj
def check(obj: Context) -> None:
    """Verify the store's integrity and schema version (exit 1 on a problem)."""
    with obj.store() as store:
        problems = store.check()
    for problem in problems:
        click.echo(f"newsfold: {problem}", err=True)
    if problems:
        raise SystemExit(EXIT_FAILED)
    click.echo("store ok")
