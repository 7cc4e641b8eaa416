"""Tonight's admin decisions on Spark, the rows staying on the cluster (issue 27).

The local engine applies them in `dedup.admin.tonight.apply_decisions` to the whole night's
frame. Each of its per-row rules is the local function applied to one Arrow batch inside
`mapInArrow` (`decide`): revocations (`revoke`), erasure suppression
(`suppressed_interactions`) and the deletions an interaction belongs to (`deleted_members`) each
look at one interaction at a time, joined to the decision log's small tables, which travel to
the executors inside the task. Instead of dropping rows the batch function marks them
(`SUPPRESSED_BY`, `DELETION`, `DELETED_CONTACT`); the split (`apply_decisions`' order: an erased
row is gone before deletions are looked at) is then Spark filters over the marked rows.

What comes back to the driver is what decisions touch (erased and purged interaction ids, the
trash and restored rows of deleted contacts) and aggregates; the live rows are written by Spark
as the work file the next steps read, and tomorrow's phone lookup (`phone_lookup` per batch,
then one row per key) likewise.
"""

from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from dedup.admin.deletion import DELETED, PURGED, RESTORED, deleted_members
from dedup.admin.privacy import suppressed_interactions
from dedup.admin.tonight import DecisionLog
from dedup.identity.normalize import phone_lookup
from dedup.identity.verify import revocations, revoke
from dedup.spark.batches import per_batch

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

# The marks `decide` adds: the erasure that removes the row, the deletion's status and contact.
SUPPRESSED_BY = "_suppressed_by"
DELETION = "_deletion"
DELETED_CONTACT = "_deleted_contact"
MARKS = (SUPPRESSED_BY, DELETION, DELETED_CONTACT)


@dataclass(frozen=True)
class BatchRules:
    """What the executors need of the decision log: one row per admin action, not per row."""

    revoked: pl.DataFrame  # `revocations`: user_id, revoked_at
    suppression: pl.DataFrame
    members: pl.DataFrame  # deletion members (salted interaction hashes)
    deletions: pl.DataFrame
    salt_hex: str
    after_erasure: str

    @classmethod
    def of(cls, log: DecisionLog, after_erasure: str) -> BatchRules:
        return cls(
            revocations(log.decisions),
            log.suppression,
            log.deletion_members,
            log.deletions,
            log.salt_hex,
            after_erasure,
        )


def decide(frame: pl.DataFrame, rules: BatchRules) -> pl.DataFrame:
    """`frame` (normalized interactions) with revocations applied and every row marked with
    the erasure that removes it and the deletion it belongs to (null: none)."""
    frame = revoke(frame, rules.revoked)
    suppressed = suppressed_interactions(
        frame, rules.suppression, rules.salt_hex, rules.after_erasure
    )
    members = deleted_members(frame, rules.members, rules.deletions, rules.salt_hex)
    return frame.join(
        suppressed.select("interaction_id", pl.col("decision_id").alias(SUPPRESSED_BY)),
        on="interaction_id",
        how="left",
        maintain_order="left",
    ).join(
        members.select(
            "interaction_id",
            pl.col("status").alias(DELETION),
            pl.col("contact_id").alias(DELETED_CONTACT),
        ),
        on="interaction_id",
        how="left",
        maintain_order="left",
    )


def decided(normalized: DataFrame, rules: BatchRules) -> DataFrame:
    """Every normalized interaction, revocations applied, marked by `decide` on the executors."""
    return per_batch(normalized, functools.partial(decide, rules=rules))


def phones_of(rows: DataFrame) -> DataFrame:
    """`phone_lookup` of `rows`: the local function per batch, then one row per phone key (the
    local one keeps any row of a key: a key is parsed one way)."""
    columns = rows.select("phone", "channel", "phone_e164", "phone_valid")
    return per_batch(columns, phone_lookup).dropDuplicates(["phone_key"])


def write_file(frame: DataFrame, path: Path, *order: str | Column) -> None:
    """`frame` as the single Parquet file `path` the local steps read (written by one task, rows
    in `order`), replacing it in one rename."""
    folder = path.with_name(f".{path.name}.spark")
    shutil.rmtree(folder, ignore_errors=True)
    frame.repartition(1).sortWithinPartitions(*order).write.parquet(str(folder))
    (part,) = folder.glob("part-*.parquet")
    part.replace(path)
    shutil.rmtree(folder)


@dataclass(frozen=True)
class Split:
    """The marked rows as `apply_decisions` divides them (Spark frames, nothing collected)."""

    live: DataFrame  # not erased
    kept: DataFrame  # live and not held by a deletion: what the engine sees
    suppressed: DataFrame  # interaction_id, decision_id

    def status(self, *statuses: str) -> DataFrame:
        from pyspark.sql import functions as F

        return self.live.filter(F.col(DELETION).isin(*statuses))


def split(marked: DataFrame) -> Split:
    from pyspark.sql import functions as F

    live = marked.filter(F.col(SUPPRESSED_BY).isNull())
    return Split(
        live=live,
        kept=live.filter(F.col(DELETION).isNull() | ~F.col(DELETION).isin(DELETED, PURGED)),
        suppressed=marked.filter(F.col(SUPPRESSED_BY).isNotNull()).select(
            "interaction_id", F.col(SUPPRESSED_BY).alias("decision_id")
        ),
    )


def held_rows(parts: Split) -> tuple[pl.DataFrame, pl.DataFrame, pl.Series, int]:
    """(trash, restored, purged ids, held count) of `DeletionSplit`: rows of deleted contacts
    (what admins' deletions name: small), collected."""
    from pyspark.sql import functions as F

    def collect(frame: DataFrame) -> pl.DataFrame:
        return pl.from_arrow(frame.toArrow()).sort("interaction_id")  # type: ignore[union-attr]

    normal = [c for c in parts.live.columns if c not in MARKS]
    contact = F.col(DELETED_CONTACT).alias("contact_id")
    trash = collect(parts.status(DELETED).select(*normal, contact))
    restored = collect(parts.status(RESTORED).select("interaction_id", contact, "occurred_at"))
    purged = collect(parts.status(PURGED).select("interaction_id")).get_column("interaction_id")
    return trash, restored, purged, parts.status(DELETED, PURGED).count()
