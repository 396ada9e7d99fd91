"""`newsfold explain`, `refold` and `story` on a store filled by a real run of the console script.

The site: an AP wire story (its true text, from the corpus) on the wire's page; the same text
republished under a new headline; an outlet's version that opens with its own paragraph, keeps
the first half of the wire text (less one paragraph) and carries page chrome, which shares about
0.85 of its shingles with the wire (it folds at the default threshold of 0.5, not at 0.95); and
two market wraps of one template whose numbers differ (a trap: they must never fold).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import Workspace, normalised
from tests.foldpages import doc_link, serve_docs
from tests.server import FeedServer
from tests.syndicate import BASE_TIME, OUTLETS, TRANSFORMS, WIRE, Doc, paragraphs, trap_stories
from tests.textmetrics import CORPUS

WIRE_STORY = (
    "articles/scrapinghub-aeb/d0382c0d9573a0a7beb1e649012d04ec7275ac23513ca6ca59e51477b028283c"
)
OWN_INTRO = (
    "Here is what we know so far about the power cuts, which have left households and shops "
    "across the region waiting for answers about when service will return and who will pay."
)
FETCH = {"allow_private_networks": True, "timeout": 10}
EXTRACT = {"workers": 1}  # the quickest pool to start, for a handful of pages
ESTIMATED = re.compile(r"^estimated\s+Jaccard (\d\.\d{3})\s+containment (\d\.\d{3})$", re.M)
EXACT = re.compile(r"^exact\s+Jaccard (\d\.\d{3})\s+containment (\d\.\d{3})$", re.M)
VERDICT = re.compile(r"^verdict\s+(fold|do not fold): (.+)$", re.M)
STORED = re.compile(r"^stored in\s+(the same story|different stories) \((\d+), (\d+)\)$", re.M)
REFOLDED = re.compile(r"^refolded (\d+) articles$")


def site_docs() -> dict[str, Doc]:
    truth = json.loads((CORPUS / f"{WIRE_STORY}.truth.json").read_text(encoding="utf-8"))
    wire = Doc("wire", "wire", "PG&E cuts power", truth["articleBody"], WIRE, BASE_TIME, "original")
    first_half = paragraphs(wire.text)[:12]
    partial, _ = TRANSFORMS["chrome"](
        [OWN_INTRO, *first_half[:5], *first_half[6:]], wire.title, OUTLETS[2], random.Random(1)
    )
    market_a, market_b = [d for d in trap_stories(5) if d.kind == "trap:market"][:2]
    return {
        "wire": wire,
        "same": replace(wire, id="same", title="Power cut for millions", outlet=OUTLETS[1]),
        "partial": replace(wire, id="partial", text="\n\n".join(partial), outlet=OUTLETS[2]),
        "market_a": market_a,
        "market_b": replace(market_b, outlet=OUTLETS[4]),
    }


@pytest.fixture(scope="module")
def site() -> Iterator[tuple[FeedServer, dict[str, Doc], list[str]]]:
    docs = site_docs()
    with FeedServer() as server:
        yield server, docs, serve_docs(server, list(docs.values()))


def filled_workspace(root: Path, feeds: list[str]) -> Workspace:
    """A workspace whose store one `newsfold run --all` over `feeds` filled."""
    ws = Workspace.create(root, feeds, fetch=FETCH, extract=EXTRACT)
    ws.ok("run", "--all")
    return ws


@pytest.fixture(scope="module")
def urls(site: tuple[FeedServer, dict[str, Doc], list[str]]) -> dict[str, str]:
    """Each doc's URL, as the store keeps it."""
    server, docs, _feeds = site
    return {name: doc_link(doc, server.base_url) for name, doc in docs.items()}


@pytest.fixture(scope="module")
def filled(
    site: tuple[FeedServer, dict[str, Doc], list[str]], tmp_path_factory: pytest.TempPathFactory
) -> Workspace:
    """A store filled by one run, shared by the tests that only read it."""
    return filled_workspace(tmp_path_factory.mktemp("filled"), site[2])


def explain(ws: Workspace, url_a: str, url_b: str) -> dict[str, tuple[str, ...]]:
    out = ws.ok("explain", url_a, url_b)
    found = {
        name: pattern.search(out)
        for name, pattern in (
            ("estimated", ESTIMATED),
            ("exact", EXACT),
            ("verdict", VERDICT),
            ("stored", STORED),
        )
    }
    assert all(found.values()), out
    return {name: match.groups() for name, match in found.items() if match}


def story_of(ws: Workspace, url: str) -> dict[str, Any]:
    """The exported story (JSONL object) that holds the article at `url`."""
    return next(s for s in ws.export() if url in {a["url"] for a in s["articles"]})


def test_explain_a_folded_copy(filled: Workspace, urls: dict[str, str]) -> None:
    """For a copy that folded: estimated and exact Jaccard and containment (the estimate within
    0.1 of the exact value), the verdict "fold" with its reason, and both in one story."""
    ws = filled
    result = explain(ws, urls["wire"], urls["partial"])
    estimated, exact = map(float, result["estimated"]), map(float, result["exact"])
    for est, true in zip(estimated, exact, strict=True):
        assert abs(est - true) <= 0.1, result
    assert 0.7 <= float(result["exact"][1]) < 0.95
    verdict, reason = result["verdict"]
    assert verdict == "fold"
    assert re.fullmatch(r"containment 0\.\d\d >= 0\.50 and facts agree: .+", reason), reason
    assert result["stored"][0] == "the same story"


def test_explain_a_trap_pair(filled: Workspace, urls: dict[str, str]) -> None:
    """Two market wraps of one template share most wording: the verdict is "do not fold"
    because their numbers differ, and they are stored in different stories."""
    ws = filled
    result = explain(ws, urls["market_a"], urls["market_b"])
    assert float(result["exact"][1]) >= 0.5
    verdict, reason = result["verdict"]
    assert verdict == "do not fold"
    assert "but facts differ: numbers" in reason
    assert result["stored"][0] == "different stories"


def test_explain_names_an_article_it_does_not_know(filled: Workspace, urls: dict[str, str]) -> None:
    """A URL that is not in the store: exit 1 and one line naming it."""
    ws = filled
    done = ws.run("explain", urls["wire"], "http://127.0.0.1:9/nowhere")
    assert done.returncode == 1
    assert done.stderr == "newsfold: http://127.0.0.1:9/nowhere: not in the store\n"


def refold(ws: Workspace, feeds: list[str], **dedup: float) -> int:
    """Write the config with these [dedup] keys, refold the last week; articles refolded."""
    ws.write_config(feeds, fetch=FETCH, extract=EXTRACT, dedup=dedup)
    match = REFOLDED.match(ws.ok("refold", "--since", "7d"))
    assert match
    return int(match.group(1))


def test_refold_follows_the_threshold_and_back(
    site: tuple[FeedServer, dict[str, Doc], list[str]], urls: dict[str, str], tmp_path: Path
) -> None:
    """At threshold 0.95 the partial copy leaves the wire story while the identical copy stays;
    back at the default, the stories are the run's again. No article is ever deleted, and
    `newsfold check` passes after each refold."""
    feeds = site[2]
    ws = filled_workspace(tmp_path, feeds)  # a store of its own: refold changes it
    before = ws.export()
    articles = ws.stats()["articles"]
    assert articles == len(urls)
    assert {a["url"] for a in story_of(ws, urls["wire"])["articles"]} == {
        urls["wire"],
        urls["same"],
        urls["partial"],
    }

    assert refold(ws, feeds, threshold=0.95) == articles
    assert ws.ok("check") == "store ok\n"
    assert ws.stats()["articles"] == articles
    assert {a["url"] for a in story_of(ws, urls["wire"])["articles"]} == {
        urls["wire"],
        urls["same"],
    }
    assert [a["url"] for a in story_of(ws, urls["partial"])["articles"]] == [urls["partial"]]
    verdict, reason = explain(ws, urls["wire"], urls["partial"])["verdict"]
    assert verdict == "do not fold"
    assert re.fullmatch(r"too little overlap: containment 0\.\d\d < 0\.95", reason), reason

    assert refold(ws, feeds) == articles
    assert ws.ok("check") == "store ok\n"
    assert ws.stats()["articles"] == articles
    assert normalised(ws.export()) == normalised(before)


def test_story_lists_every_copy_with_its_similarity(
    filled: Workspace, urls: dict[str, str]
) -> None:
    """`newsfold story ID` shows the wire story's three copies, each with its URL and the text
    it shares with the canonical copy: 100% for the copy under a new headline, less for the
    partial one."""
    ws = filled
    story = story_of(ws, urls["wire"])
    ws.env["COLUMNS"] = "200"  # room for whole URLs
    try:
        out = ws.ok("story", str(story["id"]))
    finally:
        del ws.env["COLUMNS"]
    assert f"story {story['id']}, 3 copies" in out
    assert {url for url in urls.values() if url in out} == {
        urls["wire"],
        urls["same"],
        urls["partial"],
    }
    lines = out.splitlines()
    assert _shared_above(lines, story["articles"][0]["url"]) == 100  # the canonical copy
    assert _shared_above(lines, urls["same"]) == 100
    assert 50 <= _shared_above(lines, urls["partial"]) < 100


def _shared_above(lines: list[str], url: str) -> int:
    """The share printed in the row of the copy whose URL is on `url`'s line or above."""
    index = next(i for i, line in enumerate(lines) if url in line)
    for line in reversed(lines[: index + 1]):
        match = re.match(r"^\s*(\d+)%\s", line)
        if match:
            return int(match.group(1))
    raise AssertionError(f"no share printed for {url}")
