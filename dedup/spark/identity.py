"""The identity stage on Spark: staged records → normalized interactions → auto-merge clusters
→ stable contact ids, every step on the cluster, every table written as Parquet.

The driver lists files and runs the loops' control flow (Splink's clustering rounds, the id
pairing rounds); no per-interaction row comes to it, except the clusters whose new id clashes
with an id already used (a handful a night, dedup.spark.stable_ids).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from dedup.config import EngineConfig
from dedup.ingest.days import INTERACTION_SOURCES, staged_accepted_files
from dedup.spark.automerge import auto_merge
from dedup.spark.normalize import normalized_interactions
from dedup.spark.stable_ids import SparkIds, SparkPrevious, assign_ids

if TYPE_CHECKING:
    import polars as pl
    from pyspark.sql import DataFrame, SparkSession

    from dedup.identity.stable_ids import PreviousState

# The stage's outputs, one Parquet folder each under the work folder.
TABLES = (
    "interactions",
    "clusters",
    "ambiguous_keys",
    "contact_of_cluster",
    "assignment",
    "redirects",
    "merges",
)


@dataclass
class SparkIdentity:
    """The stage's tables, each read back from its Parquet folder."""

    interactions: DataFrame
    clusters: DataFrame  # interaction_id, cluster
    ambiguous_keys: DataFrame
    ids: SparkIds
    assignment: DataFrame  # interaction_id, contact_id


def staged_files(staging_root: Path) -> list[str]:
    """The committed `accepted.parquet` of every interaction source's staged day (what the
    local engine's `read_staged(staging_root, "accepted")` reads)."""
    return staged_accepted_files(staging_root, INTERACTION_SOURCES)


def empty_previous(spark: SparkSession) -> SparkPrevious:
    return SparkPrevious(
        assignment=spark.createDataFrame([], "interaction_id string, contact_id string"),
        contacts=spark.createDataFrame([], "contact_id string, first_seen timestamp"),
        redirects=spark.createDataFrame([], "from_contact_id string, to_contact_id string"),
    )


def previous_from_local(spark: SparkSession, state: PreviousState) -> SparkPrevious:
    """A local `PreviousState` on Spark (through the driver: for tests and small workspaces;
    a cluster reads last night's `assignment` Parquet instead)."""
    empty = empty_previous(spark)
    return SparkPrevious(
        *(
            spark.createDataFrame(frame.to_arrow(), nothing.schema) if frame.height else nothing
            for frame, nothing in (
                (state.assignment, empty.assignment),
                (state.contacts, empty.contacts),
                (state.redirects, empty.redirects),
            )
        )
    )


EVIDENCE_DDL = "evidence_id string, email_norm string, phone_e164 string, name_norm string"


def on_spark(spark: SparkSession, frame, ddl: str) -> DataFrame | None:
    """A Spark frame of `frame` (a Polars frame goes through Arrow); None stays None."""
    if frame is None or hasattr(frame, "sparkSession"):
        return frame
    if frame.height == 0:
        return spark.createDataFrame([], ddl)
    return spark.createDataFrame(frame.to_arrow(), ddl)


def saved(frame: DataFrame, work: str, name: str) -> DataFrame:
    path = f"{work.rstrip('/')}/{name}"
    frame.write.mode("overwrite").parquet(path)
    return frame.sparkSession.read.parquet(path)


def merged_keys(
    keys: DataFrame,
    config: EngineConfig,
    work: str,
    evidence: DataFrame | pl.DataFrame | None,
    held_keys: DataFrame | pl.DataFrame | None,
) -> tuple[DataFrame, DataFrame]:
    """Auto-merge of `keys` (interaction_id and the key columns) on Spark, its clusters and
    ambiguous keys saved in `work` and read back."""
    from splink import SparkAPI

    spark = keys.sparkSession
    merged = auto_merge(
        keys,
        SparkAPI(spark_session=spark),
        config.hub_limits,
        evidence=on_spark(spark, evidence, EVIDENCE_DDL),
        held=on_spark(spark, held_keys, "key_type string, key_value string"),
    )
    return saved(merged.clusters, work, "clusters"), saved(
        merged.ambiguous_keys, work, "ambiguous_keys"
    )


def identity_stage(
    staged: DataFrame,
    config: EngineConfig,
    work: str,
    decided_at: datetime,
    previous: SparkPrevious | None = None,
    held_keys: DataFrame | pl.DataFrame | None = None,
    evidence: DataFrame | pl.DataFrame | None = None,
) -> SparkIdentity:
    """Run the identity stage on `staged` (the staged records' columns) into `work` (a folder
    every executor can write: local, HDFS, S3).

    `held_keys` (key_type, key_value) and `evidence` (`EVIDENCE_SCHEMA`: CRM records) may be
    Polars frames (small: read by the driver) or Spark frames.
    """
    spark = staged.sparkSession
    interactions = saved(normalized_interactions(staged, config), work, "interactions")
    clusters, ambiguous = merged_keys(interactions, config, work, evidence, held_keys)
    ids = assign_ids(clusters, previous or empty_previous(spark), decided_at)
    ids = SparkIds(
        contact_of_cluster=saved(ids.contact_of_cluster, work, "contact_of_cluster"),
        redirects=saved(ids.redirects, work, "redirects"),
        auto_merges=saved(ids.auto_merges, work, "merges"),
    )
    assignment = clusters.join(ids.contact_of_cluster, "cluster").select(
        "interaction_id", "contact_id"
    )
    return SparkIdentity(
        interactions=interactions,
        clusters=clusters,
        ambiguous_keys=ambiguous,
        ids=ids,
        assignment=saved(assignment, work, "assignment"),
    )
