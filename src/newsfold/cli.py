"""The command line: a thin shell over the library. One function per command.

Exit codes: 0 it ran (feeds may have failed, each reported), 1 it could not run (bad config,
store unreachable), 2 usage error, 75 another run holds the lock, 130 interrupted.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from newsfold import __version__, logs
from newsfold.clicontext import (
    EXIT_FAILED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_USAGE,
    Context,
    Group,
    config_home,
    db_url_of,
    default_config,
    default_db,
    duration,
    fail,
    opened_store,
    print_json,
    utcnow,
)
from newsfold.clifeeds import feeds
from newsfold.config import Settings
from newsfold.errors import LockedError, NewsfoldError
from newsfold.model import RunReport, Story
from newsfold.tick import idle_until, run_lock

if TYPE_CHECKING:
    from newsfold.pipeline import RunOptions
    from newsfold.store import Store

log = logging.getLogger("newsfold")


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
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
        config_path=config_path or default_config(),
        db_url=db_url_of(db) if db else default_db(),
        verbosity=verbosity,
        log_format=log_format,
    )


cli.add_command(feeds)


def main() -> None:
    """Console entry point: every error becomes one line on stderr and an exit code."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted", EXIT_FAILED)
    except click.UsageError as exc:
        exc.show()  # click's own: the usage, then the error
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)
    except LockedError as exc:
        fail(str(exc), EXIT_LOCKED)
    except NewsfoldError as exc:
        fail(str(exc), EXIT_FAILED)
    except BrokenPipeError:
        # The reader went away (`newsfold stories | head`): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_FAILED)
    except OSError as exc:  # a file given on the command line that cannot be read or written
        fail(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    sys.exit(EXIT_OK)


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
    settings = obj.settings  # a bad config fails here, before the store is touched
    window = duration(max_time, "--max-time")
    # The lock and the schedule come first: a cron tick that finds another run going, or
    # nothing due, ends before the store's and the stages' libraries are even loaded.
    with run_lock(obj.db_url, wait) as exclusive:
        # An idle tick leaves an existing metrics file alone: it still describes the last run.
        if not include_all and (metrics_file is None or metrics_file.exists()):
            idle = idle_until(obj.db_url, settings.feeds, utcnow())
            if idle is not None:
                _say_nothing_due(idle, obj.verbosity)
                return
        from newsfold import pipeline, report

        options = pipeline.RunOptions(include_all=include_all, max_time=window)
        with obj.store() as store:
            if exclusive:
                store.release_leases(None)  # no other run is alive: a killed run's leases are void
            result = _run_pass(settings, store, options, obj.verbosity)
            if not store.feeds():
                log.warning(_no_feeds_message(obj.config_path))
            report.log_summary(result, obj.verbosity)
            if metrics_file:
                from newsfold import metrics

                metrics.write_metrics(metrics_file, result, store.stats(), utcnow())


def _say_nothing_due(next_due: datetime, verbosity: int) -> None:
    if logs.summary_wanted(verbosity):
        fields = {"event": "nothing_due", "next_check": next_due.isoformat()}
        when = next_due.strftime("%Y-%m-%d %H:%M:%S UTC")
        log.log(logs.NOTICE, f"no feed due; the next is due at {when}", extra={"fields": fields})


def _no_feeds_message(config_path: Path | None) -> str:
    """What to do when there is nothing to watch; it names the config file to put feeds in."""
    config = config_path or config_home() / "newsfold" / "newsfold.toml"
    return (
        "no feeds to check: add one with `newsfold feeds add URL`, a list with"
        f" `newsfold feeds import FILE`, or [[feeds]] entries in {config}"
    )


def _run_pass(settings: Settings, store: Store, options: RunOptions, verbosity: int) -> RunReport:
    """Sync the config's feeds into the store, then one run, with progress on a terminal."""
    import asyncio

    from newsfold import pipeline, report

    now = utcnow()
    store.sync_feeds(settings.feeds, now)
    due = store.count_due_feeds(now, include_all=options.include_all)
    with report.make_progress(verbosity, due) as progress:
        return asyncio.run(pipeline.run(settings, store, utcnow, options, progress))


# -- stories and outputs ---------------------------------------------------------------------------


def _load_stories(obj: Context, since: str | None, limit: int | None) -> list[Story]:
    window = duration(since, "--since")
    with obj.store() as store:
        return _stories(store, obj.settings, utcnow() - window if window else None, limit)


def _stories(
    store: Store, settings: Settings, since: datetime | None, limit: int | None
) -> list[Story]:
    """Newest first, each with its canonical copy first."""
    from newsfold.stories import recent_stories

    return recent_stories(store, settings.dedup.preferred_outlets, since, limit)


SINCE_HELP = (
    "Stories with a copy first seen (fetched by newsfold) within this long, whenever the copies"
    " say they were published."
)


@cli.command(reads_only=True)
@click.option("--since", default="24h", show_default=True, help=SINCE_HELP)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="A JSON array, as in export --format jsonl.")
@click.pass_obj
def stories(obj: Context, since: str, limit: int, as_json: bool) -> None:
    """Newest stories first (by first seen): title, copies, first outlet, published."""
    from newsfold import output

    found = _load_stories(obj, since, limit)
    if as_json:
        print_json([output.story_json(s) for s in found])
    elif found:
        output.print_stories(found)
    else:
        click.echo(f"No stories updated in the last {since}.")


class _BadQuery(click.ClickException):
    """A query with nothing to search: a usage error, told in one line."""

    exit_code = EXIT_USAGE


@cli.command(reads_only=True)
@click.argument("words", metavar="QUERY", nargs=-1, required=True)
@click.option("--since", help="Stories updated within this long [default: all].")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="A JSON array: stories with score, snippet.")
@click.pass_obj
def search(
    obj: Context, words: tuple[str, ...], since: str | None, limit: int, as_json: bool
) -> None:
    """Stories whose copies match the query, best first, each story once.

    The query: words (all must match), "quoted phrases", -excluded words, OR between
    alternatives; case and accents do not matter. Quote it for the shell, and put -- before a
    query that starts with a minus:

    \b
        newsfold search 'zurich "central bank" -football'
        newsfold search -- '-football flood'
    """
    query = " ".join(words)
    from newsfold import output
    from newsfold.query import QueryError
    from newsfold.search import find_stories
    from newsfold.stories import canonical_first

    window = duration(since, "--since")
    preferred = obj.settings.dedup.preferred_outlets
    with obj.store() as store:
        try:
            found = find_stories(store, query, utcnow() - window if window else None, limit)
        except QueryError as exc:
            raise _BadQuery(str(exc)) from None
    found = [dataclasses.replace(f, story=canonical_first(f.story, preferred)) for f in found]
    if as_json:
        print_json([output.found_json(f) for f in found])
    elif found:
        output.print_found(found)
    else:
        click.echo(f"No stories match {query!r}" + (f" in the last {since}." if since else "."))


@cli.command(reads_only=True)
@click.argument("story_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def story(obj: Context, story_id: int, as_json: bool) -> None:
    """One story and every copy: outlet, URL, published, similarity."""
    from newsfold import output
    from newsfold.stories import one_story

    with obj.store() as store:
        found = one_story(store, story_id, obj.settings.dedup.preferred_outlets)
    if found is None:
        raise click.ClickException(f"no story {story_id}")
    if found.id != story_id:
        click.echo(f"story {story_id} was merged into story {found.id}", err=True)
    if as_json:
        print_json(output.story_json(found))
    else:
        output.print_story(found, _shared_with_canonical(found, obj.settings))


def _shared_with_canonical(story: Story, settings: Settings) -> list[float]:
    """Per copy: how much of the shorter text, the copy's or the canonical's, is in the other."""
    from newsfold.dedup import exact_similarity

    canonical = story.articles[0].text
    return [exact_similarity(canonical, c.text, settings.dedup)[1] for c in story.articles]


@cli.command(reads_only=True)
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "atom", "html"]), required=True)
@click.option("--since", help=f"{SINCE_HELP} [default: all]")
@click.option(
    "--text",
    "with_text",
    is_flag=True,
    help="csv: add each article's site, author, language and whole text (jsonl always has them).",
)
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), help="File [default: stdout]."
)
@click.pass_obj
def export(obj: Context, fmt: str, since: str | None, with_text: bool, output: Path | None) -> None:
    """Export stories as JSONL, CSV, Atom 1.0 or a self-contained HTML digest."""
    from newsfold import exports

    if with_text and fmt not in ("csv", "jsonl"):
        raise click.BadParameter(
            f"applies to csv (jsonl has the text), not {fmt}", param_hint="--text"
        )
    stories = _load_stories(obj, since, None)
    text = exports.render(fmt, stories, utcnow(), with_text=with_text)
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


@cli.command(reads_only=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def stats(obj: Context, as_json: bool) -> None:
    """The store and config file in use; counts of feeds (ok / failing), articles, stories;
    the last run."""
    from newsfold import output

    with obj.store() as store:
        counts = store.stats()
    # Which store and which config: the first question when the numbers look wrong.
    config = str(obj.config_path) if obj.config_path else None
    counts = {"store": counts["store"], "config": config, **counts}
    if as_json:
        print_json(counts)
    else:
        output.print_stats(counts)


@cli.command("config")
@click.option("--example", is_flag=True, help="Print every setting at its default, commented.")
@click.pass_obj
def config_cmd(obj: Context, example: bool) -> None:
    """Print the settings in force (file + environment) as TOML."""
    from newsfold import configdoc

    click.echo(
        configdoc.example_toml() if example else configdoc.effective_toml(obj.settings), nl=False
    )


@cli.command()
@click.option(
    "--keep",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep the demo's SQLite store in this new file, to try other commands on it.",
)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.pass_obj
def demo(obj: Context, keep: Path | None, limit: int) -> None:
    """Run the whole job on bundled sample feeds served on 127.0.0.1; print the stories.

    Your config and store are left alone: the demo uses default settings and a throwaway
    SQLite store.
    """
    from newsfold import output, pipeline, report
    from newsfold.demo import DemoServer

    if keep is not None and keep.exists():
        raise click.BadParameter(f"{keep} already exists; name a new file", param_hint="--keep")
    with (
        DemoServer(utcnow()) as server,
        tempfile.TemporaryDirectory(prefix="newsfold-demo-") as scratch,
    ):
        settings = server.settings(Settings())
        path = keep.resolve() if keep else Path(scratch) / "demo.db"
        click.echo(
            f"Serving {len(server.feeds)} fictional outlets' feeds (RSS, Atom, JSON Feed)"
            f" and {len(server.articles)} articles\nat {server.base_url}/ ...\n"
        )
        with opened_store(f"sqlite:///{path}") as store:
            result = _run_pass(settings, store, pipeline.RunOptions(), obj.verbosity)
            found = _stories(store, settings, None, limit)
        unfinished = report.unfinished_line(result)
        click.echo(report.summary_line(result) + (f"\n{unfinished}" if unfinished else "") + "\n")
        if not found:
            raise click.ClickException("the demo made no stories: see the lines above")
        output.print_stories(found)
        largest = max(found, key=lambda s: len(s.articles))
        click.echo(f"\nThe largest story and its {len(largest.articles)} copies:\n")
        output.print_story(largest, _shared_with_canonical(largest, settings))
    if keep:
        click.echo(
            f"\nThe store is kept. Try the other commands on it:\n  newsfold --db {path} stories"
        )


# -- dedup: explain and redo -----------------------------------------------------------------------


@cli.command(reads_only=True)
@click.argument("url1")
@click.argument("url2")
@click.pass_obj
def explain(obj: Context, url1: str, url2: str) -> None:
    """Why two stored articles did or did not fold: Jaccard, containment, facts."""
    from newsfold.stories import NotStored, compare_stored

    with obj.store() as store:
        try:
            found = compare_stored(store, url1, url2, obj.settings.dedup)
        except NotStored as exc:
            raise click.ClickException(str(exc)) from None
    sim = found.similarity
    verdict = "fold" if sim.folds else "do not fold"
    stored = "the same story" if found.same_story else "different stories"
    click.echo(f"estimated  Jaccard {sim.jaccard_est:.3f}  containment {sim.containment_est:.3f}")
    click.echo(
        f"exact      Jaccard {found.exact_jaccard:.3f}  containment {found.exact_containment:.3f}"
    )
    click.echo(f"facts      overlap {sim.fact_overlap:.3f}")
    click.echo(f"verdict    {verdict}: {sim.reason}")
    click.echo(f"stored in  {stored} ({found.story_ids[0]}, {found.story_ids[1]})")


@cli.command()
@click.option("--since", default="7d", show_default=True, help="Refold articles first seen since.")
@click.pass_obj
def refold(obj: Context, since: str) -> None:
    """Recompute stories after a change of [dedup] settings."""
    from newsfold import pipeline

    window = duration(since, "--since")
    assert window is not None
    with run_lock(obj.db_url, wait=True) as exclusive, obj.store() as store:
        if exclusive:
            store.release_leases(None)
        count = pipeline.refold(obj.settings, store, utcnow() - window, utcnow())
    click.echo(f"refolded {count} articles")


@cli.command(reads_only=True)
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
