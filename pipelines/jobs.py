"""Jobs: ingest one export day; build and publish the contacts snapshot."""

import dagster as dg

from assets.names import GROUP_CRM, GROUP_IDENTITY, GROUP_INGEST, GROUP_MATCHING, GROUP_PUBLISH

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
