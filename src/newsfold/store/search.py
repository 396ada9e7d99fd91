"""Full-text search over the stored articles, with each engine's own index.

The index holds articles (title and text) by article id, never stories: a query finds articles,
and they are grouped by the story each belongs to *now*, so a refold, a merge or a move is right
by construction and the index never has to follow them. Triggers on `articles` keep the index in
the transaction that writes the article, whatever code path writes it.

- SQLite: an FTS5 table over `articles` (external content: the text is not stored twice), with
  the unicode61 tokenizer folding case and removing diacritics; ranked by BM25.
- PostgreSQL: `article_search`, one `tsvector` per article under a GIN index, built with the
  `simple` configuration (no stemming, no stop words: every language alike) from the text with
  accents removed (the unaccent extension) and the joiners PostgreSQL's parser would keep inside
  a word (e-mail, 3.5, U.S.) made spaces, so both engines split text into the same words;
  ranked by ts_rank with length normalisation. Beside each document, `pairs` holds its pairs of
  adjacent words as lexemes without positions ("at the", "the time"), under the same GIN index:
  a phrase also asks for its pairs, so only the documents that hold every pair are read to
  check the words' positions, where its words alone (common ones) would find many more.

The title counts TITLE_WEIGHT times a word of the text on both.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, DateTime, TextClause, bindparam, text
from sqlalchemy.exc import DBAPIError

from newsfold.query import Query, Term
from newsfold.store import Progress, SearchHit
from newsfold.store.base import SqlBase

log = logging.getLogger("newsfold")

TITLE_WEIGHT = 4.0
MAX_RANKED = 2000  # matching articles ranked, the newest: bounds a query of common words
BUILD_BATCH = 2000  # articles indexed per statement while a migration builds the index
# unicode61 splits words at anything but letters, digits and (added here) combining marks,
# so Arabic vowel marks or Devanagari vowel signs stay inside their word, as on PostgreSQL.
SQLITE_TOKENIZER = "unicode61 remove_diacritics 2 categories 'L* N* Co M*'"
# Characters PostgreSQL's parser keeps inside a token (hosts, e-mail, 3.5, paths, tags): spaces,
# so "e-mail" is the two words SQLite sees, not a third.
PG_JOINERS = ".-/@:_+<>&"
MAX_PAIR_BYTES = 1000  # a pair of longer words is left out: a lexeme holds 2,047 bytes at most
GIN_BUILD_MB = 256  # memory for building the GIN index in a migration
GIN_PENDING_KB = 256  # PostgreSQL's default is 4 MB: a query on fresh rows scans up to that
UNACCENT_SCHEMA = "newsfold_ext"  # where this store installs unaccent when the database lacks it

# -- building the index (a migration) ------------------------------------------------------------


def create_search_index(conn: Connection, progress: Progress) -> None:
    """The index, its triggers, and every stored article in it."""
    if conn.dialect.name == "sqlite":
        _create_sqlite(conn)
        _fill(conn, progress, _SQLITE_FILL)
    else:
        _create_postgres(conn)
        _fill(conn, progress, _PG_FILL)
        _create_pg_gin_index(conn)  # after the fill: one sorted build, not a row at a time


def _create_sqlite(conn: Connection) -> None:
    conn.exec_driver_sql(
        "CREATE VIRTUAL TABLE article_search USING fts5("
        "title, text, content='articles', content_rowid='id', "
        f'tokenize="{SQLITE_TOKENIZER}")'
    )
    add = "INSERT INTO article_search(rowid, title, text) VALUES (new.id, new.title, new.text);"
    drop = (
        "INSERT INTO article_search(article_search, rowid, title, text)"
        " VALUES ('delete', old.id, old.title, old.text);"
    )
    for statement in (
        f"CREATE TRIGGER article_search_insert AFTER INSERT ON articles BEGIN {add} END",
        f"CREATE TRIGGER article_search_delete AFTER DELETE ON articles BEGIN {drop} END",
        "CREATE TRIGGER article_search_update AFTER UPDATE OF title, text ON articles"
        f" BEGIN {drop} {add} END",
    ):
        conn.exec_driver_sql(statement)


def _create_postgres(conn: Connection) -> None:
    unaccent = _unaccent_call(conn)
    joiners = PG_JOINERS.replace("'", "''")
    conn.exec_driver_sql(
        "CREATE FUNCTION newsfold_search_words(value text) RETURNS text"
        " LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS"
        f" $$ SELECT translate({unaccent}, '{joiners}', '{' ' * len(PG_JOINERS)}') $$"
    )
    conn.exec_driver_sql(
        "CREATE TABLE article_search ("
        " article_id integer PRIMARY KEY REFERENCES articles(id) ON DELETE CASCADE,"
        " document tsvector NOT NULL, pairs tsvector)"
    )
    _create_pg_functions(conn)
    conn.exec_driver_sql(
        "CREATE TRIGGER article_search_sync AFTER INSERT OR UPDATE OF title, text ON articles"
        " FOR EACH ROW EXECUTE FUNCTION newsfold_index_article()"
    )


def _create_pg_functions(conn: Connection) -> None:
    """The document of a title and text (their words, with positions) and its pairs of words;
    a query term's pairs, made by the same functions, so they match the documents'; one
    article's row written from them (`newsfold_index`), by the trigger and by the fill."""
    conn.exec_driver_sql(
        "CREATE OR REPLACE FUNCTION newsfold_search_document(title text, body text)"
        " RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT"
        " setweight(to_tsvector('simple', newsfold_search_words(coalesce(title, ''))), 'A')"
        " || to_tsvector('simple', newsfold_search_words(coalesce(body, ''))) $$"
    )
    conn.exec_driver_sql(
        "CREATE OR REPLACE FUNCTION newsfold_search_pairs(words tsvector) RETURNS tsvector"
        " LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT"
        " coalesce(array_to_tsvector(array_agg(DISTINCT a.lexeme || ' ' || b.lexeme)), '')"
        " FROM (SELECT lexeme, unnest(positions) AS at FROM unnest(words)) a"
        " JOIN (SELECT lexeme, unnest(positions) AS at FROM unnest(words)) b ON b.at = a.at + 1"
        f" WHERE octet_length(a.lexeme) + octet_length(b.lexeme) < {MAX_PAIR_BYTES} $$"
    )
    conn.exec_driver_sql(
        "CREATE OR REPLACE FUNCTION newsfold_search_phrase(term text) RETURNS tsquery"
        " LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS"
        " $$ SELECT phraseto_tsquery('simple', newsfold_search_words(term)) $$"
    )
    # The pairs ANDed, each quoted (the parser splits words at quotes and backslashes, so a
    # lexeme holds none; escaped all the same). No pairs (one word): NULL.
    conn.exec_driver_sql(
        "CREATE OR REPLACE FUNCTION newsfold_search_pairs_query(term text) RETURNS tsquery"
        " LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT string_agg("
        r" '''' || replace(replace(pair, '\', '\\'), '''', '''''') || '''', ' & ')::tsquery"
        " FROM unnest(tsvector_to_array(newsfold_search_pairs("
        " newsfold_search_document(NULL, term)))) pair $$"
    )
    # One article's document and pairs, written: the trigger's work and the fill's alike.
    conn.exec_driver_sql(
        "CREATE OR REPLACE FUNCTION newsfold_index(article integer, title text, body text)"
        " RETURNS void LANGUAGE plpgsql AS $$ BEGIN"
        " INSERT INTO article_search (article_id, document, pairs)"
        " SELECT article, d, newsfold_search_pairs(d)"
        " FROM newsfold_search_document(title, body) d"
        " ON CONFLICT (article_id) DO UPDATE"
        " SET document = EXCLUDED.document, pairs = EXCLUDED.pairs;"
        " END $$"
    )
    conn.exec_driver_sql(
        "CREATE OR REPLACE FUNCTION newsfold_index_article() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ BEGIN PERFORM newsfold_index(NEW.id, NEW.title, NEW.text); RETURN NULL; END $$"
    )


def add_search_pairs(conn: Connection, progress: Progress) -> None:
    """PostgreSQL: the pairs of words of every stored document, and the index built again over
    both (one sorted build instead of a row at a time). SQLite's FTS5 reads phrases fast enough."""
    if conn.dialect.name == "sqlite":
        return
    conn.exec_driver_sql("ALTER TABLE article_search ADD COLUMN IF NOT EXISTS pairs tsvector")
    _create_pg_functions(conn)
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_article_search_document")
    _fill(conn, progress, _PG_ADD_PAIRS)
    _create_pg_gin_index(conn)


def _create_pg_gin_index(conn: Connection) -> None:
    # A million articles' index took 640 s to build in PostgreSQL's default 64 MB, 430 s in this.
    conn.exec_driver_sql(f"SET LOCAL maintenance_work_mem = '{GIN_BUILD_MB}MB'")
    # New rows wait in a pending list every query scans; a small one keeps that scan short
    # between vacuums.
    conn.exec_driver_sql(
        "CREATE INDEX ix_article_search_document ON article_search USING gin (document, pairs)"
        f" WITH (gin_pending_list_limit = {GIN_PENDING_KB})"
    )


def _unaccent_call(conn: Connection) -> str:
    """`value` with accents removed, as SQL; the value unchanged (and a warning) without unaccent.

    unaccent is installed in a schema of its own, shared by every store in the database, and
    called with its dictionary named: an expression that does not depend on search_path.
    """
    schema = _unaccent_schema(conn)
    if schema is None:
        log.warning(
            "PostgreSQL has no unaccent extension (Debian: postgresql-contrib): search will not "
            "fold accents in this store"
        )
        return "value"
    return f'"{schema}".unaccent(\'"{schema}".unaccent\'::regdictionary, value)'


def _unaccent_schema(conn: Connection) -> str | None:
    found = conn.exec_driver_sql(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'unaccent'"
    ).scalar()
    if found is not None:
        return str(found)
    try:
        with conn.begin_nested():
            conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {UNACCENT_SCHEMA}")
            conn.exec_driver_sql(f"CREATE EXTENSION unaccent SCHEMA {UNACCENT_SCHEMA}")
    except DBAPIError as exc:  # not installed on the server, or not ours to install
        log.debug("unaccent: %s", exc)
        return None
    return UNACCENT_SCHEMA


_SQLITE_FILL = (
    "INSERT INTO article_search(rowid, title, text)"
    " SELECT id, title, text FROM articles WHERE id > :after AND id <= :upto"
)
_PG_FILL = (
    "SELECT count(newsfold_index(id, title, text)) FROM articles WHERE id > :after AND id <= :upto"
)
_PG_ADD_PAIRS = (
    "UPDATE article_search SET pairs = newsfold_search_pairs(document)"
    " WHERE pairs IS NULL AND article_id > :after AND article_id <= :upto"
)


def _fill(conn: Connection, progress: Progress, statement: str) -> None:
    """Index the stored articles, or compute their pairs, a batch of ids at a time."""
    total = int(conn.exec_driver_sql("SELECT count(*) FROM articles").scalar() or 0)
    if not total:
        return
    ids = [int(i) for i in conn.exec_driver_sql("SELECT id FROM articles ORDER BY id").scalars()]
    progress(0, total)
    for start in range(0, total, BUILD_BATCH):
        batch = ids[start : start + BUILD_BATCH]
        conn.execute(text(statement), {"after": batch[0] - 1, "upto": batch[-1]})
        progress(start + len(batch), total)


# -- queries -------------------------------------------------------------------------------------


class SearchSql(SqlBase):
    """StorySearch: one statement per query, the stories ranked in it."""

    def search_stories(self, query: Query, since: datetime | None, limit: int) -> list[SearchHit]:
        params: dict[str, Any] = {"limit": limit}
        if self.is_sqlite:
            statement = _ranked(_SQLITE_HITS, since)
            params["match"] = fts5_query(query)
        else:
            condition, tsquery, query_params = tsquery_sql(query)
            hits = _PG_HITS.replace("{condition}", condition).replace("{tsquery}", tsquery)
            statement = _ranked(hits, since)
            params.update(query_params)
        if since is not None:
            # Stored as naive UTC, the way the store's UTCDateTime columns keep it.
            params["since"] = since.astimezone(UTC).replace(tzinfo=None)
        with self._read() as conn:
            if not self.is_sqlite:
                # The planner prices `@@` as if documents were not read out of line: with many
                # matches it may read every document of the table, 15x the index's time.
                conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            rows = conn.execute(statement, params).all()
        return [SearchHit(r.story_id, float(r.score), r.id, r.title, r.text) for r in rows]


# One row per matching article, with its score (higher is better): the newest MAX_RANKED of them,
# found in the index's id order before any score is computed, so a query of common words costs
# what a rare one does.
_SQLITE_HITS = f"""
    SELECT f.rowid AS id, a.story_id, f.score
    FROM (
        SELECT rowid, -bm25(article_search, {TITLE_WEIGHT}, 1.0) AS score
        FROM article_search WHERE article_search MATCH :match
        ORDER BY rowid DESC LIMIT {MAX_RANKED}
    ) f
    JOIN articles a ON a.id = f.rowid
    WHERE a.story_id IS NOT NULL
"""
_TEXT = 1.0 / TITLE_WEIGHT  # ts_rank takes weights up to 1: the title's is 1
_PG_WEIGHTS = f"'{{{_TEXT}, {_TEXT}, {_TEXT}, 1.0}}'::float4[]"  # D (the text), C, B, A (title)
# The newest are sorted by `article_id + 0`, an order no index holds: every match is found in
# the GIN index and only their ids are sorted. Ordered by the column itself, the planner may walk
# the primary key backwards testing each document, which reads half the table when its guess of
# how many match (poor for phrases) is far too high. Only the MAX_RANKED kept are read again to
# be ranked.
_PG_HITS = f"""
    SELECT a.id, a.story_id, ts_rank({_PG_WEIGHTS}, s.document, {{tsquery}}, 1) AS score
    FROM (
        SELECT article_id FROM article_search WHERE {{condition}}
        ORDER BY article_id + 0 DESC LIMIT {MAX_RANKED}
    ) f
    JOIN article_search s ON s.article_id = f.article_id
    JOIN articles a ON a.id = f.article_id
    WHERE a.story_id IS NOT NULL
"""


def _ranked(hits: str, since: datetime | None) -> TextClause:
    """Each story once, by its best copy's score; ties newest first."""
    recent = "AND st.updated_at >= :since" if since is not None else ""
    statement = text(f"""
    WITH hits AS ({hits}),
    best AS (
        SELECT id, story_id, score,
               row_number() OVER (PARTITION BY story_id ORDER BY score DESC, id) AS place
        FROM hits
    )
    SELECT b.story_id, b.score, b.id, a.title, a.text
    FROM best b
    JOIN stories st ON st.id = b.story_id
    JOIN articles a ON a.id = b.id
    WHERE b.place = 1 {recent}
    ORDER BY b.score DESC, st.first_seen DESC, b.story_id DESC
    LIMIT :limit
    """)
    return statement.bindparams(bindparam("since", type_=DateTime())) if recent else statement


def fts5_query(query: Query) -> str:
    """The query in FTS5's syntax, every word quoted: nothing in it is read as an operator."""
    groups = " AND ".join(
        "(" + " OR ".join(_fts5_term(t) for t in group) + ")" for group in query.groups
    )
    if not query.excluded:
        return groups
    return f"({groups}) NOT (" + " OR ".join(_fts5_term(t) for t in query.excluded) + ")"


def _fts5_term(term: Term) -> str:
    return '"' + " ".join(term.words).replace('"', '""') + '"'


def tsquery_sql(query: Query) -> tuple[str, str, dict[str, str]]:
    """The query for PostgreSQL: the condition on an `article_search` row, the tsquery that
    ranks it, and their parameters (the query's words, folded in SQL by the same functions as
    the documents).

    The condition also asks for the pairs of words of each group made of phrases only. The
    phrases imply their pairs, so the results are the same; where a phrase has no pair (one
    word to PostgreSQL's parser) that part is left out."""
    names: dict[str, str] = {}  # the words of a term -> their parameter

    def bound(term: Term) -> str:
        return ":" + names.setdefault(" ".join(term.words), f"w{len(names)}")

    def either(terms: Sequence[Term], function: str) -> str:
        return "(" + " || ".join(f"{function}({bound(t)})" for t in terms) + ")"

    phrase = "newsfold_search_phrase"
    tsquery = " && ".join(either(group, phrase) for group in query.groups)
    if query.excluded:
        tsquery = f"({tsquery}) && !!{either(query.excluded, phrase)}"
    condition = f"document @@ ({tsquery})"
    paired = [group for group in query.groups if all(len(t.words) > 1 for t in group)]
    if paired:
        pairs = " && ".join(either(group, "newsfold_search_pairs_query") for group in paired)
        condition += f" AND (({pairs}) IS NULL OR pairs @@ ({pairs}))"
    params = {name: words for words, name in names.items()}
    return condition, f"({tsquery})", params
