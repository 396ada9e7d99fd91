"""Dedup: copies of one wire story fold, other stories stay apart, fingerprints persist."""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import feedparser
import pytest

from newsfold.cluster import (
    Copy,
    Group,
    Placed,
    choose_canonical,
    choose_story,
    cluster,
    regroup,
)
from newsfold.config import DedupSettings
from newsfold.dedup import (
    Fingerprint,
    Similarity,
    band_keys,
    compare,
    exact_similarity,
    fingerprint,
    normalize_text,
    shingles,
)
from newsfold.extract import extract_page
from newsfold.facts import fact_tokens
from tests.syndicate import (
    BASE_TIME,
    OUTLETS,
    TRANSFORMS,
    TRAP_FAMILIES,
    Doc,
    fold,
    labelled_docs,
    live_series,
    outlet_feed,
    outlet_page,
    paragraphs,
    score,
    short_posts,
)
from tests.textmetrics import CORPUS

SETTINGS = DedupSettings()
# An AP wire story (PG&E power shut-offs) from the extraction benchmark, with its true text.
WIRE_STORY = (
    "articles/scrapinghub-aeb/d0382c0d9573a0a7beb1e649012d04ec7275ac23513ca6ca59e51477b028283c"
)
# Two outlets' own reports of one event (corpus group A22), the closest such pair in the corpus.
SAME_EVENT = (
    "articles/scrapinghub-aeb/51374560f40088e227f0053ff1bb0b8525d10a8d7bfbff1cd6033f42347fd85b",
    "articles/scrapinghub-aeb/f8ff621a0b9b7646cc0d57d37416feabba2bf78ef5dd0bfc5b080f9f97bbe584",
)


def truth_text(name: str) -> str:
    data = json.loads((CORPUS / f"{name}.truth.json").read_text(encoding="utf-8"))
    return str(data["articleBody"])


@pytest.fixture(scope="module")
def wire() -> list[str]:
    return paragraphs(truth_text(WIRE_STORY))


def verify(text_a: str, text_b: str) -> Similarity:
    return compare(fingerprint(text_a, SETTINGS), fingerprint(text_b, SETTINGS), SETTINGS)


def are_candidates(text_a: str, text_b: str) -> bool:
    keys_a = band_keys(fingerprint(text_a, SETTINGS), SETTINGS)
    return bool(set(keys_a) & set(band_keys(fingerprint(text_b, SETTINGS), SETTINGS)))


def test_normalize_text_folds_case_width_and_punctuation() -> None:
    """Case, full-width forms and punctuation vanish; digits stay; CJK characters become words."""
    assert (
        normalize_text("  PARIS (AFP) — \uff34\uff48\uff45  rate rose 3.5%!\n")
        == "paris afp the rate rose 3 5"
    )
    assert normalize_text("東京で地震") == "東 京 で 地 震"


def test_shingles_are_word_ngrams() -> None:
    """Word n-grams of the normalized text; a text shorter than n is one shingle."""
    assert shingles("One, two. Three four!", 3) == {b"one two three", b"two three four"}
    assert shingles("Just two", 5) == {b"just two"}
    assert shingles("", 5) == set()


def test_fact_tokens_are_numbers_and_names_inside_sentences() -> None:
    """Numbers and mid-sentence capitalised words count; sentence starts, datelines, agencies and
    non-prose lines (headlines, share bars) do not."""
    text = (
        "PARIS (AFP) — The index rose 1.2% to 7,412.50 on Tuesday, said Marta Quist.\n"
        "Share this article: Facebook Twitter\n"
        'She added: "Markets were calm." It was Quist\'s second warning.'
    )
    assert fact_tokens(text) == {"1.2", "7,412.50", "tuesday", "marta", "quist"}


def test_truncated_copy_folds(wire: list[str]) -> None:
    """A copy cut after four paragraphs is found by the lead's band keys and folds."""
    original, copy = "\n\n".join(wire), "\n\n".join(wire[:4])
    assert exact_similarity(original, copy, SETTINGS)[0] < 0.3  # whole-text LSH alone misses it
    assert are_candidates(original, copy)
    similarity = verify(original, copy)
    assert similarity.folds, similarity.reason
    assert similarity.containment_est > 0.8


def test_updated_version_folds(wire: list[str]) -> None:
    """A wire update with two new paragraphs on top folds with the first version."""
    new = [
        "Late on Wednesday the utility said 34 more towns would lose power, Ana Ruiz said.",
        "Fire crews reported 3 new blazes north of the bay, according to the state fire agency.",
    ]
    original, updated = "\n\n".join(wire), "\n\n".join(new + wire)
    assert are_candidates(original, updated)
    assert verify(original, updated).folds


def test_editors_note_and_changed_credit_fold(wire: list[str]) -> None:
    """An editor's note on top, a new dateline and credit line and leaked page chrome still fold."""
    original = "\n\n".join(wire)
    lead = wire[0].replace("SAN FRANCISCO (AP) — ", "San Francisco, California — ")
    copy = "\n\n".join(
        [
            "Editor's note: This story has been updated to include comments from officials.",
            lead,
            "Sign up for our newsletter",
            *wire[1:-1],
            "Related: Five things to watch in the Champions League this week",
            "This story was originally published by Reuters.",
        ]
    )
    assert are_candidates(original, copy)
    similarity = verify(original, copy)
    assert similarity.folds, similarity.reason
    assert similarity.reason.startswith("containment") and "facts agree" in similarity.reason


def test_templated_stories_with_other_numbers_do_not_fold() -> None:
    """Two earthquake reports share most of their wording but not magnitude, place and time."""
    rng = random.Random(3)
    first, second = (TRAP_FAMILIES["quake"](rng)[1] for _ in range(2))
    assert exact_similarity(first, second, SETTINGS)[1] >= SETTINGS.threshold  # wording alike
    similarity = verify(first, second)
    assert not similarity.folds
    assert "facts differ: numbers" in similarity.reason


def test_templated_story_keeps_its_own_copies() -> None:
    """A cut-down copy of one market wrap folds with it and not with the next day's wrap."""
    rng = random.Random(5)
    monday, tuesday = (TRAP_FAMILIES["market"](rng)[1] for _ in range(2))
    copy = "\n\n".join(paragraphs(monday)[:3])
    assert verify(monday, copy).folds
    assert not verify(tuesday, copy).folds


def test_independent_reports_of_one_event_do_not_fold() -> None:
    """Two outlets' own reports of the same event share names and numbers but not their text."""
    similarity = verify(truth_text(SAME_EVENT[0]), truth_text(SAME_EVENT[1]))
    assert not similarity.folds
    assert similarity.reason.startswith("too little overlap")


def test_identical_text_folds_on_the_exact_layer() -> None:
    """Texts equal after normalisation have one text hash and fold as identical."""
    a = fingerprint("Storm hits the coast. 40 homes lost power.", SETTINGS)
    b = fingerprint("STORM hits the coast — 40 homes lost power!", SETTINGS)
    assert a.text_hash == b.text_hash
    assert compare(a, b, SETTINGS).reason == "identical text"


def test_live_update_posts_stay_apart_and_their_copies_fold() -> None:
    """Posts of one live-update series repeat the running background under a new timestamped
    item: each is news of its own; a copy of one post (new headline, chrome) folds with it."""
    posts = [d for d in live_series(random.Random(4), series=1)]
    prints = [fingerprint(d.text, SETTINGS) for d in posts]
    first, second = prints[0], prints[1]
    assert exact_similarity(posts[0].text, posts[1].text, SETTINGS)[1] >= 0.6  # mostly shared
    similarity = compare(first, second, SETTINGS)
    assert not similarity.folds
    assert "news of its own" in similarity.reason
    copy, _ = TRANSFORMS["chrome"](
        paragraphs(posts[0].text), posts[0].title, OUTLETS[2], random.Random(1)
    )
    assert verify(posts[0].text, "\n\n".join(copy)).folds


def test_updated_copy_with_corrected_numbers_and_new_paragraphs_folds(wire: list[str]) -> None:
    """A wire update: a corrected figure in the opening, a new paragraph on top; it folds."""
    corrected = [wire[0].replace("375,000", "385,000"), *wire[1:]]
    assert corrected[0] != wire[0]
    new = "Late on Wednesday the utility said 34 more towns would lose power, Ana Ruiz said."
    similarity = verify("\n\n".join(wire), "\n\n".join([new, *corrected]))
    assert similarity.folds, similarity.reason


def test_short_posts_fold_only_when_near_identical() -> None:
    """Three photo-set posts of one blog share its wording but not their captions: three
    stories; a short brief republished with a dateline and credit line still folds."""
    posts = short_posts(random.Random(2))
    photos = [d.text for d in posts if d.kind == "trap:photo"][:3]
    for a, b in ((0, 1), (0, 2), (1, 2)):
        similarity = verify(photos[a], photos[b])
        assert not similarity.folds
        assert "short texts" in similarity.reason
    brief = (
        posts[-1].text
        if posts[-1].kind == "brief"
        else next(d.text for d in posts if d.kind == "brief")
    )
    paras, _ = TRANSFORMS["dateline"]([brief], "t", OUTLETS[1], random.Random(3))
    similarity = verify(brief, "\n\n".join(paras))
    assert similarity.folds, similarity.reason


def test_regroup_merges_two_stories_an_article_shows_to_be_one(wire: list[str]) -> None:
    """A copy cut after three paragraphs and a copy without the first two opened two stories
    (they share one paragraph, too little to fold); the whole text folds with both, and the
    two copies' own texts overlap, so regroup merges them into the older story."""
    cut = fingerprint("\n\n".join(wire[:3]), SETTINGS)
    tail = fingerprint("\n\n".join(wire[2:]), SETTINGS)
    full = fingerprint("\n\n".join(wire), SETTINGS)
    assert not compare(cut, tail, SETTINGS).folds
    placed = [Placed("tail", 9, tail), Placed("cut", 7, cut), Placed("full", None, full)]
    assert regroup(placed, SETTINGS) == [Group(7, ("tail", "cut", "full"), (9,))]


def test_regroup_keeps_ids_and_opens_a_story_for_a_group_without_one(wire: list[str]) -> None:
    """Stories that stay apart keep their ids; an article that fits none opens a new story."""
    other = fingerprint("\n\n".join(paragraphs(truth_text(SAME_EVENT[0]))), SETTINGS)
    placed = [
        Placed("a", 3, fingerprint("\n\n".join(wire), SETTINGS)),
        Placed("b", 5, other),
        Placed("c", None, fingerprint("\n\n".join(wire[:4]), SETTINGS)),
    ]
    by_key = {g.members: g for g in regroup(placed, SETTINGS)}
    assert set(by_key) == {("a", "c"), ("b",)}
    assert by_key["a", "c"].story == 3 and by_key["b",].story == 5


def test_a_copy_cut_before_a_correction_stays_with_the_corrected_story(wire: list[str]) -> None:
    """A copy of the first paragraph, cut before the wire corrected its two figures, contradicts
    the corrected version but folds with the original, its near-copy: one story of three."""
    corrected = wire[0].replace("375,000", "385,000").replace(" 18 ", " 19 ")
    texts = ["\n\n".join(wire), "\n\n".join([corrected, *wire[1:]]), wire[0]]
    original, fixed, cut = (fingerprint(t, SETTINGS) for t in texts)
    assert compare(cut, fixed, SETTINGS).contradicts
    assert compare(cut, original, SETTINGS).folds
    assert cluster([original, fixed, cut], SETTINGS) == [[0, 1, 2]]


def test_a_copy_cut_from_an_update_joins_the_original_too(wire: list[str]) -> None:
    """An update puts three paragraphs over the story; a copy cut from them (sharing nothing
    with the original) and the original both fold with the update, its near-copy: one story."""
    new = [
        "Late on Wednesday the utility said 34 more towns would lose power, Ana Ruiz said.",
        "Fire crews reported 3 new blazes north of the bay, according to the state fire agency.",
        "Officials in Sonoma said 12 shelters had opened and more than 2,000 residents had left"
        " their homes before nightfall, county spokesman Tom Reyes said.",
    ]
    texts = ["\n\n".join(wire), "\n\n".join(new + wire), "\n\n".join(new)]
    original, update, cut = (fingerprint(t, SETTINGS) for t in texts)
    assert compare(cut, original, SETTINGS).containment_est < 0.1
    assert cluster([original, update, cut], SETTINGS) == [[0, 1, 2]]


def test_stories_do_not_depend_on_the_order_of_arrival() -> None:
    """The evaluation set folded in ten random arrival orders gives one partition."""
    docs = labelled_docs(seed=5)
    prints = [fingerprint(d.text, SETTINGS) for d in docs]
    rng = random.Random(0)
    seen = set()
    for _ in range(10):
        ranks = list(range(len(docs)))
        rng.shuffle(ranks)
        arriving = [
            dataclasses.replace(d, published=BASE_TIME + timedelta(seconds=r))
            for d, r in zip(docs, ranks, strict=True)
        ]
        stories = fold(arriving, prints, SETTINGS).stories
        groups: dict[int, set[int]] = {}
        for i, story in enumerate(stories):
            groups.setdefault(story, set()).add(i)
        seen.add(frozenset(frozenset(g) for g in groups.values()))
    assert len(seen) == 1


def test_fingerprints_stored_before_openings_were_kept_still_read(wire: list[str]) -> None:
    """A fingerprint of format version 1 reads back, with no opening facts."""
    fp = fingerprint("\n\n".join(wire), SETTINGS)
    version_1 = bytes([1]) + fp.to_bytes()[1 : -2 - 4 * len(fp.opening)]
    assert Fingerprint.from_bytes(version_1) == dataclasses.replace(fp, opening=())


def _similarity(containment: float, folds: bool = True) -> Similarity:
    return Similarity(containment / 2, containment, 1.0, folds, "test")


def test_choose_story_joins_the_best_folding_story() -> None:
    """The best containment among folding candidates wins; non-folding ones never do."""
    candidates = [
        ("a", _similarity(0.6)),
        ("b", _similarity(0.95, folds=False)),
        ("c", _similarity(0.8)),
    ]
    assert choose_story(candidates) == "c"
    assert choose_story([("b", _similarity(0.95, folds=False))]) is None
    assert choose_story([]) is None


def test_a_bridging_article_does_not_chain_two_stories(wire: list[str]) -> None:
    """An article holding two whole stories folds with each, joins one, and they stay apart."""
    first = "\n\n".join(wire[:6])
    second = "\n\n".join(paragraphs(truth_text(SAME_EVENT[0]))[:6])
    bridge = f"{first}\n\n{second}"
    texts = [first, second, bridge]
    assert all(verify(bridge, text).folds for text in (first, second))
    docs = [
        Doc(str(i), str(i), "t", text, OUTLETS[0], BASE_TIME + timedelta(hours=i), "test")
        for i, text in enumerate(texts)
    ]
    stories = fold(docs, [fingerprint(t, SETTINGS) for t in texts], SETTINGS).stories
    assert stories[0] != stories[1]
    assert stories[2] in (stories[0], stories[1])


def test_fingerprint_round_trips_through_bytes(wire: list[str]) -> None:
    """to_bytes/from_bytes give back an equal fingerprint in well under a kilobyte."""
    fp = fingerprint("\n\n".join(wire), SETTINGS)
    data = fp.to_bytes()
    assert Fingerprint.from_bytes(data) == fp
    assert len(data) < 1024
    assert fp.fact_count == len(fp.facts) > 10


def test_cut_fact_sketch_still_tells_copies_from_traps(wire: list[str]) -> None:
    """With fact sketches cut below the fact sets, copies fold and templated stories do not."""
    small = dataclasses.replace(SETTINGS, fact_sketch_size=24)
    original = fingerprint("\n\n".join(wire), small)
    assert original.fact_count > len(original.facts) == 24
    assert compare(original, fingerprint("\n\n".join(wire[:-3]), small), small).folds
    rng = random.Random(2)
    monday, tuesday = (fingerprint(TRAP_FAMILIES["market"](rng)[1], small) for _ in range(2))
    assert monday.fact_count > 24 and tuesday.fact_count > 24
    similarity = compare(monday, tuesday, small)
    assert similarity.containment_est >= small.threshold and not similarity.folds


def test_band_keys_are_stable_across_processes(wire: list[str]) -> None:
    """Another interpreter, with another hash seed, computes the same signed 64-bit keys."""
    text = "\n\n".join(wire)
    keys = band_keys(fingerprint(text, SETTINGS), SETTINGS)
    script = (
        "import sys, json; from newsfold.config import DedupSettings;"
        "from newsfold.dedup import band_keys, fingerprint; s = DedupSettings();"
        "print(json.dumps(band_keys(fingerprint(sys.stdin.read(), s), s)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        input=text,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345"},
    )
    assert json.loads(out.stdout) == keys
    assert all(-(2**63) <= key < 2**63 for key in keys)
    assert len(set(keys)) == len(keys)


def test_fingerprints_load_minhash_alone_and_datasketch_still_imports_whole() -> None:
    """A worker making fingerprints does not load scipy (datasketch's LSH indexes need it, the
    MinHash does not); code that imports datasketch afterwards gets the whole package."""
    script = (
        "import sys; from newsfold.config import DedupSettings;"
        "from newsfold.dedup import fingerprint; s = DedupSettings();"
        "fingerprint('The Tarrow dam held after 312 mm of rain fell on Monday.', s);"
        "print('scipy' in sys.modules);"
        "import datasketch; from datasketch.minhash import MinHash;"
        "print(datasketch.MinHash is MinHash, datasketch.MinHashLSH.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "MinHashLSH"]


def test_choose_canonical_prefers_listed_outlets_then_earliest_then_longest() -> None:
    """Preferred outlet first, then the earliest published, then the longest text."""
    t0 = datetime(2026, 2, 17, 8, 0, tzinfo=UTC)
    copies = [
        Copy("late-long", "news.example", t0 + timedelta(hours=2), 9000),
        Copy("early", "www.daily.example", t0, 3000),
        Copy("early-long", "other.example", t0, 5000),
        Copy("undated", "wire.example", None, 8000),
    ]
    assert choose_canonical(copies).key == "early-long"
    assert choose_canonical(copies, ("wire.example", "daily.example")).key == "undated"
    assert choose_canonical(copies, ("daily.example",)).key == "early"


def test_outlet_pages_extract_back_to_folding_text(wire: list[str]) -> None:
    """A copy in each outlet template, read by the extraction stage, folds with the original."""
    original = "\n\n".join(wire)
    for outlet in {o.layout: o for o in OUTLETS}.values():
        doc = Doc("pge", "pge", "Power cut to thousands", original, outlet, BASE_TIME, "test")
        page = outlet_page(doc)
        assert f'<link rel="canonical" href="{doc.url}">' in page
        assert 'property="article:published_time"' in page
        extracted = extract_page(page.encode(), url=doc.url, content_type="text/html")
        assert extracted.canonical_url == doc.url
        assert verify(original, extracted.text).folds, outlet.layout


def test_outlet_feed_lists_the_pages() -> None:
    """The generated RSS feed parses and links every doc's page, newest first."""
    docs = [
        Doc(
            f"d{i}",
            f"d{i}",
            f"Story & {i}",
            "Lead.\n\nMore.",
            OUTLETS[1],
            BASE_TIME + timedelta(hours=i),
            "test",
        )
        for i in range(3)
    ]
    parsed = feedparser.parse(outlet_feed(OUTLETS[1], docs))
    assert not parsed.bozo
    assert [e.link for e in parsed.entries] == [d.url for d in reversed(docs)]
    assert parsed.entries[0].title == "Story & 2"


@pytest.fixture(scope="module")
def evaluation() -> tuple[list[Doc], list[int]]:
    docs = labelled_docs(seed=11)
    return docs, fold(docs, [fingerprint(d.text, SETTINGS) for d in docs], SETTINGS).stories


def test_evaluation_set_folds_copies_and_keeps_stories_apart(
    evaluation: tuple[list[Doc], list[int]],
) -> None:
    """On the labelled corpus set: pairwise F1 >= 0.9, no trap or same-event merges."""
    docs, stories = evaluation
    result = score(docs, stories)
    assert len(docs) > 600 and result.stories > 350
    assert result.f1 >= 0.9
    assert result.ari >= 0.9
    assert result.precision >= 0.97
    assert result.trap_merges == 0
    assert result.hard_negative_merges == 0


def test_score_counts_pairs_and_merges() -> None:
    """score() on a toy clustering gives the textbook pairwise numbers."""
    docs = [
        Doc(str(i), story, "t", "x", OUTLETS[0], BASE_TIME, "test")
        for i, story in enumerate(["a", "a", "b", "trap-1", "trap-2"])
    ]
    result = score(docs, [0, 0, 0, 3, 3])
    assert (result.precision, result.recall) == (1 / 4, 1.0)
    assert result.trap_merges == 1
    perfect = score(docs, [0, 0, 2, 3, 4])
    assert (perfect.f1, perfect.ari) == (1.0, 1.0)
