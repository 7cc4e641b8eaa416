"""Ingest assets: one per source, one partition per export day, staged as Parquet."""

import dagster as dg

from assets.names import GROUP_INGEST, WRITER_POOL, ingest_asset_name
from assets.partitions import export_days
from assets.reporting import md_table
from assets.resources import ContactsSettings
from dedup.ingest import SOURCE_SPECS, day_files, fingerprint, ingest_day, write_staging


def build_ingest_asset(source: str, name: str) -> dg.AssetsDefinition:
    """The staging asset of one source; every source has the same shape."""

    @dg.asset(
        name=name,
        partitions_def=export_days,
        group_name=GROUP_INGEST,
        pool=WRITER_POOL,
        kinds={"polars", "parquet"},
        description=(
            f"Validated `{source}` {SOURCE_SPECS[source].kind} records of one export day, "
            "with the day's quarantine and counts of what was skipped."
        ),
    )
    def _ingest(
        context: dg.AssetExecutionContext, settings: ContactsSettings
    ) -> dg.MaterializeResult:
        day = context.partition_key
        files = day_files(settings.exports, source, day)
        result = ingest_day(settings.exports, source, day, settings.source_config())
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
                "skipped": sum(result.skipped.values()),
                "skipped_by_reason": dg.MetadataValue.json(result.skipped),
            }
        )

    return _ingest


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
