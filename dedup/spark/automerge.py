"""Auto-merge on Spark: `dedup.identity.automerge`'s rules as Spark SQL aggregations.

The same steps as the local engine, on the cluster:
- interactions (and CRM evidence rows) collapse to distinct identity signatures (the four
  keys); a node is named by its smallest row, so no numbering pass is needed, and a
  component's cluster is its smallest interaction id;
- emails and sessions past their caps (`dedup.identity.automerge.value_hub_checks`, the local
  engine's table) are ambiguous, and so are held keys;
- phase 1: star edges over email, verified user id and session; phase 2: star edges over phones
  between phase-1 components, except phones touching more than `phone_max_identities` phase-1
  components that carry an email or a verified user id;
- connected components by Splink's clustering (`cluster_pairwise_predictions_at_threshold`) on
  its `SparkAPI`: iterative min-label propagation in SQL, every round on the cluster.
- CRM evidence rows link like interactions under the same caps and belong to no contact; a
  phone carried by CRM records of more than `phone_max_identities` people (records apart by
  email and by name, grouped by the same clustering) is ambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from typing import TYPE_CHECKING

from dedup.config import HubLimits
from dedup.identity.automerge import HELD_REASON, KEY_COLUMNS, value_hub_checks

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

KEYS = list(KEY_COLUMNS.values())
AMBIGUOUS_COLUMNS = ("key_type", "key_value", "reason", "n_linked", "n_interactions")


@dataclass
class SparkAutoMerge:
    clusters: DataFrame  # interaction_id, cluster (smallest interaction_id of its component)
    ambiguous_keys: DataFrame  # key_type, key_value, reason, n_linked, n_interactions


def _f():
    from pyspark.sql import functions as F

    return F


def _union(frames: list[DataFrame]) -> DataFrame:
    return reduce(lambda a, b: a.unionByName(b), frames)


def _with_evidence(keys: DataFrame, evidence: DataFrame | None) -> DataFrame:
    """Interactions' keys with evidence rows appended. `_row` names every row uniquely (an
    evidence record with two phones is two rows): interactions `0<id>`, evidence `1<id>` NUL `<phone>`."""
    F = _f()
    rows = keys.select(
        F.concat(F.lit("0"), "interaction_id").alias("_row"),
        "interaction_id",
        *KEYS,
        F.lit(False).alias("_evidence"),
    )
    if evidence is None:
        return rows
    return rows.unionByName(
        evidence.select(
            F.concat(F.lit("1"), "evidence_id", F.lit("\0"), "phone_e164").alias("_row"),
            F.lit(None).cast("string").alias("interaction_id"),
            "email_norm",
            F.lit(None).cast("string").alias("verified_user_id"),
            F.lit(None).cast("string").alias("session_id"),
            "phone_e164",
            F.lit(True).alias("_evidence"),
        )
    )


def _nodes(rows: DataFrame) -> DataFrame:
    """Distinct identity signatures: `n` interactions (evidence rows not counted), `node` the
    smallest row name, `first` the smallest interaction id (null: evidence only)."""
    F = _f()
    has_key = reduce(lambda a, b: a | b, [F.col(k).isNotNull() for k in KEYS])
    return (
        rows.filter(has_key)
        .groupBy(*KEYS)
        .agg(
            F.sum(F.when(F.col("_evidence"), 0).otherwise(1)).alias("n"),
            F.min("_row").alias("node"),
            F.min("interaction_id").alias("first"),
        )
    )


def _hub_rows(
    counts: DataFrame, key_type: str, key_col: str, n_col: str, reason: Column
) -> DataFrame:
    F = _f()
    return counts.select(
        F.lit(key_type).alias("key_type"),
        F.col(key_col).alias("key_value"),
        reason.alias("reason"),
        F.col(n_col).cast("long").alias("n_linked"),
        F.col("n_interactions").cast("long").alias("n_interactions"),
    )


def _value_level_hubs(nodes: DataFrame, limits: HubLimits) -> DataFrame:
    """Emails and sessions past a co-occurrence cap; one row per key (its first reason)."""
    from pyspark.sql import Window

    F = _f()
    found = []
    for key_type, key_col, other_col, limit, label in value_hub_checks(limits):
        counts = (
            nodes.filter(F.col(key_col).isNotNull())
            .groupBy(key_col)
            .agg(
                F.countDistinct(other_col).alias("n_other"),
                F.sum("n").alias("n_interactions"),
            )
            .filter(F.col("n_other") > limit)
        )
        reason = F.concat(
            F.lit("seen with "),
            F.col("n_other").cast("string"),
            F.lit(f" distinct {label} (limit {limit})"),
        )
        found.append(_hub_rows(counts, key_type, key_col, "n_other", reason))
    first = Window.partitionBy("key_type", "key_value").orderBy("reason")
    return (
        _union(found)
        .withColumn("_first", F.row_number().over(first))
        .filter(F.col("_first") == 1)
        .drop("_first")
    )


def _star_edges(nodes: DataFrame, key_col: str, excluded: DataFrame, label: str) -> DataFrame:
    """Each `label` to the smallest `label` sharing its key (n-1 edges per key value)."""
    from pyspark.sql import Window

    F = _f()
    rows = (
        nodes.filter(F.col(key_col).isNotNull())
        .join(F.broadcast(excluded), nodes[key_col] == excluded["key_value"], "left_anti")
        .select(key_col, label)
        .distinct()
    )
    return (
        rows.withColumn("_to", F.min(label).over(Window.partitionBy(key_col)))
        .filter(F.col(label) != F.col("_to"))
        .select(F.col(label).alias("a"), F.col("_to").alias("b"))
    )


def components(node_ids: DataFrame, edges: DataFrame, db_api) -> DataFrame:
    """node → comp (the smallest node id of its connected component), by Splink's clustering.

    `node_ids` has one column `node`; `edges` has `a`, `b`. Every node gets a row, edge or not.
    """
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    F = _f()
    result = cluster_pairwise_predictions_at_threshold(
        node_ids.select("node").distinct(),
        edges.select("a", "b"),
        db_api=db_api,
        node_id_column_name="node",
        edge_id_column_name_left="a",
        edge_id_column_name_right="b",
    ).as_spark_dataframe()
    # Splink names a cluster by its smallest member; the min is taken again so the rule does not
    # rest on that detail of its implementation (one aggregation over the nodes).
    labelled = result.select("node", F.col("cluster_id").alias("_rep"))
    return labelled.join(labelled.groupBy("_rep").agg(F.min("node").alias("comp")), "_rep").select(
        "node", "comp"
    )


def _excluded(apart: DataFrame, key_type: str) -> DataFrame:
    F = _f()
    return apart.filter(F.col("key_type") == key_type).select("key_value").distinct()


def _phone_counts(nodes: DataFrame) -> DataFrame:
    """Per phone: identified phase-1 components it touches, and interactions carrying it."""
    F = _f()
    identified = nodes.groupBy("comp1").agg(
        F.max(F.col("email_norm").isNotNull() | F.col("verified_user_id").isNotNull()).alias(
            "has_identity"
        )
    )
    return (
        nodes.filter(F.col("phone_e164").isNotNull())
        .join(identified, "comp1")
        .groupBy("phone_e164")
        .agg(
            F.countDistinct(F.when(F.col("has_identity"), F.col("comp1"))).alias("n_identities"),
            F.sum("n").alias("n_interactions"),
        )
    )


def _crm_people(evidence: DataFrame, limits: HubLimits, db_api) -> DataFrame:
    """Phones carried by CRM records of more than `phone_max_identities` people: records with
    one phone are one person when they share an email or a name (the connected groups)."""
    from pyspark.sql import Window

    F = _f()
    rows = evidence.select(
        F.concat_ws("\0", "evidence_id", "phone_e164").alias("node"),
        "phone_e164",
        "email_norm",
        "name_norm",
    ).distinct()
    edges = _union(
        [
            rows.filter(F.col(c).isNotNull())
            .withColumn("_to", F.min("node").over(Window.partitionBy("phone_e164", c)))
            .filter(F.col("node") != F.col("_to"))
            .select(F.col("node").alias("a"), F.col("_to").alias("b"))
            for c in ("email_norm", "name_norm")
        ]
    )
    people = rows.join(components(rows, edges, db_api), "node")
    return (
        people.groupBy("phone_e164")
        .agg(F.countDistinct("comp").alias("n_people"))
        .filter(F.col("n_people") > limits.phone_max_identities)
    )


def _phone_hubs(
    nodes: DataFrame, evidence: DataFrame | None, limits: HubLimits, db_api
) -> DataFrame:
    """Phase 2's ambiguous phones: too many identified people, or (CRM) too many CRM people."""
    F = _f()
    counts = _phone_counts(nodes)
    cap = limits.phone_max_identities
    over = counts.filter(F.col("n_identities") > cap)
    reason = F.concat(
        F.lit("seen with "),
        F.col("n_identities").cast("string"),
        F.lit(f" distinct people (emails or verified user ids; limit {cap})"),
    )
    hubs = _hub_rows(over, "phone", "phone_e164", "n_identities", reason)
    if evidence is None:
        return hubs
    crm = (
        _crm_people(evidence, limits, db_api)
        .join(counts.select("phone_e164", "n_interactions"), "phone_e164", "left")
        .join(over.select("phone_e164"), "phone_e164", "left_anti")
        .fillna(0, ["n_interactions"])
    )
    crm_reason = F.concat(
        F.lit("in "),
        F.col("n_people").cast("string"),
        F.lit(f" CRM records of different people (limit {cap})"),
    )
    return hubs.unionByName(_hub_rows(crm, "phone", "phone_e164", "n_people", crm_reason))


def _held_report(nodes: DataFrame, held: DataFrame, natural: DataFrame) -> DataFrame:
    """Ambiguous-key rows for held keys some interaction carries and no cap caught."""
    F = _f()
    rows = []
    for kind, column in KEY_COLUMNS.items():
        carried = nodes.join(
            F.broadcast(_excluded(held, kind)), nodes[column] == F.col("key_value"), "left_semi"
        )
        counts = carried.groupBy(column).agg(
            F.countDistinct("comp1").alias("n_linked"), F.sum("n").alias("n_interactions")
        )
        rows.append(_hub_rows(counts, kind, column, "n_linked", F.lit(HELD_REASON)))
    return _union(rows).join(natural, ["key_type", "key_value"], "left_anti")


def _clusters(keys: DataFrame, nodes: DataFrame) -> DataFrame:
    """interaction_id → cluster: the smallest interaction id of its node's component; a
    keyless interaction is a contact of its own (evidence belongs to no contact)."""
    F = _f()
    named = nodes.join(nodes.groupBy("comp").agg(F.min("first").alias("cluster")), "comp")
    right = named.select(*(F.col(k).alias(f"_{k}") for k in KEYS), "cluster")
    on = reduce(lambda a, b: a & b, [keys[k].eqNullSafe(right[f"_{k}"]) for k in KEYS])
    joined = keys.join(right, on, "left")
    return joined.select(
        "interaction_id", F.coalesce(F.col("cluster"), F.col("interaction_id")).alias("cluster")
    )


def auto_merge(
    interactions: DataFrame,
    db_api,
    limits: HubLimits = HubLimits(),  # noqa: B008 (frozen)
    evidence: DataFrame | None = None,
    held: DataFrame | None = None,
) -> SparkAutoMerge:
    """`dedup.identity.automerge.auto_merge` on Spark.

    Args:
        interactions: `interaction_id` and the `KEY_COLUMNS` columns.
        db_api: Splink's `SparkAPI` over the session (its clustering finds the components).
        limits: hub caps.
        evidence: `EVIDENCE_SCHEMA` rows (CRM records) that link like interactions but belong
            to no contact; None = none.
        held: key_type, key_value rows that link nobody (an erasure held them); None = none.
    """
    F = _f()
    keys = interactions.select("interaction_id", *KEYS)
    spark = interactions.sparkSession
    nodes = _nodes(_with_evidence(keys, evidence)).localCheckpoint()
    hubs = _value_level_hubs(nodes, limits).localCheckpoint()
    if held is None:
        held = spark.createDataFrame([], "key_type string, key_value string")
    held = held.select("key_type", "key_value")
    apart = hubs.select("key_type", "key_value").unionByName(held)
    phase1 = _union(
        [
            _star_edges(nodes, column, _excluded(apart, kind), "node")
            for kind, column in KEY_COLUMNS.items()
            if kind != "phone"
        ]
    )
    comp1 = components(nodes, phase1, db_api).withColumnRenamed("comp", "comp1")
    nodes = nodes.join(comp1, "node").localCheckpoint()
    phone_hubs = _phone_hubs(nodes, evidence, limits, db_api).localCheckpoint()
    no_phone = phone_hubs.select("key_value").unionByName(_excluded(held, "phone"))
    phase2 = _star_edges(nodes, "phone_e164", no_phone, "comp1")
    comp2 = components(nodes.select(F.col("comp1").alias("node")), phase2, db_api)
    nodes = nodes.join(comp2.withColumnRenamed("node", "comp1"), "comp1").localCheckpoint()
    natural = hubs.unionByName(phone_hubs)
    ambiguous = (
        natural.unionByName(_held_report(nodes, held, natural))
        .filter(F.col("n_interactions") > 0)
        .select(*AMBIGUOUS_COLUMNS)
    )
    return SparkAutoMerge(clusters=_clusters(keys, nodes), ambiguous_keys=ambiguous)
