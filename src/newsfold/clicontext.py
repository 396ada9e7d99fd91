"""What every command shares: its context (config, store URL, verbosity), the global options it
also takes after its name, the store it opens, and the one-line failure every error becomes."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from newsfold import logs
from newsfold.config import Settings, load_settings, parse_duration
from newsfold.errors import ConfigError
from newsfold.tick import default_db_path

if TYPE_CHECKING:
    from newsfold.store import Store

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 75


@dataclass
class Context:
    config_path: Path | None
    db_url: str
    verbosity: int
    log_format: str
    reads_only: bool = False  # the command only reads: a missing store is an error, not made
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        return self.load_config()

    def load_config(self) -> Settings:
        """Read and check the config file and environment, once; a bad one is a ConfigError."""
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    def store(self) -> AbstractContextManager[Store]:
        return opened_store(self.db_url, self.verbosity, create=not self.reads_only)


@contextmanager
def opened_store(db_url: str, verbosity: int = 0, *, create: bool = True) -> Iterator[Store]:
    """The store at `db_url`, brought up to the current schema, closed at the end; without
    `create`, a missing store is a StoreMissing ("no store at PATH") and nothing is made.

    A migration that rewrites stored rows (building the search index of a large store) shows
    a progress bar on a terminal.
    """
    from newsfold.output import MigrationBar
    from newsfold.store import open_store

    store = open_store(db_url, create=create)
    try:
        with MigrationBar(show=verbosity >= 0 and sys.stderr.isatty()) as bar:
            store.migrate(bar.update)
        yield store
    finally:
        store.close()


def utcnow() -> datetime:
    return datetime.now(UTC)


def config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def default_config() -> Path | None:
    path = config_home() / "newsfold" / "newsfold.toml"
    return path if path.exists() else None


def default_db() -> str:
    return f"sqlite:///{default_db_path(dict(os.environ))}"


def db_url_of(value: str) -> str:
    """Accept a plain path as well as a sqlite:/// or postgresql:// URL."""
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


def _late_option(*names: str, apply: Callable[[Context, Any], None], **kwargs: Any) -> click.Option:
    """A global option given after the command's name (`newsfold run -v`): it overrides the
    value given before it. Hidden from the command's help: `newsfold --help` documents it."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value:  # not given: None, or a count of 0
            obj = ctx.find_object(Context)
            assert obj is not None  # the group's callback made it before any command parses
            apply(obj, value)
            logs.configure(obj.verbosity, obj.log_format)

    return click.Option(names, expose_value=False, hidden=True, callback=callback, **kwargs)


def _late_global_options() -> list[click.Parameter]:
    return [
        _late_option(
            "--config",
            type=click.Path(path_type=Path),
            apply=lambda obj, path: setattr(obj, "config_path", path),
        ),
        _late_option("--db", apply=lambda obj, db: setattr(obj, "db_url", db_url_of(db))),
        _late_option(
            "-q",
            "--quiet",
            count=True,
            apply=lambda obj, n: setattr(obj, "verbosity", obj.verbosity - n),
        ),
        _late_option(
            "-v",
            "--verbose",
            count=True,
            apply=lambda obj, n: setattr(obj, "verbosity", obj.verbosity + n),
        ),
        _late_option(
            "--log-format",
            type=click.Choice(["text", "json"]),
            apply=lambda obj, fmt: setattr(obj, "log_format", fmt),
        ),
    ]


class Command(click.Command):
    """A command that takes the global options after its name too, where people put them.

    `reads_only=True` marks a command that only reads the store: it never creates one. Every
    command checks the config it is given, whether it uses it or not."""

    def __init__(self, *args: Any, reads_only: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads_only = reads_only
        self.params.extend(_late_global_options())

    def invoke(self, ctx: click.Context) -> Any:
        obj = ctx.find_object(Context)
        if obj is not None:
            obj.reads_only = self.reads_only
            obj.load_config()
        return super().invoke(ctx)


class Group(click.Group):
    command_class = Command
    group_class = type  # subgroups (`feeds`) are _Groups too, so their commands are _Commands


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"newsfold: {message}", err=True)
    sys.exit(code)


def duration(value: str | None, option: str) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value, option)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def print_json(data: Any) -> None:
    from newsfold.output import json_value

    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=json_value))
