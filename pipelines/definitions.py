"""The Dagster code location: assembles assets, checks, jobs, schedules, sensors and resources."""

import os

import dagster as dg

from assets.crm import crm_links
from assets.identity import admin_decisions, contact_ids, identity_clusters, interactions
from assets.ingest import INGEST_ASSETS
from assets.matching import MATCHING_ASSETS
from assets.publish import PUBLISH_ASSETS, SNAPSHOT_CHECKS
from assets.quality import EXPORT_ASSETS, QUALITY_CHECKS
from assets.resources import ContactsSettings, QualityRunner, workspace_from_env
from pipelines.jobs import build_job, ingest_job, purge_job
from pipelines.sensors import new_export_days, nightly_build, weekly_purge

ASSETS = [
    *INGEST_ASSETS,
    interactions,
    identity_clusters,
    admin_decisions,
    contact_ids,
    *MATCHING_ASSETS,
    crm_links,
    *PUBLISH_ASSETS,
    *EXPORT_ASSETS,
]


def make_definitions(settings: ContactsSettings) -> dg.Definitions:
    """Definitions bound to one workspace's settings (the CLI builds its own from flags)."""
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=[*SNAPSHOT_CHECKS, *QUALITY_CHECKS],
        jobs=[ingest_job, build_job, purge_job],
        schedules=[nightly_build, weekly_purge],
        sensors=[new_export_days],
        resources={"settings": settings, "quality": QualityRunner()},
        # One process, one DuckDB writer: steps never race for the state files.
        executor=dg.in_process_executor,
    )


defs = make_definitions(
    ContactsSettings(
        exports_dir=os.environ.get("CONTACTS_EXPORTS_DIR", "exports"),
        db_path=os.environ.get("CONTACTS_DB", "contacts.duckdb"),
        default_region=os.environ.get("CONTACTS_DEFAULT_REGION", "US"),
        **workspace_from_env(),  # type: ignore[arg-type]
    )
)
