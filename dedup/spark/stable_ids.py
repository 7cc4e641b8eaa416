"""Stable contact ids on Spark: `dedup.identity.stable_ids.assign_ids`'s rules as Spark SQL.

- Mutual pairing in rounds: a cluster prefers the oldest previous contact it shares
  interactions with (then the smaller id), a contact prefers the cluster holding most of its
  interactions (then the smaller cluster); mutual picks pair; repeat on what is left.
- An unpaired cluster gets `new_contact_id(cluster)`: `contact_` + 16 hex digits of SHA-256 of
  its smallest interaction id, computed by Spark's `sha2`. Where that id was ever used (or two
  new clusters hash alike) the few clusters concerned are retried on the driver with
  `dedup.identity.stable_ids.new_contact_id`, in cluster order, as the local engine does.
  (One difference, at odds of about 2^-64: a retried id equal to a later cluster's first
  hash goes to the later cluster here, to the earlier one locally.)
- An unpaired previous contact redirects to the cluster holding most of its interactions;
  chains are flattened; tonight's merges get `merge_` + 16 hex digits of SHA-256 of
  `survivor|merged,ids|decided_at`.

Admins' forced pairs (`forced`, from the decision log's constraints: a chosen survivor, the
sides of an unmerge, a restore) are paired first, and the rules apply to the rest, as locally.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from dedup.identity.stable_ids import ID_PREFIX, new_contact_id

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

# A retried id that collides again is retried again; past this many the run stops (never seen:
# each retry is a fresh 64-bit hash).
MAX_ATTEMPTS = 16


@dataclass(frozen=True)
class SparkPrevious:
    """The last published snapshot's ids, as Spark frames (`PreviousState`'s columns)."""

    assignment: DataFrame  # interaction_id, contact_id
    contacts: DataFrame  # contact_id, first_seen
    redirects: DataFrame  # from_contact_id, to_contact_id


@dataclass
class SparkIds:
    contact_of_cluster: DataFrame  # cluster, contact_id
    redirects: DataFrame  # from_contact_id, to_contact_id
    auto_merges: DataFrame  # merge_id, survivor_id, merged_ids


def _f():
    from pyspark.sql import functions as F

    return F


def _hash16(text: Column) -> Column:
    F = _f()
    return F.substring(F.sha2(text, 256), 1, 16)


def _best(frame: DataFrame, by: str, *order: Column) -> DataFrame:
    """The first row of each `by` group in `order`."""
    from pyspark.sql import Window

    F = _f()
    window = Window.partitionBy(by).orderBy(*order)
    return frame.withColumn("_rank", F.row_number().over(window)).filter("_rank = 1").drop("_rank")


def _pair_mutually(cand: DataFrame) -> DataFrame:
    """One-to-one (cluster, contact_id) pairs by mutual preference, round after round."""
    F = _f()
    pairs = []
    cand = cand.localCheckpoint()
    while not cand.isEmpty():
        cluster_pick = _best(
            cand, "cluster", F.col("first_seen").asc_nulls_last(), F.col("contact_id")
        )
        contact_pick = _best(cand, "contact_id", F.col("n_shared").desc(), F.col("cluster"))
        mutual = (
            cluster_pick.join(contact_pick, ["cluster", "contact_id"])
            .select("cluster", "contact_id")
            .localCheckpoint()
        )
        if mutual.isEmpty():  # cannot happen: the oldest contact's pick always pairs
            raise RuntimeError("stable id pairing made no progress")
        pairs.append(mutual)
        cand = (
            cand.join(mutual.select("cluster"), "cluster", "left_anti")
            .join(mutual.select("contact_id"), "contact_id", "left_anti")
            .localCheckpoint()
        )
    spark = cand.sparkSession
    out = spark.createDataFrame([], "cluster string, contact_id string")
    for part in pairs:
        out = out.unionByName(part)
    return out


def _used_ids(previous: SparkPrevious, held: DataFrame) -> DataFrame:
    """Every id ever handed out (a new one must differ from all of them)."""
    F = _f()
    return (
        previous.contacts.select("contact_id")
        .unionByName(previous.redirects.select(F.col("from_contact_id").alias("contact_id")))
        .unionByName(previous.assignment.select("contact_id"))
        .unionByName(held.select("contact_id"))
        .distinct()
    )


def _retry(clashes: list[str], taken: set[str]) -> list[tuple[str, str]]:
    """(cluster, id) for clusters whose first id was taken, in cluster order (local rule)."""
    out = []
    for cluster in clashes:
        for attempt in range(MAX_ATTEMPTS):
            cid = new_contact_id(cluster, attempt)
            if cid not in taken:
                break
        else:
            raise RuntimeError(f"no free contact id for cluster {cluster!r}")
        taken.add(cid)
        out.append((cluster, cid))
    return out


def _fresh_ids(unpaired: DataFrame, used: DataFrame) -> DataFrame:
    """cluster → a new id; only clusters whose hash clashes come to the driver."""
    from pyspark.sql import Window

    F = _f()
    first = unpaired.select(
        "cluster", F.concat(F.lit(ID_PREFIX), _hash16(F.col("cluster"))).alias("contact_id")
    )
    nth = F.row_number().over(Window.partitionBy("contact_id").orderBy("cluster"))
    marked = (
        first.withColumn("_nth", nth)
        .join(used.select("contact_id", F.lit(True).alias("_used")), "contact_id", "left")
        .localCheckpoint()
    )
    ok = (F.col("_nth") == 1) & F.col("_used").isNull()
    kept = marked.filter(ok).select("cluster", "contact_id")
    clashes = sorted(r.cluster for r in marked.filter(~ok).select("cluster").collect())
    if not clashes:
        return kept
    spark = unpaired.sparkSession
    candidates = spark.createDataFrame(
        [(new_contact_id(c, a),) for c in clashes for a in range(MAX_ATTEMPTS)], "contact_id string"
    )
    taken = {
        r.contact_id
        for r in candidates.join(
            used.select("contact_id").unionByName(kept.select("contact_id")), "contact_id", "semi"
        ).collect()
    }
    fixed = spark.createDataFrame(_retry(clashes, taken), "cluster string, contact_id string")
    return kept.unionByName(fixed)


def _flatten(redirects: DataFrame, live: DataFrame) -> DataFrame:
    """Follow redirect chains until each ends at a live id; drop those that end nowhere."""
    F = _f()
    hop = redirects.select(
        F.col("from_contact_id").alias("to_contact_id"), F.col("to_contact_id").alias("_next")
    )
    current = redirects.localCheckpoint()
    for _ in range(64):
        step = current.join(hop, "to_contact_id", "left")
        if step.filter(F.col("_next").isNotNull()).isEmpty():
            break
        current = step.select(
            "from_contact_id", F.coalesce("_next", "to_contact_id").alias("to_contact_id")
        ).localCheckpoint()
    live_to = live.select(F.col("contact_id").alias("to_contact_id"))
    live_from = live.select(F.col("contact_id").alias("from_contact_id"))
    return (
        current.join(live_to, "to_contact_id", "semi")
        .join(live_from, "from_contact_id", "anti")
        .groupBy("from_contact_id")
        .agg(F.min("to_contact_id").alias("to_contact_id"))
    )


def _merges(losers: DataFrame, decided_at: datetime) -> DataFrame:
    F = _f()
    grouped = losers.groupBy(F.col("to_contact_id").alias("survivor_id")).agg(
        F.array_sort(F.collect_list("from_contact_id")).alias("merged_ids")
    )
    text = F.concat_ws(
        "|", F.col("survivor_id"), F.array_join("merged_ids", ","), F.lit(decided_at.isoformat())
    )
    return grouped.select(
        F.concat(F.lit("merge_"), _hash16(text)).alias("merge_id"), "survivor_id", "merged_ids"
    )


def assign_ids(
    clusters: DataFrame,
    previous: SparkPrevious,
    decided_at: datetime,
    forced: DataFrame | None = None,
    held: DataFrame | None = None,
) -> SparkIds:
    """`dedup.identity.stable_ids.assign_ids` on Spark.

    Args:
        clusters: interaction_id, cluster.
        previous: the last published snapshot's ids.
        decided_at: stamped into merge ids.
        forced: cluster, contact_id pairs fixed by admins' decisions; None = none.
        held: `contact_id` of deleted contacts that may still be restored; None = none.
    """
    F = _f()
    spark = clusters.sparkSession
    if held is None:
        held = spark.createDataFrame([], "contact_id string")
    held = held.select("contact_id")
    overlap = (
        clusters.join(previous.assignment, "interaction_id")
        .groupBy("cluster", "contact_id")
        .agg(F.count(F.lit(1)).alias("n_shared"))
        .join(previous.contacts.select("contact_id", "first_seen"), "contact_id", "left")
        .localCheckpoint()
    )
    if forced is None:
        paired = _pair_mutually(overlap)
    else:
        forced = forced.select("cluster", "contact_id").localCheckpoint()
        rest = overlap.join(forced.select("cluster"), "cluster", "left_anti").join(
            forced.select("contact_id"), "contact_id", "left_anti"
        )
        paired = forced.unionByName(_pair_mutually(rest))
    unpaired = clusters.select("cluster").distinct().join(paired, "cluster", "left_anti")
    fresh = _fresh_ids(unpaired, _used_ids(previous, held))
    contact_of_cluster = paired.unionByName(fresh).localCheckpoint()
    lost = overlap.join(paired.select("contact_id"), "contact_id", "left_anti")
    losers = (
        _best(lost, "contact_id", F.col("n_shared").desc(), F.col("cluster"))
        .join(contact_of_cluster.withColumnRenamed("contact_id", "to_contact_id"), "cluster")
        .select(F.col("contact_id").alias("from_contact_id"), "to_contact_id")
        .localCheckpoint()
    )
    live = contact_of_cluster.select("contact_id").unionByName(held)
    redirects = previous.redirects.select("from_contact_id", "to_contact_id").unionByName(losers)
    return SparkIds(
        contact_of_cluster=contact_of_cluster,
        redirects=_flatten(redirects, live),
        auto_merges=_merges(losers, decided_at),
    )
