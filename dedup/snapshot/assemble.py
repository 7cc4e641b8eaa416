"""Tonight's outputs of every stage → the inputs of the published file (`build.SnapshotInputs`).

What leaves or enters the published file by decision happens here: erased people leave the
quarantine, merge history and side profiles; deleted contacts' merge sides wait with them; notes,
tasks, CRM links and tier mismatches name live contacts only; the run gets its `pipeline_runs` row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from dedup.admin.deletion import PURGED, deleted_contacts_table
from dedup.admin.notes import contact_notes
from dedup.admin.privacy import erasure_audit, quarantine_without_erased
from dedup.admin.tasks import contact_tasks
from dedup.decisions import ERASE
from dedup.snapshot.build import SnapshotInputs
from dedup.snapshot.files import RUNS_SCHEMA


@dataclass
class NightOutputs:
    """What the earlier stages wrote tonight, read back as frames by the publish asset."""

    run: dict  # run_id, decided_at (ISO), auto_merges
    stats: dict  # interaction stats: deliveries, updates, repeats, suppressed
    interactions_sql: str  # SQL over prepared interactions with contact_id
    assigned_ids: pl.DataFrame  # interaction_id of every live interaction
    contacts: pl.DataFrame  # profiles with CRM columns
    proposals: pl.DataFrame
    quarantine: pl.DataFrame  # staged quarantine plus the refused export paths
    ambiguous_keys: pl.DataFrame  # auto-merge's plus the bridging keys
    decisions: pl.DataFrame
    outcomes: pl.DataFrame
    redirects: pl.DataFrame
    merges: pl.DataFrame
    merge_sides: pl.DataFrame
    side_profiles: pl.DataFrame
    erased_ids: pl.Series
    identity_failures: pl.DataFrame
    suppression: pl.DataFrame
    suppressed: pl.DataFrame
    salt_hex: str
    crm_links: pl.DataFrame
    tier_mismatches: pl.DataFrame
    deletions: pl.DataFrame
    held: pl.DataFrame  # interaction_id, contact_id of deleted, still restorable contacts
    held_profiles: pl.DataFrame  # their profiles (empty when none)
    previous_runs: pl.DataFrame
    previous_erasures: pl.DataFrame
    previous_deletions: pl.DataFrame  # deletion_id, status in the published file


def run_row(night: NightOutputs, quarantined: int) -> pl.DataFrame:
    """This run's `pipeline_runs` row, numbered after the last published run."""
    return pl.DataFrame(
        [
            {
                "run_number": night.previous_runs.height + 1,
                "run_id": night.run["run_id"],
                "finished_at": datetime.fromisoformat(night.run["decided_at"]),
                "interactions": night.assigned_ids.height,
                "contacts": night.contacts.height,
                "quarantined": quarantined,
                "updates": night.stats["updates"],
                "auto_merges": night.run["auto_merges"],
                "ambiguous_keys": night.ambiguous_keys.height,
            }
        ],
        schema=RUNS_SCHEMA,
    )


def snapshot_inputs(night: NightOutputs) -> SnapshotInputs:
    """Everything the published file holds, with tonight's decisions applied to it."""
    decided_at = datetime.fromisoformat(night.run["decided_at"])
    live = night.contacts.get_column("contact_id").implode()
    quarantine = quarantine_without_erased(night.quarantine, night.suppression, night.salt_hex)
    # An erased person leaves no trace in merge history either; a deleted contact's sides
    # wait with it for a restore.
    kept_interactions = pl.concat(
        [night.assigned_ids.select("interaction_id"), night.held.select("interaction_id")]
    )
    return SnapshotInputs(
        interactions=night.interactions_sql,
        contacts=night.contacts,
        proposals=night.proposals,
        redirects=night.redirects,
        merges=night.merges,
        quarantine=quarantine,
        ambiguous_keys=night.ambiguous_keys,
        runs=pl.concat([night.previous_runs, run_row(night, quarantine.height)]),
        merge_sides=night.merge_sides.join(kept_interactions, on="interaction_id", how="semi"),
        merge_side_profiles=night.side_profiles.filter(
            ~pl.col("contact_id").is_in(night.erased_ids.implode())
        ),
        decisions=night.decisions.join(night.outcomes, on="decision_id", how="left"),
        notes=contact_notes(night.decisions, night.redirects).filter(
            pl.col("contact_id").is_in(live)
        ),
        tasks=contact_tasks(night.decisions, night.redirects, decided_at).filter(
            pl.col("contact_id").is_in(live)
        ),
        identity_failures=night.identity_failures,
        erasures=erasure_audit(
            night.decisions,
            night.suppression,
            night.suppressed,
            night.previous_erasures,
            decided_at,
        ),
        crm_links=night.crm_links.filter(pl.col("contact_id").is_in(live)),
        tier_mismatches=night.tier_mismatches.filter(pl.col("contact_id").is_in(live)),
        deletions=night.deletions,
        deleted_contacts=deleted_contacts_table(night.held_profiles, night.deletions),
    )


def removed_for_good(night: NightOutputs) -> str | None:
    """Why tonight's file must not start from a copy of the published one: an erasure or a
    purge applied tonight. The copy's deleted rows and dropped tables leave their bytes in the
    file's blocks; a file written whole holds none of the person (docs/privacy.md)."""
    erased = night.decisions.filter(pl.col("kind") == ERASE).get_column("decision_id")
    new = erased.is_in(night.previous_erasures.get_column("request_id").implode()).not_().sum()
    purged_before = night.previous_deletions.filter(pl.col("status") == PURGED)
    purged = night.deletions.filter(
        (pl.col("status") == PURGED)
        & ~pl.col("deletion_id").is_in(purged_before.get_column("deletion_id").implode())
    ).height
    if new or purged:
        return f"{new} erasure(s) and {purged} purged deletion(s) applied tonight"
    return None
