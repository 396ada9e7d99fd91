"""Dedup through the whole pipeline: pages and feeds in, stories out, scored against labels.

Run: .venv/bin/python bench/bench_fold_e2e.py [--seed 1] [--originals 100] [--orders 30] [--quick]

The evaluation set of bench/bench_dedup_quality.py (tests/syndicate.py, `labelled_docs`) is
published as outlets would publish it (tests/foldpages.py): the corpus pages as captured (the
syndication groups, the originals of the syndicated copies and every other corpus article), the
generated copies and templated trap stories as outlet pages in four page templates, all listed
in RSS section feeds of eight outlets and served by tests/server.py. newsfold runs in-process
(`pipeline.run`, as `newsfold run --all` does) on a fresh SQLite store with the default settings,
except loopback allowed and 8 requests per host (everything is on 127.0.0.1; speed only). The
stories are read back from the store, each page matched to its label through its feed entry.

Tables:
- quality: dedup alone (tests/syndicate.py `fold`) on the source texts in order of publication
  (what bench_dedup_quality measures) and in reverse order, on the texts the first pipeline run
  stored, in order of publication (extraction's share of the difference); then the pipeline with
  feeds in the listed order, in reverse order, and with each feed's items oldest first instead
  of newest first. Pairwise precision/recall/F1, adjusted Rand index, merges of same-event
  reports (hard negatives) and of different trap stories;
- recall by family of same-story pairs;
- dedup alone over random arrival orders (feeds are checked concurrently, so a run's order is
  one draw), the ablation: the rule before stories could merge ("first come": a new article
  joins the one story it matches best, stories never merge) against the rule of `cluster.regroup`
  (the connected group an article joins is clustered afresh: merges and moves), per order, on
  the stored texts; then every linkage of `cluster.cluster` over the same orders (F1 range,
  spread, most wrong merges, distinct partitions) and the recall of each copy edit;
- missed pairs of the first pipeline run, by cause: folding texts whose groups the linkage kept
  apart (too few of the pairs across agree), or texts that do not fold (once extracted, or even
  as source texts), with the verdict's reason;
- settings through the pipeline: the first run's store refolded (`pipeline.refold`) with other
  [dedup] settings, the same stored texts in the same order.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

from common import machine_line
from sqlalchemy import select

from newsfold import pipeline
from newsfold.cluster import Linkage
from newsfold.config import DedupSettings, Settings
from newsfold.dedup import Fingerprint, band_keys, compare, fingerprint
from newsfold.store import schema
from newsfold.store.sql import SqlStore
from newsfold.urls import canonicalize_url
from tests.foldpages import (
    doc_link,
    pair_recall,
    run_all,
    score_run,
    serve_feeds,
    serve_pages,
    story_by_link,
)
from tests.server import FeedServer
from tests.syndicate import (
    BASE_TIME,
    Doc,
    Score,
    corpus_texts,
    edit_recall,
    fold,
    labelled_docs,
    score,
)

SETTINGS = Settings().replace(
    "fetch", allow_private_networks=True, per_host=8, timeout=30.0, max_new_per_feed=1000
)
ORDERS_HEADER = (
    "| texts | rule | orders | F1 min | F1 median | F1 max | spread | ARI min | orders with "
    "trap merges | most trap merges | orders with hard-neg merges | distinct partitions |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|"
)
HEADER = (
    "| run | stories | clusters | ARI | precision | recall | F1 | hard-neg merges | "
    "trap merges | docs missing | seconds |\n|---|---|---|---|---|---|---|---|---|---|---|"
)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One clustering of the set: its score, its clusters (one per doc) and how long it took."""

    name: str
    score: Score
    clusters: list[object]
    missing: int
    seconds: float


def row(outcome: Outcome) -> str:
    s = outcome.score
    return (
        f"| {outcome.name} | {s.stories} | {s.clusters} | {s.ari:.3f} | {s.precision:.3f} | "
        f"{s.recall:.3f} | {s.f1:.3f} | {s.hard_negative_merges} | {s.trap_merges} | "
        f"{outcome.missing} | {outcome.seconds:.1f} |"
    )


Rule = Linkage | Literal["first come"]
LINKAGES: tuple[Linkage, ...] = ("average", "folds-only", "complete", "single")


def fold_in_order(
    docs: Sequence[Doc],
    prints: Sequence[Fingerprint],
    ranks: Sequence[int],
    rule: Rule = "average",
) -> list[object]:
    """Dedup alone, as the pipeline folds: the docs arriving in the order of `ranks`."""
    arriving = [
        dataclasses.replace(d, published=BASE_TIME + timedelta(seconds=rank))
        for d, rank in zip(docs, ranks, strict=True)
    ]
    if rule == "first come":
        return fold_first_come(arriving, prints, SETTINGS.dedup)
    return list(fold(arriving, prints, SETTINGS.dedup, rule).stories)


def fold_first_come(
    docs: Sequence[Doc], prints: Sequence[Fingerprint], settings: DedupSettings
) -> list[object]:
    """The rule stories had before they could merge: in order of arrival, each doc joins the
    one story holding its best folding candidate (highest containment), or opens its own."""
    order = sorted(range(len(docs)), key=lambda i: (docs[i].published, docs[i].id))
    index: dict[int, list[int]] = {}
    story_of: list[object] = list(range(len(docs)))
    for i in order:
        keys = band_keys(prints[i], settings)
        best: tuple[float, float, int] | None = None
        for j in sorted({j for key in keys for j in index.get(key, ())}):
            sim = compare(prints[i], prints[j], settings)
            if sim.folds and (best is None or (sim.containment_est, sim.jaccard_est) > best[:2]):
                best = (sim.containment_est, sim.jaccard_est, j)
        story_of[i] = story_of[best[2]] if best else i
        for key in keys:
            index.setdefault(key, []).append(i)
    return story_of


def publication_ranks(docs: Sequence[Doc]) -> list[int]:
    order = sorted(range(len(docs)), key=lambda i: (docs[i].published, docs[i].id))
    ranks = [0] * len(docs)
    for rank, i in enumerate(order):
        ranks[i] = rank
    return ranks


def folded(name: str, docs: Sequence[Doc], prints: Sequence[Fingerprint], reverse: bool) -> Outcome:
    """Dedup alone on the given fingerprints, in (reverse) order of publication."""
    started = time.perf_counter()
    ranks = [-r if reverse else r for r in publication_ranks(docs)]
    clusters = fold_in_order(docs, prints, ranks)
    return Outcome(name, score(docs, clusters), clusters, 0, time.perf_counter() - started)


def shuffled_ranks(count: int, orders: int) -> list[list[int]]:
    """`orders` random arrival orders of `count` docs (seeded: every run draws the same)."""
    rng = random.Random(0)
    drawn = []
    for _ in range(orders):
        ranks = list(range(count))
        rng.shuffle(ranks)
        drawn.append(ranks)
    return drawn


def partition(clusters: Sequence[object]) -> frozenset[frozenset[int]]:
    """The clustering as a set of sets of doc indexes, whatever its labels."""
    groups: dict[object, set[int]] = {}
    for i, cluster in enumerate(clusters):
        groups.setdefault(cluster, set()).add(i)
    return frozenset(frozenset(g) for g in groups.values())


def per_order_table(docs: Sequence[Doc], prints: Sequence[Fingerprint], orders: int) -> None:
    """The ablation, order by order: first come against regroup (average linkage)."""
    print(
        "| order | first come F1 | regroup F1 | first come trap merges | regroup trap merges "
        "| first come hard-neg merges | regroup hard-neg merges |\n|---|---|---|---|---|---|---|"
    )
    for number, ranks in enumerate(shuffled_ranks(len(docs), orders), 1):
        old = score(docs, fold_in_order(docs, prints, ranks, "first come"))
        new = score(docs, fold_in_order(docs, prints, ranks, "average"))
        print(
            f"| {number} | {old.f1:.4f} | {new.f1:.4f} | {old.trap_merges} | {new.trap_merges} "
            f"| {old.hard_negative_merges} | {new.hard_negative_merges} |"
        )
    print()


def random_orders(
    name: str, docs: Sequence[Doc], prints: Sequence[Fingerprint], orders: int, rule: Rule
) -> tuple[str, list[list[object]]]:
    """A table row: dedup alone over `orders` random arrival orders (seeded), and the clusters."""
    scores, runs = [], []
    for ranks in shuffled_ranks(len(docs), orders):
        clusters = fold_in_order(docs, prints, ranks, rule)
        runs.append(clusters)
        scores.append(score(docs, clusters))
    f1 = sorted(s.f1 for s in scores)
    traps = sum(s.trap_merges > 0 for s in scores)
    negatives = sum(s.hard_negative_merges > 0 for s in scores)
    partitions = len({partition(clusters) for clusters in runs})
    return (
        f"| {name} | {rule} | {orders} | {f1[0]:.4f} | {statistics.median(f1):.4f} | "
        f"{f1[-1]:.4f} | {f1[-1] - f1[0]:.4f} | {min(s.ari for s in scores):.4f} | {traps} | "
        f"{max(s.trap_merges for s in scores)} | {negatives} | {partitions} |"
    ), runs


def edit_table(docs: Sequence[Doc], runs: Sequence[Sequence[object]]) -> None:
    """Recall of same-story pairs by the edit a copy went through, the worst order's."""
    recalls = [edit_recall(docs, clusters) for clusters in runs]
    print("| edit | pairs | recall, worst order | recall, best order |\n|---|---|---|---|")
    for edit, (_joined, total) in recalls[0].items():
        shares = [r[edit][0] / total for r in recalls]
        print(f"| {edit} | {total} | {min(shares):.4f} | {max(shares):.4f} |")
    print()


def clusters_of(docs: Sequence[Doc], base_url: str, store: SqlStore) -> list[object]:
    stories = story_by_link(store)
    return [stories.get(doc_link(d, base_url), ("missing", d.id)) for d in docs]


def pipeline_run(
    name: str, docs: Sequence[Doc], server: FeedServer, feed_urls: Sequence[str], db: Path
) -> tuple[Outcome, SqlStore]:
    """A run over `feed_urls` (added in that order) on a fresh store; the store stays open."""
    store = SqlStore(f"sqlite:///{db}")
    store.migrate()
    started = time.perf_counter()
    report = run_all(SETTINGS, store, feed_urls)
    seconds = time.perf_counter() - started
    assert report.feeds_failed == 0, report
    result = score_run(docs, server.base_url, story_by_link(store))
    clusters = clusters_of(docs, server.base_url, store)
    return Outcome(name, result.score, clusters, len(result.missing), seconds), store


def print_set(docs: Sequence[Doc], feeds: int) -> None:
    kinds = Counter(d.kind.split(":")[0] for d in docs)
    made = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
    stories = len({d.story for d in docs})
    print(f"Set: {len(docs)} pages in {feeds} feeds, {stories} stories; {made}\n")


def print_recall(outcomes: Sequence[Outcome], docs: Sequence[Doc]) -> None:
    recalls = [pair_recall(docs, o.clusters) for o in outcomes]
    families = sorted(recalls[0])
    print("Recall of same-story pairs by family\n")
    print("| family | pairs | " + " | ".join(o.name for o in outcomes) + " |")
    print("|---|---|" + "---|" * len(outcomes))
    for family in families:
        cells = [f"{r[family][0] / r[family][1]:.3f}" for r in recalls]
        print(f"| {family} | {recalls[0][family][1]} | " + " | ".join(cells) + " |")
    print()


def texts_by_link(store: SqlStore) -> dict[str, str]:
    """Each entry link (canonical form) -> the text stored for its article."""
    entries, articles = schema.entries, schema.articles
    query = select(entries.c.link, articles.c.text).join(
        articles, entries.c.article_id == articles.c.id
    )
    with store.engine.connect() as conn:
        return {canonicalize_url(r.link) or r.link: r.text for r in conn.execute(query) if r.link}


def missed_pairs(
    outcome: Outcome, docs: Sequence[Doc], base_url: str, stored: dict[str, str]
) -> None:
    """Why same-story pairs ended in two stories: the linkage, extraction, or dedup itself."""
    settings = SETTINGS.dedup
    causes: Counter[tuple[str, str]] = Counter()
    indexed = list(zip(docs, outcome.clusters, strict=True))
    for (a, cluster_a), (b, cluster_b) in combinations(indexed, 2):
        if a.story != b.story or cluster_a == cluster_b:
            continue
        text_a, text_b = stored.get(doc_link(a, base_url)), stored.get(doc_link(b, base_url))
        if text_a is None or text_b is None:
            causes["no article for a page", ""] += 1
            continue
        extracted = compare(fingerprint(text_a, settings), fingerprint(text_b, settings), settings)
        if extracted.folds:
            causes["the pair folds: the linkage kept their groups apart", ""] += 1
            continue
        source = compare(fingerprint(a.text, settings), fingerprint(b.text, settings), settings)
        where = "extracted only" if source.folds else "source texts too"
        causes[f"no fold ({where})", _reason_kind(extracted.reason)] += 1
    print(f"Missed same-story pairs of '{outcome.name}', by cause\n")
    print("| cause | reason | pairs |\n|---|---|---|")
    for (cause, reason), count in causes.most_common():
        print(f"| {cause} | {reason or '-'} | {count} |")
    print()


def _reason_kind(reason: str) -> str:
    if "facts differ" in reason:
        return "numbers differ" if "numbers 0" in reason else "names differ"
    return reason.split(":")[0]


def refold_table(docs: Sequence[Doc], base_url: str, store: SqlStore) -> None:
    """The same stored articles folded again with other [dedup] settings."""
    rep = dataclasses.replace
    defaults = SETTINGS.dedup
    variants: list[tuple[str, DedupSettings]] = [("defaults (refold)", defaults)]
    variants += [(f"threshold {t}", rep(defaults, threshold=t)) for t in (0.3, 0.4, 0.6, 0.7, 0.8)]
    variants += [
        ("fact check off (fact_threshold 0)", rep(defaults, fact_threshold=0.0)),
        ("no lead keys (lead_words 0)", rep(defaults, lead_words=0)),
        ("lsh_threshold 0.5", rep(defaults, lsh_threshold=0.5)),
        ("defaults again", defaults),
    ]
    print("[dedup] settings through the pipeline: the first run's store refolded\n")
    print(HEADER.replace("| seconds |", "| refold s |"))
    for name, dedup in variants:
        started = time.perf_counter()
        now = datetime.now(UTC)
        pipeline.refold(dataclasses.replace(SETTINGS, dedup=dedup), store, now - timedelta(1), now)
        seconds = time.perf_counter() - started
        result = score_run(docs, base_url, story_by_link(store))
        clusters = clusters_of(docs, base_url, store)
        print(row(Outcome(name, result.score, clusters, len(result.missing), seconds)))
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="seed of the evaluation set")
    parser.add_argument("--originals", type=int, default=100, help="corpus texts syndicated")
    parser.add_argument("--orders", type=int, default=30, help="random arrival orders folded")
    parser.add_argument("--quick", action="store_true", help="one pipeline run, no refolds")
    args = parser.parse_args()
    print(machine_line() + "\n")
    docs = labelled_docs(args.seed, args.originals, corpus_texts())
    source = [fingerprint(d.text, SETTINGS.dedup) for d in docs]
    outcomes = [
        folded("dedup alone: source texts", docs, source, reverse=False),
        folded("dedup alone: source texts, reverse order", docs, source, reverse=True),
    ]
    with FeedServer() as server, tempfile.TemporaryDirectory(prefix="fold-e2e-") as scratch:
        serve_pages(server, docs)
        listed = serve_feeds(server, docs)
        print_set(docs, len(listed))
        runs: list[tuple[str, Callable[[], Sequence[str]]]] = [
            ("pipeline: feeds as listed", lambda: listed),
            ("pipeline: feeds in reverse", lambda: listed[::-1]),
            ("pipeline: items oldest first", lambda: serve_feeds(server, docs, oldest_first=True)),
        ]
        stores = []
        for number, (name, feeds) in enumerate(runs[:1] if args.quick else runs):
            db = Path(scratch) / f"{number}.db"
            outcome, store = pipeline_run(name, docs, server, feeds(), db)
            outcomes.append(outcome)
            stores.append(store)
        stored = texts_by_link(stores[0])
        texts = [stored.get(doc_link(d, server.base_url), "") for d in docs]
        extracted = [fingerprint(text, SETTINGS.dedup) for text in texts]
        outcomes.insert(2, folded("dedup alone: stored texts", docs, extracted, reverse=False))
        print(HEADER)
        for outcome in outcomes:
            print(row(outcome))
        print()
        print_recall(outcomes, docs)
        print(f"Ablation: first come against regroup, stored texts, {args.orders} arrival orders\n")
        per_order_table(docs, extracted, args.orders)
        print(f"Dedup alone over {args.orders} random arrival orders, by rule and linkage\n")
        print(ORDERS_HEADER)
        by_rule: dict[str, list[list[object]]] = {}
        rules: tuple[Rule, ...] = ("first come", *LINKAGES)
        for name, prints in (("source texts", source), ("stored texts", extracted)):
            for rule in rules:
                line, by_rule[f"{name} {rule}"] = random_orders(
                    name, docs, prints, args.orders, rule
                )
                print(line)
        print()
        for name in ("source texts", "stored texts"):
            print(f"Recall by copy edit, regroup (average linkage), {name}\n")
            edit_table(docs, by_rule[f"{name} average"])
        missed_pairs(outcomes[3], docs, server.base_url, stored)
        if not args.quick:
            refold_table(docs, server.base_url, stores[0])
        for store in stores:
            store.close()


if __name__ == "__main__":
    main()
