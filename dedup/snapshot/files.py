"""The published DuckDB file: where the state lives, how a snapshot is built and published.

State model (docs/state.md):
- raw input: the exports folder, never modified;
- staged: per source and export day, the validated records and their quarantine (Parquet under
  `<db>.state/staging/`), rebuilt when that day's files change;
- derived: everything in the published file; rebuilt by every run from staged data, previous ids
  and decisions;
- carried forward: contact ids, redirects and merge history, read from the last published file;
- durable decisions (admins, later): `<db>.state/decisions.duckdb`, never inside the snapshot.

A snapshot is built in `<db>.state/work/` and moved over the published file with one rename, so
readers see either the old file or the new one, and a killed run leaves the old one intact.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import polars as pl

from dedup.identity.stable_ids import (
    PREVIOUS_ASSIGNMENT_SCHEMA,
    PREVIOUS_CONTACTS_SCHEMA,
    REDIRECT_SCHEMA,
    PreviousState,
)

RUNS_SCHEMA: dict[str, pl.DataType] = {
    "run_number": pl.Int64(),
    "run_id": pl.String(),
    "finished_at": pl.Datetime("us", "UTC"),
    "interactions": pl.Int64(),
    "contacts": pl.Int64(),
    "quarantined": pl.Int64(),
    "updates": pl.Int64(),
    "auto_merges": pl.Int64(),
    "ambiguous_keys": pl.Int64(),
}

PROPOSALS_DDL = """
CREATE TABLE IF NOT EXISTS merge_proposals (
    proposal_id VARCHAR PRIMARY KEY,
    contact_id_l VARCHAR NOT NULL,
    contact_id_r VARCHAR NOT NULL,
    match_probability DOUBLE,
    match_weight DOUBLE,
    status VARCHAR,
    created_at TIMESTAMPTZ,
    explanation JSON,
    status_at TIMESTAMPTZ,
    decided_by VARCHAR,
    note VARCHAR
)
"""


def table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}


def previous_table(db_path: Path, table: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Columns `schema` of `table` in the last published file; empty when there is none yet."""
    if not db_path.exists():
        return pl.DataFrame(schema=schema)
    try:
        con = duckdb.connect(str(db_path), read_only=True)
    except duckdb.Error as exc:
        raise RuntimeError(f"cannot read the published file {db_path}: {exc}") from exc
    try:
        if table not in table_names(con):
            return pl.DataFrame(schema=schema)
        frame = con.sql(f'SELECT {", ".join(schema)} FROM "{table}"').pl()
    finally:
        con.close()
    return frame.cast(schema)  # type: ignore[arg-type]


def previous_rows(
    db_path: Path, table: str, columns: str, key: str, values: list[str]
) -> pl.DataFrame:
    """`SELECT columns FROM table WHERE key IN values` on the last published file (None: none)."""
    if not db_path.exists() or not values:
        return pl.DataFrame()
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        if table not in table_names(con):
            return pl.DataFrame()
        return con.execute(
            f'SELECT {columns} FROM "{table}" WHERE {key} IN (SELECT unnest(?))', [values]
        ).pl()
    finally:
        con.close()


def load_previous_ids(db_path: Path) -> PreviousState:
    """Ids and redirects of the last published file, to carry contact ids forward."""
    return PreviousState(
        previous_table(db_path, "interactions", PREVIOUS_ASSIGNMENT_SCHEMA),
        previous_table(db_path, "contacts", PREVIOUS_CONTACTS_SCHEMA),
        previous_table(db_path, "contact_redirects", REDIRECT_SCHEMA),
    )


def connect_build(path: Path) -> duckdb.DuckDBPyConnection:
    """A fresh, empty build database (any leftover from a killed run is discarded first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    con.execute("SET enable_progress_bar = false")
    return con


def write_table(
    con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame, order_by: str = ""
) -> None:
    """Create table `name` from a Polars frame (via Arrow, no copy through Python objects)."""
    con.register("_incoming", frame.to_arrow())
    try:
        order = f" ORDER BY {order_by}" if order_by else ""
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _incoming{order}")
    finally:
        con.unregister("_incoming")


# The published file holds every contact's PII: its owner writes, the owner's group (analysts
# open it read-only) reads, nobody else (docs/privacy.md). Set before the rename, so the file is
# never visible with wider permissions.
PUBLISHED_MODE = 0o640


def publish(build_path: Path, db_path: Path) -> None:
    """Move a finished build over the published file in one atomic rename."""
    with open(build_path, "rb+") as fh:
        os.fchmod(fh.fileno(), PUBLISHED_MODE)
        os.fsync(fh.fileno())
    db_path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(build_path, db_path)
    # Make the rename itself durable.
    dir_fd = os.open(db_path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
