"""The Dagster code location: assembles assets, checks, jobs, schedules, sensors and resources."""

import dagster as dg

from assets.resources import ContactsSettings
from pipelines.graph import ASSETS, CHECKS, EXECUTOR, resources
from pipelines.jobs import build_job, ingest_job, purge_job
from pipelines.nightly import nightly_job
from pipelines.sensors import new_export_days, nightly_run, weekly_purge


def make_definitions(settings: ContactsSettings) -> dg.Definitions:
    """Definitions bound to one workspace's settings (the CLI builds its own from flags)."""
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=CHECKS,
        jobs=[nightly_job, ingest_job, build_job, purge_job],
        schedules=[nightly_run, weekly_purge],
        sensors=[new_export_days],
        resources=resources(settings),
        executor=EXECUTOR,
    )


# The two places a run writes come from the environment when the run starts (`dg.EnvVar`: the
# launchpad shows where they come from, and a run without them fails saying which is unset);
# every other setting left empty reads its variable then too (assets.resources.SETTINGS_ENV),
# so a launchpad override of one field keeps the others.
defs = make_definitions(
    ContactsSettings(
        exports_dir=dg.EnvVar("CONTACTS_EXPORTS_DIR"),
        db_path=dg.EnvVar("CONTACTS_DB"),
    )
)
