"""Full-text search, one contract for every store backend (SQLite file, PostgreSQL schema).

Articles are saved the way a run saves them (record_feed); the story each joins is named by the
test (each article's dedup plan stands for its story's label, and only equal labels fold), so what
a search returns can be checked story by story.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from newsfold.errors import StoreError
from newsfold.model import Article, Entry, FeedSource, Story
from newsfold.query import QueryError, parse_query
from newsfold.search import Found, find_stories
from newsfold.store import FeedUpdate, Store, open_store, schema
from newsfold.store.search import add_search_pairs
from newsfold.store.sql import SqlStore
from tests.stores import label_plan, labelled, same_label, schema_before_search

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

ZURICH = "The mayor of Zürich said the central bank would keep rates where they are."
STORM = "A hurricane hit the coast on Monday; the coast guard rescued twelve people."
CYCLONE = "A cyclone crossed the islands overnight and cut power to thousands of homes."
BANK = "The bank on the river was central to the town's trade for a century."
FLOOD_MATCH = "Floods in the valley: the football stadium was used as a shelter."
FLOOD = "Floods in the valley forced two hundred families from their homes."
LANGUAGES = {
    "de": "Der Bürgermeister von Köln eröffnete am Montag die neue Brücke über den Rhein.",
    "es": "El alcalde de Málaga inauguró el lunes una biblioteca en el barrio de El Palo.",
    "fr": "Le ministre de l'Éducation a annoncé la fermeture des écoles à Besançon.",
    "ar": "قال رئيس الوزراء في القاهرة، إن الحكومة ستفتتح مستشفى جديدا في الإسكندرية.",
}


def save(
    store: Store,
    label: str,
    texts: Sequence[str],
    at: datetime = NOW,
    title: str = "A headline",
    version: int = 1,
) -> None:
    """`texts` as copies of one story `label`, each from its own outlet, checked at `at`;
    a later `version` of the same copies is an edit of their pages."""
    feed = f"https://{label}.example/feed"
    store.add_feed(FeedSource(feed), at)
    fid = next(f.id for f in store.feeds() if f.url == feed)
    entries, articles, links = [], [], {}
    for n, text in enumerate(texts):
        url = f"https://outlet{n}.example/{label}"
        entries.append(Entry(key=url, link=url, title=title, summary=None, published=at))
        article = Article(url, fid, title, text, "page", at, site_name=f"Outlet {n}")
        articles.append(labelled(article, label if version == 1 else f"{label} v{version}"))
        links[url] = url
    update = FeedUpdate(fid, at, at + timedelta(minutes=30))
    store.record_feed(update, entries, articles, links, same_label(at))


def search(store: Store, text: str, since: datetime | None = None, limit: int = 20) -> list[Found]:
    return find_stories(store, text, since, limit)


def labels(found: list[Found]) -> list[str]:
    """The story label of each result (the host of its first copy's feed)."""
    return [_label(f.story) for f in found]


def _label(story: Story) -> str:
    return story.articles[0].url.rsplit("/", 1)[1]


@pytest.fixture
def news(store: Store) -> Store:
    save(store, "zurich", [ZURICH])
    save(store, "storm", [STORM])
    save(store, "cyclone", [CYCLONE])
    save(store, "bank", [BANK])
    save(store, "floodball", [FLOOD_MATCH])
    save(store, "flood", [FLOOD])
    for language, text in LANGUAGES.items():
        save(store, language, [text])
    return store


def test_all_words_must_match(news: Store) -> None:
    """Words without operators must all be in a copy."""
    assert set(labels(search(news, "central bank"))) == {"bank", "zurich"}
    assert labels(search(news, "central bank mayor")) == ["zurich"]


def test_phrase_matches_words_in_order(news: Store) -> None:
    """A quoted phrase finds its words next to each other, in order, and nothing else."""
    assert labels(search(news, '"central bank"')) == ["zurich"]
    assert labels(search(news, '"bank central"')) == []


def test_excluded_words_and_phrases(news: Store) -> None:
    """-word and -"phrase" drop the stories whose copies contain them."""
    assert set(labels(search(news, "floods"))) == {"flood", "floodball"}
    assert labels(search(news, "floods -football")) == ["flood"]
    assert labels(search(news, 'floods -"football stadium"')) == ["flood"]
    assert labels(search(news, 'floods -"stadium football"')) != ["flood"]


def test_or_takes_either(news: Store) -> None:
    """OR between two terms finds stories with one or the other."""
    assert set(labels(search(news, "hurricane OR cyclone"))) == {"storm", "cyclone"}
    assert labels(search(news, "hurricane OR cyclone islands")) == ["cyclone"]
    assert labels(search(news, "hurricane or cyclone")) == []  # lower case: the word "or"


def test_accents_and_case_fold(news: Store) -> None:
    """Zurich finds Zürich, and the other way round; case does not matter."""
    assert labels(search(news, "Zurich")) == ["zurich"]
    assert labels(search(news, "ZÜRICH")) == ["zurich"]
    assert labels(search(news, "zu\u0308rich")) == ["zurich"]  # decomposed ü
    assert labels(search(news, "education ecoles besancon")) == ["fr"]


@pytest.mark.parametrize(
    ("query", "label"),
    [
        ("bürgermeister köln brücke", "de"),
        ("Burgermeister Koln", "de"),
        ('"alcalde de malaga"', "es"),
        ("inauguró biblioteca", "es"),
        ("l'éducation", "fr"),
        ("القاهرة", "ar"),
        ('"مستشفى جديدا"', "ar"),
    ],
)
def test_languages_are_found_by_their_words(news: Store, query: str, label: str) -> None:
    """German, Spanish, French and Arabic texts are found by their own words."""
    assert labels(search(news, query)) == [label]


def test_punctuation_splits_words_alike_on_every_store(store: Store) -> None:
    """e-mail, 3.5 and U.S. are split into the same words on SQLite and PostgreSQL."""
    save(store, "markets", ["U.S. shares rose 3.5% after the e-mail from the chair leaked."])
    for query in ("e-mail", "mail", '"3.5%"', "3", "U.S.", "u s", '"e mail"'):
        assert labels(search(store, query)) == ["markets"], query
    assert labels(search(store, "email")) == []


def test_a_story_with_many_copies_is_returned_once(store: Store) -> None:
    """Forty copies of a wire story: one result listing forty copies."""
    wire = "Volcano erupts near the capital, sending ash twelve kilometres into the sky."
    save(store, "volcano", [f"{wire} Copy {n} of the wire text." for n in range(40)])
    save(store, "other", ["A volcano museum opens in the old town."])
    found = search(store, "volcano")
    assert sorted(labels(found)) == ["other", "volcano"]
    [wire_story] = [f.story for f in found if _label(f.story) == "volcano"]
    assert len(wire_story.articles) == 40


def test_best_first_then_newest(store: Store) -> None:
    """More of the query's words rank higher; equal scores put the newer story first."""
    save(store, "once", ["The harbour opened a new ferry terminal on the east side of the bay."])
    save(store, "often", ["Ferry, ferry, ferry: the ferry strike stopped every ferry today."])
    save(store, "older", ["A new ferry route to the islands."], at=NOW - timedelta(days=2))
    save(store, "newer", ["A new ferry route to the islands."], at=NOW - timedelta(days=1))
    found = search(store, "ferry")
    assert labels(found)[0] == "often"
    assert labels(found).index("newer") == labels(found).index("older") - 1
    assert [f.score for f in found] == sorted((f.score for f in found), reverse=True)


def test_since_keeps_recent_stories(store: Store) -> None:
    """--since leaves out stories not updated within the window."""
    save(store, "old", ["Election results in the north."], at=NOW - timedelta(days=10))
    save(store, "new", ["Election results in the south."], at=NOW - timedelta(hours=2))
    assert set(labels(search(store, "election"))) == {"old", "new"}
    assert labels(search(store, "election", since=NOW - timedelta(days=1))) == ["new"]


def test_limit_and_no_match(news: Store) -> None:
    """--limit caps the stories; a query matching nothing gives an empty list."""
    assert len(search(news, "the", limit=2)) == 2
    assert search(news, "xylophone") == []
    assert search(news, '"mayor bank"') == []


def test_snippet_marks_the_match(news: Store) -> None:
    """The snippet is from the matching copy, with the query's words marked where they are."""
    [found] = search(news, 'zurich "central bank"')
    marked = [found.snippet.text[s:e] for s, e in found.snippet.marks]
    assert marked == ["Zürich", "central bank"]


def test_index_follows_edits_and_refolds(store: Store) -> None:
    """A changed page is found by its new words only; a refold regroups results by story."""
    save(store, "edit", ["The first version speaks of apples."])
    later = NOW + timedelta(hours=1)
    save(store, "edit", ["The second version speaks of pears."], at=later, version=2)
    assert labels(search(store, "pears")) == ["edit"]
    assert search(store, "apples") == []
    save(store, "twin", ["Twin copy about pears and plums."])
    assert len(search(store, "pears")) == 2
    # Both copies refolded under the label of the edit: one story.
    plans = {i: label_plan("edit v2") for i, _text in store.texts_since(NOW - timedelta(days=1))}
    refolded = store.refold(plans, same_label(NOW))
    assert refolded == 2
    [one] = search(store, "pears")
    assert len(one.story.articles) == 2


@pytest.mark.parametrize(
    "query",
    [
        '"unbalanced quote',
        'central "bank',
        "title:zurich",
        "NEAR(central bank)",
        "zur* ^central",
        "central AND bank NOT mayor",
        "(central) OR)",
        "' ; DROP TABLE articles; --",
        "100% \\ bank",
        "OR",
        "OR OR zurich OR",
        "zurich\x00bank",
        "word " * 60,
    ],
)
def test_syntax_in_a_query_is_text(news: Store, query: str) -> None:
    """Quotes, operators and punctuation of other search syntaxes give results, never errors."""
    assert isinstance(search(news, query), list)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("-zurich -bank", "add a word that is not excluded"),
        ("", "give a word"),
        ('""  *** ', "give a word"),
        ("word " * 2000, "at most 64"),
        ("x" * 10_000, "cannot be searched"),
    ],
)
def test_a_query_with_nothing_to_search_says_why(news: Store, query: str, message: str) -> None:
    """Only excluded words, no words at all, or 10,000 characters: one clear error."""
    with pytest.raises(QueryError, match=message):
        search(news, query)


def test_migration_indexes_a_store_made_before_search(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store of the previous schema gets every stored article indexed, with progress."""

    monkeypatch.setattr(schema, "LATEST", schema_before_search())
    old = open_store(store_url)
    try:
        old.migrate()
        save(old, "early", ["Archive text about glaciers."])
        save(old, "late", ["More archive text about glaciers and lakes."])
        assert search_fails(old)
        monkeypatch.undo()
        seen: list[tuple[int, int]] = []
        assert old.migrate(lambda done, total: seen.append((done, total))) == schema_before_search()
        assert seen[-1] == (2, 2)
        assert set(labels(search(old, "glaciers"))) == {"early", "late"}
        assert old.check() == []
    finally:
        old.close()


# PostgreSQL's index as it was before pairs of words: a document per article, nothing beside it.
BEFORE_PAIRS = "ALTER TABLE article_search DROP COLUMN pairs"


def test_phrases_stay_exact_in_a_store_indexed_before_pairs(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store indexed by the schema before pairs of words (PostgreSQL makes them for every
    stored document, with progress; SQLite has nothing to do) finds a phrase only where its
    words are next to each other, and the words anywhere."""

    monkeypatch.setattr(schema, "LATEST", schema.MIGRATIONS.index(add_search_pairs))
    old = open_store(store_url)
    try:
        old.migrate()
        save(old, "zurich", [ZURICH])
        save(old, "bank", [BANK])
        if isinstance(old, SqlStore) and not old.is_sqlite:
            with old.engine.begin() as conn:
                conn.exec_driver_sql(BEFORE_PAIRS)
        monkeypatch.undo()
        seen: list[tuple[int, int]] = []
        old.migrate(lambda done, total: seen.append((done, total)))
        assert labels(search(old, '"central bank"')) == ["zurich"]
        assert set(labels(search(old, "central bank"))) == {"zurich", "bank"}
        save(old, "later", ["Later, the central bank said it would wait."])
        assert set(labels(search(old, '"the central bank"'))) == {"zurich", "later"}
        assert seen == ([] if store_url.startswith("sqlite") else [(0, 2), (2, 2)])
        assert old.check() == []
    finally:
        old.close()


def search_fails(store: Store) -> bool:
    """Whether searching `store` fails (it has no index yet)."""
    try:
        search(store, "glaciers")
    except StoreError:
        return True
    return False


def test_parse_query_shapes() -> None:
    """The query's parts: groups of alternatives and the excluded terms."""
    query = parse_query('zurich "central bank" -football flood OR storm')
    assert [[t.words for t in g] for g in query.groups] == [
        [("zurich",)],
        [("central", "bank")],
        [("flood",), ("storm",)],
    ]
    assert [t.words for t in query.excluded] == [("football",)]
