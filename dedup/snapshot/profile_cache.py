"""Contact profiles kept from night to night: rebuild only the contacts whose interactions changed
(issue 25).

A profile (`dedup.snapshot.profiles.build_contacts`) is a function of its contact's interaction
rows and of the configuration alone: every aggregate is per contact, and each tie is broken by
the rows' own values. So a contact whose rows are tonight exactly what they were when its profile
was last built keeps that profile; only the others are built again.

Kept in `<cache>/profiles/`: `profiles-<gen>.parquet` (the frame `build_contacts_frame` returned,
before admins' edits), `members-<gen>.parquet` (`contact_id` and a hash of each interaction's
`PROFILE_COLUMNS` and contact id) and `state.json` naming the generation and the token. The
generation's files are written before `state.json` names them, so a night killed at any point
leaves either the previous generation or the new one, never a mix.

A contact is *touched* when one of its rows tonight is not among its kept rows, or one of its
kept rows is not among tonight's (a new, changed, moved or removed interaction; a merge or a
split; a contact that is gone). Untouched contacts have exactly the rows their kept profile was
built from. The token hashes what else a profile depends on (audience map, typed properties, the
profile code, DuckDB and Polars); another token, `full` or more than `MAX_TOUCHED_SHARE` of the
contacts touched builds every profile.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from dedup import properties, schema
from dedup.code_token import code_token
from dedup.config import EngineConfig
from dedup.generations import kept_state, write_generation
from dedup.snapshot import build, profiles
from dedup.snapshot.build import build_contacts_frame

# Above this share of touched contacts one full build is cheaper than the carry-over's joins.
MAX_TOUCHED_SHARE = 0.5
ROW_HASH = "_row"
# Every column of an interaction a profile reads (`dedup.snapshot.profiles`). Profiles are built
# from these columns only, on both paths: a profile that read another column would fail at once
# instead of going stale when only that column changed.
PROFILE_COLUMNS = (
    "interaction_id",
    "occurred_at",
    "identity_verified",
    "channel",
    "session_id",
    "verified_user_id",
    "user_id",
    "plan_norm",
    "email_norm",
    "email_address",
    "phone_e164",
    "name_display",
    "company_display",
    "conversation_id",
    "contact_tags",
    "attributes",
)


def profile_token(config: EngineConfig) -> str:
    """What a profile depends on besides its contact's rows."""
    described = {
        "audience_by_plan": sorted(config.audience_by_plan.items()),
        "default_audience": config.default_audience,
        "properties": sorted((k, repr(v)) for k, v in config.properties.items()),
        "duckdb": duckdb.__version__,
        "polars": pl.__version__,
    }
    modules = (profiles, build, properties, schema, sys.modules[__name__])
    return code_token([json.dumps(described, sort_keys=True)], modules)


@dataclass
class ProfilePlan:
    """How tonight's profiles were made; `full` says why every one was built."""

    full: str | None = None
    rebuilt: int = 0
    carried: int = 0

    def describe(self) -> str:
        if self.full:
            return f"full: {self.full}"
        return f"incremental: {self.rebuilt:,} contacts rebuilt, {self.carried:,} carried over"


def profile_source(interactions: Path, assignment: Path) -> str:
    """SQL of the interactions' `PROFILE_COLUMNS` and contact ids (the profiles' source)."""
    columns = ", ".join(f"i.{c}" for c in PROFILE_COLUMNS)
    return (
        f"SELECT {columns}, a.contact_id FROM read_parquet('{interactions}') i "
        f"JOIN read_parquet('{assignment}') a USING (interaction_id)"
    )


def members(interactions: Path, assignment: Path) -> pl.DataFrame:
    """(contact_id, hash of the interaction's `PROFILE_COLUMNS` and its contact id) per row."""
    rows = (
        pl.scan_parquet(interactions)
        .select(PROFILE_COLUMNS)
        .join(
            pl.scan_parquet(assignment).select("interaction_id", "contact_id"),
            on="interaction_id",
        )
    )
    return rows.select("contact_id", pl.struct(pl.all()).hash(25).alias(ROW_HASH)).collect()


class ProfileCache:
    """The kept profiles under `root` for one token."""

    def __init__(self, root: Path, token: str) -> None:
        self.root = root
        self.token = token

    def read(self) -> tuple[pl.DataFrame, pl.LazyFrame] | str:
        """(members, profiles: scanned, so only the carried rows are ever loaded) kept under this
        token, or why there are none to use."""
        state = kept_state(self.root)
        if state is None:
            return "no profiles kept yet"
        if state.get("token") != self.token:
            return "profile code or configuration changed"
        gen = state.get("gen")
        try:
            kept = pl.read_parquet(self.root / f"members-{gen}.parquet")
            pl.read_parquet_schema(self.root / f"profiles-{gen}.parquet")
        except (OSError, pl.exceptions.PolarsError):
            return "kept profiles unreadable"
        return kept, pl.scan_parquet(self.root / f"profiles-{gen}.parquet")

    def write(self, kept: pl.DataFrame, contacts: pl.DataFrame) -> None:
        write_generation(self.root, self.token, {"members": kept, "profiles": contacts})


def touched_contacts(tonight: pl.DataFrame, kept: pl.DataFrame) -> pl.Series:
    """Contact ids with a row tonight that was not kept, or a kept row not there tonight (a row's
    hash covers its contact id: a moved row is a new row of one contact, a gone row of another)."""
    new = tonight.filter(~pl.col(ROW_HASH).is_in(kept.get_column(ROW_HASH).implode()))
    gone = kept.filter(~pl.col(ROW_HASH).is_in(tonight.get_column(ROW_HASH).implode()))
    return pl.concat([new.get_column("contact_id"), gone.get_column("contact_id")]).unique()


def contacts_frame(
    interactions: Path,
    assignment: Path,
    config: EngineConfig,
    work_dir: Path,
    cache_root: Path,
    full: str | None = None,
) -> tuple[pl.DataFrame, ProfilePlan]:
    """`build_contacts_frame` over every interaction, with only the touched contacts built."""
    cache = ProfileCache(cache_root, profile_token(config))
    tonight = members(interactions, assignment)
    kept = cache.read() if full is None else full
    plan = ProfilePlan(full=kept if isinstance(kept, str) else None)
    contacts = None
    if not isinstance(kept, str):
        touched = touched_contacts(tonight, kept[0])
        n_contacts = tonight.get_column("contact_id").n_unique()
        if touched.len() > MAX_TOUCHED_SHARE * n_contacts:
            plan.full = f"{touched.len():,} of {n_contacts:,} contacts touched"
        else:
            try:
                contacts, plan.carried = _carry_over(
                    kept[1], touched, interactions, assignment, config, work_dir
                )
                plan.rebuilt = contacts.height - plan.carried
            except (OSError, pl.exceptions.ComputeError) as e:  # a damaged kept file
                plan.full = f"kept profiles unreadable ({type(e).__name__})"
    if contacts is None:
        contacts = build_contacts_frame(
            profile_source(interactions, assignment), config, work_dir / "duckdb_tmp"
        )
    cache.write(tonight, contacts)
    return contacts, plan


def _carry_over(
    kept: pl.LazyFrame,
    touched: pl.Series,
    interactions: Path,
    assignment: Path,
    config: EngineConfig,
    work_dir: Path,
) -> tuple[pl.DataFrame, int]:
    """Kept profiles of untouched contacts + touched contacts built from their rows, by id;
    and how many were carried."""
    subset = work_dir / "profile_touched_assignment.parquet"
    pl.scan_parquet(assignment).filter(pl.col("contact_id").is_in(touched.implode())).sink_parquet(
        subset
    )
    try:
        fresh = build_contacts_frame(
            profile_source(interactions, subset), config, work_dir / "duckdb_tmp"
        )
    finally:
        subset.unlink(missing_ok=True)
    carried = kept.filter(~pl.col("contact_id").is_in(touched.implode())).collect()
    return pl.concat([carried, fresh]).sort("contact_id"), carried.height
