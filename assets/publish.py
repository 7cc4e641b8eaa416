"""Publish assets: build the snapshot beside the published file, check it, rename it into place."""

import json
from datetime import datetime

import dagster as dg
import duckdb
import polars as pl

from assets.crm import CRM_LINKS_FILE, CRM_STATUS_FILE, TIER_MISMATCHES_FILE
from assets.identity import (
    AMBIGUOUS_FILE,
    ASSIGNMENT_FILE,
    BRIDGING_FILE,
    DECISIONS_FILE,
    DELETIONS_FILE,
    ERASED_FILE,
    FAILURES_FILE,
    INTERACTION_STATS_FILE,
    INTERACTIONS_FILE,
    MERGE_SIDES_FILE,
    MERGES_FILE,
    OUTCOMES_FILE,
    REDIRECTS_FILE,
    RUN_FILE,
    SIDE_PROFILES_FILE,
    SUPPRESSED_FILE,
    SUPPRESSION_FILE,
    TRASH_ASSIGNMENT_FILE,
    TRASH_FILE,
)
from assets.matching import CONTACTS_FILE, PROPOSALS_FILE
from assets.names import (
    CHECK_ALL_ASSIGNED,
    CHECK_HUB_LIMIT,
    CHECK_REDIRECTS_LIVE,
    CHECK_UNIQUE_IDS,
    CRM_LINKS,
    GROUP_PUBLISH,
    PROPOSALS,
    PUBLISHED,
    SNAPSHOT,
    WRITER_POOL,
)
from assets.partitions import refused_export_paths
from assets.reporting import md_table
from assets.resources import ContactsSettings
from dedup.admin.privacy import (
    ERASURES_SCHEMA,
    salt,
)
from dedup.ingest.days import read_staged
from dedup.service.published_views import publish_saved_views
from dedup.snapshot.assemble import NightOutputs, removed_for_good, snapshot_inputs
from dedup.snapshot.build import (
    build_contacts_frame,
    build_snapshot,
    interactions_sql,
)
from dedup.snapshot.crm_links import with_crm_columns
from dedup.snapshot.files import RUNS_SCHEMA, previous_table, publish
from dedup.snapshot.interaction_tables import PUBLISHED_CACHE, KeptTables
from quality.snapshot_checks import (
    contacts_over_hub_limit,
    duplicate_interaction_ids,
    interactions_without_live_contact,
    redirects_not_live,
)


def _night(context: dg.AssetExecutionContext, settings: ContactsSettings) -> NightOutputs:
    """Read back what tonight's earlier assets wrote to the work folder."""
    layout = settings.layout
    work, config = layout.work_file, settings.engine_config()
    refused = refused_export_paths(settings.exports)  # symlinks, odd folders: never read
    if refused.height:
        context.log.warning(f"{refused.height} path(s) of the exports folder not read (quarantine)")
    held = pl.read_parquet(work(TRASH_ASSIGNMENT_FILE))
    return NightOutputs(
        run=json.loads(work(RUN_FILE).read_text()),
        stats=json.loads(work(INTERACTION_STATS_FILE).read_text()),
        interactions_sql=interactions_sql(work(INTERACTIONS_FILE), work(ASSIGNMENT_FILE)),
        assigned_ids=pl.read_parquet(work(ASSIGNMENT_FILE), columns=["interaction_id"]),
        contacts=with_crm_columns(
            pl.read_parquet(work(CONTACTS_FILE)),
            pl.read_parquet(work(CRM_STATUS_FILE)),
            config.default_audience,
        ),
        proposals=pl.read_parquet(work(PROPOSALS_FILE)),
        quarantine=pl.concat([read_staged(layout.staging_root, "quarantine"), refused]),
        ambiguous_keys=pl.concat(
            [pl.read_parquet(work(AMBIGUOUS_FILE)), pl.read_parquet(work(BRIDGING_FILE))]
        ),
        decisions=pl.read_parquet(work(DECISIONS_FILE)),
        outcomes=pl.read_parquet(work(OUTCOMES_FILE)),
        redirects=pl.read_parquet(work(REDIRECTS_FILE)),
        merges=pl.read_parquet(work(MERGES_FILE)),
        merge_sides=pl.read_parquet(work(MERGE_SIDES_FILE)),
        side_profiles=pl.read_parquet(work(SIDE_PROFILES_FILE)),
        erased_ids=pl.read_parquet(work(ERASED_FILE)).get_column("contact_id"),
        identity_failures=pl.read_parquet(work(FAILURES_FILE)),
        suppression=pl.read_parquet(work(SUPPRESSION_FILE)),
        suppressed=pl.read_parquet(work(SUPPRESSED_FILE)),
        salt_hex=salt(layout.state_dir),
        crm_links=pl.read_parquet(work(CRM_LINKS_FILE)),
        tier_mismatches=pl.read_parquet(work(TIER_MISMATCHES_FILE)),
        deletions=pl.read_parquet(work(DELETIONS_FILE)),
        held=held,
        held_profiles=build_contacts_frame(
            interactions_sql(work(TRASH_FILE), work(TRASH_ASSIGNMENT_FILE)),
            config,
            work("duckdb_tmp"),
        )
        if held.height
        else pl.DataFrame(),
        previous_runs=previous_table(layout.db_path, "pipeline_runs", RUNS_SCHEMA),
        previous_erasures=previous_table(layout.db_path, "erasures", ERASURES_SCHEMA),
        previous_deletions=previous_table(
            layout.db_path, "deletions", {"deletion_id": pl.String(), "status": pl.String()}
        ),
    )


class SnapshotConfig(dg.Config):
    """Run config of the snapshot step."""

    # Write every table whole instead of starting from a copy of the published file (issue 25).
    full: bool = False


@dg.asset(
    name=SNAPSHOT,
    deps=[PROPOSALS, CRM_LINKS],
    group_name=GROUP_PUBLISH,
    pool=WRITER_POOL,
    kinds={"duckdb"},
    description="The next published DuckDB file, built beside the live one and not yet visible.",
)
def contacts_snapshot(
    context: dg.AssetExecutionContext, config: SnapshotConfig, settings: ContactsSettings
) -> dg.MaterializeResult:
    layout = settings.layout
    night = _night(context, settings)
    inputs = snapshot_inputs(night)
    plan = build_snapshot(
        layout.build_path,
        inputs,
        settings.engine_config(),
        layout.db_path,
        "--full requested" if config.full else removed_for_good(night),
        # Which run and code made the published session_audience and property_errors (issue 25).
        KeptTables(layout.cache_dir / PUBLISHED_CACHE),
    )
    context.log.info(f"published file: {plan.describe()}")
    # Saved views as of tonight, members by the CLI's own search (docs/schema.md, "saved_views").
    views = publish_saved_views(
        layout.build_path, layout.views_path, datetime.fromisoformat(night.run["decided_at"])
    )
    for problem in views.problems:
        context.log.warning(problem)
    con = duckdb.connect(str(layout.build_path), read_only=True)
    try:
        preview = con.sql(
            "SELECT contact_id, name, email, phone, channels, audience, conversation_count "
            "FROM contacts ORDER BY conversation_count DESC, contact_id LIMIT 10"
        ).pl()
        n_interactions = con.sql("SELECT count(*) FROM interactions").fetchone()[0]
    finally:
        con.close()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": inputs.contacts.height,
            "interactions": n_interactions,
            "quarantined": inputs.quarantine.height,
            "saved_views": views.views,
            # Whether the file started from a copy of the published one, or why not (issue 25).
            "publish_path": plan.describe(),
            "path": dg.MetadataValue.path(str(layout.build_path)),
            "preview": dg.MetadataValue.md(md_table(preview)),
        }
    )


def _snapshot_check(name: str, description: str, count_bad, what: str):
    @dg.asset_check(asset=SNAPSHOT, name=name, blocking=True, description=description)
    def _check(settings: ContactsSettings) -> dg.AssetCheckResult:
        con = duckdb.connect(str(settings.layout.build_path), read_only=True)
        try:
            bad = count_bad(con)
        finally:
            con.close()
        return dg.AssetCheckResult(
            passed=bad.height == 0,
            metadata={"violations": bad.height, "examples": dg.MetadataValue.md(md_table(bad, 10))},
            description=None if bad.height == 0 else f"{bad.height} {what}",
        )

    return _check


SNAPSHOT_CHECKS = [
    _snapshot_check(
        CHECK_UNIQUE_IDS,
        "No interaction id appears twice.",
        duplicate_interaction_ids,
        "duplicated interaction id(s)",
    ),
    _snapshot_check(
        CHECK_ALL_ASSIGNED,
        "Every interaction belongs to a live contact.",
        interactions_without_live_contact,
        "interaction(s) without a live contact",
    ),
    _snapshot_check(
        CHECK_HUB_LIMIT,
        "No contact joins two verified user ids or more distinct identifiers than a person has.",
        contacts_over_hub_limit,
        "contact(s) over the hub limit",
    ),
    _snapshot_check(
        CHECK_REDIRECTS_LIVE,
        "Every redirect points at a live contact (or a deleted one that may be restored).",
        redirects_not_live,
        "redirect(s) to a contact that does not live",
    ),
]


@dg.asset(
    name=PUBLISHED,
    deps=[SNAPSHOT],
    group_name=GROUP_PUBLISH,
    pool=WRITER_POOL,
    kinds={"duckdb"},
    description="The DuckDB file analysts query: replaced in one atomic rename.",
)
def published_contacts(
    context: dg.AssetExecutionContext, settings: ContactsSettings
) -> dg.MaterializeResult:
    layout = settings.layout
    publish(layout.build_path, layout.db_path)
    con = duckdb.connect(str(layout.db_path), read_only=True)
    try:
        counts = con.sql(
            "SELECT table_name, estimated_size AS rows FROM duckdb_tables() ORDER BY table_name"
        ).pl()
    finally:
        con.close()
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(layout.db_path.resolve())),
            "tables": dg.MetadataValue.md(md_table(counts, 50)),
        }
    )


PUBLISH_ASSETS = [contacts_snapshot, published_contacts]
