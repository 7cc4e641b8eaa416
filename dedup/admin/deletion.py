"""Soft delete: a deleted contact is hidden, restorable for 30 days, then purged for good.

Rules (docs/review.md, "Delete and restore"):
- A `delete` decision names a contact and, in `deletion_members`, the salted hashes of the
  interactions it held in the published file when the admin deleted it. Every run keeps those
  interactions out of the engine, so the contact is gone from `contacts`, `interactions`, the
  views, search, exports, proposals, the API and the review page. Its id is held: never given to
  another contact, and redirects into it are kept.
- A `restore` decision within 30 days lets the interactions back in, and the run carries the old
  id forward to them as if last night's file had published them: the contact comes back with its
  id, `first_seen`, redirects, and everything the decision log gives it (tags, audience,
  attributes, notes, tasks). A person who wrote again while deleted became a new contact; at the
  restore that contact joins the restored one like any auto-merge (the older id survives).
- 30 days after the deletion it is purged: the interactions stay out for good and their staged
  copies are scrubbed; only the audit row in `deletions` (ids, times, who) remains.
- Deleting is not erasure: no identifier is suppressed, so a person who writes again after the
  deletion is a new contact. Erasure (dedup.admin.privacy) is the GDPR path and has no restore.

The decision log is the only source of truth for deletions (published tables only show them), so
a lost or rebuilt published file loses no deletion and no restore.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import polars as pl

from dedup.decisions import DELETE, RESTORE
from dedup.identity.stable_ids import PreviousState

RESTORE_WINDOW = timedelta(days=30)
# Work file of the deleted, still restorable contacts' interactions (full rows; written by the
# `interactions` asset). An erasure reads it: what they carry is someone else's too.
TRASH_FILE = "deleted_interactions.parquet"
HASH_KIND = "interaction"  # the suppression list's kind for interaction ids (same salted hash)

DELETED = "deleted"  # hidden, restorable
RESTORED = "restored"
PURGED = "purged"

DELETIONS_SCHEMA: dict[str, pl.DataType] = {
    "deletion_id": pl.String(),
    "contact_id": pl.String(),
    "deleted_by": pl.String(),
    "deleted_at": pl.Datetime("us", "UTC"),
    "restorable_until": pl.Datetime("us", "UTC"),
    "status": pl.String(),
    "status_at": pl.Datetime("us", "UTC"),
    "restored_by": pl.String(),
    "interactions": pl.Int64(),
}

# One row per interaction a deletion names that is still in the exports.
MEMBERS_SCHEMA: dict[str, pl.DataType] = {
    "interaction_id": pl.String(),
    "deletion_id": pl.String(),
    "contact_id": pl.String(),
    "status": pl.String(),
}


# What the trash shows of a deleted contact (its profile as the run would build it), so an admin
# can tell whom to restore; the rows leave with the purge.
DELETED_CONTACTS_SCHEMA: dict[str, pl.DataType] = {
    "contact_id": pl.String(),
    "name": pl.String(),
    "email": pl.String(),
    "phone": pl.String(),
    "channels": pl.List(pl.String()),
    "conversation_count": pl.Int64(),
    "first_seen": pl.Datetime("us", "UTC"),
    "last_seen": pl.Datetime("us", "UTC"),
    "deletion_id": pl.String(),
    "deleted_by": pl.String(),
    "deleted_at": pl.Datetime("us", "UTC"),
    "restorable_until": pl.Datetime("us", "UTC"),
}


def member_hash_sql(salt_param: str, column: str) -> str:
    """DuckDB SQL for an interaction id's member hash; equals `dedup.admin.privacy.identifier_hash`."""
    return f"sha256({salt_param} || '{HASH_KIND}:' || {column})"


def deletion_status(decisions: pl.DataFrame, members: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """Every deletion in the log with where it stands at `now` (`DELETIONS_SCHEMA`).

    A restore counts only inside its deletion's window; the first one wins.
    """
    deletes = decisions.filter(pl.col("kind") == DELETE).select(
        pl.col("decision_id").alias("deletion_id"),
        pl.col("contact_id_l").alias("contact_id"),
        pl.col("decided_by").alias("deleted_by"),
        pl.col("decided_at").alias("deleted_at"),
        (pl.col("decided_at") + RESTORE_WINDOW).alias("restorable_until"),
    )
    restores = (
        decisions.filter(pl.col("kind") == RESTORE)
        .select(
            pl.col("subject").alias("deletion_id"),
            pl.col("decided_at").alias("restored_at"),
            pl.col("decided_by").alias("restored_by"),
        )
        .join(deletes.select("deletion_id", "restorable_until"), on="deletion_id")
        .filter(pl.col("restored_at") < pl.col("restorable_until"))
        .sort("restored_at")
        .unique("deletion_id", keep="first")
        .drop("restorable_until")
    )
    counts = members.group_by(pl.col("decision_id").alias("deletion_id")).agg(
        pl.len().cast(pl.Int64).alias("interactions")
    )
    restored = pl.col("restored_at").is_not_null()
    purged = pl.lit(now, dtype=pl.Datetime("us", "UTC")) >= pl.col("restorable_until")
    return (
        deletes.join(restores, on="deletion_id", how="left")
        .join(counts, on="deletion_id", how="left")
        .with_columns(
            pl.when(restored)
            .then(pl.lit(RESTORED))
            .when(purged)
            .then(pl.lit(PURGED))
            .otherwise(pl.lit(DELETED))
            .alias("status"),
            pl.when(restored)
            .then(pl.col("restored_at"))
            .when(purged)
            .then(pl.col("restorable_until"))
            .otherwise(pl.col("deleted_at"))
            .alias("status_at"),
            pl.col("interactions").fill_null(0),
        )
        .select(list(DELETIONS_SCHEMA))
        .sort("deleted_at", "deletion_id")
    )


def deleted_members(
    interactions: pl.DataFrame, members: pl.DataFrame, deletions: pl.DataFrame, salt_hex: str
) -> pl.DataFrame:
    """The interactions each deletion names (`MEMBERS_SCHEMA`), found by their salted hashes.

    An interaction named by two deletions (deleted, restored, deleted again) belongs to the latest.
    """
    if members.height == 0 or interactions.height == 0:
        return pl.DataFrame(schema=MEMBERS_SCHEMA)
    con = duckdb.connect()
    try:
        con.register("f", interactions.select("interaction_id").to_arrow())
        con.register("m", members.to_arrow())
        con.register("d", deletions.select("deletion_id", "deleted_at").to_arrow())
        found = con.execute(
            f"""
            SELECT f.interaction_id, arg_max(m.decision_id, d.deleted_at) AS deletion_id
            FROM f JOIN m ON m.interaction_hash = {member_hash_sql("$salt", "f.interaction_id")}
            JOIN d ON d.deletion_id = m.decision_id
            GROUP BY f.interaction_id ORDER BY f.interaction_id
            """,
            {"salt": salt_hex},
        ).pl()
    finally:
        con.close()
    return found.join(
        deletions.select("deletion_id", "contact_id", "status"), on="deletion_id"
    ).select(list(MEMBERS_SCHEMA))


@dataclass
class DeletionSplit:
    """Tonight's interactions as deletions divide them (`split_by_deletion`).

    kept: what the engine sees (held interactions removed).
    trash: full rows of deleted, still restorable contacts' interactions, with their
        `contact_id` (profiled for `deleted_contacts`).
    restored: interaction_id, contact_id, occurred_at of restored deletions' interactions.
    purged: ids of purged deletions' interactions (their staged copies are scrubbed).
    held: how many interactions were kept out.
    """

    kept: pl.DataFrame
    trash: pl.DataFrame
    restored: pl.DataFrame
    purged: pl.Series
    held: int


def split_by_deletion(frame: pl.DataFrame, members: pl.DataFrame) -> DeletionSplit:
    """Divide `frame` by where each interaction's deletion stands (`deleted_members` rows)."""

    def of(status: str) -> pl.DataFrame:
        return members.filter(pl.col("status") == status).select("interaction_id", "contact_id")

    held = members.filter(pl.col("status").is_in([DELETED, PURGED]))
    restored = frame.join(of(RESTORED), on="interaction_id").select(
        "interaction_id", "contact_id", "occurred_at"
    )
    return DeletionSplit(
        # An anti-join copies every row, even when it removes none.
        kept=frame.join(held.select("interaction_id"), on="interaction_id", how="anti")
        if held.height
        else frame,
        trash=frame.join(of(DELETED), on="interaction_id"),
        restored=restored,
        purged=of(PURGED).get_column("interaction_id"),
        held=held.height,
    )


def held_ids(deletions: pl.DataFrame) -> pl.Series:
    """Ids of contacts deleted and still restorable: kept out of reuse, redirects into them kept."""
    return deletions.filter(pl.col("status") == DELETED).get_column("contact_id").unique().sort()


def with_restored(previous: PreviousState, restored: pl.DataFrame) -> PreviousState:
    """Last night's ids plus those of contacts restored tonight, so they get their ids back.

    Args:
        previous: what the published file says.
        restored: interaction_id, contact_id, occurred_at of the interactions of restored
            deletions; a contact the published file already holds (restored on an earlier night)
            is left to it.
    """
    back = restored.join(previous.contacts.select("contact_id"), on="contact_id", how="anti")
    if back.height == 0:
        return previous
    assignment = back.select(previous.assignment.columns).cast(previous.assignment.schema)
    contacts = (
        back.group_by("contact_id")
        .agg(pl.col("occurred_at").min().alias("first_seen"))
        .select(previous.contacts.columns)
        .cast(previous.contacts.schema)
    )
    return PreviousState(
        pl.concat([previous.assignment, assignment]),
        pl.concat([previous.contacts, contacts]),
        previous.redirects,
    )


def deleted_contacts_table(profiles: pl.DataFrame, deletions: pl.DataFrame) -> pl.DataFrame:
    """`DELETED_CONTACTS_SCHEMA` rows: every restorable deletion with its contact's profile.

    Args:
        profiles: contacts built from the held interactions (`dedup.snapshot.build.build_contacts_frame`);
            a deletion whose interactions left the exports still gets a row, without a profile.
        deletions: from `deletion_status`.
    """
    profile_columns = [c for c in DELETED_CONTACTS_SCHEMA if c not in DELETIONS_SCHEMA]
    if profiles.height == 0:
        profiles = pl.DataFrame(
            schema={
                "contact_id": pl.String(),
                **{c: DELETED_CONTACTS_SCHEMA[c] for c in profile_columns},
            }
        )
    return (
        deletions.filter(pl.col("status") == DELETED)
        .select("contact_id", "deletion_id", "deleted_by", "deleted_at", "restorable_until")
        .join(profiles.select("contact_id", *profile_columns), on="contact_id", how="left")
        .select(list(DELETED_CONTACTS_SCHEMA))
        .cast(DELETED_CONTACTS_SCHEMA)  # type: ignore[arg-type]
        .sort("contact_id")
    )
