"""Contact search: full text plus the Contacts page's filters, as one function over the published file.

The `contacts search` CLI, saved Contact Views, exports and (later) the web page all call
`search`, so a filter means the same thing everywhere. Full text uses the DuckDB `fts` index that
the build puts in the published file (dedup.snapshot.analyst); the choice over an ILIKE scan is measured in
docs/decisions.md.

Example:
    >>> con = duckdb.connect("contacts.duckdb", read_only=True)
    >>> search(con, ContactFilter(text="acme", has_tags=("vip",), not_engaged=("email",)))
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import polars as pl

from dedup.schema import CHANNELS
from dedup.snapshot.analyst import (
    CONTACT_ID_INDEX,
    FTS_SCHEMA,
    POSTINGS_INFO_TABLE,
    POSTINGS_TABLE,
    WORDS_TABLE,
    load_fts,
)


class FilterError(ValueError):
    """A filter that cannot be run; the message says which part and why."""


# "First seen within N days" goes back at most 100 years, before any contact existed; much
# further, `now - N days` leaves the calendar (Python's dates stop at year 1) and crashed.
MAX_CREATED_WITHIN_DAYS = 36_525

# Full text with no word the index knows (the index keeps runs of a-z and 0-9 after lower-casing
# and removing accents: dedup.snapshot.analyst) matches nothing, rather than everyone: "!!!" or
# "—" is not a request for every contact, and an export of it must not become a full export.
HAS_WORD_SQL = "regexp_matches(strip_accents(lower(?)), '[a-z0-9]')"


@dataclass(frozen=True)
class ContactFilter:
    """What to find. Every set field narrows the result (AND); unset fields do nothing.

    Args:
        text: full-text words over name, email, company and custom attributes; all must match.
            Text without any letter or digit (punctuation only) matches no contact.
        has_tags: the contact has every one of these tags.
        not_tags: the contact has none of these tags ("has X but not Y" = has_tags X, not_tags Y).
        engaged: the contact used every one of these channels.
        not_engaged: the contact never used any of these channels.
        created_within_days: first seen within this many days before the search runs (relative,
            so a saved view keeps meaning "last 7 days").
        created_after, created_before: first seen at or after / before this instant.
        last_seen_after, last_seen_before: last seen at or after / before this instant.
        audience: audience equals this.
        crm_sync_status: CRM sync state equals this; "none" matches contacts without one.
    """

    text: str | None = None
    has_tags: tuple[str, ...] = ()
    not_tags: tuple[str, ...] = ()
    engaged: tuple[str, ...] = ()
    not_engaged: tuple[str, ...] = ()
    created_within_days: int | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    last_seen_after: datetime | None = None
    last_seen_before: datetime | None = None
    audience: str | None = None
    crm_sync_status: str | None = None

    def __post_init__(self) -> None:
        for name in ("engaged", "not_engaged"):
            unknown = sorted(set(getattr(self, name)) - set(CHANNELS))
            if unknown:
                raise FilterError(
                    f"unknown channel {', '.join(unknown)} in {name} (one of {', '.join(CHANNELS)})"
                )
        within = self.created_within_days
        if within is not None and not 0 <= within <= MAX_CREATED_WITHIN_DAYS:
            raise FilterError(
                f"created_within_days must be 0 to {MAX_CREATED_WITHIN_DAYS:,} (100 years), "
                f"not {within:,}"
            )
        for name in ("created_after", "created_before", "last_seen_after", "last_seen_before"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise FilterError(f"{name} must carry a time zone (e.g. 2026-11-01T00:00:00Z)")

    def is_empty(self) -> bool:
        return self == ContactFilter()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of the set fields (datetimes as ISO 8601), for saved views."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if value in (None, ()):
                continue
            if isinstance(value, datetime):
                value = value.isoformat()
            out[key] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContactFilter:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise FilterError(f"unknown filter field(s): {', '.join(unknown)}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in {"has_tags", "not_tags", "engaged", "not_engaged"}:
                kwargs[key] = tuple(value)
            elif key.endswith(("_after", "_before")) and value is not None:
                kwargs[key] = parse_instant(value)
            else:
                kwargs[key] = value
        return cls(**kwargs)


def parse_instant(value: str) -> datetime:
    """ISO 8601 date or time; a bare date or a time without offset is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise FilterError(f"not an ISO 8601 date or time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _conditions(
    flt: ContactFilter, now: datetime, hidden: Collection[str]
) -> list[tuple[str, list[Any]]]:
    """The filter's conditions on `c` (contact_list or contacts), each with its parameters."""
    out: list[tuple[str, list[Any]]] = []
    if hidden:
        out.append(("NOT list_contains(?::VARCHAR[], c.contact_id)", [sorted(hidden)]))
    for sql, values in (
        ("list_has_all(c.tags, ?::VARCHAR[])", flt.has_tags),
        ("NOT list_has_any(c.tags, ?::VARCHAR[])", flt.not_tags),
        ("list_has_all(c.channels, ?::VARCHAR[])", flt.engaged),
        ("NOT list_has_any(c.channels, ?::VARCHAR[])", flt.not_engaged),
    ):
        if values:
            out.append((sql, [list(values)]))
    if flt.created_within_days is not None:
        out.append(("c.first_seen >= ?", [now - timedelta(days=flt.created_within_days)]))
    for column, op, value in (
        ("first_seen", ">=", flt.created_after),
        ("first_seen", "<", flt.created_before),
        ("last_seen", ">=", flt.last_seen_after),
        ("last_seen", "<", flt.last_seen_before),
    ):
        if value is not None:
            out.append((f"c.{column} {op} ?", [value]))
    if flt.audience is not None:
        out.append(("c.audience = ?", [flt.audience]))
    if flt.crm_sync_status == "none":
        out.append(("c.crm_sync_status IS NULL", []))
    elif flt.crm_sync_status is not None:
        out.append(("c.crm_sync_status = ?", [flt.crm_sync_status]))
    return out


def _has_text(flt: ContactFilter) -> bool:
    return bool(flt.text and flt.text.strip())


# The conjunctive match over the fts index tables (one `?`, the text): the documents holding
# every word of the text, found from the words (`dict`) to their postings (`terms`). fts's
# `match_bm25` is a macro evaluated for every row of the search table; this reads only the
# postings of the query's words (measured: docs/performance.md).
_HITS_CTE = """
    WITH tokens AS (SELECT DISTINCT stem(unnest({f}.tokenize(?)), 'porter') AS t),
    tf AS (
        SELECT docid, termid, count(*) AS tf FROM {f}.terms
        WHERE termid IN (SELECT termid FROM {f}.dict JOIN tokens ON term = t)
        GROUP BY docid, termid),
    hits AS (SELECT docid FROM tf GROUP BY docid HAVING count(*) = (SELECT count(*) FROM tokens))
"""

# The same over the postings in word order (dedup.snapshot.analyst.POSTINGS_TABLE), where the
# file has them: a word's postings are one range of rows, and tf and the document's length come
# with them. `hits` has each match's BM25 score.
_POSTED_HITS_CTE = f"""
    WITH tokens AS (SELECT DISTINCT stem(unnest({FTS_SCHEMA}.tokenize(?)), 'porter') AS t),
    q AS (SELECT termid, df FROM {WORDS_TABLE} JOIN tokens ON term = t),
    hits AS (
        SELECT p.docid,
               -- rounded: a sum's last bits depend on the order it adds in, which would break
               -- ties between equal scores at random rather than by contact_id
               round(sum(log((s.num_docs - q.df + 0.5) / (q.df + 0.5) + 1)
                   * (p.tf * (1.2 + 1) / (p.tf + 1.2 * (1 - 0.75 + 0.75 * p.len / s.avgdl)))), 9)
                   AS score
        FROM {POSTINGS_TABLE} p JOIN q USING (termid) CROSS JOIN {FTS_SCHEMA}.stats s
        GROUP BY p.docid HAVING count(*) = (SELECT count(*) FROM tokens))
"""


def has_postings(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the published file has the postings in word order (files built before them
    search through fts's own tables)."""
    schema, _, table = POSTINGS_TABLE.partition(".")
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ? "
        "AND database_name = current_database()",
        [schema, table],
    ).fetchone()
    return bool(found and found[0])


def has_id_index(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the published file has the ART index on contacts(contact_id) (files built before
    it look an id up by row id through read_cache.ContactIndex)."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_indexes() WHERE index_name = ? AND table_name = 'contacts' "
        "AND database_name = current_database()",
        [CONTACT_ID_INDEX],
    ).fetchone()
    return bool(found and found[0])


def _matches_sql(postings: bool = False) -> str:
    """(contact_id, score) of every match: the same BM25 score as `match_bm25(contact_id, text,
    conjunctive := 1)` with fts's defaults k = 1.2, b = 0.75 (checked equal on 2.2M contacts),
    computed for the matching documents only. `postings`: read POSTINGS_TABLE."""
    if postings:
        return (
            _POSTED_HITS_CTE + f"SELECT docs.name AS contact_id, hits.score FROM hits "
            f"JOIN {FTS_SCHEMA}.docs docs USING (docid)"
        )
    return (
        _HITS_CTE.format(f=FTS_SCHEMA)
        + f"""
    SELECT docs.name AS contact_id,
           sum(log((stats.num_docs - dict.df + 0.5) / (dict.df + 0.5) + 1)
               * (tf.tf * (1.2 + 1) / (tf.tf + 1.2 * (1 - 0.75 + 0.75 * docs.len / stats.avgdl))))
               AS score
    FROM tf SEMI JOIN hits USING (docid) JOIN {FTS_SCHEMA}.docs docs USING (docid)
         JOIN {FTS_SCHEMA}.dict dict USING (termid) CROSS JOIN {FTS_SCHEMA}.stats stats
    GROUP BY docs.name
"""
    )


def _match_ids_sql(postings: bool = False) -> str:
    """The ids of every match (no score: a page in contact-id order needs none)."""
    cte = _POSTED_HITS_CTE if postings else _HITS_CTE.format(f=FTS_SCHEMA)
    return cte + f"SELECT docs.name FROM hits JOIN {FTS_SCHEMA}.docs docs USING (docid)"


def matching_ids(con: duckdb.DuckDBPyConnection, text: str) -> list[str]:
    """Every contact id matching all words of `text` (the full-text filter), sorted; none for
    text without a word."""
    ids = _match_ids_sql(has_postings(con))
    sql = f"SELECT * FROM ({ids}) WHERE {HAS_WORD_SQL} ORDER BY 1"
    return [r[0] for r in con.execute(sql, [text.strip(), text.strip()]).fetchall()]


@dataclass(frozen=True)
class QueryWords:
    """The words of a full-text query as POSTINGS_TABLE knows them, rarest first."""

    termids: tuple[int, ...]
    complete: bool  # every word of the text is in the index (else nothing matches)


def query_words(con: duckdb.DuckDBPyConnection, text: str) -> QueryWords:
    """The index's ids of the words of `text` (tokenized and stemmed as the index was)."""
    found = con.execute(
        f"""
        WITH tokens AS (SELECT DISTINCT stem(unnest({FTS_SCHEMA}.tokenize(?)), 'porter') AS t)
        SELECT (SELECT count(*) FROM tokens),
               (SELECT list(termid ORDER BY df, termid) FROM {WORDS_TABLE} JOIN tokens ON term = t)
        """,
        [text],
    ).fetchone()
    assert found is not None
    termids = tuple(found[1] or ())
    return QueryWords(termids, found[0] > 0 and len(termids) == found[0])


def documents(con: duckdb.DuckDBPyConnection) -> int:
    """How many documents (contacts) the fts index holds."""
    found = con.execute(f"SELECT num_docs FROM {FTS_SCHEMA}.stats").fetchone()
    return int(found[0]) if found else -1


def docids_in_id_order(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether docid n of the index is the n-th contact in contact_id order (postings_info)."""
    row = con.execute(f"SELECT docids_in_id_order FROM {POSTINGS_INFO_TABLE}").fetchone()
    return bool(row and row[0])


def next_matches(
    con: duckdb.DuckDBPyConnection, words: QueryWords, start: int, n: int
) -> tuple[list[int], int | None]:
    """Docids from `start` on that hold every word, in docid order, from the first `n`
    postings of the rarest word; and where the next call starts (None: no postings left).

    Each word's postings are one range of POSTINGS_TABLE, in docid order, so this reads the
    rarest word's next `n` and, of the others, only those between the first and the last.
    """
    if not words.complete:
        return [], None
    rarest, *others = words.termids
    window = [
        r[0]
        for r in con.execute(
            f"SELECT docid FROM {POSTINGS_TABLE} WHERE termid = ? AND docid >= ? "
            f"ORDER BY docid LIMIT {int(n)}",
            [rarest, start],
        ).fetchall()
    ]
    docids = window
    for termid in others:
        if not docids:
            break
        holding = {
            r[0]
            for r in con.execute(
                f"SELECT docid FROM {POSTINGS_TABLE} WHERE termid = ? AND docid BETWEEN ? AND ?",
                [termid, docids[0], docids[-1]],
            ).fetchall()
        }
        docids = [d for d in docids if d in holding]
    return docids, (window[-1] + 1 if len(window) == n else None)


# One word's BM25 term score for posting p (q: the word's df; s: fts's stats); a match's score is
# the sum over the query's words, rounded to 9 places (see _POSTED_HITS_CTE).
TERM_SCORE = """log((s.num_docs - q.df + 0.5) / (q.df + 0.5) + 1)
    * (p.tf * (1.2 + 1) / (p.tf + 1.2 * (1 - 0.75 + 0.75 * p.len / s.avgdl)))"""


def ranked_docids(
    con: duckdb.DuckDBPyConnection, text: str, skip: Collection[int], offset: int, limit: int
) -> tuple[int, list[int]]:
    """How many documents hold every word of `text` (but the docids `skip`), and the docids
    ranked `offset` to `offset + limit` by the search's BM25 score (ties: docid), from the
    postings in word order: the scores of `_matches_sql(postings=True)` without joining the
    matches to anything. A docid is a contact where search.docids_in_id_order holds."""
    words = query_words(con, text)
    if not words.complete:
        return 0, []
    left_out = f"AND p.docid NOT IN ({', '.join(str(int(d)) for d in skip)})" if skip else ""
    if len(words.termids) == 1:
        return _ranked_one_word(con, int(words.termids[0]), left_out, offset, limit)
    termids = ", ".join(str(int(t)) for t in words.termids)
    row = con.execute(
        f"""
        WITH q AS (SELECT termid, df FROM {WORDS_TABLE} WHERE termid IN ({termids})),
        hits AS (
            SELECT p.docid, round(sum({TERM_SCORE}), 9) AS score
            FROM {POSTINGS_TABLE} p JOIN q USING (termid) CROSS JOIN {FTS_SCHEMA}.stats s
            WHERE p.termid IN ({termids}) {left_out}
            GROUP BY p.docid HAVING count(*) = {len(words.termids)})
        SELECT (SELECT count(*) FROM hits),
               (SELECT list(docid) FROM (SELECT docid FROM hits ORDER BY score DESC, docid
                                         LIMIT {int(limit)} OFFSET {int(offset)}))
        """
    ).fetchone()
    assert row is not None
    return int(row[0]), list(row[1] or [])


def _ranked_one_word(
    con: duckdb.DuckDBPyConnection, termid: int, left_out: str, offset: int, limit: int
) -> tuple[int, list[int]]:
    """`ranked_docids` for one word. A document's score is then its one posting's, which
    depends only on the posting's tf and length, and a word has few distinct (tf, len): each
    pair is scored once (the same expression, so the same rounded value), and the page is read
    from the pairs whose scores cover its ranks. Scoring every posting of a common word (733,000
    for "gold" at 2.2M contacts) took 50-260 ms; docs/performance.md."""
    pairs = con.execute(
        f"""
        WITH q AS (SELECT termid, df FROM {WORDS_TABLE} WHERE termid = {termid}),
        p AS (SELECT termid, tf, len, count(*) AS n FROM {POSTINGS_TABLE} p
              WHERE p.termid = {termid} {left_out} GROUP BY ALL)
        SELECT p.tf, p.len, p.n, round({TERM_SCORE}, 9) AS score
        FROM p JOIN q USING (termid) CROSS JOIN {FTS_SCHEMA}.stats s
        ORDER BY score DESC
        """
    ).fetchall()
    total = sum(n for _, _, n, _ in pairs)
    # Pairs of one score are one group: its documents tie and are ordered by docid together.
    groups: list[tuple[float, int, list[tuple[int, int]]]] = []
    for tf, length, n, score in pairs:
        if groups and groups[-1][0] == score:
            groups[-1] = (score, groups[-1][1] + n, [*groups[-1][2], (tf, length)])
        else:
            groups.append((score, n, [(tf, length)]))
    skipped, chosen = 0, []  # documents ranked before the chosen groups; the chosen groups
    for _, n, members in groups:
        if skipped + n <= offset and not chosen:
            skipped += n  # wholly ranked before the page
        elif skipped + sum(m for m, _ in chosen) < offset + limit:
            chosen.append((n, members))
        else:
            break
    if not chosen:
        return total, []
    values = ", ".join(
        f"({int(tf)}, {int(length)}, {rank})"
        for rank, (_, members) in enumerate(chosen)
        for tf, length in members
    )
    rows = con.execute(
        f"""
        SELECT p.docid FROM {POSTINGS_TABLE} p
        JOIN (VALUES {values}) v(tf, len, rank) ON p.tf = v.tf AND p.len = v.len
        WHERE p.termid = {termid} {left_out}
        ORDER BY v.rank, p.docid LIMIT {int(limit)} OFFSET {int(offset - skipped)}
        """
    ).fetchall()
    return total, [r[0] for r in rows]


def search_sql(
    flt: ContactFilter,
    now: datetime | None = None,
    hidden: Collection[str] = (),
    postings: bool = False,
) -> tuple[str, list[Any]]:
    """SQL over `contact_list` selecting the contacts that match, best match (or latest) first.

    `hidden`: ids to leave out although the published file still holds them (contacts deleted
    since it was built, `dedup.service.review.hidden_ids`). `postings`: the file has the
    postings in word order (`has_postings`); the same matches and scores, read faster.
    """
    conditions = _conditions(flt, now or datetime.now(UTC), hidden)
    params: list[Any] = []
    if _has_text(flt):
        assert flt.text is not None
        source = f"({_matches_sql(postings)}) s JOIN contact_list c USING (contact_id)"
        conditions.insert(0, (f"s.score IS NOT NULL AND {HAS_WORD_SQL}", [flt.text.strip()]))
        params.append(flt.text.strip())
        order = "s.score DESC, c.contact_id"
    else:
        source = "contact_list c"
        order = "c.last_seen DESC NULLS LAST, c.contact_id"
    sql = f"SELECT c.* FROM {source}"
    if conditions:
        sql += " WHERE " + " AND ".join(sql for sql, _ in conditions)
        params += [p for _, values in conditions for p in values]
    return f"{sql} ORDER BY {order}", params


def page_sql(
    flt: ContactFilter,
    columns: str,
    after: str | None,
    limit: int,
    now: datetime | None = None,
    hidden: Collection[str] = (),
    from_row: int | None = None,
    rowids: Collection[int] | None = None,
    postings: bool = False,
) -> tuple[str, list[Any]]:
    """One keyset page of `contacts` matching `flt`, in contact-id order, after id `after`.

    Reads little however large the file: `contacts` is published in contact_id order, so the
    `contact_id > ?` bound skips every row group before the cursor by its min/max (zonemap), and
    the top-N under ORDER BY contact_id LIMIT stops scanning once later row groups cannot beat
    the page (DuckDB's dynamic filter). No sort of the whole table (measured: docs/performance.md).
    `columns`: the select list over `c`. `from_row`: instead of `after`, the row id of the first
    candidate, for a file whose rows are in contact_id order (`read_cache.ContactIndex`): row ids
    have exact min/max per row group, string ids only an 8-byte prefix, so this is the bound
    DuckDB can prune by. `rowids`: only these rows (the full-text matches next in line; their
    min and max bound the scan).
    """
    conditions = _conditions(flt, now or datetime.now(UTC), hidden)
    order = "c.contact_id"
    if rowids is not None:
        listed = ", ".join(str(int(r)) for r in rowids) or "NULL"
        conditions.insert(0, (f"c.rowid IN ({listed})", []))
        order = "c.rowid"
    elif from_row is not None:
        conditions.insert(0, ("c.rowid >= ?", [from_row]))
        order = "c.rowid"
    elif after is not None:
        conditions.insert(0, ("c.contact_id > ?", [after]))
    if _has_text(flt):
        assert flt.text is not None
        text = flt.text.strip()
        conditions.append(
            (
                f"{HAS_WORD_SQL} AND c.contact_id IN ({_match_ids_sql(postings)})",
                [text, text],
            )
        )
    sql = f"SELECT {columns} FROM contacts c"
    if conditions:
        sql += " WHERE " + " AND ".join(sql for sql, _ in conditions)
    params = [p for _, values in conditions for p in values]
    return f"{sql} ORDER BY {order} LIMIT {int(limit)}", params


def _postings(con: duckdb.DuckDBPyConnection, flt: ContactFilter) -> bool:
    return _has_text(flt) and has_postings(con)


def _run(con: duckdb.DuckDBPyConnection, flt: ContactFilter, sql: str, params: list[Any]):
    if flt.text:
        load_fts(con)
    try:
        return con.execute(sql, params)
    except duckdb.CatalogException as exc:
        raise FilterError(
            "the published file has no search views; run `contacts run` once with this version "
            f"({str(exc).splitlines()[0]})"
        ) from None


def search(
    con: duckdb.DuckDBPyConnection,
    flt: ContactFilter,
    limit: int | None = None,
    now: datetime | None = None,
    offset: int = 0,
    hidden: Collection[str] = (),
) -> pl.DataFrame:
    """Contacts matching `flt` with the `contact_list` view's columns, in a stable order.

    `limit` rows at most, after skipping `offset` (a page of the Contacts page).
    """
    sql, params = search_sql(flt, now, hidden, _postings(con, flt))
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    if offset:
        sql += f" OFFSET {int(offset)}"
    return _run(con, flt, sql, params).pl()


def count(
    con: duckdb.DuckDBPyConnection,
    flt: ContactFilter,
    now: datetime | None = None,
    hidden: Collection[str] = (),
) -> int:
    """How many contacts match `flt` (without fetching them)."""
    sql, params = search_sql(flt, now, hidden, _postings(con, flt))
    # Without the ORDER BY: counting under it sorted every row (380 ms of 2.2M contacts).
    unordered = sql[: sql.rindex(" ORDER BY ")]
    row = _run(con, flt, f"SELECT count(*) FROM ({unordered})", params).fetchone()
    assert row is not None
    return int(row[0])
