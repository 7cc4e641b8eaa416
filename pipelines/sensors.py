"""Schedules (the night's whole work, the weekly purge) and the sensor for new or changed export days."""

import dagster as dg

from assets.ingest import INGEST_ASSET_BY_SOURCE
from assets.partitions import partition_keys
from assets.resources import ContactsSettings
from dedup.ingest.days import day_files, fingerprint, stale_days
from pipelines.jobs import ingest_job, purge_job
from pipelines.nightly import nightly_job


@dg.sensor(
    job=ingest_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED
)
def new_export_days(context: dg.SensorEvaluationContext, settings: ContactsSettings):
    """Request an ingest run of one source's partition for every export day whose files are new
    or changed; the other sources' partitions of that day are not re-run. Optional: the nightly
    job ingests what it finds stale itself; the sensor stages days as they land."""
    partitions = set(partition_keys())
    for source, day in stale_days(settings.exports, settings.layout.staging_root):
        if day not in partitions:
            context.log.warning(f"{source}/{day} is outside the export-day partitions; skipped")
            continue
        print_ = fingerprint(day_files(settings.exports, source, day))
        yield dg.RunRequest(
            partition_key=day,
            run_key=f"{source}:{day}:{print_}",
            asset_selection=[INGEST_ASSET_BY_SOURCE[source].key],
        )


nightly_run = dg.ScheduleDefinition(
    name="nightly_contacts_run",
    # The whole night, as `contacts run`: ingest what landed, then build. A schedule of the
    # build job alone published yesterday's data whenever the sensor was off (issue 23).
    job=nightly_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description=(
        "Every night after the day's exports have landed: ingest the new or changed export "
        "days, then rebuild, check and publish contacts."
    ),
)

weekly_purge = dg.ScheduleDefinition(
    name="weekly_retention_purge",
    job=purge_job,
    cron_schedule="30 4 * * 0",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Retention: delete expired build leftovers, work files and backups.",
)
