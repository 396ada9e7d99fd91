"""Dedup through the whole pipeline: outlet pages and feeds served over HTTP, stories scored.

A smaller cut of the dedup evaluation set (tests/foldpages.py; bench/bench_fold_e2e.py runs the
whole set): every corpus syndication group, 50 other corpus articles, 12 of them syndicated to
other outlets, and the templated trap stories with their copies. Feeds are checked concurrently,
so articles arrive in an order that varies from run to run. The floors sit well below what the
pipeline reaches (F1 0.96 to 0.99 here; folding this set's texts in 200 random orders gives F1
0.91 at worst, and never a merge) and far above what a wrong clustering gets (every page alone:
F1 0; pages folded by template: trap merges).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from newsfold.config import Settings
from newsfold.store.sql import SqlStore
from tests.foldpages import (
    RunScore,
    doc_link,
    pair_recall,
    run_all,
    score_run,
    serve_docs,
    story_by_link,
)
from tests.server import FeedServer
from tests.syndicate import (
    GROUPS_FILE,
    OUTLETS,
    Doc,
    corpus_texts,
    labelled_docs,
    paragraphs,
    trap_stories,
)

SEED = 3
OTHER_ARTICLES = 50  # corpus articles besides the syndication groups
ORIGINALS = 12  # of them, syndicated to other outlets
TRAP_SEED = 5  # its quakes 3 (Oaxaca) and 4 (Hokkaido) are both of magnitude 4.6


@pytest.fixture(scope="module")
def docs() -> list[Doc]:
    texts = corpus_texts()
    groups = json.loads(GROUPS_FILE.read_text(encoding="utf-8"))["groups"]
    grouped = {member["path"] for group in groups for member in group["members"]}
    others = sorted(key for key in texts if key not in grouped)
    chosen = grouped | set(random.Random(SEED).sample(others, OTHER_ARTICLES))
    return labelled_docs(SEED, ORIGINALS, {k: v for k, v in texts.items() if k in chosen})


@pytest.fixture(scope="module")
def site(docs: list[Doc]) -> Iterator[tuple[FeedServer, list[str]]]:
    """A server of this module's own: every page, and the outlets' section feeds."""
    with FeedServer() as server:
        yield server, serve_docs(server, docs)


@pytest.fixture(scope="module")
def run_settings() -> Settings:
    # Everything is on 127.0.0.1: more requests per host only make the run quicker.
    return Settings().replace("fetch", allow_private_networks=True, per_host=8, timeout=10.0)


def run_and_score(
    docs: list[Doc], server: FeedServer, feed_urls: list[str], settings: Settings, db: Path
) -> tuple[RunScore, dict[str, int]]:
    store = SqlStore(f"sqlite:///{db}")
    store.migrate()
    try:
        report = run_all(settings, store, feed_urls)
        assert report.feeds_failed == 0, report.failures_by_kind
        stories = story_by_link(store)
    finally:
        store.close()
    return score_run(docs, server.base_url, stories), stories


@pytest.fixture(scope="module")
def listed_run(
    docs: list[Doc],
    site: tuple[FeedServer, list[str]],
    run_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[RunScore, dict[str, int]]:
    """One run over the feeds in the order listed, on a fresh SQLite file."""
    server, feed_urls = site
    db = tmp_path_factory.mktemp("listed") / "newsfold.db"
    return run_and_score(docs, server, feed_urls, run_settings, db)


def test_copies_fold_and_stories_stay_apart(
    docs: list[Doc], listed_run: tuple[RunScore, dict[str, int]]
) -> None:
    """Every page becomes an article; copies fold (F1 >= 0.88) and nothing else does: no trap
    story joins another of its template, no same-event report joins another outlet's."""
    result, _stories = listed_run
    assert result.missing == ()
    score = result.score
    assert score.trap_merges == 0
    assert score.hard_negative_merges == 0
    assert score.precision >= 0.98, score
    assert score.recall >= 0.8, score
    assert score.f1 >= 0.88, score
    assert score.ari >= 0.88, score


def test_captured_pages_of_one_article_fold(
    docs: list[Doc], site: tuple[FeedServer, list[str]], listed_run: tuple[RunScore, dict[str, int]]
) -> None:
    """Each corpus group of one text (a wire copy, another capture or template of the same
    page) ends as one story, however different the pages around the text."""
    server, _feeds = site
    _result, stories = listed_run
    clusters = [stories[doc_link(d, server.base_url)] for d in docs]
    joined, pairs = pair_recall(docs, clusters)["corpus groups (captured pages)"]
    assert pairs >= 10
    assert joined == pairs


def test_order_of_arrival_changes_little(
    docs: list[Doc],
    site: tuple[FeedServer, list[str]],
    run_settings: Settings,
    listed_run: tuple[RunScore, dict[str, int]],
    tmp_path: Path,
) -> None:
    """The same feeds taken in reverse order fold the set about as well (F1 within 0.05), and
    still merge no trap and no same-event report."""
    server, feed_urls = site
    reverse, _ = run_and_score(
        docs, server, feed_urls[::-1], run_settings, tmp_path / "newsfold.db"
    )
    listed = listed_run[0].score
    assert reverse.score.trap_merges == 0
    assert reverse.score.hard_negative_merges == 0
    assert abs(reverse.score.f1 - listed.f1) <= 0.06, (listed, reverse.score)


def test_trap_copy_arriving_first_stays_out_of_another_story(
    run_settings: Settings, tmp_path: Path
) -> None:
    """A copy of one earthquake report that lost its paragraph of numbers, seen before the
    report itself, does not join the story of another quake of the same magnitude: their
    shared number agrees, but each opening names a place (and a day) the other lacks."""
    quakes = [d for d in trap_stories(TRAP_SEED) if d.kind == "trap:quake"]
    oaxaca, hokkaido = (d for d in quakes if d.id in ("trap-quake-3", "trap-quake-4"))
    assert oaxaca.title.split()[1] == hokkaido.title.split()[1]  # the same magnitude
    lead, _numbers, *rest = paragraphs(hokkaido.text)
    copy = replace(hokkaido, id="hokkaido-copy", text="\n\n".join([lead, *rest]), outlet=OUTLETS[3])
    store = SqlStore(f"sqlite:///{tmp_path / 'newsfold.db'}")
    store.migrate()
    try:
        with FeedServer() as server:
            for doc in (oaxaca, copy):  # one run each: the copy arrives second, alone
                run_all(run_settings, store, serve_docs(server, [doc]))
        stories = story_by_link(store)
    finally:
        store.close()
    assert stories[doc_link(copy, server.base_url)] != stories[doc_link(oaxaca, server.base_url)]
