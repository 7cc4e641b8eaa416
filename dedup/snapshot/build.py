"""Assemble every published table in a build database."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from dedup.admin.deletion import DELETED_CONTACTS_SCHEMA, DELETIONS_SCHEMA
from dedup.admin.notes import NOTES_SCHEMA
from dedup.admin.privacy import ERASURES_SCHEMA
from dedup.admin.tasks import TASKS_SCHEMA
from dedup.config import EngineConfig
from dedup.decisions import DECISIONS_SCHEMA
from dedup.duck import session
from dedup.identity.constraints import MERGE_SIDES_SCHEMA
from dedup.identity.merge_history import OUTCOME_SCHEMA, SIDE_PROFILE_SCHEMA
from dedup.identity.verify import FAILURES_SCHEMA
from dedup.properties import typed_view_sql
from dedup.schema import CANONICAL_FIELDS
from dedup.snapshot.analyst import finish_analyst_layer
from dedup.snapshot.carry import PublishPlan, start_build, update_interactions
from dedup.snapshot.comments import apply_comments
from dedup.snapshot.files import PROPOSALS_DDL, connect_build, write_table
from dedup.snapshot.interaction_tables import KeptTables, write_interaction_tables
from dedup.snapshot.profiles import build_contacts, register_audience_map

# Columns of the published `interactions` table: SPEC's canonical columns, the normalized forms
# beside the raw ones, the live contact, and where the record came from.
PUBLISHED_INTERACTION_COLUMNS: tuple[str, ...] = (
    *CANONICAL_FIELDS,
    "email_norm",
    "phone_e164",
    "phone_valid",
    "name_norm",
    "identity_verified",
    "contact_id",
    "source",
    "export_day",
    "file",
    "row",
)


# Staging keeps the export day as the folder's name (text); the published column is a DATE so
# analysts can compare and truncate it. Only folders named YYYY-MM-DD are read
# (dedup.ingest.days), so the strict cast cannot fail on staged data.
EXPORT_DAY = "CAST(export_day AS DATE)"
PUBLISHED_CASTS: dict[str, str] = {
    "attributes": "attributes::JSON AS attributes",
    "export_day": f"{EXPORT_DAY} AS export_day",
}


def _empty(schema: dict) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


@dataclass
class SnapshotInputs:
    interactions: str  # SQL over prepared interactions with contact_id (see `interactions_sql`)
    contacts: pl.DataFrame  # from `build_contacts_frame`
    proposals: pl.DataFrame  # `merge_proposals` rows (dedup.matching.proposals.PROPOSALS_SCHEMA)
    redirects: pl.DataFrame
    merges: pl.DataFrame
    quarantine: pl.DataFrame
    ambiguous_keys: pl.DataFrame
    runs: pl.DataFrame
    # Admin decisions and privacy (empty when a caller has none, e.g. the benchmark).
    merge_sides: pl.DataFrame = field(default_factory=lambda: _empty(MERGE_SIDES_SCHEMA))
    merge_side_profiles: pl.DataFrame = field(default_factory=lambda: _empty(SIDE_PROFILE_SCHEMA))
    # The decision log as this run read it, with each decision's outcome.
    decisions: pl.DataFrame = field(
        default_factory=lambda: _empty({**DECISIONS_SCHEMA, **OUTCOME_SCHEMA})
    )
    notes: pl.DataFrame = field(default_factory=lambda: _empty(NOTES_SCHEMA))
    identity_failures: pl.DataFrame = field(default_factory=lambda: _empty(FAILURES_SCHEMA))
    erasures: pl.DataFrame = field(default_factory=lambda: _empty(ERASURES_SCHEMA))
    tasks: pl.DataFrame = field(default_factory=lambda: _empty(TASKS_SCHEMA))
    # Issue "native exports": CRM links and plan/CRM tier mismatches (dedup.snapshot.crm_links); None = not built.
    crm_links: pl.DataFrame | None = None
    tier_mismatches: pl.DataFrame | None = None
    # Soft delete (dedup.admin.deletion): every deletion's status, and the contacts still restorable.
    deletions: pl.DataFrame = field(default_factory=lambda: _empty(DELETIONS_SCHEMA))
    deleted_contacts: pl.DataFrame = field(default_factory=lambda: _empty(DELETED_CONTACTS_SCHEMA))


def interactions_sql(interactions: Path, assignment: Path) -> str:
    """Prepared interactions joined to their contact ids, read by DuckDB straight from Parquet.

    DuckDB streams the files and spills to disk under its memory limit; handing it a Polars frame
    instead kept 10M interactions in Python memory beside DuckDB's own copy and ran out of memory.
    """
    return (
        f"SELECT i.*, a.contact_id FROM read_parquet('{interactions}') i "
        f"JOIN read_parquet('{assignment}') a USING (interaction_id)"
    )


def build_contacts_frame(source_sql: str, config: EngineConfig, temp_dir: Path) -> pl.DataFrame:
    """The contacts table as a frame, from interactions given as SQL (`interactions_sql`)."""
    con = session(temp_dir)
    try:
        con.execute(f"CREATE VIEW _interactions_full AS {source_sql}")
        build_contacts(con, config, source="_interactions_full")
        return con.sql("SELECT * REPLACE (attributes::VARCHAR AS attributes) FROM contacts").pl()
    finally:
        con.close()


def build_snapshot(
    path: Path,
    inputs: SnapshotInputs,
    config: EngineConfig,
    published: Path | None = None,
    full: str | None = None,
    kept: KeptTables | None = None,
) -> PublishPlan:
    """Write every published table into the DuckDB file at `path`.

    Tables are assembled in an in-memory database over zero-copy Arrow views and written to the
    file once (building inside the file measured 3x slower on 1M interactions: every intermediate
    was compressed and checkpointed to disk). With `published` (last night's file) and no `full`
    reason, `path` starts as its copy and `interactions` gets only its changed rows
    (`dedup.snapshot.carry`), and `session_audience` and `property_errors` only the rows of what
    changed when `kept` names the run and code that made the copy's (`interaction_tables`); the
    plan says which path was taken and why.
    """
    plan = start_build(path, published, full)
    con = session(path.parent / "duckdb_tmp")
    try:
        con.execute(f"CREATE VIEW _interactions_full AS {inputs.interactions}")
        con.register("_contacts", inputs.contacts.to_arrow())
        register_audience_map(con, config)
        con.execute(f"ATTACH '{path}' AS out")
        _write_interactions(con, path, plan)
        plan.sessions = write_interaction_tables(con, config, plan, kept, _run_ids(inputs.runs))
        con.execute(
            "CREATE TABLE out.contacts AS SELECT * REPLACE (attributes::JSON AS attributes) "
            "FROM _contacts ORDER BY contact_id"
        )
        con.execute(
            "CREATE OR REPLACE TABLE out.audience_map AS FROM audience_map ORDER BY plan_norm"
        )
        con.execute("USE out")
        con.execute(PROPOSALS_DDL)
        con.execute("USE memory")
        con.register("_proposals", inputs.proposals.to_arrow())
        con.execute(
            "INSERT INTO out.merge_proposals SELECT * REPLACE (explanation::JSON AS explanation) "
            "FROM _proposals ORDER BY proposal_id"
        )
        write_table(con, "out.contact_redirects", inputs.redirects, "from_contact_id")
        write_table(con, "out.merges", inputs.merges, "decided_at, merge_id")
        write_table(con, "out.quarantine", inputs.quarantine, "source, export_day, file, row")
        con.execute(f"ALTER TABLE out.quarantine ALTER export_day TYPE DATE USING {EXPORT_DAY}")
        write_table(con, "out.ambiguous_keys", inputs.ambiguous_keys, "key_type, key_value")
        write_table(con, "out.pipeline_runs", inputs.runs, "run_number")
        write_table(
            con, "out.merge_sides", inputs.merge_sides, "merge_id, contact_id, interaction_id"
        )
        write_table(
            con, "out.merge_side_profiles", inputs.merge_side_profiles, "merge_id, contact_id"
        )
        write_table(con, "out.admin_decisions", inputs.decisions, "decided_at, decision_id")
        write_table(con, "out.contact_notes", inputs.notes, "contact_id, created_at, note_id")
        write_table(con, "out.identity_failures", inputs.identity_failures, "session_id, reason")
        write_table(con, "out.erasures", inputs.erasures, "requested_at, request_id")
        write_table(con, "out.contact_tasks", inputs.tasks, "contact_id, created_at, task_id")
        write_table(con, "out.deletions", inputs.deletions, "deleted_at, deletion_id")
        write_table(con, "out.deleted_contacts", inputs.deleted_contacts, "contact_id")
        if inputs.crm_links is not None:
            write_table(con, "out.crm_links", inputs.crm_links, "contact_id, system, record_id")
        if inputs.tier_mismatches is not None:
            write_table(con, "out.tier_mismatches", inputs.tier_mismatches, "contact_id, system")
        con.execute("DETACH out")
    finally:
        con.close()
    plan.search = finish_analyst_layer(path)
    # Typed custom properties: one typed column per declared attribute.
    out = duckdb.connect(str(path))
    try:
        out.execute(
            f"CREATE OR REPLACE VIEW contact_properties AS {typed_view_sql(config.properties)}"
        )
        # Last, so every table and view exists: docs/schema.md's meanings where analysts and BI
        # tools look (duckdb_columns(), information_schema; dedup.snapshot.comments).
        apply_comments(out, config.properties)
        out.execute("CHECKPOINT")
    finally:
        out.close()
    return plan


def _run_ids(runs: pl.DataFrame) -> tuple[str | None, str | None]:
    """The run id of the published file's night and tonight's (None: no such run)."""
    ids = [None, None, *runs.sort("run_number").get_column("run_id").to_list()]
    return ids[-2], ids[-1]


def _write_interactions(con: duckdb.DuckDBPyConnection, path: Path, plan: PublishPlan) -> None:
    """`out.interactions`: the copy's rows updated to tonight's, or (a fresh file) all of them."""
    columns = ", ".join(PUBLISHED_CASTS.get(c, c) for c in PUBLISHED_INTERACTION_COLUMNS)
    select = f"SELECT {columns} FROM _interactions_full"
    if plan.full is None:
        plan.full = update_interactions(con, select, PUBLISHED_INTERACTION_COLUMNS, plan)
        if plan.full is None:
            return
        con.execute("DETACH out")  # the copy is of no use: start a fresh file instead
        connect_build(path).close()
        con.execute(f"ATTACH '{path}' AS out")
    con.execute(f"CREATE TABLE out.interactions AS {select} ORDER BY occurred_at, interaction_id")
