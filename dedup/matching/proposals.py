"""Merge proposals across runs: ids, statuses, and what admins decided.

Rules (docs/matching.md):
- A proposal is a pair of live contacts, ordered (`contact_id_l` < `contact_id_r`); its id is a
  hash of the pair, so a pending pair keeps its `proposal_id` and `created_at` from run to run
  while it stays above the threshold.
- Ids in old proposals and decisions are followed through `contact_redirects`, so a decision
  about a contact that was later merged away still applies to its survivor.
- A rejected pair is never proposed again; the decision log is the source of truth, and the
  rejection is published as a `rejected` row. Nor is a pair an admin separated by an unmerge.
- An accepted proposal is published as `accepted` under the ids the admin saw.
- A pending pair one of whose contacts no longer lives (the two became one, or one was merged
  into a third contact) is `superseded`, under its original ids; a pending pair that fell below
  the threshold is dropped.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import polars as pl

from dedup.decisions import ACCEPT_PROPOSAL, REJECT_PROPOSAL

PROPOSALS_SCHEMA: dict[str, pl.DataType] = {
    "proposal_id": pl.String(),
    "contact_id_l": pl.String(),
    "contact_id_r": pl.String(),
    "match_probability": pl.Float64(),
    "match_weight": pl.Float64(),
    "status": pl.String(),
    "created_at": pl.Datetime("us", "UTC"),
    "explanation": pl.String(),
    "status_at": pl.Datetime("us", "UTC"),
    "decided_by": pl.String(),
    "note": pl.String(),
}

PREDICTION_SCHEMA: dict[str, pl.DataType] = {
    "contact_id_l": pl.String(),
    "contact_id_r": pl.String(),
    "match_probability": pl.Float64(),
    "match_weight": pl.Float64(),
    "explanation": pl.String(),
}


def proposal_id(left: str, right: str) -> str:
    low, high = sorted((left, right))
    return "prop_" + hashlib.sha256(f"{low}|{high}".encode()).hexdigest()[:16]


def _with_ids(frame: pl.DataFrame) -> pl.DataFrame:
    ids = [proposal_id(a, b) for a, b in frame.select("contact_id_l", "contact_id_r").iter_rows()]
    return frame.with_columns(pl.Series("proposal_id", ids, dtype=pl.String))


def _follow(frame: pl.DataFrame, redirects: pl.DataFrame) -> pl.DataFrame:
    """Map both sides through redirects and order each pair."""
    lookup = redirects.select("from_contact_id", "to_contact_id")
    for side in ("contact_id_l", "contact_id_r"):
        frame = (
            frame.join(lookup, left_on=side, right_on="from_contact_id", how="left")
            .with_columns(pl.coalesce("to_contact_id", side).alias(side))
            .drop("to_contact_id")
        )
    return frame.with_columns(
        pl.min_horizontal("contact_id_l", "contact_id_r").alias("contact_id_l"),
        pl.max_horizontal("contact_id_l", "contact_id_r").alias("contact_id_r"),
    )


def _decided_rows(
    decided: pl.DataFrame, status: str, last_scores: pl.DataFrame, first_seen: pl.DataFrame
) -> pl.DataFrame:
    """Published rows of decided proposals: the last known score, the decision's stamp."""
    return (
        decided.select(
            "proposal_id", "contact_id_l", "contact_id_r", "decided_by", "decided_at", "note"
        )
        .join(last_scores, on="proposal_id", how="left")
        .join(first_seen, on="proposal_id", how="left")
        .select(
            "proposal_id",
            "contact_id_l",
            "contact_id_r",
            "match_probability",
            "match_weight",
            pl.lit(status).alias("status"),
            pl.coalesce("created_at", "decided_at").alias("created_at"),
            "explanation",
            pl.col("decided_at").alias("status_at"),
            "decided_by",
            "note",
        )
    )


def _pending_rows(
    scored: pl.DataFrame, was_pending: pl.DataFrame, blocked: pl.DataFrame, live, now: datetime
) -> pl.DataFrame:
    """Tonight's live, undecided pairs; a pair pending since an earlier night keeps its date."""
    since = (
        was_pending.select("proposal_id", pl.col("created_at").alias("_since"))
        if was_pending.height
        else pl.DataFrame(schema={"proposal_id": pl.String, "_since": pl.Datetime("us", "UTC")})
    )
    return (
        scored.filter(pl.col("contact_id_l") != pl.col("contact_id_r"))
        .filter(pl.col("contact_id_l").is_in(live) & pl.col("contact_id_r").is_in(live))
        .join(blocked, on="proposal_id", how="anti")
        .join(since, on="proposal_id", how="left")
        .unique("proposal_id", keep="first")
        .with_columns(
            pl.lit("pending").alias("status"),
            pl.coalesce("_since", pl.lit(now).cast(pl.Datetime("us", "UTC"))).alias("created_at"),
        )
        .with_columns(
            pl.col("created_at").alias("status_at"),
            pl.lit(None, pl.String).alias("decided_by"),
            pl.lit(None, pl.String).alias("note"),
        )
        .select(list(PROPOSALS_SCHEMA))
    )


def _superseded_rows(
    was_pending: pl.DataFrame, blocked: pl.DataFrame, live, now: datetime
) -> pl.DataFrame:
    """Pending pairs of which one side no longer lives (merged away, erased, deleted)."""
    if was_pending.height == 0:
        return pl.DataFrame(schema=PROPOSALS_SCHEMA)
    return (
        was_pending.filter(
            ~pl.col("contact_id_l").is_in(live) | ~pl.col("contact_id_r").is_in(live)
        )
        .join(blocked, on="proposal_id", how="anti")
        .with_columns(
            pl.lit("superseded").alias("status"),
            pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("status_at"),
        )
    )


def update_proposals(
    predictions: pl.DataFrame,
    previous: pl.DataFrame,
    decisions: pl.DataFrame,
    redirects: pl.DataFrame,
    live_ids: pl.Series,
    now: datetime,
    separated: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Tonight's `merge_proposals` table.

    Args:
        predictions: pairs above the proposal threshold (`PREDICTION_SCHEMA`).
        previous: last published `merge_proposals`.
        decisions: the decision log.
        redirects: tonight's `contact_redirects`.
        live_ids: tonight's live contact ids.
        now: this run's time.
        separated: contact_id_l, contact_id_r pairs admins keep apart (unmerges, rejections).
    """
    live = live_ids.implode()
    scored = _with_ids(_follow(predictions.select(list(PREDICTION_SCHEMA)), redirects))
    # Old rows keep their own ids: history says which pair was proposed, not what it became.
    prev = previous
    rejected = (
        decisions.filter(pl.col("kind") == REJECT_PROPOSAL)
        .select("contact_id_l", "contact_id_r", "decided_by", "decided_at", "note")
        .pipe(_follow, redirects)
        .pipe(_with_ids)
        .sort("decided_at")
        .unique("proposal_id", keep="last")
    )
    accepted = (
        decisions.filter((pl.col("kind") == ACCEPT_PROPOSAL) & pl.col("proposal_id").is_not_null())
        .sort("decided_at")
        .unique("proposal_id", keep="last")
    )
    score_columns = ("proposal_id", "match_probability", "match_weight", "explanation")
    last_scores = pl.concat([scored.select(score_columns), prev.select(score_columns)]).unique(
        "proposal_id", keep="first"
    )
    first_seen = prev.select("proposal_id", "created_at").unique("proposal_id", keep="first")
    kept_apart = (
        _with_ids(separated.select("contact_id_l", "contact_id_r")).select("proposal_id")
        if separated is not None and separated.height
        else pl.DataFrame(schema={"proposal_id": pl.String})
    )
    blocked = pl.concat(
        [rejected.select("proposal_id"), accepted.select("proposal_id"), kept_apart]
    )
    was_pending = prev.filter(pl.col("status") == "pending") if prev.height else prev
    frames = [
        _decided_rows(accepted, "accepted", last_scores, first_seen),
        _decided_rows(rejected, "rejected", last_scores, first_seen),
        _pending_rows(scored, was_pending, blocked, live, now),
        _superseded_rows(was_pending, blocked, live, now),
        prev.filter(pl.col("status") == "superseded")
        if prev.height
        else pl.DataFrame(schema=PROPOSALS_SCHEMA),
    ]
    out = pl.concat([f.select(list(PROPOSALS_SCHEMA)).cast(PROPOSALS_SCHEMA) for f in frames])  # type: ignore[arg-type]
    # One row per proposal id: a decision beats a score, a live pending pair beats old history.
    rank = pl.col("status").replace_strict(
        {"accepted": 0, "rejected": 0, "pending": 1, "superseded": 2},
        default=3,
        return_dtype=pl.Int8,
    )
    return out.sort(rank, "proposal_id").unique("proposal_id", keep="first").sort("proposal_id")


def predictions_frame(scored: pl.DataFrame) -> pl.DataFrame:
    """Splink's scored pairs → `PREDICTION_SCHEMA` (ordered pair)."""
    return scored.select(
        pl.min_horizontal("unique_id_l", "unique_id_r").alias("contact_id_l"),
        pl.max_horizontal("unique_id_l", "unique_id_r").alias("contact_id_r"),
        pl.col("match_probability").cast(pl.Float64),
        pl.col("match_weight").cast(pl.Float64),
        pl.col("explanation"),
    )


def without_two_accounts(predictions: pl.DataFrame, contacts: pl.DataFrame) -> pl.DataFrame:
    """Scored pairs minus those whose contacts hold two different verified user ids.

    Two verified accounts are two people to the customer's product; a contact holding both fails
    the run's hub check, so no admin may merge them (dedup.service.review) and no run applies such a
    merge (dedup.identity.constraints). Proposing them would only ask for a decision that cannot be taken.
    `contacts` needs `contact_id` and `user_id` (the verified user id, null when none).
    """
    accounts = contacts.select("contact_id", "user_id").filter(pl.col("user_id").is_not_null())
    return (
        predictions.join(
            accounts.rename({"contact_id": "contact_id_l", "user_id": "_account_l"}),
            on="contact_id_l",
            how="left",
        )
        .join(
            accounts.rename({"contact_id": "contact_id_r", "user_id": "_account_r"}),
            on="contact_id_r",
            how="left",
        )
        .filter(
            pl.col("_account_l").is_null()
            | pl.col("_account_r").is_null()
            | (pl.col("_account_l") == pl.col("_account_r"))
        )
        .drop("_account_l", "_account_r")
    )
