"""Assemble every published table in a build database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from dedup.config import EngineConfig
from dedup.contacts import build_contacts
from dedup.schema import CANONICAL_FIELDS
from dedup.snapshot import PROPOSALS_DDL, connect_build, write_table

# Columns of the published `interactions` table: SPEC's canonical columns, the normalized forms
# beside the raw ones, the live contact, and where the record came from.
PUBLISHED_INTERACTION_COLUMNS: tuple[str, ...] = (
    *CANONICAL_FIELDS,
    "email_norm",
    "phone_e164",
    "name_norm",
    "identity_verified",
    "contact_id",
    "source",
    "export_day",
    "file",
    "row",
)


@dataclass
class SnapshotInputs:
    interactions: pl.DataFrame  # prepared interactions with contact_id
    redirects: pl.DataFrame
    merges: pl.DataFrame
    quarantine: pl.DataFrame
    ambiguous_keys: pl.DataFrame
    runs: pl.DataFrame


def build_snapshot(path: Path, inputs: SnapshotInputs, config: EngineConfig) -> None:
    """Write every published table into a fresh DuckDB file at `path`.

    The work happens in an in-memory database over zero-copy Arrow views; only the finished
    tables are written to the file (building in the file directly measured 3x slower on 1M
    interactions: every intermediate was compressed and checkpointed to disk).
    """
    out = connect_build(path)
    out.close()
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        con.register("_interactions_full", inputs.interactions.to_arrow())
        build_contacts(con, config, source="_interactions_full")
        con.execute(f"ATTACH '{path}' AS out")
        con.execute("CREATE TABLE out.contacts AS FROM contacts ORDER BY contact_id")
        columns = ", ".join(
            "attributes::JSON AS attributes" if c == "attributes" else c
            for c in PUBLISHED_INTERACTION_COLUMNS
        )
        con.execute(
            f"CREATE TABLE out.interactions AS SELECT {columns} "
            "FROM _interactions_full ORDER BY occurred_at, interaction_id"
        )
        con.execute("CREATE TABLE out.audience_map AS FROM audience_map ORDER BY plan_norm")
        write_table(con, "out.contact_redirects", inputs.redirects, "from_contact_id")
        write_table(con, "out.merges", inputs.merges, "decided_at, merge_id")
        write_table(con, "out.quarantine", inputs.quarantine, "source, export_day, file, row")
        write_table(con, "out.ambiguous_keys", inputs.ambiguous_keys, "key_type, key_value")
        write_table(con, "out.pipeline_runs", inputs.runs, "run_number")
        con.execute("USE out")
        con.execute(PROPOSALS_DDL)
        con.execute("USE memory")
        con.execute("DETACH out")
    finally:
        con.close()
