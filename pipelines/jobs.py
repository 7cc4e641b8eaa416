"""Jobs: ingest one export day; build and publish the contacts snapshot."""

import dagster as dg

from assets.names import GROUP_CRM, GROUP_IDENTITY, GROUP_INGEST, GROUP_MATCHING, GROUP_PUBLISH
from assets.resources import ContactsSettings
from dedup.snapshot.retention import RetentionPolicy, purge

INGEST_JOB = "ingest_exports"
BUILD_JOB = "build_contacts"

ingest_job = dg.define_asset_job(
    INGEST_JOB,
    selection=dg.AssetSelection.groups(GROUP_INGEST),
    description="Stage every source's exports of one day (one partition).",
)

build_job = dg.define_asset_job(
    BUILD_JOB,
    selection=dg.AssetSelection.groups(GROUP_IDENTITY, GROUP_MATCHING, GROUP_CRM, GROUP_PUBLISH),
    description=(
        "Normalize, auto-merge, assign stable ids, propose merges, link CRM records, "
        "check and publish the DuckDB file."
    ),
)

PURGE_JOB = "purge_state"


@dg.op(
    description="Delete expired build leftovers, work files and backups (dedup.snapshot.retention)."
)
def purge_expired_state(context: dg.OpExecutionContext, settings: ContactsSettings) -> None:
    removed = purge(settings.layout.db_path, RetentionPolicy())
    context.log.info(f"purged {len(removed)} file(s)")
    context.add_output_metadata({"purged": dg.MetadataValue.json([str(p) for p in removed])})


@dg.job(name=PURGE_JOB, description="Retention: what `contacts purge` does, on a schedule.")
def purge_job() -> None:
    purge_expired_state()
