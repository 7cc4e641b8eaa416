"""Publishing without rewriting history (issue 25): tonight's file starts as a copy of last night's.

Writing the published `interactions` table (every interaction, sorted and compressed) was the
largest part of a night that adds 1% to the history. A night whose interactions are mostly what
was published last night therefore copies last night's file (a file copy, no decompression),
drops every object in it but `interactions`, the full-text index with the table it indexes
(carried by dedup.snapshot.search_index) and `DERIVED_TABLES` (the tables computed from every
interaction: dedup.snapshot.interaction_tables), and writes every other table whole as a fresh
build does; `interactions` gets only its changed rows: the rows whose published values differ
from tonight's are deleted and tonight's rows for them (and new ones) inserted.

What changed is found by value, not by tracking why: a hash of every published column of each
row, tonight's (from the work files) against the copy's. A new, re-delivered, scrubbed or
removed interaction, one moved by a merge or a split, a normalization that changed: each is a
row whose values differ, so the result holds exactly tonight's rows whatever made them differ.
The copy's rows stay where they are and new rows are appended in (occurred_at, interaction_id)
order: the table holds the same rows as a full build, not in the same physical order (nothing
reads it by position; `contacts`, which the Contact API pages through by row, is written whole).

A full write instead, and `PublishPlan.full` says why: `--full`, no published file yet, a file
that cannot be read, was created by another DuckDB version or holds objects a build does not make, published columns that differ from
tonight's (a release that changed them), or more than `MAX_CHANGED_SHARE` of the rows changed.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from dedup.snapshot.analyst import FTS_SCHEMA, SEARCH_TABLE
from dedup.snapshot.files import connect_build

KEPT_TABLE = "interactions"
# Carried with it when they can be (dedup.snapshot.interaction_tables); the audience map is kept
# only to be compared with tonight's.
DERIVED_TABLES = ("session_audience", "property_errors", "audience_map")
# Above this share of changed rows a sorted full write is the better file for the same cost.
MAX_CHANGED_SHARE = 0.5


@dataclass
class PublishPlan:
    """How tonight's file was made; `full` says why it was written whole."""

    full: str | None = None
    written: int = 0  # interactions inserted (new or changed)
    removed: int = 0  # published rows deleted (changed or gone)
    kept: int = 0  # published rows left as they were
    search: str = ""  # how the full-text index was made (dedup.snapshot.search_index)
    sessions: str = ""  # how session_audience and property_errors were made (interaction_tables)

    def describe(self) -> str:
        if self.full:  # every table, the search index too, written whole
            return f"full: {self.full}"
        search = f"; search index {self.search}" if self.search else ""
        sessions = (
            f"; session_audience and property_errors {self.sessions}" if self.sessions else ""
        )
        return (
            f"incremental: {self.written:,} interactions written, {self.removed:,} removed, "
            f"{self.kept:,} kept from the published file{search}{sessions}; "
            "every other table written whole"
        )


def start_build(build: Path, published: Path | None, full: str | None) -> PublishPlan:
    """The build file at `build`: a copy of `published` with only `interactions` left in it, or
    a fresh empty file (then the plan says why)."""
    reason = full or _unusable(published)
    if reason is None:
        assert published is not None
        connect_build(build).close()  # discards a killed run's leftover and its WAL
        shutil.copyfile(published, build)
        try:
            reason = _strip(build)
        except duckdb.Error as exc:
            reason = f"published file unreadable ({type(exc).__name__})"
    if reason is not None:
        connect_build(build).close()
    return PublishPlan(full=reason)


def _unusable(published: Path | None) -> str | None:
    if published is None or not published.exists():
        return "no published file yet"
    if published.with_name(published.name + ".wal").exists():
        return "published file has a write-ahead log"
    created = created_by(published)
    if created is None:
        return "published file unreadable (not a DuckDB file)"
    if created != f"v{duckdb.__version__}":
        # A copy keeps the storage format and layout of the version that created the file; after
        # an upgrade the file is written whole once, so it is what this version writes.
        return f"published file created by DuckDB {created}, this is v{duckdb.__version__}"
    return None


# DuckDB's main header: a checksum (8 bytes), b"DUCK", the storage version (8), flags (4 x 8),
# then the version of the library that created the file (32 bytes, NUL-padded), kept for the
# file's life. Anything else read there means "unknown": the file is written whole.
_MAGIC = slice(8, 12)
_CREATED_BY = slice(52, 84)


def created_by(path: Path) -> str | None:
    """The DuckDB version (`v1.5.5`) that created the file at `path`; None if not a DuckDB file."""
    with path.open("rb") as f:
        head = f.read(_CREATED_BY.stop)
    if len(head) < _CREATED_BY.stop or head[_MAGIC] != b"DUCK":
        return None
    return head[_CREATED_BY].split(b"\0", 1)[0].decode("ascii", "replace")


def _strip(path: Path) -> str | None:
    """Drop every object but `interactions`, the search table and its full-text index (the
    analyst layer carries the index: dedup.snapshot.search_index) and `DERIVED_TABLES`."""
    con = duckdb.connect(str(path))
    try:
        tables = con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'"
        ).fetchall()
        if (KEPT_TABLE,) not in tables:
            return "published file has no interactions table"
        others = con.execute(
            "SELECT count(*) FROM (SELECT 1 FROM duckdb_sequences() UNION ALL "
            "SELECT 1 FROM duckdb_types() WHERE NOT internal AND database_name = current_database() "
            "UNION ALL SELECT 1 FROM duckdb_functions() WHERE NOT internal AND schema_name = 'main')"
        ).fetchone()[0]  # type: ignore[index]
        if others:
            return "published file holds objects a build does not make"
        for (schema,) in con.execute(
            "SELECT schema_name FROM duckdb_schemas() WHERE NOT internal AND schema_name <> 'main' "
            "AND database_name = current_database() AND schema_name <> ?",
            [FTS_SCHEMA],
        ).fetchall():
            con.execute(f'DROP SCHEMA "{schema}" CASCADE')
        for (view,) in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal AND schema_name = 'main'"
        ).fetchall():
            con.execute(f'DROP VIEW "{view}"')
        for (index,) in con.execute(
            "SELECT index_name FROM duckdb_indexes() WHERE schema_name = 'main'"
        ).fetchall():
            con.execute(f'DROP INDEX "{index}"')
        for (table,) in tables:
            if table not in (KEPT_TABLE, SEARCH_TABLE, *DERIVED_TABLES):
                con.execute(f'DROP TABLE "{table}"')
        return None
    finally:
        con.close()


def update_interactions(
    con: duckdb.DuckDBPyConnection, select: str, names: tuple[str, ...], plan: PublishPlan
) -> str | None:
    """Make `out.interactions` hold exactly the rows of `select` (tonight's published rows, with
    columns `names`) by deleting the rows that differ and inserting tonight's; or say why not
    (the table is then left as it was). Leaves `_changed` (interaction_id, tonight: inserted,
    published: deleted), `_removed` (the deleted rows) and `_inserted` (tonight's rows
    inserted) for the tables computed from them."""
    table = "out.main.interactions"
    if _columns(con, f"SELECT * FROM ({select}) LIMIT 0") != _columns(con, f"FROM {table} LIMIT 0"):
        return "published interactions' columns differ from tonight's"
    row_hash = f"hash({', '.join(names)})"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _changed AS "
        "SELECT interaction_id, t.h IS NOT NULL AS tonight, p.h IS NOT NULL AS published "
        f"FROM (SELECT interaction_id, {row_hash} AS h FROM ({select})) t "
        f"FULL JOIN (SELECT interaction_id, {row_hash} AS h FROM {table}) p "
        "USING (interaction_id) WHERE t.h IS DISTINCT FROM p.h"
    )
    written, removed, published = con.execute(
        # coalesce: over no changed rows at all, count_if is NULL
        "SELECT coalesce(count_if(tonight), 0), coalesce(count_if(published), 0), "
        f"(SELECT count(*) FROM {table}) FROM _changed"
    ).fetchone()  # type: ignore[misc]
    if max(written, removed) > MAX_CHANGED_SHARE * max(published, 1):
        return f"{max(written, removed):,} of {published:,} published interactions changed"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _removed AS SELECT * FROM {table} "
        "SEMI JOIN (SELECT interaction_id FROM _changed WHERE published) USING (interaction_id)"
    )
    con.execute(
        f"DELETE FROM {table} WHERE interaction_id IN (SELECT interaction_id FROM _removed)"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _inserted AS SELECT * FROM ({select}) s "
        "SEMI JOIN (SELECT interaction_id FROM _changed WHERE tonight) c USING (interaction_id)"
    )
    con.execute(f"INSERT INTO {table} FROM _inserted ORDER BY occurred_at, interaction_id")
    plan.written, plan.removed, plan.kept = written, removed, published - removed
    return None


def _columns(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[str, str]]:
    return [(d[0], str(d[1])) for d in con.execute(sql).description]
