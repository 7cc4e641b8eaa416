"""Tonight's interactions after the admins' decisions, in the order each kind must apply.

1. Normalize the staged records (`identity.interactions.prepare_interactions`).
2. Revoked verifications stop counting before anything keys on them.
3. Erasure: what the suppression list matches never reaches the engine, from any export day.
4. Deletion: a deleted contact's interactions wait outside the engine until a restore; once
   purged they stay out and their staged copies go, like an erasure's.
5. Tomorrow's phone lookup is computed from what stays (live and held rows), so an erased
   person's numbers leave the lookup in the run that applies the erasure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from dedup.admin.deletion import DeletionSplit, deleted_members, split_by_deletion
from dedup.admin.privacy import crm_records_without_erased, suppressed_interactions
from dedup.config import EngineConfig
from dedup.identity.interactions import ResolvedInteractions, prepare_interactions
from dedup.identity.normalize import phone_lookup
from dedup.identity.verify import revocations, revoke
from dedup.ingest.days import scrub_crm_staging, scrub_staging


@dataclass(frozen=True)
class DecisionLog:
    """The decision log as of this run, in the frames the nightly steps read."""

    decisions: pl.DataFrame  # DECISIONS_SCHEMA
    suppression: pl.DataFrame  # salted identifiers of erased people
    deletion_members: pl.DataFrame
    deletions: pl.DataFrame  # deletion status per deletion
    salt_hex: str


@dataclass
class Tonight:
    """What reaches the engine tonight, what waits outside it and what goes for good."""

    interactions: pl.DataFrame  # live rows, normalized, with `identity_failure`
    deletion: DeletionSplit  # trash (held rows), restored rows, purged ids
    suppressed: pl.DataFrame  # interaction_id, decision_id: removed by an erasure
    phones: pl.DataFrame  # tomorrow's phone lookup
    deliveries: int
    updates: int
    repeats: int

    @property
    def gone_for_good(self) -> pl.Series:
        """Interactions whose staged copies are scrubbed: erased or purged."""
        return pl.concat([self.suppressed.get_column("interaction_id"), self.deletion.purged])


def apply_decisions(
    staged: pl.DataFrame | ResolvedInteractions,
    config: EngineConfig,
    log: DecisionLog,
    known_phones: pl.DataFrame | None = None,
) -> Tonight:
    """Staged records (or records already normalized and resolved: `identity.day_cache`) →
    tonight's interactions, every decision applied (module docstring)."""
    resolved = (
        staged
        if isinstance(staged, ResolvedInteractions)
        else prepare_interactions(staged, config, known_phones)
    )
    frame = revoke(resolved.interactions, revocations(log.decisions))
    resolved.interactions = pl.DataFrame()  # `frame` holds the rows now
    suppressed = suppressed_interactions(frame, log.suppression, log.salt_hex, config.after_erasure)
    if suppressed.height:  # an anti-join copies every row, even when it removes none
        frame = frame.join(suppressed.select("interaction_id"), on="interaction_id", how="anti")
    members = deleted_members(frame, log.deletion_members, log.deletions, log.salt_hex)
    split = _split(frame, members)
    return Tonight(
        interactions=split.kept,
        deletion=split,
        suppressed=suppressed,
        phones=phone_lookup(split.kept, split.trash),
        deliveries=resolved.deliveries,
        updates=resolved.updates,
        repeats=resolved.repeats,
    )


def _split(frame: pl.DataFrame, members: pl.DataFrame) -> DeletionSplit:
    """`split_by_deletion`; with no deletion member tonight, over no rows (its joins of every
    row against empty frames give empty frames of the same schemas) and every row kept."""
    if members.height:
        return split_by_deletion(frame, members)
    split = split_by_deletion(frame.clear(), members)
    split.kept = frame
    return split


def scrub_erased(staging_root: Path, tonight: Tonight, log: DecisionLog, region: str) -> int:
    """Remove erased and purged people from the staged copies of the exports; rows removed."""
    scrubbed = scrub_staging(staging_root, tonight.gone_for_good)
    if log.suppression.height:
        # CRM exports hold the person too: their staged records go as well.
        scrubbed += scrub_crm_staging(
            staging_root,
            lambda records: crm_records_without_erased(
                records, log.suppression, log.salt_hex, region
            ),
        )
    return scrubbed
