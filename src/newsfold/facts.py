"""Facts: the tokens of a text that tell one news story from another of the same wording.

Templated stories (market wraps, weather, results) and the posts of a live-update series share
most of their words with each other; their numbers and names differ. dedup keeps hashes of
these tokens in each fingerprint and compares them beside the shingles.
"""

from __future__ import annotations

import re
import unicodedata

# A fact candidate, with the sentence boundary (if any) right before it; "'s" is left out.
_FACT_SCAN = re.compile(
    r"([.!?:;\n\"“«„—\u2013]?)[\s(\[]*(\d+(?:[.,:]\d+)*|[^\W\d_]+(?:['\u2019](?!s\b)[^\W\d_]+)*)"
)
# Prose ends with a full stop, a question or exclamation mark, a closing quote or bracket.
_PROSE_END = (".", "!", "?", '"', "”", "\u2019", "'", ")", "。")  # NFKC turned "…" into "..."
# "PARIS (AFP) —", "Paris, France -", "NEW YORK, Feb 17 (Reuters) -": a dateline opens a copy.
_DATELINE = re.compile(r"\A[^\n.!?]{1,40}?\s[—\u2013-]{1,2}\s")
# Wire agencies appear in datelines and credit lines, which outlets rewrite at will.
_AGENCIES = frozenset(
    {"afp", "ap", "reuters", "efe", "dpa", "ansa", "xinhua", "upi", "kyodo", "yonhap", "aap",
     "pti", "ians", "tass", "anadolu", "apa", "sda", "ats", "ctk", "pap", "epa"}
)  # fmt: skip
_OPENING_MIN = 15
_OPENING_WORDS = 80


def fact_tokens(text: str) -> frozenset[str]:
    """The tokens that carry a story's facts: numbers, and capitalised words inside a sentence.

    Only prose lines count (ending like a sentence ends), so headlines, share bars, "Related:"
    links and other page furniture that leaks into the text add no facts; nor do a leading
    dateline and wire agency names, which outlets rewrite. Numbers keep their separators
    ("3.5", "1,204", "10:30"); a capitalised word of two letters or more counts unless it opens
    a sentence, a quote or a dash clause, where any word is capitalised. Tokens are casefolded.
    """
    return _facts_of_lines(_prose_lines(text))


def opening_facts(text: str) -> frozenset[str]:
    """The facts of a text's opening: its first prose paragraph of at least `_OPENING_MIN`
    words (shorter lines are headlines, captions, notes) that holds any, at most its first
    `_OPENING_WORDS` words (for texts that come as one long paragraph).

    A live-update post opens with its new item, an updated copy with the story's own opening
    (or new paragraphs over it): `dedup.compare` reads the two openings to tell them apart.
    """
    return _opening_of(_prose_lines(text))


def facts_and_opening(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """`fact_tokens` and `opening_facts` of a text, its prose read once."""
    prose = _prose_lines(text)
    return _facts_of_lines(prose), _opening_of(prose)


def _opening_of(prose_lines: list[str]) -> frozenset[str]:
    for line in prose_lines:
        words = line.split()
        if len(words) >= _OPENING_MIN and (
            found := _facts_of_prose(" ".join(words[:_OPENING_WORDS]))
        ):
            return found
    return frozenset()


def _prose_lines(text: str) -> list[str]:
    lines = unicodedata.normalize("NFKC", text).splitlines()
    return [line for line in lines if line.rstrip().endswith(_PROSE_END)]


def _facts_of_lines(prose_lines: list[str]) -> frozenset[str]:
    return _facts_of_prose("\n".join(prose_lines))


def _facts_of_prose(prose: str) -> frozenset[str]:
    found = _FACT_SCAN.findall("\n" + _DATELINE.sub("", prose.lstrip(), count=1))
    return (
        frozenset(
            word.casefold()
            for boundary, word in found
            if word[0].isdigit() or (not boundary and word[0].isupper() and len(word) > 1)
        )
        - _AGENCIES
    )


def is_number(fact: str) -> bool:
    """Whether a fact token is a number (else it is a name)."""
    return fact[0].isdigit()
