"""Dedup: fold syndicated copies of one story. Pure functions, no SQL, no clock.

How an article finds its story:

1. Exact layer: `Fingerprint.text_hash`, the SHA-256 of the normalized text; equal hashes fold.
2. Candidates: `band_keys` cuts two MinHash signatures into LSH bands, the whole text's and its
   lead's (a copy cut after a few paragraphs shares little of a long story but all of its lead).
   The store keeps one row per (band key, article) and asks `band_key IN (...)` within the time
   window, so the cost of a lookup depends on the new article only.
3. Verification: `compare` estimates the shingle containment from the signatures and checks
   that the fact-bearing tokens (numbers, names: `facts.py`) agree. Templated stories (market wraps,
   weather, results) share most of their wording but not their facts, so shingle overlap alone
   would fold them.
4. Clustering (`cluster.py`): the articles linked by verified pairs form connected groups; `regroup`
   clusters a group afresh (`cluster`, average linkage) whenever a new article joins it, and
   says which stories merge and which articles move, so the stories depend on the set of
   articles, not on the order they came in. `choose_canonical` picks the copy that represents
   a story.

The defaults in `DedupSettings` were chosen on the evaluation set of bench/bench_dedup_quality.py.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import struct
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, cast

import numpy as np
import xxhash

from newsfold.config import DedupSettings
from newsfold.facts import facts_and_opening, is_number

if TYPE_CHECKING:
    from datasketch.minhash import MinHash

_PUNCTUATION = re.compile(r"[^\w\s]|_")
# Scripts written without spaces between words: each character counts as a word.
_UNSPACED = re.compile(
    "([\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff])"
)
_FEW_FACTS = 3  # below this many facts of a kind, a share of them is no evidence
_STRAY_NAMES = 1  # a byline, photo credit or sign-off gives one copy a name the other lacks
_CORRECTED_SHARE = 4  # a corrected copy may change one number in four (at least two)
_MIN_MATCHES = 2  # equal MinHash values needed before containment is scaled up from Jaccard
_OWN_NEWS = 3  # facts of an opening the other text lacks that make it news of its own
_SHORT_SHINGLES = 96  # a text of fewer than 100 words (96 word 5-grams) is short
_NEAR_IDENTICAL = 0.9  # containment at which texts too short and bare to judge still fold
_OPENING_FACTS = 32  # fact hashes kept of the opening paragraph
_MINHASH_SEED = 1
_LEAD_PERM = 32
_BAND_VALUES = 128
_FORMAT_VERSION = 2
_HEADER = struct.Struct(
    "<BHHIHHI"
)  # version, perms, lead perms, shingles, lead's, facts kept, seen
_OPENING = struct.Struct("<H")  # since version 2: opening facts kept


def normalize_text(text: str) -> str:
    """NFKC, casefold, punctuation to spaces, whitespace collapsed; digits kept.

    Characters of scripts written without spaces (Chinese, Japanese, Thai, ...) are spaced apart,
    so word shingles over them are character shingles.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    spaced = _UNSPACED.sub(r" \1 ", _PUNCTUATION.sub(" ", folded))
    return " ".join(spaced.split())


def shingle_list(normalized: str, size: int) -> list[bytes]:
    """Word `size`-grams of a normalized text (words one space apart, as `normalize_text`
    leaves them), in order; a shorter text is one shingle."""
    data = normalized.encode()
    spaces = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord(" ")).tolist()
    if len(spaces) < size:
        return [data] if data else []
    # Each shingle is a slice of the encoded text, from a word's start to the end of the word
    # `size` - 1 later: no joining of words.
    starts = [0, *(space + 1 for space in spaces)]
    ends = [*spaces[size - 1 :], len(data)]
    return [data[start:end] for start, end in zip(starts, ends, strict=False)]


def shingles(text: str, size: int) -> set[bytes]:
    """The set of word `size`-grams of `text` after `normalize_text`."""
    return set(shingle_list(normalize_text(text), size))


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What dedup keeps of an article's text.

    `signature` holds the MinHash values (uint32, little-endian) of the `shingle_count` word
    shingles, `lead` those of the `lead_count` shingles of the first `lead_words` words (a copy
    cut short keeps the lead). `facts` holds the smallest `fact_sketch_size` 32-bit hashes of
    the fact tokens, sorted: a bottom-k sketch, exact while `fact_count` fits; a fact's hash is
    even for a number and odd for a name. `text_hash` is the SHA-256 of the normalized text.
    `opening` holds the hashes of the `facts.opening_facts` (at most `_OPENING_FACTS`, sorted;
    none in a fingerprint stored before they were kept).
    """

    signature: bytes
    lead: bytes
    shingle_count: int
    lead_count: int
    facts: tuple[int, ...]
    fact_count: int
    text_hash: bytes
    opening: tuple[int, ...] = ()
    # The facts by kind (numbers, names), split once: every comparison of a pair reads them.
    kinds: tuple[frozenset[int], frozenset[int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        numbers = frozenset(f for f in self.facts if not f & 1)
        object.__setattr__(self, "kinds", (numbers, frozenset(self.facts) - numbers))

    @property
    def num_perm(self) -> int:
        return len(self.signature) // 4

    def to_bytes(self) -> bytes:
        """Compact form for the store: header, signatures, fact hashes, text hash, opening."""
        header = _HEADER.pack(
            _FORMAT_VERSION,
            self.num_perm,
            len(self.lead) // 4,
            self.shingle_count,
            self.lead_count,
            len(self.facts),
            self.fact_count,
        )
        facts = _u32(self.facts)
        opening = _OPENING.pack(len(self.opening)) + _u32(self.opening)
        return header + self.signature + self.lead + facts + self.text_hash + opening

    @classmethod
    def from_bytes(cls, data: bytes) -> Fingerprint:
        """Read what `to_bytes` wrote, in this format version or the one before."""
        header = _HEADER.unpack_from(data)
        version, num_perm, lead_perm, shingles, lead_shingles, kept, seen = header
        if version not in (1, _FORMAT_VERSION):
            raise ValueError(f"unknown fingerprint format version {version}")
        parts = []
        start = _HEADER.size
        for size in (4 * num_perm, 4 * lead_perm, 4 * kept, 32):
            parts.append(data[start : start + size])
            start += size
        signature, lead, facts, digest = parts
        opening: tuple[int, ...] = ()
        if version >= 2:
            (count,) = _OPENING.unpack_from(data, start)
            opening = _ints(data[start + _OPENING.size : start + _OPENING.size + 4 * count])
        return cls(
            signature=signature,
            lead=lead,
            shingle_count=shingles,
            lead_count=lead_shingles,
            facts=_ints(facts),
            fact_count=seen,
            text_hash=digest,
            opening=opening,
        )


def _u32(values: Sequence[int]) -> bytes:
    return np.asarray(values, dtype="<u4").tobytes()


def _ints(data: bytes) -> tuple[int, ...]:
    return tuple(np.frombuffer(data, dtype="<u4").tolist())


@lru_cache(maxsize=4)
def _template(num_perm: int) -> MinHash:
    """An empty MinHash whose permutations are built once; copies of it are cheap."""
    return _minhash_class()(num_perm=num_perm, seed=_MINHASH_SEED, hashfunc=xxhash.xxh32_intdigest)


def _minhash_class() -> type[MinHash]:
    """datasketch's MinHash, loaded without the rest of datasketch.

    The package's `__init__` imports every sketch it has, and its LSH indexes load scipy: some
    0.9 s of CPU in each worker process of each run, for a class that needs only numpy. The
    package is registered unexecuted while its minhash module loads; a later `import datasketch`
    runs the package as usual and finds that module loaded.
    """
    unexecuted = "datasketch" not in sys.modules
    if unexecuted:
        spec = importlib.util.find_spec("datasketch")
        if spec is None:
            raise ModuleNotFoundError("datasketch is not installed", name="datasketch")
        sys.modules["datasketch"] = importlib.util.module_from_spec(spec)
    try:
        from datasketch.minhash import MinHash
    finally:
        if unexecuted:
            del sys.modules["datasketch"]
    return cast("type[MinHash]", MinHash)


def prepare(settings: DedupSettings) -> None:
    """Load what making signatures takes (datasketch's MinHash) now, ahead of the first one."""
    _template(settings.num_perm)


def _minhash(shingle_set: Iterable[bytes], num_perm: int) -> bytes:
    minhash = _template(num_perm).copy()
    minhash.update_batch(list(shingle_set))
    return bytes(minhash.hashvalues.astype("<u4").tobytes())


def _fact_hash(fact: str) -> int:
    return (xxhash.xxh32_intdigest(fact.encode()) & ~1) | (not is_number(fact))


def fingerprint(text: str, settings: DedupSettings) -> Fingerprint:
    """The fingerprint of an article's text."""
    normalized = normalize_text(text)
    ordered = shingle_list(normalized, settings.shingle_size)
    lead_shingles = max(settings.lead_words - settings.shingle_size + 1, 1)
    lead = ordered[:lead_shingles] if settings.lead_words else []
    facts, opening = facts_and_opening(text)
    return sketch(ordered, lead, facts, normalized, settings, opening)


def sketch(
    ordered: Sequence[bytes],
    lead: Sequence[bytes],
    facts: Iterable[str],
    normalized: str,
    settings: DedupSettings,
    opening: Iterable[str] = (),
) -> Fingerprint:
    """A fingerprint from its parts (`fingerprint` makes them; benchmarks try other shingles).

    `ordered` holds all shingles in text order, `lead` those of the lead (empty: no lead keys),
    `opening` the facts of the opening (empty: no opening check).
    """
    unique, lead_unique = set(ordered), set(lead)
    fact_hashes = sorted({_fact_hash(f) for f in facts})
    opening_hashes = sorted({_fact_hash(f) for f in opening})[:_OPENING_FACTS]
    return Fingerprint(
        signature=_minhash(unique, settings.num_perm),
        lead=_minhash(lead_unique, _LEAD_PERM) if lead_unique else b"",
        shingle_count=len(unique),
        lead_count=len(lead_unique),
        facts=tuple(fact_hashes[: settings.fact_sketch_size]),
        fact_count=len(fact_hashes),
        text_hash=hashlib.sha256(normalized.encode()).digest(),
        opening=tuple(opening_hashes),
    )


# --- candidates ------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) whose S-curve 1 - (1 - J^rows)^bands best splits pairs at `threshold`.

    Minimises the area of false positives below the threshold plus false negatives above it,
    weighted equally, like datasketch's MinHashLSH does.
    """
    grid = np.linspace(0.0, 1.0, 1001)
    below, above = grid <= threshold, grid >= threshold
    best: tuple[float, int, int] = (float("inf"), 0, 0)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        hit = 1.0 - (1.0 - grid**rows) ** bands
        error = float(np.trapezoid(hit[below], grid[below]))
        error += float(np.trapezoid(1.0 - hit[above], grid[above]))
        best = min(best, (error, bands, rows))
    return best[1], best[2]


def band_keys(fp: Fingerprint, settings: DedupSettings) -> list[int]:
    """LSH band keys of the whole text's signature, then of the lead's.

    Each key is a signed 64-bit hash of (signature, band index, band values). Two articles share
    a key when one whole band is equal, which happens with probability 1 - (1 - J^rows)^bands
    for a Jaccard index J; `lsh_threshold` picks bands and rows. The lead's keys find a copy cut
    after a few paragraphs, whose Jaccard index with the whole story is small. xxhash with a
    fixed seed keeps keys equal across processes (Python's `hash` is randomised per process).
    """
    keys = _signature_keys(0, fp.signature, settings.lsh_threshold)
    if fp.lead:
        keys += _signature_keys(1, fp.lead, settings.lsh_threshold)
    return keys


def _signature_keys(which: int, signature: bytes, threshold: float) -> list[int]:
    bands, rows = lsh_bands(threshold, min(len(signature) // 4, _BAND_VALUES))
    width = 4 * rows
    keys = []
    for band in range(bands):
        chunk = signature[band * width : (band + 1) * width]
        unsigned = xxhash.xxh64_intdigest(struct.pack("<BH", which, band) + chunk)
        keys.append(unsigned - (1 << 64) if unsigned >= 1 << 63 else unsigned)
    return keys


# --- verification ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Similarity:
    """How alike two fingerprints are, and whether they fold, with the reason in words.

    `containment_est` is the higher of the whole texts' and the leads' estimate; `fact_overlap`
    the lower of the `fact_overlaps` scores (1.0 when neither kind can be compared).
    `contradicts`: the texts overlap enough to fold but their facts or their openings say they
    are different news (not merely too little to tell).
    """

    jaccard_est: float
    containment_est: float
    fact_overlap: float
    folds: bool
    reason: str
    contradicts: bool = False


def equal_values(a: bytes, b: bytes) -> int:
    """How many MinHash values two signatures share; / their length estimates the Jaccard index."""
    if len(a) != len(b):
        raise ValueError("fingerprints made with different num_perm cannot be compared")
    return int(np.count_nonzero(np.frombuffer(a, dtype="<u4") == np.frombuffer(b, dtype="<u4")))


def estimate_containment(a: bytes, b: bytes, size_a: int, size_b: int) -> tuple[float, float]:
    """(Jaccard, containment) estimated from two signatures of sets of the given sizes."""
    matches = equal_values(a, b)
    jaccard = matches / max(len(a) // 4, 1)
    if matches < _MIN_MATCHES:  # one chance match would make a short text "contained" anywhere
        return jaccard, jaccard
    return jaccard, containment_from_jaccard(jaccard, size_a, size_b)


def containment_from_jaccard(jaccard: float, size_a: int, size_b: int) -> float:
    """|A ∩ B| / min(|A|, |B|), with |A ∩ B| = J (|A| + |B|) / (1 + J)."""
    smaller = min(size_a, size_b)
    if smaller == 0:
        return 0.0
    return min(1.0, jaccard * (size_a + size_b) / (1.0 + jaccard) / smaller)


def fact_overlaps(a: Fingerprint, b: Fingerprint, near_identical: bool = False) -> dict[str, float]:
    """How well the numbers and the names of two texts agree, each from 0 to 1.

    A kind scores |A ∩ B| / min(|A|, |B|): the share of the smaller set found in the other.
    One number of the smaller set in four (at least two) may differ at no cost (a corrected copy
    fixes a figure or two; a templated story changes most of them); with fewer than three on
    either side, one shared number scores 1 (a copy cut short keeps few) and none scores 0 (a
    quake of another magnitude); they are left out only when a text has none. Names are left
    out when either text has fewer than three
    (templates repeat names: indices, agencies, institutions), and one name of the smaller set
    may be missing at no cost (a byline, photo credit or sign-off). Where a bottom-k sketch was
    cut, both are compared below the lower cut-off, a uniform sample of each set, and a kind
    needs three facts in the sample to score. Texts `near_identical` otherwise whose names all
    agree leave out numbers too few to score when none is shared: a corrected figure.
    """
    cut = [fp.facts[-1] for fp in (a, b) if fp.fact_count > len(fp.facts)]
    cutoff = min(cut, default=1 << 32)
    overlaps = {}
    for parity, kind in enumerate(("numbers", "names")):
        facts_a, facts_b = a.kinds[parity], b.kinds[parity]
        if cut:
            facts_a = frozenset(f for f in facts_a if f <= cutoff)
            facts_b = frozenset(f for f in facts_b if f <= cutoff)
        smaller = min(len(facts_a), len(facts_b))
        shared = len(facts_a & facts_b)
        if smaller >= _FEW_FACTS:
            stray = _STRAY_NAMES if kind == "names" else max(2, smaller // _CORRECTED_SHARE)
            overlaps[kind] = min(1.0, (shared + stray) / smaller)
        elif smaller and kind == "numbers" and not cut:
            overlaps[kind] = 1.0 if shared else 0.0
    if near_identical and overlaps.get("numbers") == 0.0 and overlaps.get("names", 0.0) == 1.0:
        del overlaps["numbers"]  # the one figure or two of a text otherwise the same: corrected
    return overlaps


def compare(a: Fingerprint, b: Fingerprint, settings: DedupSettings | None = None) -> Similarity:
    """Verify a candidate pair.

    Folds when the normalized texts are identical, or when all of these hold:

    - the shingle containment reaches `threshold`. It is estimated from the whole texts'
      signatures and from the leads', and the higher counts: a copy cut after a few paragraphs
      shares a tenth of a long story's shingles (a noisy estimate) but most of its lead's.
      Containment is never below the Jaccard index, so texts with a high Jaccard index pass too;
    - the facts agree (`fact_overlaps`: numbers and names each at least `fact_threshold`);
    - the openings are not news of their own (`own_news`): a live-update post repeats the
      running background of the series under a new item, so each post's opening holds facts
      the other lacks, while an updated copy keeps the story's opening (new paragraphs go over
      it or after it, a correction changes a number or two);
    - two short texts (both under 100 words) are near-identical (containment at least 0.9):
      a few sentences hold too few facts to tell texts apart and share a blog's or a
      template's wording too easily for a looser match to mean anything. (A copy cut short
      of a long story is judged as any copy: the long text is evidence enough.)
    """
    settings = settings or DedupSettings()
    if a.text_hash == b.text_hash:
        return Similarity(1.0, 1.0, 1.0, True, "identical text")
    jaccard, containment = estimate_containment(
        a.signature, b.signature, a.shingle_count, b.shingle_count
    )
    if _lead_is_partial(a) or _lead_is_partial(b):  # a copy cut short: the sharper estimate
        lead = estimate_containment(a.lead, b.lead, a.lead_count, b.lead_count)[1]
        containment = max(containment, lead)
    overlaps = fact_overlaps(a, b, near_identical=containment >= _NEAR_IDENTICAL)
    facts = min(overlaps.values(), default=1.0)

    def verdict(folds: bool, reason: str, contradicts: bool = False) -> Similarity:
        return Similarity(jaccard, containment, facts, folds, reason, contradicts)

    overlap = f"containment {containment:.2f}"
    if containment < settings.threshold:
        return verdict(False, f"too little overlap: {overlap} < {settings.threshold:.2f}")
    overlap += f" >= {settings.threshold:.2f}"
    detail = ", ".join(f"{kind} {value:.2f}" for kind, value in overlaps.items())
    if facts < settings.fact_threshold:
        reason = f"{overlap} but facts differ: {detail} (< {settings.fact_threshold:.2f})"
        return verdict(False, reason, contradicts=True)
    news = own_news(a, b), own_news(b, a)
    if min(news) >= _OWN_NEWS:
        return verdict(
            False,
            f"{overlap} but each opening has news of its own ({news[0]} and {news[1]} facts"
            " the other lacks)",
            contradicts=True,
        )
    if max(a.shingle_count, b.shingle_count) < _SHORT_SHINGLES:
        if containment < _NEAR_IDENTICAL:
            return verdict(
                False,
                f"short texts, too little to tell apart: {overlap} but not near-identical"
                f" (< {_NEAR_IDENTICAL:.2f})",
            )
        return verdict(True, f"{overlap}: short texts, near-identical")
    agree = f"facts agree: {detail}" if overlaps else "too few facts to tell apart"
    return verdict(True, f"{overlap} and {agree}")


def _lead_is_partial(fp: Fingerprint) -> bool:
    """Whether the lead signature covers only the start of the text (else it adds only noise)."""
    return bool(fp.lead) and fp.lead_count < fp.shingle_count


def own_news(a: Fingerprint, b: Fingerprint) -> int:
    """How many facts of `a`'s opening `b` lacks (only facts `b`'s fact sketch can vouch for)."""
    cut = b.facts[-1] if b.fact_count > len(b.facts) else 1 << 32
    return sum(1 for f in a.opening if f not in b.kinds[f & 1] and f <= cut)


def exact_similarity(text_a: str, text_b: str, settings: DedupSettings) -> tuple[float, float]:
    """(Jaccard, containment) of the real shingle sets, for explaining one decision."""
    set_a = shingles(text_a, settings.shingle_size)
    set_b = shingles(text_b, settings.shingle_size)
    if not set_a or not set_b:
        return 0.0, 0.0
    common = len(set_a & set_b)
    return common / len(set_a | set_b), common / min(len(set_a), len(set_b))
