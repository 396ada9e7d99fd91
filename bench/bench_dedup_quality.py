"""How well dedup folds copies and keeps stories apart, and why the defaults are what they are.

Run: .venv/bin/python bench/bench_dedup_quality.py [--seeds 1,2,3] [--quick]

The evaluation set (tests/syndicate.py, `labelled_docs`) holds the corpus's syndication groups
(copies fold, same-event reports must not), ~100 corpus articles with generated syndicated
copies, templated trap stories with a few copies, and every other corpus article on its own.
Clustering runs as the pipeline does: in order of publication, LSH candidates, verification,
`choose_story`. Every table is the mean over the seeds given (each seed draws a new set).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

from newsfold.config import DedupSettings
from newsfold.dedup import (
    Fingerprint,
    band_keys,
    fingerprint,
    normalize_text,
    shingle_list,
    sketch,
)
from newsfold.facts import fact_tokens
from tests.syndicate import Doc, corpus_texts, fold, labelled_docs, score

Shingler = Callable[[str, int], list[bytes]]
DEFAULTS = DedupSettings()
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def char_shingles(normalized: str, size: int) -> list[bytes]:
    """Character `size`-grams of a normalized text, in order."""
    return [normalized[i : i + size].encode() for i in range(max(len(normalized) - size + 1, 1))]


SHINGLINGS: dict[str, tuple[Shingler, int]] = {
    "word 3": (shingle_list, 3),
    "word 4": (shingle_list, 4),
    "word 5": (shingle_list, 5),
    "word 7": (shingle_list, 7),
    "char 5": (char_shingles, 5),
}


def fingerprints(
    docs: Sequence[Doc], settings: DedupSettings, shingler: Shingler
) -> list[Fingerprint]:
    if shingler is shingle_list:
        return [fingerprint(d.text, settings) for d in docs]
    made = []
    for doc in docs:
        normalized = normalize_text(doc.text)
        lead_text = " ".join(normalized.split()[: settings.lead_words])
        ordered = shingler(normalized, settings.shingle_size)
        lead = shingler(lead_text, settings.shingle_size) if settings.lead_words else []
        made.append(sketch(ordered, lead, fact_tokens(doc.text), normalized, settings))
    return made


@dataclasses.dataclass
class Row:
    f1: float
    precision: float
    recall: float
    ari: float
    hard_negative_merges: float
    trap_merges: float
    compared_per_doc: float
    pair_recall: float  # same-story pairs that share at least one band key
    keys_per_doc: float


def evaluate(docs: Sequence[Doc], fps: Sequence[Fingerprint], settings: DedupSettings) -> Row:
    folding = fold(docs, fps, settings)
    result = score(docs, folding.stories)
    keys = [set(band_keys(fp, settings)) for fp in fps]
    return Row(
        f1=result.f1,
        precision=result.precision,
        recall=result.recall,
        ari=result.ari,
        hard_negative_merges=result.hard_negative_merges,
        trap_merges=result.trap_merges,
        compared_per_doc=folding.compared / len(docs),
        pair_recall=_pair_recall(docs, keys),
        keys_per_doc=sum(map(len, keys)) / len(docs),
    )


def _pair_recall(docs: Sequence[Doc], keys: Sequence[set[int]]) -> float:
    by_story: dict[str, list[int]] = defaultdict(list)
    for i, doc in enumerate(docs):
        by_story[doc.story].append(i)
    pairs = [pair for ids in by_story.values() for pair in combinations(ids, 2)]
    return sum(1 for i, j in pairs if keys[i] & keys[j]) / len(pairs)


def mean_rows(rows: Sequence[Row]) -> Row:
    fields = [f.name for f in dataclasses.fields(Row)]
    return Row(**{f: statistics.fmean(getattr(r, f) for r in rows) for f in fields})


class Bench:
    """The evaluation sets of all seeds, with fingerprints cached per shingling and settings."""

    def __init__(self, seeds: Sequence[int]) -> None:
        texts = corpus_texts()
        self.sets = [labelled_docs(seed, texts=texts) for seed in seeds]
        self._cache: dict[tuple[str, int, int, int], list[list[Fingerprint]]] = {}

    def fingerprints(self, settings: DedupSettings, shingling: str) -> list[list[Fingerprint]]:
        """The fingerprints of every set, made with `settings` and the named shingling."""
        shingler = SHINGLINGS[shingling][0]
        key = (shingling, settings.num_perm, settings.lead_words, settings.fact_sketch_size)
        if key not in self._cache:
            self._cache[key] = [fingerprints(docs, settings, shingler) for docs in self.sets]
        return self._cache[key]

    def run(self, settings: DedupSettings, shingling: str = "word 5") -> Row:
        """The metrics of `settings`, averaged over the sets."""
        settings = dataclasses.replace(settings, shingle_size=SHINGLINGS[shingling][1])
        prints = self.fingerprints(settings, shingling)
        return mean_rows([evaluate(d, f, settings) for d, f in zip(self.sets, prints, strict=True)])


def quality_table(bench: Bench) -> None:
    docs = bench.sets[0]
    row = bench.run(DEFAULTS)
    kinds: dict[str, int] = defaultdict(int)
    for doc in docs:
        kinds[doc.kind.split(":")[0]] += 1
    made = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
    stories = len({d.story for d in docs})
    print(f"Evaluation set of the first seed: {len(docs)} docs, {stories} stories; {made}")
    print(f"Defaults: {DEFAULTS}\n")
    print("| metric | value |\n|---|---|")
    for name, value in dataclasses.asdict(row).items():
        print(f"| {name} | {value:.3f} |")
    print()
    _recall_by_transform(bench)


def _recall_by_transform(bench: Bench) -> None:
    """Share of the copies made with each transform that ended in their story's main cluster."""
    joined: dict[str, list[bool]] = defaultdict(list)
    for docs, prints in zip(bench.sets, bench.fingerprints(DEFAULTS, "word 5"), strict=True):
        stories = fold(docs, prints, DEFAULTS).stories
        clusters: dict[str, Counter[int]] = defaultdict(Counter)
        for doc, story in zip(docs, stories, strict=True):
            clusters[doc.story][story] += 1
        for doc, story in zip(docs, stories, strict=True):
            main = clusters[doc.story].most_common(1)[0][0]
            transforms = doc.kind.removeprefix("copy:").split("/")[0].split("+")
            for transform in transforms if doc.kind.startswith("copy:") else ():
                joined[transform].append(story == main)
            if doc.kind == "update" or doc.kind.endswith("/update"):
                joined["(of an update)" if "/" in doc.kind else "update"].append(story == main)
    print("| transform | copies | in their story's main cluster |\n|---|---|---|")
    for transform, hits in sorted(joined.items()):
        print(f"| {transform} | {len(hits)} | {sum(hits) / len(hits):.3f} |")
    print()


def shingle_ablation(bench: Bench) -> None:
    print("Shingles x fold threshold: pairwise F1 (hard-negative merges / trap merges)\n")
    print("| shingles | " + " | ".join(f"t={t}" for t in THRESHOLDS) + " |")
    print("|---|" + "---|" * len(THRESHOLDS))
    for name in SHINGLINGS:
        cells = []
        for threshold in THRESHOLDS:
            row = bench.run(dataclasses.replace(DEFAULTS, threshold=threshold), name)
            cells.append(f"{row.f1:.3f} ({row.hard_negative_merges:.0f}/{row.trap_merges:.0f})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()


def table(
    bench: Bench, title: str, label: str, variants: Sequence[tuple[str, DedupSettings]]
) -> None:
    print(f"{title}\n")
    print(f"| {label} | F1 | precision | recall | ARI | hard-neg merges | trap merges | "
          "pair recall (LSH) | compared/doc | keys/doc |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, settings in variants:
        r = bench.run(settings)
        print(f"| {name} | {r.f1:.3f} | {r.precision:.3f} | {r.recall:.3f} | {r.ari:.3f} | "
              f"{r.hard_negative_merges:.1f} | {r.trap_merges:.1f} | {r.pair_recall:.3f} | "
              f"{r.compared_per_doc:.2f} | {r.keys_per_doc:.0f} |")  # fmt: skip
    print()


def ablations(bench: Bench, quick: bool) -> None:
    shingle_ablation(bench)
    rep = dataclasses.replace
    facts = [(f"{t}", rep(DEFAULTS, fact_threshold=t)) for t in (0.0, 0.5, 0.6, 0.7, 0.8, 0.9)]
    table(bench, "Fact check (0.0: off)", "fact_threshold", facts)
    leads = (0, 60, 100, 150) if not quick else (0, 100)
    candidates = [
        (f"{t} / {w}", rep(DEFAULTS, lsh_threshold=t, lead_words=w))
        for t in (0.1, 0.2, 0.3, 0.5)
        for w in leads
    ]
    table(bench, "Candidates: LSH threshold x lead words", "lsh_threshold / lead_words", candidates)
    perms = [(f"{n}", rep(DEFAULTS, num_perm=n)) for n in (64, 128, 256)]
    table(bench, "MinHash permutations", "num_perm", perms)
    sketches = [(f"{n}", rep(DEFAULTS, fact_sketch_size=n)) for n in (16, 32, 64, 128, 256)]
    table(bench, "Fact hashes kept per article", "fact_sketch_size", sketches)


def speed(bench: Bench) -> None:
    docs = bench.sets[0]
    words = sum(len(d.text.split()) for d in docs)
    start = time.process_time()
    fps = [fingerprint(d.text, DEFAULTS) for d in docs]
    spent = time.process_time() - start
    size = statistics.fmean(len(fp.to_bytes()) for fp in fps)
    per_doc, per_600 = spent / len(docs) * 1e3, spent / words * 600 * 1e3
    print(f"fingerprint: {per_doc:.2f} ms CPU per doc ({per_600:.2f} ms per 600 words); ", end="")
    print(f"stored size {size:.0f} bytes on average\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated seeds of evaluation sets")
    parser.add_argument("--quick", action="store_true", help="fewer variants")
    args = parser.parse_args()
    bench = Bench([int(s) for s in args.seeds.split(",")])
    quality_table(bench)
    speed(bench)
    ablations(bench, args.quick)


if __name__ == "__main__":
    main()
