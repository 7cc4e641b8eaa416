"""The asset graph and its two asset jobs, bound to one workspace's settings.

The nightly job (pipelines.nightly) runs these jobs in process, and the code location serves
them (pipelines.definitions) beside the schedules and sensors.
"""

import dagster as dg

from assets.crm import crm_links
from assets.identity import admin_decisions, contact_ids, identity_clusters, interactions
from assets.ingest import INGEST_ASSETS
from assets.matching import MATCHING_ASSETS
from assets.publish import PUBLISH_ASSETS, SNAPSHOT_CHECKS
from assets.quality import EXPORT_ASSETS, QUALITY_CHECKS
from assets.resources import ContactsSettings, QualityRunner
from pipelines.jobs import build_job, ingest_job

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
CHECKS = [*SNAPSHOT_CHECKS, *QUALITY_CHECKS]
# One process, one DuckDB writer: steps never race for the state files.
EXECUTOR = dg.in_process_executor


def resources(settings: ContactsSettings) -> dict[str, object]:
    return {"settings": settings, "quality": QualityRunner()}


def asset_definitions(settings: ContactsSettings) -> dg.Definitions:
    """The assets, checks and the ingest and build jobs over `settings`."""
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=CHECKS,
        jobs=[ingest_job, build_job],
        resources=resources(settings),
        executor=EXECUTOR,
    )
