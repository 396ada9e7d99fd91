"""Search queries in the web-search style people already know, read into plain data. Pure.

    zurich "central bank" -football flood OR storm

Words must all match; "quoted words" match as a phrase, in that order; a leading `-` excludes a
word or a phrase; `OR` (in capitals) between two terms lets either match. Anything else a search
engine would read as syntax (`*`, `^`, `:`, `NEAR`, parentheses, `AND`, `NOT`) is text here.

A term is split into words the way both stores' indexes split text: a word is a run of letters,
digits and combining marks, so "e-mail" is the phrase "e mail" and "U.S." the phrase "u s".
Case and accents are folded by the index itself, never here, so both sides fold alike.

`highlight` finds a query's words in a text for the snippet shown beside a result.
"""

from __future__ import annotations

import unicodedata
from collections import deque
from dataclasses import dataclass

import regex

from newsfold.errors import NewsfoldError

MAX_WORDS = 64  # words of a whole query: enough for any phrase worth quoting
MAX_WORD_CHARS = 100  # a longer "word" is pasted noise, and PostgreSQL does not index one
SNIPPET_CHARS = 160

# A word: letters, digits and combining marks (which belong to the letter they follow: Arabic
# vowel marks, Devanagari vowel signs), and private-use characters, as the indexes read them.
_WORD = regex.compile(r"[\p{L}\p{N}\p{M}\p{Co}]+")
# A query item: an optional "-", then a quoted phrase (its closing quote optional) or a word.
_ITEM = regex.compile(r'(-?)(?:"([^"]*)"?|([^\s"]+))')
_SPACE = regex.compile(r"\s")


class QueryError(NewsfoldError):
    """A query that cannot be searched, with the reason in one line."""


@dataclass(frozen=True, slots=True)
class Term:
    """One word, or the words of a phrase in their order."""

    words: tuple[str, ...]

    @property
    def is_phrase(self) -> bool:
        return len(self.words) > 1


@dataclass(frozen=True, slots=True)
class Query:
    """Every group must match (one of its terms is enough), no excluded term may."""

    groups: tuple[tuple[Term, ...], ...]
    excluded: tuple[Term, ...] = ()

    @property
    def terms(self) -> tuple[Term, ...]:
        """The terms a match contains (some of them), for highlighting."""
        return tuple(term for group in self.groups for term in group)


@dataclass(frozen=True, slots=True)
class _Item:
    term: Term | None  # None: the OR operator
    excluded: bool = False


def words_of(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text))


def parse_query(text: str) -> Query:
    """The query in `text`, or a QueryError saying in one line why there is nothing to search."""
    groups: list[list[Term]] = []
    excluded: list[Term] = []
    items = _items(text)
    for index, item in enumerate(items):
        if item.term is None:
            continue  # an OR joining two terms: handled by the term after it
        if item.excluded:
            excluded.append(item.term)
        elif groups and _joined_by_or(items, index):
            groups[-1].append(item.term)
        else:
            groups.append([item.term])
    if not groups:
        raise QueryError(
            "nothing to search for: add a word that is not excluded"
            if excluded
            else 'nothing to search for: give a word or a "phrase"'
        )
    query = Query(tuple(tuple(g) for g in groups), tuple(excluded))
    _check_size(query)
    return query


def _items(text: str) -> list[_Item]:
    """The query's terms and OR operators, in order; terms without a word left out."""
    raw = [(m.group(1) == "-", m.group(2), m.group(3)) for m in _ITEM.finditer(text)]
    items: list[_Item] = []
    for position, (minus, phrase, word) in enumerate(raw):
        if phrase is None and word == "OR" and not minus and _between_terms(raw, position):
            items.append(_Item(None))
            continue
        words = words_of(phrase if phrase is not None else word)
        if words:
            items.append(_Item(Term(words), excluded=minus))
    return items


def _between_terms(raw: list[tuple[bool, str | None, str | None]], position: int) -> bool:
    """Whether an OR stands between two terms to include (else it is the word "or")."""
    if position == 0 or position == len(raw) - 1:
        return False
    before, after = raw[position - 1], raw[position + 1]
    return not before[0] and not after[0] and after[2] != "OR"


def _joined_by_or(items: list[_Item], index: int) -> bool:
    if index < 2 or items[index - 1].term is not None:
        return False
    before = items[index - 2]
    return before.term is not None and not before.excluded


def _check_size(query: Query) -> None:
    every = [*query.terms, *query.excluded]
    count = sum(len(term.words) for term in every)
    if count > MAX_WORDS:
        raise QueryError(f"the query has {count:,} words; search with at most {MAX_WORDS}")
    longest = max((w for term in every for w in term.words), key=len)
    if len(longest) > MAX_WORD_CHARS:
        raise QueryError(
            f"a word of {len(longest):,} characters cannot be searched (at most {MAX_WORD_CHARS})"
        )


# -- snippets ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snippet:
    """A short passage of a text and where the query's words are in it (start, end offsets)."""

    text: str
    marks: tuple[tuple[int, int], ...] = ()


def fold(word: str) -> str:
    """Case and accents away, close to what the indexes do, to find a match again for display."""
    lowered = word.casefold()
    if lowered.isascii():  # most words of most texts: nothing more to fold
        return lowered
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def highlight(text: str, query: Query, width: int = SNIPPET_CHARS) -> Snippet:
    """The passage of about `width` characters around the first match, matches marked.

    A phrase is marked only where its words follow each other; a text without a match (the
    title matched) gives its beginning, unmarked. The text is read only as far as the passage.
    """
    matches = _matches(text, query, width)
    if not matches:
        return Snippet(_clip(text, 0, width)[0])
    start = max(0, matches[0][0] - width // 3)
    if start:  # from the start of a word
        word = _WORD.search(text, start)
        start = word.start() if word else start
    passage, end = _clip(text, start, width)
    prefix = "…" if start else ""
    offset = len(prefix) - start
    marks = tuple((s + offset, e + offset) for s, e in matches if s >= start and e <= end)
    return Snippet(prefix + passage, marks)


def _matches(text: str, query: Query, width: int) -> list[tuple[int, int]]:
    """Spans where one of the query's terms occurs, in text order, overlaps merged, from the
    start of the text to `width` characters past the first one."""
    ending: dict[str, list[tuple[str, ...]]] = {}  # the terms by their last word
    for term in {tuple(fold(w) for w in term.words) for term in query.terms}:
        ending.setdefault(term[-1], []).append(term)
    recent: deque[tuple[int, str]] = deque(maxlen=max(len(t) for ts in ending.values() for t in ts))
    found: list[tuple[int, int]] = []
    for word in _WORD.finditer(text):
        if found and word.start() > found[0][0] + width:
            break
        folded = fold(word.group())
        recent.append((word.start(), folded))
        # Most words end no term: only those that do are compared with what came before.
        for term in ending.get(folded, ()):
            if len(recent) >= len(term) and _ends_with(recent, term):
                found.append((recent[-len(term)][0], word.end()))
    return _merged(sorted(found))


def _ends_with(recent: deque[tuple[int, str]], term: tuple[str, ...]) -> bool:
    skip = len(recent) - len(term)
    return all(recent[skip + i][1] == word for i, word in enumerate(term))


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _clip(text: str, start: int, width: int) -> tuple[str, int]:
    """Text from `start`, cut at a space near `width` characters, one line; and where it ends."""
    end = min(len(text), start + width)
    if end < len(text):
        space = text.rfind(" ", start + width // 2, end)
        end = space if space > 0 else end
    passage = _SPACE.sub(" ", text[start:end])  # one for one: the marks' offsets stay true
    return passage + ("…" if end < len(text) else ""), end
