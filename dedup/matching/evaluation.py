"""Pairwise precision and recall of a clustering against ground truth, without listing pairs.

Pairs are counted as n·(n-1)/2 per group, so a million records cost a few group-bys.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from dedup.identity.automerge import KEY_COLUMNS
from dedup.identity.graph import connected_components


@dataclass(frozen=True)
class PairScores:
    predicted_pairs: int
    true_pairs: int
    correct_pairs: int

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _pairs(frame: pl.DataFrame, by: list[str]) -> int:
    n = frame.group_by(by).len().get_column("len").cast(pl.Int64)
    return int((n * (n - 1) // 2).sum() or 0)


def pairwise_scores(
    predicted: pl.DataFrame, truth: pl.DataFrame, truth_col: str = "person_id"
) -> PairScores:
    """Score `predicted` (record_id → cluster) against `truth` (record_id → person).

    Both frames are keyed by their first column; records missing from either side are ignored.
    """
    key_p, key_t = predicted.columns[0], truth.columns[0]
    joined = predicted.rename({key_p: "_id"}).join(
        truth.rename({key_t: "_id"}), on="_id", how="inner"
    )
    cluster_col = [c for c in predicted.columns if c != key_p][0]
    return PairScores(
        predicted_pairs=_pairs(joined, [cluster_col]),
        true_pairs=_pairs(joined, [truth_col]),
        correct_pairs=_pairs(joined, [cluster_col, truth_col]),
    )


def rule_visible_truth(interactions: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    """Ground truth restricted to what exact keys can see.

    Two records of one person are a rule-visible duplicate when a chain of keys links them that
    no other person shares (a key typed by two people is a hub, not evidence). Returns
    interaction_id → `visible_group`.
    """
    frame = interactions.select("interaction_id", *KEY_COLUMNS.values()).join(
        truth.select("interaction_id", "person_id"), on="interaction_id"
    )
    frame = frame.with_row_index("_node").with_columns(pl.col("_node").cast(pl.Int64))
    edges = []
    for col in KEY_COLUMNS.values():
        owned = (
            frame.filter(pl.col(col).is_not_null())
            .with_columns(pl.col("person_id").n_unique().over(col).alias("_owners"))
            .filter(pl.col("_owners") == 1)
        )
        edges.append(
            owned.with_columns(pl.col("_node").min().over(col).alias("_to")).select(
                pl.col("_node").alias("a"), pl.col("_to").alias("b")
            )
        )
    all_edges = pl.concat(edges)
    labels = connected_components(
        frame.height, all_edges.get_column("a").to_numpy(), all_edges.get_column("b").to_numpy()
    )
    return frame.select("interaction_id", "person_id").with_columns(
        pl.Series("visible_group", labels, dtype=pl.Int64)
    )


def auto_merge_scores(
    clusters: pl.DataFrame, interactions: pl.DataFrame, truth: pl.DataFrame
) -> tuple[PairScores, PairScores]:
    """(precision over all truth, recall over rule-visible truth) of an auto-merge clustering."""
    overall = pairwise_scores(
        clusters.select("interaction_id", "cluster"), truth.select("interaction_id", "person_id")
    )
    visible = rule_visible_truth(interactions, truth)
    seen = pairwise_scores(
        clusters.select("interaction_id", "cluster"),
        visible.select("interaction_id", "visible_group"),
        "visible_group",
    )
    return overall, seen


def contact_persons(assignment: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    """contact_id → person_id, the person most of the contact's interactions belong to, and
    `size`, its interactions (`assignment`: interaction_id → contact_id; `truth`:
    interaction_id → person_id). Judges a pair of contacts as one person or two."""
    return (
        assignment.join(truth.select("interaction_id", "person_id"), on="interaction_id")
        .group_by("contact_id", "person_id")
        .len()
        .sort("len", descending=True)
        .unique("contact_id", keep="first")
        .join(assignment.group_by("contact_id").len("size"), on="contact_id")
        .select("contact_id", "person_id", "size")
    )


def accept_proposals(
    assignment: pl.DataFrame, proposals: pl.DataFrame, threshold: float
) -> pl.DataFrame:
    """The clustering an admin gets by accepting every proposal at or above `threshold`.

    `assignment`: interaction_id → contact_id (after auto-merge); `proposals`: contact_id_l,
    contact_id_r, match_probability. Returns interaction_id → cluster (an integer label).
    """
    ids = assignment.select(pl.col("contact_id").unique().sort()).with_row_index("node")
    accepted = (
        proposals.filter(pl.col("match_probability") >= threshold)
        .join(ids.rename({"contact_id": "contact_id_l", "node": "a"}), on="contact_id_l")
        .join(ids.rename({"contact_id": "contact_id_r", "node": "b"}), on="contact_id_r")
    )
    labels = connected_components(
        ids.height, accepted.get_column("a").to_numpy(), accepted.get_column("b").to_numpy()
    )
    clusters = ids.with_columns(pl.Series("cluster", labels, dtype=pl.Int64))
    return assignment.join(clusters, on="contact_id").select("interaction_id", "cluster")


def recall_by(
    clusters: pl.DataFrame, truth: pl.DataFrame, by: str, truth_col: str = "person_id"
) -> pl.DataFrame:
    """Pairwise recall per value of the truth column `by` (e.g. the planted case of a person):
    true pairs of that group's people, and the share of them `clusters` puts together."""
    joined = clusters.join(truth.select("interaction_id", truth_col, by), on="interaction_id")
    true = (
        joined.group_by(by, truth_col)
        .len()
        .with_columns(pairs=(pl.col("len").cast(pl.Int64) * (pl.col("len") - 1) // 2))
    )
    found = (
        joined.group_by(by, truth_col, "cluster")
        .len()
        .with_columns(pairs=(pl.col("len").cast(pl.Int64) * (pl.col("len") - 1) // 2))
    )
    return (
        true.group_by(by)
        .agg(pl.col("pairs").sum().alias("true_pairs"))
        .join(found.group_by(by).agg(pl.col("pairs").sum().alias("found_pairs")), on=by)
        .with_columns(recall=pl.col("found_pairs") / pl.col("true_pairs"))
        .sort("true_pairs", descending=True)
    )
