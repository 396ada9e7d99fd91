"""Where the tests find the shared corpus (real feeds and article pages with their true text, and
same-story groups; its README says what each file is), and how they skip without it.

The corpus lives beside the repository, at ../shared/corpus; NEWSFOLD_TEST_CORPUS names another
place. A clone without it still runs every test that does not read it (the demo's own pages and
the generated webs); each test that reads it skips with one reason, MISSING.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

CORPUS_VARIABLE = "NEWSFOLD_TEST_CORPUS"
CORPUS = Path(
    os.environ.get(CORPUS_VARIABLE) or Path(__file__).resolve().parents[2] / "shared" / "corpus"
)
HAVE_CORPUS = (CORPUS / "manifest.jsonl").is_file()
MISSING = f"needs the test corpus, not found at {CORPUS} (set {CORPUS_VARIABLE} to its path)"

# For a test, or a whole module (`pytestmark = needs_corpus`), that reads the corpus.
needs_corpus = pytest.mark.skipif(not HAVE_CORPUS, reason=MISSING)


def corpus_params(read: Callable[[], Iterable[Any]], arity: int = 1) -> list[Any]:
    """Parameters read from the corpus when a module is collected; without it, one parameter
    that skips with MISSING, so the test is listed as skipped and collection goes on."""
    if HAVE_CORPUS:
        return list(read())
    return [pytest.param(*[None] * arity, marks=pytest.mark.skip(reason=MISSING), id="no-corpus")]


def read_missing_corpus(error: BaseException | None) -> bool:
    """Whether `error` is a test reaching for a corpus file that is not there."""
    filename = getattr(error, "filename", None)
    return (
        not HAVE_CORPUS
        and isinstance(error, FileNotFoundError)
        and str(filename or "").startswith(str(CORPUS))
    )
