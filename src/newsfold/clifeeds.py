"""`newsfold feeds ...`: add, list, remove, import and export the feeds the store watches."""

from __future__ import annotations

from pathlib import Path

import click

from newsfold.clicontext import Context, Group, print_json, utcnow
from newsfold.model import FeedSource


@click.group(cls=Group)
def feeds() -> None:
    """Add, list, remove, import and export feeds."""


@feeds.command("add")
@click.argument("url")
@click.option("--name", help="A display name.")
@click.pass_obj
def feeds_add(obj: Context, url: str, name: str | None) -> None:
    """Add a feed; a site's home page is searched for its feed(s)."""
    import asyncio

    from newsfold.discover import find_feeds

    found = asyncio.run(find_feeds(url, obj.settings.fetch))
    with obj.store() as store:
        for feed_url in found:
            added = store.add_feed(FeedSource(url=feed_url, name=name), utcnow())
            click.echo(f"{'added' if added else 'already there'}: {feed_url}")


@feeds.command("list", reads_only=True)
@click.option("--json", "as_json", is_flag=True, help="A JSON array, one object per feed.")
@click.pass_obj
def feeds_list(obj: Context, as_json: bool) -> None:
    """Each feed's state, last error and next check."""
    from newsfold import output

    with obj.store() as store:
        states = store.feeds()
    if as_json:
        print_json([output.feed_json(f) for f in states])
    elif states:
        output.print_feeds(states)
    else:
        click.echo("No feeds yet: add one with `newsfold feeds add URL` or `feeds import FILE`.")


@feeds.command("remove")
@click.argument("feed")
@click.pass_obj
def feeds_remove(obj: Context, feed: str) -> None:
    """Stop watching FEED, given by its URL or its name as `feeds list` shows it (its articles
    and stories stay)."""
    from newsfold.feedlists import matching_feeds

    with obj.store() as store:
        found = matching_feeds(store.feeds(), feed)
        if not found:
            raise click.ClickException(f"no such feed: {feed}")
        if len(found) > 1:
            urls = ", ".join(f.url for f in found)
            raise click.ClickException(f"{len(found)} feeds are called {feed!r}; give one: {urls}")
        store.remove_feed(found[0].url)
    click.echo(f"removed: {found[0].url}")


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


@feeds.command("export", reads_only=True)
@click.option("--format", "fmt", type=click.Choice(["opml", "toml"]), default="opml")
@click.pass_obj
def feeds_export(obj: Context, fmt: str) -> None:
    """Print the feed list as OPML or TOML."""
    from newsfold.feedlists import write_opml, write_toml

    with obj.store() as store:
        sources = [FeedSource(f.url, f.name, f.interval) for f in store.feeds()]
    click.echo(write_opml(sources) if fmt == "opml" else write_toml(sources), nl=False)
