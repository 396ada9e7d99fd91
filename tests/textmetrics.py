"""Token F1, the corpus ground truth and the plain-trafilatura baseline, for tests and benches.

The corpus lives in /work/shared/corpus (``../shared/corpus`` from the repository root); its
README.md describes each collection and the shape of its truth files.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import re
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import trafilatura

from newsfold.model import Extracted
from tests.corpus import CORPUS as CORPUS

# Readability's own tests run every page under this address; the corpus has no real URL for them.
READABILITY_URL = "http://fakehost/test/page.html"
_WORD = re.compile(r"\w+")


def tokens(text: str) -> Counter[str]:
    """The bag of lowercase word tokens of a text."""
    return Counter(_WORD.findall(text.lower()))


def token_f1(predicted: str, truth: str) -> float:
    """Bag-of-words F1 of `predicted` against `truth` (1.0 when both hold no words)."""
    got, want = tokens(predicted), tokens(truth)
    if not got or not want:
        return float(got == want)
    overlap = sum((got & want).values())
    if not overlap:
        return 0.0
    precision = overlap / sum(got.values())
    recall = overlap / sum(want.values())
    return 2 * precision * recall / (precision + recall)


def plain_trafilatura(body: bytes, *, url: str, content_type: str | None) -> Extracted:
    """The baseline to compare with: trafilatura.extract on the raw bytes, default settings.

    Same signature as newsfold.extract.extract_page, so ExtractPool can run it too.
    """
    return Extracted(text=plain_text(body))


def plain_text(body: bytes) -> str:
    return trafilatura.extract(body) or ""


@functools.cache
def plain_corpus_texts() -> tuple[str, ...]:
    """`plain_trafilatura`'s text of every page of `corpus_pages()`, in its order: made once a
    test session for the tests that hold newsfold's texts against it."""
    with ProcessPoolExecutor(os.cpu_count()) as executor:
        return tuple(executor.map(plain_text, [p.body() for p in corpus_pages()], chunksize=8))


def mean_f1_by_collection(pages: list[CorpusPage], texts: list[str]) -> dict[str, float]:
    """Mean token F1 of each page's text against its truth text, per collection."""
    scores: dict[str, list[float]] = {}
    for page, text in zip(pages, texts, strict=True):
        if page.truth is not None:
            scores.setdefault(page.collection, []).append(token_f1(text, page.truth))
    return {name: sum(values) / len(values) for name, values in scores.items()}


def snippet_counts(pages: list[CorpusPage], texts: list[str]) -> tuple[int, int]:
    """trafilatura-eval: (main-text snippets found, boilerplate snippets absent) over all pages."""
    pairs = list(zip(pages, texts, strict=True))
    found = sum(snippet in text for page, text in pairs for snippet in page.with_snippets)
    absent = sum(snippet not in text for page, text in pairs for snippet in page.without_snippets)
    return found, absent


@dataclass(frozen=True, slots=True)
class CorpusPage:
    """One article page of the corpus with its ground truth, if it has one."""

    path: Path  # the .html.gz file
    collection: str  # folder under articles/: scrapinghub-aeb, fundus, readability, ...
    url: str
    truth_format: str | None
    truth: str | None = None  # the expected main text, for the text-truth collections
    with_snippets: tuple[str, ...] = field(default_factory=tuple)
    without_snippets: tuple[str, ...] = field(default_factory=tuple)

    def body(self) -> bytes:
        """The page's bytes as a server would send them, decompressed."""
        return gzip.decompress(self.path.read_bytes())


def corpus_pages(corpus: Path = CORPUS) -> list[CorpusPage]:
    """Every article page listed in the corpus manifest, in manifest order."""
    with (corpus / "manifest.jsonl").open(encoding="utf-8") as manifest:
        lines = [json.loads(line) for line in manifest if line.strip()]
    return [_page(corpus, line) for line in lines if line["kind"] == "article"]


def _page(corpus: Path, line: dict[str, Any]) -> CorpusPage:
    path = corpus / str(line["path"])
    fmt = line.get("truth_format")
    truth_paths = [corpus / str(p) for p in line.get("truth") or []]
    page = CorpusPage(
        path=path,
        collection=path.relative_to(corpus / "articles").parts[0],
        url=str(line.get("url") or _fallback_url(path, truth_paths)),
        truth_format=str(fmt) if fmt else None,
    )
    if fmt == "trafilatura-with-without":
        entry = _json(truth_paths[0])
        return replace(
            page,
            with_snippets=tuple(entry["with"]),
            without_snippets=tuple(entry["without"]),
        )
    if truth_paths:
        return replace(page, truth=_truth_text(str(fmt), truth_paths))
    return page


def _truth_text(fmt: str, paths: list[Path]) -> str:
    if fmt == "aeb-articleBody":
        return str(_json(paths[0])["articleBody"])
    if fmt == "fundus-structured":
        return str(_json(paths[0])["text"])
    suffix = {"readability-expected": "expected.txt", "newspaper-text": ".txt"}[fmt]
    (text_path,) = (p for p in paths if p.name.endswith(suffix))
    return text_path.read_text(encoding="utf-8")


def _fallback_url(path: Path, truth_paths: list[Path]) -> str:
    """Pages without a URL in the manifest: the truth's own URL, else a stand-in address."""
    for truth in truth_paths:
        if truth.suffix == ".json" and (url := _json(truth).get("url")):
            return str(url)
    if path.parent.parent.name == "readability":
        return READABILITY_URL
    return f"http://fakehost/{path.name.removesuffix('.html.gz')}"


def _json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data
