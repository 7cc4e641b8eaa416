"""Ingest assets: one per source, one partition per export day, staged as Parquet."""

import warnings
from collections import Counter

import dagster as dg
import polars as pl

from assets.names import GROUP_INGEST, WRITER_POOL, ingest_asset_name
from assets.partitions import export_days
from assets.reporting import md_table
from assets.resources import ContactsSettings
from dedup.ingest.days import SOURCE_SPECS, stage_days


def build_ingest_asset(source: str, name: str) -> dg.AssetsDefinition:
    """The staging asset of one source; every source has the same shape."""

    def _ingest(
        context: dg.AssetExecutionContext, settings: ContactsSettings
    ) -> dg.MaterializeResult:
        config = settings.source_config()
        accepted = 0
        quarantined: list[pl.DataFrame] = []
        files: dict[str, list[str]] = {}
        skipped: Counter[str] = Counter()
        for result in stage_days(
            settings.exports,
            source,
            list(context.partition_keys),
            lambda day: settings.layout.staging_dir(source, day),
            config,
        ):
            day = result.day
            if result.quarantine.height:
                context.log.warning(
                    f"{result.quarantine.height} record(s) of {source}/{day} quarantined"
                )
            accepted += result.accepted.height
            quarantined.append(result.quarantine.select("reason"))
            files[day] = result.files
            skipped.update(result.skipped)
        reasons = pl.concat(quarantined).group_by("reason").len().sort("len", descending=True)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": accepted,
                "quarantined": sum(q.height for q in quarantined),
                "files_by_day": dg.MetadataValue.json(files),
                "quarantine_reasons": dg.MetadataValue.md(md_table(reasons.head(20))),
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
