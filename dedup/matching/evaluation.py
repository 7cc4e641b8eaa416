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


# What the two contacts of one person show each other, as issue 24 names the kinds of
# duplicate a matcher must find: a name (the same full name, or a nickname of the first name
# with the same surname) plus one more agreeing field, or an identifier one edit away. DuckDB
# SQL over a pair's two records (`_a`, `_b`); a pair may carry several kinds.
_NAME = (
    "(full_name_a = full_name_b OR (surname_a = surname_b AND ("
    "first_name_canonical_a = first_name_canonical_b "
    "OR list_contains(first_name_forms_a, first_name_b) "
    "OR list_contains(first_name_forms_b, first_name_a))))"
)
EVIDENCE_KINDS = {
    "name + company or work domain": f"{_NAME} AND substr(employer_a, 3) = substr(employer_b, 3)",
    "name + phone": f"{_NAME} AND (phone_a = phone_b OR len(list_intersect(phones_a, phones_b)) > 0)",
    "name + 2 attributes": f"{_NAME} AND len(list_intersect(attr_values_a, attr_values_b)) >= 2",
    "phone one edit away": "phone_a <> phone_b AND damerau_levenshtein(phone_a, phone_b) = 1",
    "email one edit away": (
        "email_a <> email_b AND (damerau_levenshtein(email_a, email_b) = 1 OR "
        "(email_local_a = email_local_b AND levenshtein(email_domain_a, email_domain_b) <= 2))"
    ),
}
_EVIDENCE_COLUMNS = (
    "full_name", "first_name", "surname", "first_name_canonical", "first_name_forms", "phone",
    "phones", "email", "email_local", "email_domain", "employer", "attr_values",
)  # fmt: skip


def evidence_pairs(
    assignment: pl.DataFrame, records: pl.DataFrame, truth: pl.DataFrame
) -> pl.DataFrame:
    """Every pair of contacts of one person (auto-merge kept them apart), weighted by the pairs
    of interactions it stands for, with a boolean per `EVIDENCE_KINDS` from the two records."""
    import duckdb  # only the benchmarks ask for this; the nightly job never does

    per_contact = (
        assignment.join(truth.select("interaction_id", "person_id"), on="interaction_id")
        .group_by("person_id", "contact_id")
        .len()
    )
    pairs = (
        per_contact.join(per_contact, on="person_id", suffix="_b")
        .filter(pl.col("contact_id") < pl.col("contact_id_b"))
        .select(
            pl.col("contact_id").alias("contact_a"),
            pl.col("contact_id_b").alias("contact_b"),
            (pl.col("len").cast(pl.Int64) * pl.col("len_b")).alias("weight"),
        )
    )
    columns = [c for c in _EVIDENCE_COLUMNS if c in records.columns]
    side = records.select("unique_id", *columns)
    for s in ("a", "b"):
        pairs = pairs.join(
            side.rename({c: f"{c}_{s}" for c in side.columns}),
            left_on=f"contact_{s}",
            right_on=f"unique_id_{s}",
            how="left",
        )
    kinds = ", ".join(f'coalesce({sql}, false) AS "{kind}"' for kind, sql in EVIDENCE_KINDS.items())
    con = duckdb.connect()
    try:
        con.register("pairs", pairs.to_arrow())
        return con.sql(f"SELECT contact_a, contact_b, weight, {kinds} FROM pairs").pl()
    finally:
        con.close()


def recall_by_evidence(
    pairs: pl.DataFrame, assignment: pl.DataFrame, clusters: pl.DataFrame
) -> dict[str, tuple[int, float]]:
    """Per evidence kind of `evidence_pairs` (and any of them): the interaction pairs carrying
    it, and the share of them `clusters` (interaction_id → cluster, e.g. `accept_proposals`)
    puts together. `assignment`: interaction_id → contact_id."""
    # Every interaction of a contact is in its contact's cluster.
    of_contact = assignment.join(clusters, on="interaction_id").unique("contact_id")
    for side in ("a", "b"):
        pairs = pairs.join(
            of_contact.select(
                pl.col("contact_id").alias(f"contact_{side}"), pl.col("cluster").alias(side)
            ),
            on=f"contact_{side}",
        )
    pairs = pairs.with_columns(pl.any_horizontal(*EVIDENCE_KINDS).alias("any of these"))
    out = {}
    for kind in [*EVIDENCE_KINDS, "any of these"]:
        rows = pairs.filter(pl.col(kind))
        total = int(rows.get_column("weight").sum() or 0)
        found = int(rows.filter(pl.col("a") == pl.col("b")).get_column("weight").sum() or 0)
        out[kind] = (total, found / total if total else 1.0)
    return out
