"""The test suite in a bare clone: a `git clone` of this repository with no corpus beside it
collects every module, and a test that reads the corpus skips with one reason;
NEWSFOLD_TEST_CORPUS points the same clone at a corpus elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.corpus import CORPUS, CORPUS_VARIABLE, HAVE_CORPUS, needs_corpus

REPO = Path(__file__).resolve().parents[1]
# A corpus test, a test that reads no corpus, in one module.
SELECTED = ("tests/test_parse.py", "-k", "86_feeds or json_feed_with_no_items")


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed repository cloned where no `../shared` exists."""
    target = tmp_path_factory.mktemp("bare") / "newsfold"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(target)], check=True)
    assert not (target.parent / "shared").exists()
    return target


def pytest_in(clone: Path, *args: str, corpus: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFOLD_")}
    if corpus is not None:
        env[CORPUS_VARIABLE] = corpus
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", *args],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_bare_clone_collects_every_module(clone: Path) -> None:
    """Without the corpus, collection finds every test module and fails on none."""
    done = pytest_in(clone, "--collect-only", corpus=None)
    assert done.returncode == 0, done.stdout + done.stderr
    modules = {line.split("::")[0] for line in done.stdout.splitlines() if "::" in line}
    assert modules == {str(p.relative_to(REPO)) for p in (REPO / "tests").glob("test_*.py")}


def test_corpus_tests_skip_with_one_reason_in_a_bare_clone(clone: Path) -> None:
    """The corpus test skips, naming where the corpus was looked for and the variable; the
    other test runs."""
    done = pytest_in(clone, *SELECTED, corpus=None)
    assert done.returncode == 0, done.stdout + done.stderr
    expected = clone.parent / "shared" / "corpus"
    reason = f"needs the test corpus, not found at {expected} (set {CORPUS_VARIABLE} to its path)"
    assert reason in done.stdout
    assert "1 passed, 1 skipped" in done.stdout


@needs_corpus
def test_the_variable_points_a_clone_at_the_corpus(clone: Path) -> None:
    """NEWSFOLD_TEST_CORPUS=PATH: the same clone runs the corpus test."""
    assert HAVE_CORPUS
    done = pytest_in(clone, *SELECTED, corpus=str(CORPUS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
