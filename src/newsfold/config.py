"""Settings: TOML file + NEWSFOLD_<SECTION>_<KEY> environment overrides -> one frozen Settings.

Every key is declared once below with its default and a one-line meaning; the config reference in
README.md and config/newsfold.toml are generated from these declarations.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import re
import tomllib
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, get_type_hints

from newsfold.errors import ConfigError
from newsfold.model import FeedSource

ENV_PREFIX = "NEWSFOLD_"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def doc(text: str, default: Any) -> Any:
    """Declare a setting: its default and its one-line meaning."""
    return field(default=default, metadata={"doc": text})


def parse_duration(value: str | int | float, key: str = "duration") -> timedelta:
    """'90s', '30m', '24h', '7d', '2w' or a number of seconds."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a duration such as '30m', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        if not match:
            raise ConfigError(f"{key}: expected a duration such as '30m' or '7d', got {value!r}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The way people write it: 90s, 30m, 6h, 24h, 7d."""
    seconds = int(value.total_seconds())
    if seconds >= 2 * _UNIT_SECONDS["d"] and seconds % _UNIT_SECONDS["d"] == 0:
        return f"{seconds // _UNIT_SECONDS['d']}d"
    for unit in ("h", "m"):
        if seconds and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True, slots=True)
class FetchSettings:
    user_agent: str = doc(
        "User-Agent sent with every request",
        "newsfold/0.1 (+https://github.com/newsfold/newsfold)",
    )
    timeout: float = doc("seconds allowed for one whole request, body included", 20.0)
    max_bytes: int = doc("body cap in bytes, counted after decompression", 15_000_000)
    concurrency: int = doc("requests in flight overall", 32)
    per_host: int = doc("requests in flight per host, feeds and pages together", 2)
    max_redirects: int = doc("redirect hops followed before giving up", 5)
    allow_private_networks: bool = doc(
        "allow loopback and private targets (refused by default); link-local and cloud metadata"
        " addresses stay refused unless in allowed_networks",
        False,
    )
    allowed_networks: tuple[str, ...] = doc(
        "CIDR ranges let through the address guard although not public (e.g. 10.8.0.0/16)", ()
    )
    respect_robots: bool = doc("honour robots.txt for article pages", True)
    max_new_per_feed: int = doc(
        "new entries taken from one feed in one run; the rest wait for the next", 300
    )
    max_retry_after: timedelta = doc(
        "longest Retry-After honoured; a longer one is capped", timedelta(hours=6)
    )


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    default_interval: timedelta = doc(
        "check interval for a feed with no publishing history yet", timedelta(minutes=30)
    )
    min_interval: timedelta = doc(
        "shortest interval between two checks of a feed", timedelta(minutes=5)
    )
    max_interval: timedelta = doc(
        "longest interval between two checks of a feed", timedelta(hours=24)
    )
    max_backoff: timedelta = doc("longest wait after repeated failures", timedelta(hours=24))
    lease: timedelta = doc(
        "how long a worker keeps a feed it took; if the worker dies, another takes the feed"
        " after this",
        timedelta(minutes=30),
    )


@dataclass(frozen=True, slots=True)
class ExtractSettings:
    workers: int = doc("extraction processes; 0 means one per CPU core", 0)
    page_timeout: float = doc("seconds one page may spend in extraction", 30.0)
    fetch_pages: bool = doc("download article pages (off: keep the feed's own text)", True)


@dataclass(frozen=True, slots=True)
class DedupSettings:
    threshold: float = doc(
        "share of the shorter text's word shingles found in the other (containment) at which"
        " copies fold, if their facts agree",
        0.5,
    )
    window: timedelta = doc("how far back a new article is compared", timedelta(days=7))
    shingle_size: int = doc("words per shingle", 5)
    num_perm: int = doc("MinHash permutations", 128)
    fact_threshold: float = doc(
        "share of the numbers, and of the names, of the text with fewer of them that the other"
        " must have for copies to fold",
        0.8,
    )
    lsh_threshold: float = doc(
        "Jaccard index around which LSH bands start to find candidates (lower finds more)", 0.2
    )
    lead_words: int = doc(
        "words at the start of a text that get LSH keys of their own, so copies cut short are"
        " found (0: none)",
        100,
    )
    fact_sketch_size: int = doc("fact-token hashes kept per article", 128)
    preferred_outlets: tuple[str, ...] = doc(
        "host names whose copy becomes a story's canonical copy, in order of preference", ()
    )


@dataclass(frozen=True, slots=True)
class Settings:
    fetch: FetchSettings = field(default_factory=FetchSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    extract: ExtractSettings = field(default_factory=ExtractSettings)
    dedup: DedupSettings = field(default_factory=DedupSettings)
    feeds: tuple[FeedSource, ...] = ()

    def replace(self, section: str, **changes: Any) -> Settings:
        """A copy with some keys of one section changed (tests and the CLI use it)."""
        current = getattr(self, section)
        return dataclasses.replace(self, **{section: dataclasses.replace(current, **changes)})


SECTIONS: dict[str, type] = {
    "fetch": FetchSettings,
    "schedule": ScheduleSettings,
    "extract": ExtractSettings,
    "dedup": DedupSettings,
}


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the TOML file (if any), apply NEWSFOLD_* overrides, validate everything."""
    raw: dict[str, Any] = _read_toml(path) if path else {}
    env = os.environ if env is None else env
    unknown = set(raw) - set(SECTIONS) - {"feeds"}
    if unknown:
        name = sorted(unknown)[0]
        raise ConfigError(f"unknown config section or key: {name}{_did_you_mean(name, SECTIONS)}")
    sections = {
        name: _build_section(name, cls, raw.get(name, {}), env) for name, cls in SECTIONS.items()
    }
    feeds = tuple(_feed_source(item, i) for i, item in enumerate(raw.get("feeds", [])))
    settings = Settings(feeds=feeds, **sections)
    _validate(settings)
    return settings


FEED_KEYS = frozenset({"url", "name", "interval"})  # of a [[feeds]] entry


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    """ " (did you mean timeout?)" for a key one slip away from a known one; else ""."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _build_section(name: str, cls: type, values: Any, env: Mapping[str, str]) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{name}: expected a table [{name}]")
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in known:
            raise ConfigError(f"unknown config key: {name}.{key}{_did_you_mean(key, known)}")
    kwargs: dict[str, Any] = {}
    for key in known:
        env_name = f"{ENV_PREFIX}{name}_{key}".upper()
        if env_name in env:
            kwargs[key] = _coerce(f"{name}.{key} ({env_name})", hints[key], env[env_name], True)
        elif key in values:
            kwargs[key] = _coerce(f"{name}.{key}", hints[key], values[key], False)
    return cls(**kwargs)


def _coerce(key: str, kind: Any, value: Any, from_env: bool) -> Any:
    if kind is bool:
        if from_env and isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if kind is timedelta:
        return parse_duration(value, key)
    if kind in (int, float):
        return _coerce_number(key, kind, value)
    if kind is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if _is_str_tuple(kind):
        items = value.split(",") if from_env and isinstance(value, str) else value
        if isinstance(items, list | tuple) and all(isinstance(i, str) for i in items):
            return tuple(i.strip() for i in items if i.strip())
        raise ConfigError(f"{key}: expected a list of strings, got {value!r}")
    raise ConfigError(f"{key}: unsupported setting type")  # pragma: no cover - declarations only


def _coerce_number(key: str, kind: type, value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = kind(value.replace("_", ""))
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if kind is int and not float(value).is_integer():
        raise ConfigError(f"{key}: expected a whole number, got {value!r}")
    return kind(value)


def _is_str_tuple(kind: Any) -> bool:
    return getattr(kind, "__origin__", None) is tuple or isinstance(kind, types.GenericAlias)


def _feed_source(item: Any, index: int) -> FeedSource:
    if not isinstance(item, dict) or not isinstance(item.get("url"), str):
        raise ConfigError(f"feeds[{index}].url: every [[feeds]] entry needs a url string")
    unknown = set(item) - FEED_KEYS
    if unknown:
        key = sorted(unknown)[0]
        hint = _did_you_mean(key, FEED_KEYS)
        raise ConfigError(f"unknown config key: feeds[{index}].{key}{hint}")
    name = item.get("name")
    if name is not None and not isinstance(name, str):
        raise ConfigError(f"feeds[{index}].name: expected a string, got {name!r}")
    interval = item.get("interval")
    return FeedSource(
        url=item["url"].strip(),
        name=name,
        interval=parse_duration(interval, f"feeds[{index}].interval") if interval else None,
    )


_POSITIVE = {
    "fetch.timeout",
    "fetch.max_bytes",
    "fetch.concurrency",
    "fetch.per_host",
    "extract.page_timeout",
    "dedup.shingle_size",
    "dedup.num_perm",
    "dedup.fact_sketch_size",
    "schedule.min_interval",
    "schedule.default_interval",
    "schedule.max_interval",
    "schedule.lease",
    "dedup.window",
}


def _validate(settings: Settings) -> None:
    for name, key, value in iter_settings(settings):
        label = f"{name}.{key}"
        numeric = value.total_seconds() if isinstance(value, timedelta) else value
        is_number = isinstance(numeric, int | float) and not isinstance(numeric, bool)
        if is_number and (numeric < 0 or (label in _POSITIVE and numeric == 0)):
            raise ConfigError(f"{label}: must be positive, got {value!r}")
    for key in ("threshold", "lsh_threshold"):
        value = getattr(settings.dedup, key)
        if not 0.0 < value <= 1.0:
            raise ConfigError(f"dedup.{key}: must be in (0, 1], got {value}")
    if settings.dedup.fact_threshold > 1.0:
        raise ConfigError(
            f"dedup.fact_threshold: must be at most 1, got {settings.dedup.fact_threshold}"
        )
    schedule = settings.schedule
    if schedule.min_interval > schedule.max_interval:
        raise ConfigError("schedule.min_interval: must not exceed schedule.max_interval")
    if settings.fetch.per_host > settings.fetch.concurrency:
        raise ConfigError("fetch.per_host: must not exceed fetch.concurrency")
    _validate_networks(settings.fetch.allowed_networks)


def _validate_networks(networks: tuple[str, ...]) -> None:
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigError(
                f"fetch.allowed_networks: expected CIDR ranges such as 10.8.0.0/16, got {network!r}"
            ) from None


def iter_settings(settings: Settings) -> list[tuple[str, str, Any]]:
    """(section, key, value) for every declared setting, in declaration order."""
    return [
        (name, f.name, getattr(getattr(settings, name), f.name))
        for name, cls in SECTIONS.items()
        for f in dataclasses.fields(cls)
    ]


def setting_docs() -> list[tuple[str, str, Any, str]]:
    """(section, key, default, meaning) for every setting: the source of the config reference."""
    return [
        (name, f.name, getattr(cls(), f.name), f.metadata["doc"])
        for name, cls in SECTIONS.items()
        for f in dataclasses.fields(cls)
    ]
