"""The nightly job's identity steps on Spark: what the Dagster identity assets call when
`ContactsSettings.engine` is `spark` (assets/identity.py). No Dagster here.

`dedup.spark.identity.identity_stage` runs staged records → ids as one call. A night cannot:
tonight's admin decisions sit between its steps, and they stay local (docs/scale.md):

1. `normalize_night` — re-deliveries and normalization on Spark (`identity_stage`'s first
   step); the rows then come to the driver, where `dedup.admin.tonight.apply_decisions`
   (revocations, erasure suppression, the deletion split, tomorrow's phone lookup) and the
   staging scrub run as on the local engine.
2. `auto_merge_night` — auto-merge on Spark (its second step) over the decided interactions,
   with tonight's held keys and CRM evidence (both built locally, small).
3. `resolve_ids_on_spark` — the decision log's constraints (separations, joins, restores)
   bend the clusters locally (`dedup.identity.constraints`), which also says which ids they
   force; the ids are assigned on Spark (its third step), forced pairs first; the merge
   history and the decisions' outcomes are recorded locally.

Each step's result is returned as the local engine's Polars frames, in its schema and row
order, so the assets write the same work files and everything downstream is unchanged. The
driver therefore still holds per-interaction rows (the decided interactions, the clusters):
what issue 27 has left to move is listed in docs/scale.md.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from dedup.config import EngineConfig
from dedup.identity.automerge import AMBIGUOUS_SCHEMA, KEY_COLUMNS, AutoMergeResult
from dedup.identity.day_cache import NightPlan
from dedup.identity.interactions import ResolvedInteractions, prepare_interactions
from dedup.identity.resolution import PreviousIds, Resolution, resolve_ids
from dedup.identity.stable_ids import (
    AUTO_MERGE_SCHEMA,
    REDIRECT_SCHEMA,
    IdAssignment,
    PreviousState,
)
from dedup.ingest.days import empty_accepted
from dedup.schema import CANONICAL_FIELDS
from dedup.spark.identity import (
    merged_keys,
    on_spark,
    previous_from_local,
    saved,
    staged_files,
)
from dedup.spark.normalize import normalized_interactions
from dedup.spark.session import spark_session
from dedup.spark.stable_ids import assign_ids as spark_assign_ids

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

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


def normalized_on_spark(
    staging_root: Path, work_dir: Path, config: EngineConfig
) -> tuple[ResolvedInteractions, NightPlan]:
    """Every staged interaction record, re-deliveries resolved and normalized on Spark: what
    `dedup.identity.day_cache.normalized_history` returns (ready for `apply_decisions`). Every
    staged day is normalized: the day cache is the local engine's."""
    empty = prepare_interactions(empty_accepted(), config)
    files = staged_files(staging_root)
    if not files:
        return empty, NightPlan(full=SPARK_PLAN)
    spark, work = night_session(work_dir, first_step=True), spark_work(work_dir)
    staged = spark.read.parquet(*files)
    deliveries, updates, repeats = _delivery_counts(staged)
    saved(normalized_interactions(staged, config), work, "interactions")
    frame = _to_polars(f"{work}/interactions", empty.interactions.schema, "interaction_id")
    return ResolvedInteractions(frame, deliveries, updates, repeats), NightPlan(full=SPARK_PLAN)


def auto_merge_on_spark(
    work_dir: Path,
    interactions_file: Path,
    config: EngineConfig,
    evidence: pl.DataFrame,
    held: pl.DataFrame,
) -> AutoMergeResult:
    """`dedup.identity.automerge.auto_merge` of tonight's interactions (the work file the
    `interactions` step wrote) on Spark."""
    spark, work = night_session(work_dir), spark_work(work_dir)
    keys = spark.read.parquet(str(interactions_file)).select(
        "interaction_id", *KEY_COLUMNS.values()
    )
    merged_keys(keys, config, work, evidence, held)
    clusters = {"interaction_id": pl.String, "cluster": pl.String}
    return AutoMergeResult(
        clusters=_to_polars(f"{work}/clusters", clusters, "interaction_id"),
        ambiguous_keys=_to_polars(
            f"{work}/ambiguous_keys", AMBIGUOUS_SCHEMA, "key_type", "key_value"
        ),
    )


def _ids_on_spark(
    spark: SparkSession,
    work: str,
    clusters: pl.DataFrame,
    previous: PreviousState,
    decided_at: datetime,
    forced_ids: pl.DataFrame,
    held: pl.Series,
) -> IdAssignment:
    """`assign_ids` on Spark (its arguments after `spark` and `work`), forced pairs first; the
    per-contact results back as Polars."""
    ids = spark_assign_ids(
        on_spark(spark, clusters, "interaction_id string, cluster string"),
        previous_from_local(spark, previous),
        decided_at,
        forced=on_spark(spark, forced_ids, "cluster string, contact_id string"),
        held=on_spark(spark, held.to_frame("contact_id"), "contact_id string"),
    )
    for name, table in (
        ("contact_of_cluster", ids.contact_of_cluster),
        ("redirects", ids.redirects),
        ("merges", ids.auto_merges),
    ):
        saved(table, work, name)
    return IdAssignment(
        contact_of_cluster=_to_polars(
            f"{work}/contact_of_cluster", {"cluster": pl.String, "contact_id": pl.String}, "cluster"
        ),
        redirects=_to_polars(f"{work}/redirects", REDIRECT_SCHEMA, "from_contact_id"),
        auto_merges=_to_polars(f"{work}/merges", AUTO_MERGE_SCHEMA, "survivor_id"),
    )


def resolve_ids_on_spark(
    work_dir: Path,
    clusters: pl.DataFrame,
    ambiguous: pl.DataFrame,
    load_keys: Callable[[], pl.DataFrame],
    decisions: pl.DataFrame,
    previous: PreviousIds,
    held: pl.Series,
    decided_at: datetime,
) -> Resolution:
    """`dedup.identity.resolution.resolve_ids` with the ids assigned on Spark (the constraints
    and the merge history stay local: module docstring)."""
    spark, work = night_session(work_dir), spark_work(work_dir)
    assign = functools.partial(_ids_on_spark, spark, work)
    return resolve_ids(
        clusters, ambiguous, load_keys, decisions, previous, held, decided_at, assign=assign
    )
