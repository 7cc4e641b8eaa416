"""Agent-only contact notes: decisions of kind `note`, shown on the contact that lives now."""

from __future__ import annotations

import polars as pl

from dedup.decisions import NOTE

NOTES_SCHEMA: dict[str, pl.DataType] = {
    "note_id": pl.String(),
    "contact_id": pl.String(),
    "written_on": pl.String(),
    "note": pl.String(),
    "author": pl.String(),
    "created_at": pl.Datetime("us", "UTC"),
}


def contact_notes(decisions: pl.DataFrame, redirects: pl.DataFrame) -> pl.DataFrame:
    """Notes follow their contact through merges; an unmerge brings them back with its id.

    Args:
        decisions: the decision log.
        redirects: tonight's `contact_redirects` (from_contact_id → live to_contact_id).
    """
    notes = decisions.filter(pl.col("kind") == NOTE)
    return (
        notes.join(redirects, left_on="contact_id_l", right_on="from_contact_id", how="left")
        .select(
            pl.col("decision_id").alias("note_id"),
            pl.coalesce("to_contact_id", "contact_id_l").alias("contact_id"),
            pl.col("contact_id_l").alias("written_on"),
            "note",
            pl.col("decided_by").alias("author"),
            pl.col("decided_at").alias("created_at"),
        )
        .cast(NOTES_SCHEMA)  # type: ignore[arg-type]
        .sort("contact_id", "created_at", "note_id")
    )
