"""Settings from TOML and the environment; the generated reference matches the shipped files."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from newsfold import configdoc
from newsfold.config import load_settings
from newsfold.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "newsfold.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_file_and_environment(tmp_path: Path) -> None:
    """TOML values apply, and NEWSFOLD_* variables override them."""
    path = write(
        tmp_path,
        '[fetch]\ntimeout = 5\n[dedup]\nwindow = "3d"\n'
        '[[feeds]]\nurl = "https://a.example/feed"\ninterval = "15m"\n',
    )
    settings = load_settings(
        path, env={"NEWSFOLD_FETCH_TIMEOUT": "7.5", "NEWSFOLD_FETCH_RESPECT_ROBOTS": "off"}
    )
    assert settings.fetch.timeout == 7.5
    assert settings.fetch.respect_robots is False
    assert settings.dedup.window == timedelta(days=3)
    assert settings.feeds[0].interval == timedelta(minutes=15)


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[fetch]\ntimeot = 5\n", {}, "unknown config key: fetch.timeot"),
        ("[fecth]\n", {}, "unknown config section or key: fecth"),
        ('[fetch]\ntimeout = "soon"\n', {}, "fetch.timeout: expected a number"),
        ("[fetch]\nconcurrency = 0\n", {}, "fetch.concurrency: must be positive"),
        ('[schedule]\nmin_interval = "2d"\n', {}, "schedule.min_interval: must not exceed"),
        ("[dedup]\nthreshold = 1.5\n", {}, "dedup.threshold: must be in"),
        ('[dedup]\nwindow = "a week"\n', {}, "dedup.window: expected a duration"),
        ("", {"NEWSFOLD_FETCH_PER_HOST": "many"}, "NEWSFOLD_FETCH_PER_HOST"),
        ('[[feeds]]\nname = "x"\n', {}, "feeds[0].url"),
        ("[fetch\n", {}, "not valid TOML"),
    ],
)
def test_bad_settings_name_the_key(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    """A bad key, type or value is one ConfigError line naming the key."""
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, text), env=env)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_example_config_is_generated_from_the_code() -> None:
    """config/newsfold.toml is exactly what the declarations produce, and loads as the defaults."""
    path = ROOT / "config" / "newsfold.toml"
    assert path.read_text(encoding="utf-8") == configdoc.example_toml()
    assert load_settings(path, env={}) == load_settings(None, env={})


def test_readme_reference_is_generated_from_the_code() -> None:
    """README.md carries the config reference table the declarations produce."""
    assert configdoc.reference_markdown() in (ROOT / "README.md").read_text(encoding="utf-8")


def test_printed_settings_load_back_the_same(tmp_path: Path) -> None:
    """What `newsfold config` prints is valid TOML that loads as the settings in force, control
    characters, quotes and backslashes in settings and feed names included."""
    text = r"""
[fetch]
user_agent = "bot\u0001 \"quoted\" back\\slash \u007f\ttab"
max_bytes = 2_500_000

[dedup]
preferred_outlets = ["a\u0002.example", "b.example"]

[[feeds]]
url = "https://example.org/feed"
name = "Bell\u0007 \r\n name"
interval = "2h"
"""
    settings = load_settings(write(tmp_path, text), env={})
    assert "\x01" in settings.fetch.user_agent
    printed = configdoc.effective_toml(settings)
    (tmp_path / "again").mkdir()
    assert load_settings(write(tmp_path / "again", printed), env={}) == settings
