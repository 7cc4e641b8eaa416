"""Assemble every published table in a build database."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from dedup.config import EngineConfig
from dedup.contacts import build_contacts
from dedup.schema import CANONICAL_FIELDS
from dedup.snapshot import PROPOSALS_DDL, write_table

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


def build_snapshot(
    con: duckdb.DuckDBPyConnection, inputs: SnapshotInputs, config: EngineConfig
) -> None:
    write_table(con, "_interactions_full", inputs.interactions)
    build_contacts(con, config, source="_interactions_full")
    con.execute(
        f"""
        CREATE TABLE interactions AS
        SELECT {", ".join(PUBLISHED_INTERACTION_COLUMNS)}
        FROM _interactions_full ORDER BY occurred_at, interaction_id
        """
    )
    con.execute("DROP TABLE _interactions_full")
    write_table(con, "contact_redirects", inputs.redirects, "from_contact_id")
    write_table(con, "merges", inputs.merges, "decided_at, merge_id")
    write_table(con, "quarantine", inputs.quarantine, "source, export_day, file, row")
    write_table(con, "ambiguous_keys", inputs.ambiguous_keys, "key_type, key_value")
    write_table(con, "pipeline_runs", inputs.runs, "run_number")
    con.execute(PROPOSALS_DDL)
    con.execute("CHECKPOINT")
