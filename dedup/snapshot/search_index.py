"""The full-text index of the published file: built whole by DuckDB's fts extension, or carried
over from last night's file with only the changed documents tokenized (issue 25).

`create_fts_index` has no incremental mode in the fts build shipped for DuckDB 1.5.5, and
building it whole over every contact was the largest part of publishing a night that adds 1%
(docs/performance.md). Its tables are simple: `docs` (docid = the row of the indexed table,
name, len = the document's number of words), `terms` (one row per word occurrence: docid,
fieldid, termid), `dict` (termid, term, df = documents holding it), `stats` (num_docs, avgdl),
plus `fields`, `stopwords` and the `tokenize` / `match_bm25` macros. A document's words depend
only on its own text and the index's parameters, so last night's words of an unchanged document
are tonight's. The carry therefore:

- finds the documents whose text changed, appeared or went, by value (last night's indexed table
  kept in the copy against tonight's);
- tokenizes only those, with fts itself: `create_fts_index` over a table of just those rows
  (no second tokenizer to keep equal to fts's);
- keeps last night's words of every other document, renumbered to tonight's docids (a document's
  docid is its row, and rows are in `contact_id` order, so a new contact shifts later docids);
- recomputes `docs.len`, `dict.df` and `stats` over the result with fts's own definitions.

It is used only when fts, called tonight with tonight's parameters, defines the same `tokenize`
and `match_bm25` macros, fields and stopwords as the index it would carry; otherwise (or with no
index in the copy, or when most documents changed) the index is built whole and the description
says why. Term numbers (`termid`) of carried words stay as they were and new words are numbered
after them: fts itself numbers terms in whatever order its threads meet them, so no reader
depends on them (tests compare a term number as its term).
"""

from __future__ import annotations

import duckdb

STEMMER = "porter"
# Words are letters and digits (emails split at '.', '@', '+'); no stopwords, since names like
# "Will" or "May" are words people search for.
IGNORE = "[^a-z0-9]+"
# Above this share of changed documents, building whole costs about what the carry does.
MAX_CHANGED_SHARE = 0.5
_DELTA = "_search_delta"


def fts_schema(table: str) -> str:
    """The schema `create_fts_index` makes for `table` in the main schema."""
    return f"fts_main_{table}"


def create_index(con: duckdb.DuckDBPyConnection, table: str, fields: tuple[str, ...]) -> None:
    """fts's own build over `table` (documents named by `contact_id`)."""
    names = ", ".join(f"'{f}'" for f in fields)
    con.execute(
        f"PRAGMA create_fts_index('{table}', 'contact_id', {names}, stemmer='{STEMMER}', "
        f"stopwords='none', ignore='{IGNORE}', overwrite=1)"
    )


def build_search_index(
    con: duckdb.DuckDBPyConnection, table: str, fields: tuple[str, ...], previous: str | None
) -> str:
    """The index over `table` (rows in `contact_id` order), carried from `previous` (last
    night's indexed table, with its index still in `fts_schema(table)`) when it can be; says
    which path was taken. `previous` is dropped either way."""
    carried, said = False, "no index in the published file"
    try:
        if previous is not None:
            carried, said = _carry(con, table, fields, previous)
    except duckdb.Error as exc:
        said = f"index not carried ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    finally:
        _drop_scratch(con, previous)
    if carried:
        return f"carried: {said}"
    create_index(con, table, fields)
    return f"built whole: {said}"


def _drop_scratch(con: duckdb.DuckDBPyConnection, previous: str | None) -> None:
    con.execute(f"DROP SCHEMA IF EXISTS {fts_schema(_DELTA)} CASCADE")
    for scratch in (_DELTA, previous, "_terms", "_dict", "_new_words", "_search_changed"):
        if scratch is not None:
            con.execute(f"DROP TABLE IF EXISTS {scratch}")


def _carry(
    con: duckdb.DuckDBPyConnection, table: str, fields: tuple[str, ...], previous: str
) -> tuple[bool, str]:
    """Tonight's index made from last night's and the changed documents: (True, what was
    tokenized), or (False, why not)."""
    fts = fts_schema(table)
    differs = " OR ".join(f't."{f}" IS DISTINCT FROM p."{f}"' for f in fields)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _search_changed AS "
        "SELECT contact_id, t.contact_id IS NOT NULL AS tonight "
        f"FROM {table} t FULL JOIN {previous} p USING (contact_id) "
        f"WHERE t.contact_id IS NULL OR p.contact_id IS NULL OR {differs}"
    )
    tokenized, gone, documents = con.execute(
        # coalesce: over no changed documents at all, count_if is NULL
        "SELECT coalesce(count_if(tonight), 0), coalesce(count_if(NOT tonight), 0), "
        f"(SELECT count(*) FROM {table}) FROM _search_changed"
    ).fetchone()  # type: ignore[misc]
    if tokenized + gone > MAX_CHANGED_SHARE * max(documents, 1):
        return False, f"{tokenized + gone:,} of {documents:,} documents changed"
    con.execute(
        f"CREATE TABLE {_DELTA} AS SELECT s.* FROM {table} s "
        "SEMI JOIN (SELECT contact_id FROM _search_changed WHERE tonight) USING (contact_id) "
        "ORDER BY contact_id"
    )
    create_index(con, _DELTA, fields)
    reason = _same_parameters(con, fts, fts_schema(_DELTA))
    if reason is not None:
        return False, reason
    _carried_tables(con, table, fts)
    _replace_index_tables(con, table, fts)
    return True, f"{tokenized:,} of {documents:,} documents tokenized, {gone:,} gone"


def _same_parameters(con: duckdb.DuckDBPyConnection, kept: str, tonight: str) -> str | None:
    """Whether the kept index was made as fts makes one tonight: the same macros (tokenizer,
    stemmer, scoring), fields and stopwords."""
    rows = con.execute(
        "SELECT schema_name, function_name, macro_definition FROM duckdb_functions() "
        "WHERE schema_name IN (?, ?) AND function_type = 'macro'",
        [kept, tonight],
    ).fetchall()
    macros: dict[str, set[tuple[str, str]]] = {kept: set(), tonight: set()}
    for schema, name, definition in rows:
        macros[schema].add((name, str(definition).replace(schema, "<index>")))
    if not macros[kept] or macros[kept] != macros[tonight]:
        return "the kept index was made with other parameters (its macros differ)"
    for part in ("fields", "stopwords"):
        differ = con.execute(
            f"SELECT count(*) FROM ((FROM {kept}.{part} EXCEPT ALL FROM {tonight}.{part}) "
            f"UNION ALL (FROM {tonight}.{part} EXCEPT ALL FROM {kept}.{part}))"
        ).fetchone()[0]  # type: ignore[index]
        if differ:
            return f"the kept index was made with other {part}"
    return None


def _carried_tables(con: duckdb.DuckDBPyConnection, table: str, fts: str) -> None:
    """Tonight's words (`_terms`: docid, fieldid, termid) and terms (`_dict`: termid, term):
    last night's words of unchanged documents under tonight's docids, then the changed
    documents' words from the delta index, new terms numbered after the kept ones."""
    delta = fts_schema(_DELTA)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _new_words AS "
        "SELECT s.rowid AS docid, w.fieldid, k.term "
        f"FROM {delta}.terms w JOIN {delta}.docs d USING (docid) JOIN {delta}.dict k USING (termid) "
        f"JOIN {table} s ON s.contact_id = d.name"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _dict AS "
        f"SELECT termid, term FROM {fts}.dict UNION ALL "
        f"SELECT (SELECT coalesce(max(termid), -1) FROM {fts}.dict) "
        "+ row_number() OVER (ORDER BY term) AS termid, term "
        f"FROM (SELECT DISTINCT term FROM _new_words) ANTI JOIN {fts}.dict USING (term)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _terms AS "
        "SELECT s.rowid AS docid, w.fieldid, w.termid "
        f"FROM {fts}.terms w JOIN {fts}.docs d USING (docid) "
        f"JOIN {table} s ON s.contact_id = d.name "
        "ANTI JOIN _search_changed c ON c.contact_id = d.name "
        "UNION ALL SELECT n.docid, n.fieldid, k.termid FROM _new_words n JOIN _dict k USING (term)"
    )


def _replace_index_tables(con: duckdb.DuckDBPyConnection, table: str, fts: str) -> None:
    """`docs`, `terms`, `dict` and `stats` as fts defines them, from `_terms` and `_dict`."""
    con.execute(f"CREATE OR REPLACE TABLE {fts}.terms AS FROM _terms ORDER BY docid, fieldid")
    con.execute(
        f"CREATE OR REPLACE TABLE {fts}.docs AS "
        "SELECT s.rowid AS docid, s.contact_id AS name, coalesce(w.len, 0)::BIGINT AS len "
        f"FROM {table} s LEFT JOIN (SELECT docid, count(*) AS len FROM _terms GROUP BY docid) w "
        "ON w.docid = s.rowid ORDER BY docid"
    )
    # Terms no document holds any more leave the dictionary, as in a fresh build.
    con.execute(
        f"CREATE OR REPLACE TABLE {fts}.dict AS "
        "SELECT k.termid, k.term, f.df FROM _dict k "
        "JOIN (SELECT termid, count(DISTINCT docid)::BIGINT AS df FROM _terms GROUP BY termid) f "
        "USING (termid) ORDER BY termid"
    )
    con.execute(
        f"CREATE OR REPLACE TABLE {fts}.stats AS "
        "SELECT COUNT(docs.docid) AS num_docs, SUM(docs.len) / COUNT(docs.len) AS avgdl "
        f"FROM {fts}.docs AS docs"
    )
