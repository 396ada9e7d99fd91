"""The one exception tree of newsfold.

NewsfoldError
 ├── ConfigError        a bad setting: names the key (exit 1)
 ├── StoreError         the store cannot be opened or is not at a known schema version
 │    ├── LockedError   another run holds the run lock (exit 75)
 │    └── StoreMissing  a command that only reads found no store (exit 1, nothing created)
 └── StageError         one feed or page failed at one stage: its URL, a kind, transient or not
      ├── FetchError    a request failed (with the status and Retry-After when there were some)
      ├── ParseError    a body could not be read as a feed: parsing it timed out, or
      │    └── NotAFeed the body itself is not a feed (HTML, empty, garbage)
      ├── ExtractError  a page gave no text, or extracting it timed out
      ├── PageSkipped   a page left alone: robots.txt, an empty answer, not HTML
      └── FoldError     a feed's articles could not be fingerprinted (a worker timed out or died)

A StageError costs one feed its check (recorded on the feed) or one page its text (the feed's
text is kept); never the run.

Errors pickle whole, so they cross from the worker processes as they are.
Library errors (httpx, feedparser, trafilatura, SQLAlchemy) are translated at the stage edge,
so every message a user sees is one line that names the feed or URL and the cause.
"""

from __future__ import annotations

from typing import Any


class NewsfoldError(Exception):
    """Root of every error newsfold raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take keyword arguments that Exception's pickling would drop.
        return (_restore, (self.__class__, self.args, self.__dict__))


def _restore(cls: type[NewsfoldError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ConfigError(NewsfoldError):
    """A setting has a bad key, type or value."""


class StoreError(NewsfoldError):
    """The store is unreachable, corrupt or at an unknown schema version."""


class LockedError(StoreError):
    """Another run holds the run lock."""


class StoreMissing(StoreError):
    """A command that only reads was pointed at a store that does not exist."""


class StageError(NewsfoldError):
    """One feed or page failed at one stage.

    `kind` is a short stable label ("http_404", "timeout", "parse", "robots", ...) used for
    counting; `transient` says whether trying again later may succeed.
    """

    def __init__(self, url: str, cause: str, *, kind: str, transient: bool) -> None:
        super().__init__(f"{url}: {cause}")
        self.url = url
        self.cause = cause
        self.kind = kind
        self.transient = transient


class FetchError(StageError):
    """A request failed; `retry_after` carries a server's Retry-After in seconds, if it sent one."""

    def __init__(
        self,
        url: str,
        cause: str,
        *,
        kind: str,
        transient: bool,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(url, cause, kind=kind, transient=transient)
        self.retry_after = retry_after
        self.status = status


class ParseError(StageError):
    """A body could not be read as a feed."""

    def __init__(self, url: str, cause: str) -> None:
        super().__init__(url, cause, kind="parse", transient=False)


class NotAFeed(ParseError):
    """The body itself is not a feed: the same body fails the same way, so it is remembered."""


class ExtractError(StageError):
    """A page yielded no usable text, or its extraction timed out or killed its worker."""

    def __init__(self, url: str, cause: str) -> None:
        super().__init__(url, cause, kind="extract", transient=True)


class PageSkipped(StageError):
    """A page not downloaded or not extracted, and why (`kind`: robots, empty, not_html)."""

    def __init__(self, url: str, cause: str, kind: str) -> None:
        super().__init__(url, cause, kind=kind, transient=False)


class FoldError(StageError):
    """A feed's new articles could not be fingerprinted: the worker timed out or died."""

    def __init__(self, url: str, cause: str) -> None:
        super().__init__(url, cause, kind="fold", transient=True)
