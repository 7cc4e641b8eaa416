"""The nightly job's identity steps on Spark: what the Dagster identity assets call when
`ContactsSettings.engine` is `spark` (assets/identity.py). No Dagster here.

`dedup.spark.identity.identity_stage` runs staged records → ids as one call. A night cannot:
tonight's admin decisions sit between its steps (docs/scale.md):

1. `decided_on_spark` — re-deliveries, normalization and tonight's decisions (revocations,
   erasure suppression, the deletion split: `dedup.spark.tonight`, the local rules per batch)
   on Spark; Spark writes the live rows as the work file the later steps read, and tomorrow's
   phone lookup. The driver gets what decisions touch (erased and purged ids, deleted and
   restored contacts' rows) and aggregates, and runs the staging scrub as the local engine.
2. `auto_merge_on_spark` — the keys an erasure holds (the local `held_keys` per batch), then
   auto-merge on Spark over that work file, with tonight's CRM evidence (built on Spark from
   the staged CRM records: `dedup.spark.crm`); Spark writes the clusters' work file, the
   driver gets the ambiguous keys, the cluster-size histogram and the evidence rows' count.
3. `ids_on_spark` — last night's ids read by Spark (copied from the published file); the
   decision log's constraints (`dedup.identity.constraints`) computed from last night's rows
   of the contacts the decisions name and applied to the clusters they reach, collected (the
   others pass through on Spark); the ids assigned on Spark, forced pairs first; Spark writes
   the assignment and the redirects; the merge history and the decisions' outcomes recorded
   on the driver from tonight's merges (`dedup.spark.contact_ids`).

The work files are those of the local engine, in its schema and row order, so everything
downstream is unchanged.
"""

from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from dedup.admin.deletion import PURGED, DeletionSplit
from dedup.admin.privacy import SHARED_PREFIX, held_keys
from dedup.admin.tonight import DecisionLog, Tonight, apply_decisions
from dedup.config import EngineConfig
from dedup.identity.automerge import AMBIGUOUS_SCHEMA, KEY_COLUMNS, cluster_sizes
from dedup.identity.day_cache import NightPlan
from dedup.identity.interactions import ResolvedInteractions, prepare_interactions
from dedup.identity.normalize import phone_lookup_name, write_phone_lookup
from dedup.identity.verify import FAILURES_SCHEMA, identity_failures
from dedup.ingest.days import empty_accepted
from dedup.schema import CANONICAL_FIELDS
from dedup.spark.batches import per_batch
from dedup.spark.contact_ids import IdFiles, LastNight, SparkResolution, resolve_on_spark
from dedup.spark.crm import crm_evidence_on_spark
from dedup.spark.identity import (
    merged_keys,
    saved,
    staged_files,
)
from dedup.spark.normalize import normalized_interactions
from dedup.spark.session import spark_session
from dedup.spark.tonight import (
    DELETION,
    BatchRules,
    decided,
    held_rows,
    phones_of,
    split,
    write_file,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

# The Spark steps' Parquet folders, under the state's work folder.
SPARK_WORK = "spark"
# What the `interactions` step reports as the night's path.
SPARK_PLAN = "spark engine: every staged day normalized on the cluster"


def night_session(work_dir: Path, first_step: bool = False) -> SparkSession:
    """The process's session (dedup.spark.session); lineage is cut under the state's work folder
    unless the session's configuration names a shared checkpoint folder (a cluster's).

    The night's `first_step` empties that local folder: Splink's clustering writes every round
    there (~170 MB per million interactions) and nothing reads a past night's rounds.
    """
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise RuntimeError(
            "engine = spark needs PySpark (this project's dev dependency group; docs/scale.md)"
        ) from None
    spark = spark_session(checkpoint_dir=None)
    # The local steps read the files Spark writes: timestamps as Parquet's UTC instants in
    # microseconds (Spark's default INT96 reads back as a zoneless nanosecond time).
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    if not spark.conf.get("spark.checkpoint.dir", None):
        local = work_dir / SPARK_WORK / "checkpoints"
        if first_step:
            shutil.rmtree(local, ignore_errors=True)
        spark.sparkContext.setCheckpointDir(str(local))
    return spark


def spark_work(work_dir: Path) -> str:
    return str(work_dir / SPARK_WORK)


def _to_polars(folder: str, schema: dict | pl.Schema, *order: str) -> pl.DataFrame:
    """A Spark step's Parquet folder as the local engine's frame: its schema, its row order."""
    files = sorted(Path(folder).glob("*.parquet"))
    if not files:
        return pl.DataFrame(schema=schema)
    frame = pl.read_parquet(files).select(list(schema)).cast(dict(schema))  # type: ignore[arg-type]
    return frame.sort(*order) if order else frame


def _delivery_counts(staged: DataFrame) -> tuple[int, int, int]:
    """(deliveries, updates, repeats) as `resolve_redeliveries` counts them: an id delivered
    `n` times in `v` distinct contents is `v - 1` updates and `n - v` repeats."""
    from pyspark.sql import functions as F

    content = F.struct(*(c for c in CANONICAL_FIELDS if c != "interaction_id"))
    versions = staged.groupBy("interaction_id").agg(
        F.count(F.lit(1)).alias("n"), F.countDistinct(content).alias("v")
    )
    row = versions.agg(
        F.sum("n").alias("n"), F.sum(F.col("v") - 1).alias("u"), F.sum(F.col("n") - F.col("v"))
    ).first()
    return tuple(int(x or 0) for x in row)  # type: ignore[return-value,union-attr]


@dataclass
class SparkTonight:
    """`apply_decisions`' result with the live rows left on Spark: they are in the work file
    `decided_on_spark` wrote; `tonight.interactions` and `tonight.phones` are empty here."""

    tonight: Tonight  # what decisions touch (small), the counts
    plan: NightPlan
    counts: dict[str, int]  # the `interactions` step's figures of the live rows


LIVE_COUNTS = (
    "rows",
    "identity_failures",
    "verified_interactions",
    "invalid_emails",
    "invalid_phones",
)


def _live_counts(kept: DataFrame) -> dict[str, int]:
    from pyspark.sql import functions as F

    def count(condition) -> Column:
        return F.sum(F.when(condition, 1).otherwise(0))

    row = kept.agg(
        F.count(F.lit(1)).alias("rows"),
        count(F.col("identity_failure").isNotNull()).alias("identity_failures"),
        count(F.col("identity_verified")).alias("verified_interactions"),
        count(F.col("email").isNotNull() & F.col("email_norm").isNull()).alias("invalid_emails"),
        count(F.col("phone").isNotNull() & F.col("phone_e164").isNull()).alias("invalid_phones"),
    ).first()
    return {k: int(v or 0) for k, v in row.asDict().items()}  # type: ignore[union-attr]


def _failures(kept: DataFrame) -> DataFrame:
    """`dedup.identity.verify.identity_failures` as one Spark aggregation (one row per session
    and reason: it grows with the workspace, so Spark writes it)."""
    from pyspark.sql import functions as F

    return (
        kept.filter(F.col("identity_failure").isNotNull())
        .groupBy("session_id", F.col("identity_failure").alias("reason"))
        .agg(
            F.count(F.lit(1)).alias("failures"),
            F.min("occurred_at").alias("first_at"),
            F.max("occurred_at").alias("last_at"),
        )
        .select(*FAILURES_SCHEMA)
    )


def _write_phones(live: DataFrame, folder: Path, region: str) -> int:
    """Tomorrow's phone lookup (`write_phone_lookup`'s file) from the rows that stay (live and
    held: not purged), written by Spark; its rows."""
    from pyspark.sql import functions as F

    path = folder / phone_lookup_name(region)
    folder.mkdir(parents=True, exist_ok=True)
    stay = live.filter(F.col(DELETION).isNull() | (F.col(DELETION) != PURGED))
    write_file(phones_of(stay), path, "phone_key")
    for other in folder.glob("phone_e164-*.parquet"):
        if other != path:
            other.unlink(missing_ok=True)
    return pl.scan_parquet(path).select(pl.len()).collect().item()


def _nothing_staged(
    empty: ResolvedInteractions,
    config: EngineConfig,
    log: DecisionLog,
    outputs: tuple[Path, Path],
    cache_dir: Path,
) -> SparkTonight:
    tonight = apply_decisions(empty, config, log)
    tonight.interactions.drop("identity_failure").write_parquet(outputs[0])
    identity_failures(tonight.interactions).write_parquet(outputs[1])
    write_phone_lookup(cache_dir, config.default_region, tonight.phones)
    counts = {**dict.fromkeys(LIVE_COUNTS, 0), "phone_lookup_loaded": 0, "phone_lookup_saved": 0}
    return SparkTonight(tonight, NightPlan(full=SPARK_PLAN), counts)


def decided_on_spark(
    staging_root: Path,
    work_dir: Path,
    config: EngineConfig,
    log: DecisionLog,
    outputs: tuple[Path, Path],
    cache_dir: Path,
) -> SparkTonight:
    """Re-deliveries and normalization (`dedup.spark.normalize`), then the rules of
    `dedup.admin.tonight.apply_decisions`, on Spark (`dedup.spark.tonight`): the live rows
    (without `identity_failure`) and their identity failures written by Spark to `outputs`
    (`interactions.parquet`, `identity_failures.parquet`), tomorrow's phone lookup under
    `cache_dir`; what decisions touch and the figures returned."""
    from pyspark.sql import functions as F

    empty = prepare_interactions(empty_accepted(), config)
    files = staged_files(staging_root)
    if not files:  # nothing staged: the local steps on no rows write the same empty files
        return _nothing_staged(empty, config, log, outputs, cache_dir)
    spark, work = night_session(work_dir, first_step=True), spark_work(work_dir)
    staged = spark.read.parquet(*files)
    deliveries, updates, repeats = _delivery_counts(staged)
    rules = BatchRules.of(log, config.after_erasure)
    marked = saved(decided(normalized_interactions(staged, config), rules), work, "interactions")
    parts = split(marked)
    columns = [c for c in empty.interactions.columns if c != "identity_failure"]
    write_file(parts.kept.select(*columns), outputs[0], "interaction_id")
    last = [F.col(c).asc_nulls_last() for c in ("session_id", "reason")]
    write_file(_failures(parts.kept), outputs[1], *last)  # identity_failures' order
    trash, restored, purged, held = held_rows(parts)
    suppressed = pl.from_arrow(parts.suppressed.toArrow()).sort("interaction_id")
    phones = _write_phones(parts.live, cache_dir, config.default_region)
    nothing = empty.interactions
    tonight = Tonight(
        interactions=nothing,
        deletion=DeletionSplit(nothing, trash, restored, purged, held),
        suppressed=suppressed.cast({"interaction_id": pl.String, "decision_id": pl.String}),  # type: ignore[union-attr]
        phones=pl.DataFrame(),
        deliveries=deliveries,
        updates=updates,
        repeats=repeats,
    )
    # Spark's normalization parses each batch's phones: no lookup is loaded.
    counts = {**_live_counts(parts.kept), "phone_lookup_loaded": 0, "phone_lookup_saved": phones}
    return SparkTonight(tonight, NightPlan(full=SPARK_PLAN), counts)


@dataclass
class SparkClusters:
    """Auto-merge on Spark: its clusters are in the work file; what the step reports."""

    ambiguous_keys: pl.DataFrame
    clusters: int
    sizes: dict[str, int]  # `cluster_sizes`' histogram
    evidence_rows: int = 0  # CRM evidence rows that took part (`crm_evidence`'s)


def held_on_spark(keys: DataFrame, suppression: pl.DataFrame, salt_hex: str) -> pl.DataFrame:
    """`dedup.admin.privacy.held_keys` of `keys`: the local function per batch (a key is held
    or not by itself), then each held key once; those few come back."""
    shared = pl.col("identifier_kind").str.starts_with(SHARED_PREFIX)
    if suppression.filter(shared).height == 0:  # `held_keys`' own shortcut, without a job
        return held_keys(pl.DataFrame(), suppression, salt_hex)
    found = per_batch(
        keys, functools.partial(held_keys, suppression=suppression, salt_hex=salt_hex)
    )
    return pl.from_arrow(found.distinct().toArrow()).sort("key_type", "key_value")  # type: ignore[union-attr]


def _size_histogram(clusters: DataFrame) -> dict[str, int]:
    """`cluster_sizes` of `clusters` from (size, clusters of that size), counted by Spark: each
    size falls in the bucket `cluster_sizes` puts one cluster of that size (its buckets)."""
    from pyspark.sql import functions as F

    out = dict.fromkeys(cluster_sizes(pl.DataFrame(schema={"cluster": pl.String})), 0)
    per_size = clusters.groupBy("cluster").count().groupBy(F.col("count").alias("size")).count()
    for size, n in per_size.collect():
        one = cluster_sizes(pl.repeat("c", size, eager=True).to_frame("cluster"))
        out[next(label for label, hit in one.items() if hit)] += n
    return out


def auto_merge_on_spark(
    work_dir: Path,
    interactions_file: Path,
    config: EngineConfig,
    staging_root: Path,
    suppression: pl.DataFrame,
    salt_hex: str,
    clusters_file: Path,
) -> SparkClusters:
    """`dedup.identity.automerge.auto_merge` of tonight's interactions (the work file the
    `interactions` step wrote) on Spark, with the staged CRM records under `staging_root` as
    evidence and the keys an erasure holds, both found there too; the clusters written by
    Spark to `clusters_file`."""
    spark, work = night_session(work_dir), spark_work(work_dir)
    keys = spark.read.parquet(str(interactions_file)).select(
        "interaction_id", *KEY_COLUMNS.values()
    )
    held = held_on_spark(keys, suppression, salt_hex)
    evidence = crm_evidence_on_spark(spark, staging_root, config.default_region)
    if evidence is not None:  # read twice by auto-merge (links, the CRM phone cap): once here
        evidence = saved(evidence, work, "crm_evidence")
    clusters, _ = merged_keys(keys, config, work, evidence, held)
    write_file(clusters.select("interaction_id", "cluster"), clusters_file, "interaction_id")
    return SparkClusters(
        ambiguous_keys=_to_polars(
            f"{work}/ambiguous_keys", AMBIGUOUS_SCHEMA, "key_type", "key_value"
        ),
        clusters=clusters.select("cluster").distinct().count(),
        sizes=_size_histogram(clusters),
        evidence_rows=0 if evidence is None else evidence.count(),
    )


def ids_on_spark(
    work_dir: Path,
    db_path: Path,
    files: IdFiles,
    last: LastNight,
    ambiguous: pl.DataFrame,
    decisions: pl.DataFrame,
    held: pl.Series,
    decided_at: datetime,
) -> SparkResolution:
    """`dedup.identity.resolution.resolve_ids` with tonight's clusters and last night's ids on
    Spark: `dedup.spark.contact_ids.resolve_on_spark` in the night's session."""
    spark, work = night_session(work_dir), spark_work(work_dir)
    return resolve_on_spark(
        spark, work, db_path, files, last, ambiguous, decisions, held, decided_at
    )
