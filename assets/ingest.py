"""Ingest assets: one per source, one partition per export day, staged as Parquet."""

import dagster as dg

from assets.names import ASKVAULT, GROUP_INGEST, WRITER_POOL
from assets.partitions import export_days
from assets.reporting import md_table
from assets.resources import ContactsSettings
from dedup.ingest import day_files, fingerprint, ingest_day, write_staging


def build_ingest_asset(source: str, name: str) -> dg.AssetsDefinition:
    """The staging asset of one source; every source has the same shape."""

    @dg.asset(
        name=name,
        partitions_def=export_days,
        group_name=GROUP_INGEST,
        pool=WRITER_POOL,
        kinds={"polars", "parquet"},
        description=f"Validated `{source}` records of one export day, with the day's quarantine.",
    )
    def _ingest(
        context: dg.AssetExecutionContext, settings: ContactsSettings
    ) -> dg.MaterializeResult:
        day = context.partition_key
        files = day_files(settings.exports, source, day)
        result = ingest_day(settings.exports, source, day)
        write_staging(result, settings.layout.staging_dir(source, day), fingerprint(files))
        reasons = result.quarantine.group_by("reason").len().sort("len", descending=True).head(20)
        if result.quarantine.height:
            context.log.warning(
                f"{result.quarantine.height} record(s) of {source}/{day} quarantined"
            )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": result.accepted.height,
                "quarantined": result.quarantine.height,
                "files": dg.MetadataValue.json(result.files),
                "quarantine_reasons": dg.MetadataValue.md(md_table(reasons)),
            }
        )

    return _ingest


askvault_interactions = build_ingest_asset("askvault", ASKVAULT)
INGEST_ASSETS = [askvault_interactions]
