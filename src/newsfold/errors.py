"""The one exception tree of newsfold.

NewsfoldError
 ├── ConfigError        a bad setting: names the key (exit 1)
 ├── StoreError         the store cannot be opened or is not at a known schema version
 │    └── LockedError   another run holds the run lock (exit 75)
 ├── FetchError         a request failed: names the URL, the kind and whether it is transient
 ├── ParseError         a body is not a feed (HTML, empty, garbage): names the URL
 └── ExtractError       a page gave no text: names the URL

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


class FetchError(NewsfoldError):
    """A request failed.

    `kind` is a short stable label ("http_404", "timeout", "too_large", "blocked", ...) used for
    counting; `transient` says whether trying again later may succeed; `retry_after` carries a
    server's Retry-After in seconds when it sent one.
    """

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
        super().__init__(f"{url}: {cause}")
        self.url = url
        self.cause = cause
        self.kind = kind
        self.transient = transient
        self.retry_after = retry_after
        self.status = status


class ParseError(NewsfoldError):
    """A body could not be read as a feed."""

    def __init__(self, url: str, cause: str) -> None:
        super().__init__(f"{url}: {cause}")
        self.url = url
        self.cause = cause
        self.kind = "parse"
        self.transient = False


class ExtractError(NewsfoldError):
    """A page yielded no usable text, or a worker step timed out or died."""

    kind = "extract"
    transient = True

    def __init__(self, url: str, cause: str) -> None:
        super().__init__(f"{url}: {cause}")
        self.url = url
        self.cause = cause
