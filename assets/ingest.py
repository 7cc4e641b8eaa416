"""Ingest assets: one per source, one partition per export day, staged as Parquet."""

import functools
import warnings
from collections import Counter

import dagster as dg

from assets.names import GROUP_INGEST, WRITER_POOL, ingest_asset_name
from assets.partitions import export_days
from assets.reporting import md_table
from assets.resources import ContactsSettings
from dedup.ingest.days import SOURCE_SPECS, stage_days, staged_days_of
from dedup.spark.ingest import stage_days_on_spark
from dedup.spark.night import night_session


def build_ingest_asset(source: str, name: str) -> dg.AssetsDefinition:
    """The staging asset of one source; every source has the same shape."""

    def _ingest(
        context: dg.AssetExecutionContext, settings: ContactsSettings
    ) -> dg.MaterializeResult:
        days = list(context.partition_keys)
        staging = functools.partial(settings.layout.staging_dir, source)
        config = settings.source_config()
        if settings.backend == "spark":  # what runs where: docs/scale.md
            spark = night_session(settings.layout.work_dir)
            staged, reasons = stage_days_on_spark(
                spark, settings.exports, source, days, staging, config
            )
        else:
            staged, reasons = staged_days_of(
                stage_days(settings.exports, source, days, staging, config)
            )
        skipped: Counter[str] = Counter()
        for day in staged:
            if day.quarantined:
                context.log.warning(
                    f"{day.quarantined} record(s) of {source}/{day.day} quarantined"
                )
            skipped.update(day.skipped)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": sum(day.accepted for day in staged),
                "engine": settings.backend,
                "quarantined": sum(day.quarantined for day in staged),
                "files_by_day": dg.MetadataValue.json({day.day: day.files for day in staged}),
                "quarantine_reasons": dg.MetadataValue.md(md_table(reasons)),
                "skipped": sum(skipped.values()),
                "skipped_by_reason": dg.MetadataValue.json(dict(skipped)),
            }
        )

    # `backfill_policy` is a beta parameter of dg.asset: its warning would print on every start.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.asset(
            name=name,
            partitions_def=export_days,
            # A backfill (or the first `contacts run` over a history of exports) stages all its
            # days in one run: a run per day cost ~0.4 s of Dagster overhead (docs/performance.md).
            backfill_policy=dg.BackfillPolicy.single_run(),
            group_name=GROUP_INGEST,
            pool=WRITER_POOL,
            kinds={"polars", "parquet"},
            description=(
                f"Validated `{source}` {SOURCE_SPECS[source].kind} records of one export day, "
                "with the day's quarantine and counts of what was skipped."
            ),
        )(_ingest)


# One staging asset per source; its key is `<source>_interactions` or `<source>_records` (CRM).
INGEST_ASSET_BY_SOURCE: dict[str, dg.AssetsDefinition] = {
    source: build_ingest_asset(source, ingest_asset_name(source, spec.kind))
    for source, spec in SOURCE_SPECS.items()
}
askvault_interactions = INGEST_ASSET_BY_SOURCE["askvault"]
INGEST_ASSETS = list(INGEST_ASSET_BY_SOURCE.values())
INTERACTION_INGEST_ASSETS = [
    a for s, a in INGEST_ASSET_BY_SOURCE.items() if SOURCE_SPECS[s].kind == "interactions"
]
CRM_INGEST_ASSETS = [a for s, a in INGEST_ASSET_BY_SOURCE.items() if SOURCE_SPECS[s].kind == "crm"]
