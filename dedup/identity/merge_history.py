"""The `merges` table and what each side of a merge held, carried from run to run.

Every merge (auto, accepted proposal, manual) gets a `merges` row and, while it can be undone,
`merge_sides` rows: the interactions each contact held the moment before the merge. An unmerge
puts those interactions back on their sides (`dedup.identity.constraints`), which restores each contact
as it was: its tags, audience, attributes and name are derived from its interactions, and notes
stay attached to its id. `merge_side_profiles` keeps how each side looked, for people to read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from dedup.decisions import ACCEPT_PROPOSAL
from dedup.identity.constraints import (
    MERGE_SIDES_SCHEMA,
    ConstrainedClusters,
    Constraints,
    decision_merge_id,
    unmerge_row_id,
)
from dedup.identity.stable_ids import IdAssignment, PreviousState

UNMERGE_WINDOW = timedelta(days=30)

MERGES_SCHEMA: dict[str, pl.DataType] = {
    "merge_id": pl.String(),
    "kind": pl.String(),
    "survivor_id": pl.String(),
    "merged_ids": pl.List(pl.String()),
    "decided_by": pl.String(),
    "decided_at": pl.Datetime("us", "UTC"),
    "reversible_until": pl.Datetime("us", "UTC"),
    "undone_at": pl.Datetime("us", "UTC"),
    "reason": pl.String(),
}

SIDE_PROFILE_SCHEMA: dict[str, pl.DataType] = {
    "merge_id": pl.String(),
    "contact_id": pl.String(),
    "name": pl.String(),
    "email": pl.String(),
    "phone": pl.String(),
    "company": pl.String(),
    "audience": pl.String(),
    "tags": pl.List(pl.String()),
    "channels": pl.List(pl.String()),
    "attributes": pl.String(),
    "conversation_count": pl.Int64(),
}
SIDE_PROFILE_COLUMNS = tuple(SIDE_PROFILE_SCHEMA)[1:]


@dataclass
class MergeHistory:
    merges: pl.DataFrame  # MERGES_SCHEMA, every merge and unmerge ever done
    sides: pl.DataFrame  # MERGE_SIDES_SCHEMA, for merges still reversible
    new_merge_ids: list[str]  # merges done tonight (their sides and profiles are new)


def _rows(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(list(MERGES_SCHEMA)).cast(MERGES_SCHEMA)  # type: ignore[arg-type]


def _decided_merges(ids: IdAssignment, constraints: Constraints, refused: set[str]) -> list[dict]:
    """`merges` rows of the admins' merges first applied tonight (those that took effect)."""
    redirected_to = dict(
        ids.redirects.filter(
            pl.col("from_contact_id").is_in(
                ids.auto_merges.get_column("merged_ids").explode().implode()
            )
        ).iter_rows()
    )
    decided: list[dict] = []
    for row in constraints.join_meta.filter(pl.col("first_time")).iter_rows(named=True):
        if row["decision_id"] in refused:
            continue
        survivor = row["survivor_id"]
        merged = sorted(
            c for c in row["sides"] if c != survivor and redirected_to.get(c) == survivor
        )
        if not merged:
            continue
        accepted = row["kind"] == ACCEPT_PROPOSAL
        decided.append(
            {
                "merge_id": decision_merge_id(row["decision_id"]),
                "kind": "proposal" if accepted else "manual",
                "survivor_id": survivor,
                "merged_ids": merged,
                "decided_by": row["decided_by"],
                "decided_at": row["decided_at"],
                "reversible_until": row["decided_at"] + UNMERGE_WINDOW,
                "undone_at": None,
                "reason": row["note"] or ("accepted proposal" if accepted else "manual merge"),
            }
        )
    return decided


def _auto_merges(ids: IdAssignment, by_decision: set[str], now: datetime) -> pl.DataFrame:
    """`merges` rows for ids tonight's keys merged away (those no admin decision explains)."""
    return (
        ids.auto_merges.with_columns(
            pl.col("merged_ids").list.filter(~pl.element().is_in(list(by_decision)))
        )
        .filter(pl.col("merged_ids").list.len() > 0)
        .with_columns(
            pl.lit("auto").alias("kind"),
            pl.lit("auto-merge").alias("decided_by"),
            pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("decided_at"),
            pl.lit(now + UNMERGE_WINDOW).cast(pl.Datetime("us", "UTC")).alias("reversible_until"),
            pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("undone_at"),
            pl.lit("shared identifiers").alias("reason"),
        )
    )


def _with_unmerges(
    previous_merges: pl.DataFrame, constraints: Constraints
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Last night's merges with tonight's unmerges marked `undone_at`, and the unmerge rows."""
    undone = constraints.unmerges.join(
        previous_merges.select("merge_id", "survivor_id", "merged_ids"), on="merge_id"
    )
    unmerge_rows = undone.select(
        pl.Series(
            "merge_id", [unmerge_row_id(d) for d in undone.get_column("decision_id")], pl.String
        ),
        pl.lit("unmerge").alias("kind"),
        "survivor_id",
        "merged_ids",
        "decided_by",
        "decided_at",
        pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("reversible_until"),
        pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("undone_at"),
        pl.coalesce("note", pl.format("undoes {}", pl.col("merge_id"))).alias("reason"),
    )
    undone_at = undone.select("merge_id", pl.col("decided_at").alias("_undone"))
    carried = (
        _rows(previous_merges)
        .join(undone_at, on="merge_id", how="left")
        .with_columns(pl.coalesce("undone_at", "_undone").alias("undone_at"))
        .drop("_undone")
    )
    return carried, _rows(unmerge_rows)


def _sides(
    merges: pl.DataFrame,
    new: pl.DataFrame,
    previous_sides: pl.DataFrame,
    previous: PreviousState,
    now: datetime,
) -> pl.DataFrame:
    """`merge_sides` of every merge still reversible; tonight's from what each held last night."""
    new_members = (
        new.select("merge_id", "survivor_id", "merged_ids")
        .with_columns(
            pl.concat_list(pl.col("survivor_id"), pl.col("merged_ids")).alias("contact_id")
        )
        .explode("contact_id")
        .select("merge_id", "contact_id")
    )
    new_sides = new_members.join(previous.assignment, on="contact_id").select(
        list(MERGE_SIDES_SCHEMA)
    )
    still_reversible = merges.filter(
        pl.col("undone_at").is_null()
        & pl.col("reversible_until").is_not_null()
        & (pl.col("reversible_until") > now)
    ).select("merge_id")
    return (
        pl.concat(
            [previous_sides.select(list(MERGE_SIDES_SCHEMA)).cast(MERGE_SIDES_SCHEMA), new_sides]
        )
        .join(still_reversible, on="merge_id", how="semi")
        .unique()
        .sort("merge_id", "contact_id", "interaction_id")
    )


def update_history(
    previous_merges: pl.DataFrame,
    previous_sides: pl.DataFrame,
    previous: PreviousState,
    ids: IdAssignment,
    constraints: Constraints,
    constrained: ConstrainedClusters,
    now: datetime,
) -> MergeHistory:
    """Tonight's `merges` and `merge_sides`.

    Args:
        previous_merges, previous_sides: from the last published file.
        previous: its ids.
        ids: tonight's id assignment (its `auto_merges` are every id that lost its clusters).
        constraints, constrained: tonight's decisions and how they applied.
        now: this run's time.
    """
    refused = set(constrained.conflicts.get_column("decision_id").to_list())
    decided = _decided_merges(ids, constraints, refused)
    by_decision = {c for row in decided for c in row["merged_ids"]}
    auto = _auto_merges(ids, by_decision, now)
    carried, unmerges = _with_unmerges(previous_merges, constraints)
    new = pl.concat([_rows(pl.DataFrame(decided, schema=MERGES_SCHEMA)), _rows(auto)])
    merges = pl.concat([carried, new, unmerges])
    return MergeHistory(
        merges=merges,
        sides=_sides(merges, new, previous_sides, previous, now),
        new_merge_ids=new.get_column("merge_id").to_list(),
    )


def side_profiles(previous_contacts: pl.DataFrame, history: MergeHistory) -> pl.DataFrame:
    """How each side of tonight's merges looked in the last published file (for people to read).

    Args:
        previous_contacts: `SIDE_PROFILE_COLUMNS` of the contacts involved (others are ignored).
        history: from `update_history`.
    """
    members = (
        history.merges.filter(pl.col("merge_id").is_in(history.new_merge_ids))
        .select(
            "merge_id",
            pl.concat_list(pl.col("survivor_id"), pl.col("merged_ids")).alias("contact_id"),
        )
        .explode("contact_id")
    )
    if previous_contacts.height == 0:
        return pl.DataFrame(schema=SIDE_PROFILE_SCHEMA)
    return (
        members.join(previous_contacts, on="contact_id")
        .select(list(SIDE_PROFILE_SCHEMA))
        .cast(SIDE_PROFILE_SCHEMA)  # type: ignore[arg-type]
        .sort("merge_id", "contact_id")
    )


OUTCOME_SCHEMA = {"decision_id": pl.String, "outcome": pl.String, "detail": pl.String}


def decision_outcomes(
    decisions: pl.DataFrame, constraints: Constraints, constrained: ConstrainedClusters
) -> pl.DataFrame:
    """One row per decision in the log: `applied` or `not applied` with the reason."""
    problems = pl.concat([constraints.skipped, constrained.conflicts]).unique(
        "decision_id", keep="first"
    )
    return (
        decisions.select("decision_id")
        .join(problems.select("decision_id", "reason"), on="decision_id", how="left")
        .select(
            "decision_id",
            pl.when(pl.col("reason").is_null())
            .then(pl.lit("applied"))
            .otherwise(pl.lit("not applied"))
            .alias("outcome"),
            pl.col("reason").alias("detail"),
        )
        .cast(OUTCOME_SCHEMA)  # type: ignore[arg-type]
    )
