"""Contact profiles on the executors (issue 27): the `contact_profiles` step with
`engine = "spark"`.

A profile is a function of its contact's interaction rows and the configuration alone
(`dedup.snapshot.profile_cache` relies on the same fact): every aggregate of
`dedup.snapshot.profiles.build_contacts` is per contact. So Spark repartitions the rows
(interactions joined to the assignment: `PROFILE_COLUMNS` and `contact_id`) by `contact_id`,
and each partition's rows, whole, go through the local engine's own builder,
`dedup.snapshot.build.build_contacts_frame` (its DuckDB SQL, in an in-memory DuckDB inside the
task: one implementation, not a port). Every contact lies in exactly one partition, so the
union of the partitions' profiles is the full build. Admins' edits of contacts
(`dedup.admin.contact_edits.apply_contact_edits`) are per contact too and run in the same task
on the partition's profiles; the edit decisions and the redirects of the contacts they name
are small and travel inside the task. Spark writes the work file `contacts.parquet` (one task,
`contact_id` order, the local engine's schema), which the matching and snapshot steps read.

Every profile is built every night: the kept-profile cache of the local engine (issue 25) is
neither read nor written, so a workspace that goes back to the local engine finds its last
local generation, still valid (a kept profile is checked against its rows before use).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from dedup.admin.contact_edits import apply_contact_edits
from dedup.config import EngineConfig
from dedup.decisions import CRM_RESYNC, SET_ATTRIBUTE, SET_AUDIENCE, TAG_ADD, TAG_REMOVE
from dedup.snapshot.build import build_contacts_frame
from dedup.snapshot.profile_cache import PROFILE_COLUMNS
from dedup.spark.tonight import write_file

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

# What the step reports as its path (`ProfilePlan.describe` on the local engine).
SPARK_PROFILES = "full: spark engine (every profile built on the cluster, none kept)"
EDIT_KINDS = (TAG_ADD, TAG_REMOVE, SET_AUDIENCE, SET_ATTRIBUTE, CRM_RESYNC)


@dataclass(frozen=True)
class ContactEdits:
    """What `apply_contact_edits` reads, cut to what can change a profile: the edit decisions,
    the redirects of the contacts they name, the decisions applied for the first time."""

    decisions: pl.DataFrame
    redirects: pl.DataFrame
    new_decision_ids: pl.Series

    def apply(self, contacts: pl.DataFrame) -> pl.DataFrame:
        if self.decisions.height == 0:
            return contacts
        return apply_contact_edits(contacts, self.decisions, self.redirects, self.new_decision_ids)


def profile_config(config: EngineConfig) -> EngineConfig:
    """`config` without the identity secrets: a profile never reads them (`profile_token`),
    so they need not travel to the executors with this step."""
    return dataclasses.replace(config, identity_secrets=(), previous_secret_until=None)


def partition_profiles(rows: pa.Table, config: EngineConfig, edits: ContactEdits) -> pl.DataFrame:
    """The profiles of the contacts whose every row is in `rows`, admins' edits applied: the
    local builder over a Parquet copy of the rows, spilling to a private folder (0700: the
    rows are personal data), removed after."""
    import pyarrow.parquet as pq

    folder = Path(tempfile.mkdtemp(prefix="contacts-profiles-"))
    try:
        source = folder / "rows.parquet"
        pq.write_table(rows, source)
        contacts = build_contacts_frame(
            f"SELECT * FROM read_parquet('{source}')", config, folder / "duckdb_tmp"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return edits.apply(contacts)


def _partition(
    batches: Iterator[pa.RecordBatch],
    config: EngineConfig,
    edits: ContactEdits,
    target: pa.Schema,
) -> Iterator[pa.RecordBatch]:
    """`mapInArrow`'s function: the partition's whole batch iterator is one builder input (a
    contact's rows may sit in several batches)."""
    import pyarrow as pa

    whole = list(batches)
    if sum(b.num_rows for b in whole) == 0:
        return
    contacts = partition_profiles(pa.Table.from_batches(whole), config, edits)
    yield from contacts.to_arrow().cast(target).to_batches()


def profile_rows(spark: SparkSession, interactions: Path, assignment: Path) -> DataFrame:
    """`profile_cache.profile_source` on Spark: each interaction's `PROFILE_COLUMNS` and its
    contact id."""
    rows = spark.read.parquet(str(interactions)).select(*PROFILE_COLUMNS)
    ids = spark.read.parquet(str(assignment)).select("interaction_id", "contact_id")
    return rows.join(ids, "interaction_id")


def profiles_frame(rows: DataFrame, config: EngineConfig, edits: ContactEdits) -> DataFrame:
    """The profiles of `rows` (`profile_rows`), one task per partition of contacts; the schema
    is the builder's own on no rows (built here, on the driver: nothing per contact)."""
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    config = profile_config(config)
    empty = to_arrow_schema(rows.schema, timezone="UTC").empty_table()
    out = partition_profiles(empty, config, edits)
    schema = from_arrow_schema(out.to_arrow(compat_level=pl.CompatLevel.oldest()).schema)
    target = to_arrow_schema(schema, timezone="UTC")
    return rows.repartition("contact_id").mapInArrow(
        lambda it: _partition(it, config, edits, target), schema
    )


def contact_edits(
    spark: SparkSession, decisions: pl.DataFrame, redirects: Path, applied_before: pl.Series
) -> ContactEdits:
    """The edits of the decision log (small: people's work) and the redirects of only the
    contacts they name, found by Spark (the redirects grow with every merge ever made)."""
    from pyspark.sql import functions as F

    edits = decisions.filter(
        pl.col("kind").is_in(EDIT_KINDS) & pl.col("contact_id_l").is_not_null()
    )
    named = edits.get_column("contact_id_l").unique().to_list()
    found = pl.DataFrame(schema={"from_contact_id": pl.String, "to_contact_id": pl.String})
    if named:
        table = spark.read.parquet(str(redirects)).filter(F.col("from_contact_id").isin(named))
        found = pl.from_arrow(  # type: ignore[assignment]
            table.select(*found.columns).toArrow()
        ).cast(found.schema)  # type: ignore[union-attr]
    new = decisions.filter(~pl.col("decision_id").is_in(applied_before.implode()))
    return ContactEdits(edits, found, new.get_column("decision_id"))


@dataclass(frozen=True)
class ProfileFiles:
    interactions: Path
    assignment: Path
    redirects: Path
    contacts: Path  # written


def profiles_on_spark(
    spark: SparkSession, files: ProfileFiles, config: EngineConfig, edits: ContactEdits
) -> dict[str, int]:
    """Every contact's profile built on Spark and written as `files.contacts`; the step's
    figures (contacts, verified, leads), counted from that file's two boolean columns."""
    rows = profile_rows(spark, files.interactions, files.assignment)
    write_file(profiles_frame(rows, config, edits), files.contacts, "contact_id")
    counts = (
        pl.scan_parquet(files.contacts)
        .select(
            pl.len().alias("contacts"),
            pl.col("identity_verified").sum().alias("verified"),
            pl.col("is_lead").sum().alias("leads"),
        )
        .collect()
    )
    return {k: int(v or 0) for k, v in counts.row(0, named=True).items()}
