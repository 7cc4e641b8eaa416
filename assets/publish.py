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
from dedup.admin.deletion import deleted_contacts_table
from dedup.admin.notes import contact_notes
from dedup.admin.privacy import (
    ERASURES_SCHEMA,
    erasure_audit,
    quarantine_without_erased,
    salt,
)
from dedup.admin.tasks import contact_tasks
from dedup.ingest.days import read_staged
from dedup.service.published_views import publish_saved_views
from dedup.snapshot.build import (
    SnapshotInputs,
    build_contacts_frame,
    build_snapshot,
    interactions_sql,
)
from dedup.snapshot.crm_links import with_crm_columns
from dedup.snapshot.files import RUNS_SCHEMA, previous_table, publish
from quality.snapshot_checks import (
    contacts_over_hub_limit,
    duplicate_interaction_ids,
    interactions_without_live_contact,
    redirects_not_live,
)


@dg.asset(
    name=SNAPSHOT,
    deps=[PROPOSALS, CRM_LINKS],
    group_name=GROUP_PUBLISH,
    pool=WRITER_POOL,
    kinds={"duckdb"},
    description="The next published DuckDB file, built beside the live one and not yet visible.",
)
def contacts_snapshot(
    context: dg.AssetExecutionContext, settings: ContactsSettings
) -> dg.MaterializeResult:
    layout = settings.layout
    run = json.loads(layout.work_file(RUN_FILE).read_text())
    stats = json.loads(layout.work_file(INTERACTION_STATS_FILE).read_text())
    contacts = with_crm_columns(
        pl.read_parquet(layout.work_file(CONTACTS_FILE)),
        pl.read_parquet(layout.work_file(CRM_STATUS_FILE)),
        settings.engine_config().default_audience,
    )
    n_interactions = (
        pl.scan_parquet(layout.work_file(ASSIGNMENT_FILE)).select(pl.len()).collect().item()
    )
    refused = refused_export_paths(settings.exports)  # symlinks, odd folders: never read
    if refused.height:
        context.log.warning(f"{refused.height} path(s) of the exports folder not read (quarantine)")
    quarantine = quarantine_without_erased(
        pl.concat([read_staged(layout.staging_root, "quarantine"), refused]),
        pl.read_parquet(layout.work_file(SUPPRESSION_FILE)),
        salt(layout.state_dir),
    )
    contacts_count = contacts.height
    ambiguous = pl.concat(
        [
            pl.read_parquet(layout.work_file(AMBIGUOUS_FILE)),
            pl.read_parquet(layout.work_file(BRIDGING_FILE)),
        ]
    )
    decisions = pl.read_parquet(layout.work_file(DECISIONS_FILE))
    redirects = pl.read_parquet(layout.work_file(REDIRECTS_FILE))
    live = contacts.get_column("contact_id").implode()
    erased = pl.read_parquet(layout.work_file(ERASED_FILE)).get_column("contact_id")
    previous_runs = previous_table(layout.db_path, "pipeline_runs", RUNS_SCHEMA)
    this_run = pl.DataFrame(
        [
            {
                "run_number": previous_runs.height + 1,
                "run_id": run["run_id"],
                "finished_at": datetime.fromisoformat(run["decided_at"]),
                "interactions": n_interactions,
                "contacts": contacts_count,
                "quarantined": quarantine.height,
                "updates": stats["updates"],
                "auto_merges": run["auto_merges"],
                "ambiguous_keys": ambiguous.height,
            }
        ],
        schema=RUNS_SCHEMA,
    )
    runs = pl.concat([previous_runs, this_run])
    deletions = pl.read_parquet(layout.work_file(DELETIONS_FILE))
    trash = layout.work_file(TRASH_ASSIGNMENT_FILE)
    held = pl.read_parquet(trash)
    trash_profiles = (
        build_contacts_frame(
            interactions_sql(layout.work_file(TRASH_FILE), trash),
            settings.engine_config(),
            layout.work_file("duckdb_tmp"),
        )
        if held.height
        else pl.DataFrame()
    )
    inputs = SnapshotInputs(
        interactions=interactions_sql(
            layout.work_file(INTERACTIONS_FILE), layout.work_file(ASSIGNMENT_FILE)
        ),
        contacts=contacts,
        proposals=pl.read_parquet(layout.work_file(PROPOSALS_FILE)),
        redirects=redirects,
        merges=pl.read_parquet(layout.work_file(MERGES_FILE)),
        quarantine=quarantine,
        ambiguous_keys=ambiguous,
        runs=runs,
        # An erased person leaves no trace in merge history either; a deleted contact's sides
        # wait with it for a restore.
        merge_sides=pl.read_parquet(layout.work_file(MERGE_SIDES_FILE)).join(
            pl.concat(
                [
                    pl.scan_parquet(layout.work_file(ASSIGNMENT_FILE))
                    .select("interaction_id")
                    .collect(),
                    held.select("interaction_id"),
                ]
            ),
            on="interaction_id",
            how="semi",
        ),
        merge_side_profiles=pl.read_parquet(layout.work_file(SIDE_PROFILES_FILE)).filter(
            ~pl.col("contact_id").is_in(erased.implode())
        ),
        decisions=decisions.join(
            pl.read_parquet(layout.work_file(OUTCOMES_FILE)), on="decision_id", how="left"
        ),
        notes=contact_notes(decisions, redirects).filter(pl.col("contact_id").is_in(live)),
        tasks=contact_tasks(decisions, redirects, datetime.fromisoformat(run["decided_at"])).filter(
            pl.col("contact_id").is_in(live)
        ),
        identity_failures=pl.read_parquet(layout.work_file(FAILURES_FILE)),
        erasures=erasure_audit(
            decisions,
            pl.read_parquet(layout.work_file(SUPPRESSION_FILE)),
            pl.read_parquet(layout.work_file(SUPPRESSED_FILE)),
            previous_table(layout.db_path, "erasures", ERASURES_SCHEMA),
            datetime.fromisoformat(run["decided_at"]),
        ),
        crm_links=pl.read_parquet(layout.work_file(CRM_LINKS_FILE)).filter(
            pl.col("contact_id").is_in(live)
        ),
        tier_mismatches=pl.read_parquet(layout.work_file(TIER_MISMATCHES_FILE)).filter(
            pl.col("contact_id").is_in(live)
        ),
        deletions=deletions,
        deleted_contacts=deleted_contacts_table(trash_profiles, deletions),
    )
    build_snapshot(layout.build_path, inputs, settings.engine_config())
    # Saved views as of tonight, members by the CLI's own search (docs/schema.md, "saved_views").
    views = publish_saved_views(
        layout.build_path, layout.views_path, datetime.fromisoformat(run["decided_at"])
    )
    for problem in views.problems:
        context.log.warning(problem)
    con = duckdb.connect(str(layout.build_path), read_only=True)
    try:
        preview = con.sql(
            "SELECT contact_id, name, email, phone, channels, audience, conversation_count "
            "FROM contacts ORDER BY conversation_count DESC, contact_id LIMIT 10"
        ).pl()
    finally:
        con.close()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": contacts_count,
            "interactions": n_interactions,
            "quarantined": quarantine.height,
            "saved_views": views.views,
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
