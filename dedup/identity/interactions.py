"""From staged records of every export day to one normalized row per interaction."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from dedup.config import EngineConfig
from dedup.identity.normalize import display_text, normalize_identifiers
from dedup.identity.verify import verified_user_ids
from dedup.schema import CANONICAL_FIELDS


@dataclass
class ResolvedInteractions:
    interactions: pl.DataFrame
    deliveries: int  # staged records read
    updates: int  # re-deliveries whose content changed (the later one won)
    repeats: int  # re-deliveries with identical content


# Column holding `content_hash()` when it was computed before normalization (the day cache):
# normalization rewrites `session_id` in place, so the hash must be of the staged values.
CONTENT = "_content"


def content_hash() -> pl.Expr:
    """What makes two deliveries of one interaction id the same version (staged values)."""
    return pl.struct([c for c in CANONICAL_FIELDS if c != "interaction_id"]).hash(11).alias(CONTENT)


def resolve_redeliveries(staged: pl.DataFrame) -> ResolvedInteractions:
    """Keep one version per `interaction_id`: the latest export day, then the later file, then row.

    SPEC: the same id delivered again is the same interaction, never counted twice; with different
    content it is an update and the later delivery wins. `staged` may already carry `CONTENT`
    (rows normalized before they were resolved: `dedup.identity.day_cache`).
    """
    ordered = (staged if CONTENT in staged.columns else staged.with_columns(content_hash())).sort(
        "interaction_id", "export_day", "source", "file", "row"
    )
    versions = ordered.group_by("interaction_id").agg(
        pl.len().alias("n"), pl.col(CONTENT).n_unique().alias("n_versions")
    )
    latest = ordered.unique("interaction_id", keep="last", maintain_order=True).drop(CONTENT)
    return ResolvedInteractions(
        interactions=latest,
        deliveries=staged.height,
        updates=int((versions.get_column("n_versions") - 1).sum() or 0),
        repeats=int((versions.get_column("n") - versions.get_column("n_versions")).sum() or 0),
    )


def prepare_interactions(
    staged: pl.DataFrame, config: EngineConfig, known_phones: pl.DataFrame | None = None
) -> ResolvedInteractions:
    """Resolve re-deliveries, verify identities, normalize identifiers and display text
    (`known_phones`: see `normalize.phone_e164`).

    Memory: pass the staged frame without keeping a reference (`prepare_interactions(read(...))`);
    it is released once re-deliveries are resolved, and each step's input as soon as the next
    exists, so at 10M interactions no more than two copies of the rows are alive at once.
    """
    resolved = resolve_redeliveries(staged)
    del staged
    frame, resolved.interactions = resolved.interactions, pl.DataFrame()
    resolved.interactions = normalize_rows(frame, config, known_phones)
    return resolved


def normalize_rows(
    frame: pl.DataFrame, config: EngineConfig, known_phones: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Verify identities, normalize identifiers and display text, row by row and in row order:
    the result for a set of rows is the concatenation of the results for its parts (what lets
    `dedup.identity.day_cache` keep one export day's rows from night to night)."""
    frame = verified_user_ids(frame, config.identity_secrets, config.previous_secret_until)
    frame = normalize_identifiers(
        frame, default_region=config.default_region, known_phones=known_phones
    )
    return frame.with_columns(
        display_text(pl.col("name")).alias("name_display"),
        display_text(pl.col("company")).alias("company_display"),
        pl.col("plan").str.strip_chars().str.to_lowercase().alias("plan_norm"),
        pl.col("session_id").str.strip_chars().replace("", None).alias("session_id"),
    )
