"""The analyst layer of the published file: Contacts-page views, the full-text search index, and
the tables that hold saved Contact Views.

Created inside the build file after its tables are written (`finish_analyst_layer`), so readers
opening the published file read-only get the views and the `fts` index with it; nothing here is
state of its own. It is made again with every snapshot; the full-text index is carried over
from last night's file when the build started as its copy (dedup.snapshot.search_index).

Saved views are people's state (`<db>.state/views.json`, dedup.service.saved_views); the file gets
a copy as of the run, `saved_views` and `saved_view_members`. This module creates them empty; the
members are computed by dedup.service.published_views with the search the CLI uses (the snapshot
stage may not import the service stage, docs/decisions.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from dedup.snapshot.search_index import build_search_index, fts_schema

# The table the fts index is built over: one row per contact, one text column per searched field.
SEARCH_TABLE = "contact_search"
SEARCH_FIELDS: tuple[str, ...] = ("name", "email", "company", "attributes_text")
# Schema DuckDB's `create_fts_index` creates for SEARCH_TABLE (holds `match_bm25`).
FTS_SCHEMA = fts_schema(SEARCH_TABLE)
# Last night's SEARCH_TABLE while tonight's is built, in a build that started as a copy of the
# published file (dedup.snapshot.carry keeps both it and its index).
PREVIOUS_SEARCH_TABLE = "_published_search"
# Beside fts's own tables, in its schema (so a new index replaces them with it):
# - `postings`: fts's `terms` in word order, one row per (word, document): termid, docid, tf
#   (times the word occurs in the document) and len (the document's length), everything BM25
#   needs besides the word's df and `stats`. `terms` is in document order, so a common word's
#   postings were read out of all 22M rows at 2.2M contacts; here they are one range of rows
#   that DuckDB finds by its min/max (docs/performance.md).
# - `words`: fts's `dict` (term, termid, df) in term order, so a query's words are found the same way.
# - `postings_info`: docids_in_id_order, whether docid n is the n-th contact in contact_id order
#   (the Contact API then pages through a word's postings in cursor order).
POSTINGS_TABLE = f"{FTS_SCHEMA}.postings"
WORDS_TABLE = f"{FTS_SCHEMA}.words"
POSTINGS_INFO_TABLE = f"{FTS_SCHEMA}.postings_info"
# An ART index on contacts(contact_id): a lookup of one id fetches its row alone, where a scan
# (even of one row group, by row id) decompresses a vector of every column for it, the list
# columns from the row group's start (4-5 ms at 2.2M contacts against ~0.5 ms; docs/performance.md).
CONTACT_ID_INDEX = "contacts_contact_id"

# Columns of the Contacts page's list, in the order it shows them.
CONTACT_LIST_COLUMNS: tuple[str, ...] = (
    "contact_id",
    "name",
    "email",
    "channels",
    "audience",
    "identity_verified",
    "conversation_count",
    "last_conversation_at",
    "tags",
    "last_seen",
    "crm_sync_status",
)
# Columns of the `contact_list` view: the list's, plus what its filters need (any may be shown).
CONTACT_VIEW_COLUMNS: tuple[str, ...] = (
    *CONTACT_LIST_COLUMNS,
    "phone",
    "company",
    "first_seen",
    "is_lead",
)

VIEWS_SQL: dict[str, str] = {
    # The Contacts page list: the default columns, plus what its filters need.
    "contact_list": f"""
        SELECT {", ".join(CONTACT_VIEW_COLUMNS)}
        FROM contacts
    """,
    # Every interaction of a contact grouped into conversations, across channels.
    "contact_conversations": """
        SELECT contact_id,
               coalesce(conversation_id, interaction_id) AS conversation_id,
               list(DISTINCT channel ORDER BY channel) AS channels,
               min(occurred_at) AS started_at,
               max(occurred_at) AS last_message_at,
               count(*) AS interactions,
               list_sort(list_distinct(flatten(list(coalesce(conversation_tags, []::VARCHAR[])))))
                   AS conversation_tags
        FROM interactions
        GROUP BY ALL
    """,
    # Contacts x channels they used: when and how much.
    "channel_engagement": """
        SELECT contact_id, channel,
               count(*) AS interactions,
               count(DISTINCT coalesce(conversation_id, interaction_id)) AS conversations,
               min(occurred_at) AS first_at,
               max(occurred_at) AS last_at
        FROM interactions
        GROUP BY ALL
    """,
}


# Saved Contact Views as of the run (filled by dedup.service.published_views.publish_saved_views;
# IF NOT EXISTS: finishing a file twice keeps what it holds, like the views above).
SAVED_VIEWS_DDL = """
CREATE TABLE IF NOT EXISTS saved_views (
    name VARCHAR PRIMARY KEY,
    filter JSON NOT NULL,
    description VARCHAR,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    created_by VARCHAR,
    members_as_of TIMESTAMPTZ,
    members BIGINT,
    problem VARCHAR
);
CREATE TABLE IF NOT EXISTS saved_view_members (
    view_name VARCHAR NOT NULL,
    contact_id VARCHAR NOT NULL
);
"""


def _contact_detail_sql(has_crm_links: bool, has_notes: bool = False) -> str:
    # `crm_links` is added by the CRM adapters; until a file has it the column is an empty list.
    crm = (
        "coalesce((SELECT list(l ORDER BY l) FROM crm_links l "
        "WHERE l.contact_id = c.contact_id), []) AS crm_links"
        if has_crm_links
        else "[]::JSON[] AS crm_links"
    )
    # Agent-only notes (`contact_notes`, from the admin decision log) on the contact they live on.
    notes = (
        "coalesce((SELECT list({'note': n.note, 'author': n.author, 'created_at': n.created_at} "
        "ORDER BY n.created_at, n.note_id) FROM contact_notes n "
        "WHERE n.contact_id = c.contact_id), []) AS notes"
        if has_notes
        else "[]::STRUCT(note VARCHAR, author VARCHAR, created_at TIMESTAMPTZ)[] AS notes"
    )
    return f"""
        SELECT c.contact_id, c.name, c.email, c.phone, c.company, c.user_id,
               c.identity_verified, c.verified_at, c.audience, c.tags, c.attributes,
               c.channels, c.first_seen, c.last_seen, c.crm_sync_status, c.is_lead,
               c.emails, c.phones,
               coalesce((SELECT list({{'conversation_id': v.conversation_id,
                                      'channels': v.channels,
                                      'started_at': v.started_at,
                                      'last_message_at': v.last_message_at,
                                      'interactions': v.interactions}}
                                     ORDER BY v.started_at, v.conversation_id)
                         FROM contact_conversations v WHERE v.contact_id = c.contact_id), [])
                   AS conversations,
               {crm},
               {notes}
        FROM contacts c
    """


def fts_extension_path() -> Path:
    """The fts extension file shipped by the `duckdb-extension-fts` wheel for this duckdb."""
    import duckdb_extension_fts

    path = (
        Path(os.path.dirname(duckdb_extension_fts.__file__))
        / "extensions"
        / f"v{duckdb.__version__}"
        / "fts.duckdb_extension"
    )
    if not path.exists():
        raise RuntimeError(
            f"duckdb-extension-fts has no build for duckdb {duckdb.__version__} ({path}); "
            "install the duckdb-extension-fts version equal to duckdb's"
        )
    return path


def load_fts(con: duckdb.DuckDBPyConnection) -> None:
    """Load fts straight from the pip package's file: no network, no write to ~/.duckdb, works
    on read-only connections (repeating it is harmless)."""
    con.execute(f"LOAD '{fts_extension_path()}'")


def install_fts(con: duckdb.DuckDBPyConnection) -> None:
    """Install fts from the pip package into this user's DuckDB extension folder, so analysts'
    own `duckdb` sessions autoload it when they call `match_bm25`; then load it."""
    con.execute(f"INSTALL '{fts_extension_path()}'")
    load_fts(con)


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'"
        ).fetchall()
    }


def finish_analyst_layer(path: Path) -> str:
    """Create the views and the search index inside the (not yet published) build file; says
    whether the index was carried from last night's (`dedup.snapshot.search_index`)."""
    con = duckdb.connect(str(path))
    try:
        con.execute("SET enable_progress_bar = false")
        for name, sql in VIEWS_SQL.items():
            con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
        tables = _tables(con)
        con.execute(
            f"CREATE OR REPLACE VIEW contact_detail AS "
            f"{_contact_detail_sql('crm_links' in tables, 'contact_notes' in tables)}"
        )
        con.execute(SAVED_VIEWS_DDL)
        # A build that started as a copy of last night's file kept its search table and index.
        previous = PREVIOUS_SEARCH_TABLE if SEARCH_TABLE in tables else None
        if previous:
            con.execute(f"ALTER TABLE {SEARCH_TABLE} RENAME TO {previous}")
        con.execute(
            f"""
            CREATE TABLE {SEARCH_TABLE} AS
            SELECT contact_id, coalesce(name, '') AS name,
                   coalesce(array_to_string(emails, ' '), email, '') AS email,
                   coalesce(company, '') AS company,
                   -- keys and values both searchable: {{"plan_tier":"gold"}} → plan_tier gold
                   coalesce(attributes::VARCHAR, '') AS attributes_text
            FROM contacts ORDER BY contact_id
            """
        )
        install_fts(con)
        search = build_search_index(con, SEARCH_TABLE, SEARCH_FIELDS, previous)
        write_postings(con)
        con.execute(f"CREATE INDEX IF NOT EXISTS {CONTACT_ID_INDEX} ON contacts (contact_id)")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return search


def write_postings(con: duckdb.DuckDBPyConnection) -> None:
    """The fts index's postings in word order, its words in term order, and whether its docids
    follow contact_id order (see POSTINGS_TABLE). Read only by dedup.service.search, which
    falls back to fts's own tables for a file without them."""
    f = FTS_SCHEMA
    con.execute(
        f"""
        CREATE OR REPLACE TABLE {POSTINGS_TABLE} AS
        SELECT t.termid, t.docid, t.tf::INTEGER AS tf, docs.len::INTEGER AS len
        FROM (SELECT termid, docid, count(*) AS tf FROM {f}.terms GROUP BY ALL) t
        JOIN {f}.docs docs USING (docid)
        ORDER BY t.termid, t.docid
        """
    )
    con.execute(
        f"CREATE OR REPLACE TABLE {WORDS_TABLE} AS "
        f"SELECT term, termid, df FROM {f}.dict ORDER BY term"
    )
    # fts numbers documents by their row in SEARCH_TABLE, written in contact_id order above;
    # checked rather than assumed: docids 0..n-1, names rising with them.
    con.execute(
        f"""
        CREATE OR REPLACE TABLE {POSTINGS_INFO_TABLE} AS
        SELECT coalesce(count_if(name <= prev) = 0 AND min(docid) = 0
                        AND max(docid) = count(*) - 1, true) AS docids_in_id_order
        FROM (SELECT docid, name, lag(name) OVER (ORDER BY docid) AS prev FROM {f}.docs)
        """
    )
