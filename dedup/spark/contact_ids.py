"""The `contact_ids` step on Spark: tonight's clusters → stable contact ids under the decision
log, the per-interaction tables staying on the cluster (issue 27).

The local engine (`dedup.identity.resolution.resolve_ids`) holds tonight's clusters and last
night's assignment whole. Here the driver holds what decisions and tonight's merges name, and
runs the local functions on it (one implementation of each rule):

- **Last night's ids** (the published file's `interactions`, `contacts`, `contact_redirects`)
  are copied by DuckDB, streaming, into Parquet files under the state's work folder, and read
  by Spark (`previous_on_spark`). The published file is the one record of what last night
  published, whichever engine wrote it: a Parquet folder written by the night that published
  it would need tying to that run (a night that failed after its ids and before publishing
  must not count as last night) and a fallback for a file written by the local engine (the
  first Spark night of a workspace); the copy is one pass over two columns.
- **The constraints** (`constraints_from_decisions`) read last night's rows of only the
  contacts the decisions name (`named_contacts`: their redirects, the ids they are now, those
  ids' interactions). `apply_constraints` runs on only the clusters holding an interaction the
  constraints name, with those interactions' keys: a separation splits the clusters its sides
  are in, a join merges the clusters its interactions are in, a restored id goes to a cluster
  holding what it held, so every other cluster passes through unchanged, on Spark.
- **The ids** are assigned on Spark (`dedup.spark.stable_ids`), forced pairs first; Spark
  writes the assignment and the redirects as the local engine's work files.
- **The merge history** (`update_history`) and the decisions' outcomes run on the driver, from
  tonight's merges (collected alone: a night's merges are few) and last night's rows of the
  contacts in them (what `merge_sides` records).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from dedup.admin.deletion import with_restored
from dedup.admin.privacy import erased_contact_ids
from dedup.identity.automerge import KEY_COLUMNS
from dedup.identity.constraints import (
    ConstrainedClusters,
    Constraints,
    apply_constraints,
    constraints_from_decisions,
    named_contacts,
)
from dedup.identity.merge_history import decision_outcomes, update_history
from dedup.identity.resolution import Resolution
from dedup.identity.stable_ids import (
    AUTO_MERGE_SCHEMA,
    PREVIOUS_ASSIGNMENT_SCHEMA,
    PREVIOUS_CONTACTS_SCHEMA,
    REDIRECT_SCHEMA,
    IdAssignment,
    PreviousState,
)
from dedup.snapshot.files import table_names
from dedup.spark.identity import empty_previous, on_spark, saved
from dedup.spark.stable_ids import SparkIds, SparkPrevious, assign_ids
from dedup.spark.tonight import write_file

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# SparkPrevious field -> (published table, its columns).
PUBLISHED = {
    "assignment": ("interactions", PREVIOUS_ASSIGNMENT_SCHEMA),
    "contacts": ("contacts", PREVIOUS_CONTACTS_SCHEMA),
    "redirects": ("contact_redirects", REDIRECT_SCHEMA),
}
# DuckDB's own memory while it copies (it runs in the driver process): its buffer pool keeps
# the published file's blocks it scanned up to this limit, and each thread holds a Parquet row
# group. One thread and 32 MB: the copy added 44 MB to the driver's peak at 1M (256 MB and
# every thread: 106 MB), in about the same time (2 s).
EXPORT_MEMORY = "32MB"


@dataclass(frozen=True)
class IdFiles:
    """The step's work files: what it reads (written by the steps before) and writes."""

    clusters: Path  # interaction_id, cluster
    interactions: Path  # the live rows (their key columns are read for a split)
    assignment: Path  # out: interaction_id, contact_id
    redirects: Path  # out: from_contact_id, to_contact_id


@dataclass
class SparkResolution:
    """`Resolution` with the per-interaction and per-contact tables left on Spark: `resolution`
    holds the constraints, the clusters they reached (`constrained.clusters`: only those),
    tonight's merges (`ids.auto_merges`, the redirects of their merged ids), the history and the
    outcomes; the figures the step reports are counted by Spark."""

    resolution: Resolution
    contacts: int
    new_contacts: int
    redirects: int
    erased: pl.Series  # `erased_contact_ids` against last night's redirects


def export_previous(db_path: Path, folder: Path) -> dict[str, Path]:
    """Last night's ids as Parquet files in `folder` (a path every executor reads), copied by
    DuckDB from the published file without a frame on the driver; a table the file lacks (or
    no file: the first night) has no entry."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.parquet"):
        old.unlink()
    if not db_path.exists():
        return {}
    out = {}
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        con.execute(f"SET memory_limit = '{EXPORT_MEMORY}'")
        con.execute("SET threads = 1")
        tables = table_names(con)
        for name, (table, schema) in PUBLISHED.items():
            if table in tables:
                out[name] = folder / f"{name}.parquet"
                select = f'SELECT {", ".join(schema)} FROM "{table}"'
                con.execute(f"COPY ({select}) TO '{out[name]}' (FORMAT parquet)")
    finally:
        con.close()
    return out


def _collect(frame: DataFrame, schema: dict) -> pl.DataFrame:
    """A small Spark frame on the driver, in the local engine's schema."""
    return pl.from_arrow(frame.toArrow()).select(list(schema)).cast(schema)  # type: ignore[union-attr]


def _only(frame: DataFrame, column: str, values, schema: dict) -> pl.DataFrame:
    """The rows whose `column` is one of `values` (a few: an `IN` filter, which keeps the
    file's order), collected; none asked, no job."""
    from pyspark.sql import functions as F

    wanted = sorted({v for v in values if v is not None})
    if not wanted:
        return pl.DataFrame(schema=schema)
    return _collect(frame.filter(F.col(column).isin(wanted)), schema)


def previous_on_spark(
    spark: SparkSession, db_path: Path, folder: Path, restored: pl.DataFrame
) -> SparkPrevious:
    """Last night's ids on Spark (`export_previous`), with the contacts restored tonight
    (`with_restored` on the rows `restored` names, the only ones it reads)."""
    files = export_previous(db_path, folder)
    empty = empty_previous(spark)
    frames = {
        name: spark.read.parquet(str(files[name])).select(*getattr(empty, name).columns)
        if name in files
        else getattr(empty, name)
        for name in PUBLISHED
    }
    restored_ids = restored.get_column("contact_id").to_list()
    known = _only(frames["contacts"], "contact_id", restored_ids, PREVIOUS_CONTACTS_SCHEMA)
    nothing = PreviousState.empty()
    back = with_restored(PreviousState(nothing.assignment, known, nothing.redirects), restored)
    if back.assignment.height:  # the restored contacts' rows and first_seen go in
        added = back.contacts.join(known, on="contact_id", how="anti")
        for name, rows in (("assignment", back.assignment), ("contacts", added)):
            ddl = getattr(empty, name).schema
            frames[name] = frames[name].unionByName(spark.createDataFrame(rows.to_arrow(), ddl))
    return SparkPrevious(**frames)


def named_rows(previous: SparkPrevious, ids: set[str]) -> PreviousState:
    """Last night's ids of only `ids` (as decisions name them): their redirects, the live ids
    they are or redirect to, those ids' interactions."""
    redirects = _only(previous.redirects, "from_contact_id", ids, REDIRECT_SCHEMA)
    wanted = ids | set(redirects.get_column("to_contact_id").to_list())
    contacts = _only(previous.contacts, "contact_id", wanted, PREVIOUS_CONTACTS_SCHEMA)
    live = contacts.get_column("contact_id").to_list()
    assignment = _only(previous.assignment, "contact_id", live, PREVIOUS_ASSIGNMENT_SCHEMA)
    return PreviousState(assignment, contacts, redirects)


def constrained_on_spark(
    clusters: DataFrame,
    interactions: DataFrame,
    ambiguous: pl.DataFrame,
    constraints: Constraints,
) -> tuple[DataFrame, ConstrainedClusters]:
    """`apply_constraints` on the clusters holding an interaction the constraints name
    (collected with their members' keys); tonight's clusters with those replaced."""
    from pyspark.sql import functions as F

    spark = clusters.sparkSession
    pinned = pl.concat(
        [
            constraints.separations.select("interaction_id"),
            constraints.joins.select("interaction_id"),
        ]
    ).unique()
    cluster_schema = {"interaction_id": pl.String, "cluster": pl.String}
    key_schema = dict.fromkeys(["interaction_id", *KEY_COLUMNS.values()], pl.String)
    if pinned.height == 0:  # no decision reaches a cluster: all pass through
        nothing = pl.DataFrame(schema=cluster_schema), pl.DataFrame(schema=key_schema)
        return clusters, apply_constraints(*nothing, ambiguous, constraints)
    named = on_spark(spark, pinned, "interaction_id string")
    reached = clusters.join(F.broadcast(named), "interaction_id", "semi").select("cluster")
    reached = reached.distinct().localCheckpoint()
    members = clusters.join(F.broadcast(reached), "cluster", "semi").localCheckpoint()
    keys = interactions.select(*key_schema).join(
        F.broadcast(members.select("interaction_id")), "interaction_id", "semi"
    )
    constrained = apply_constraints(
        _collect(members, cluster_schema).sort("interaction_id"),
        _collect(keys, key_schema).sort("interaction_id"),
        ambiguous,
        constraints,
    )
    bent = on_spark(spark, constrained.clusters, "interaction_id string, cluster string")
    kept = clusters.join(F.broadcast(reached), "cluster", "left_anti")
    return kept.select("interaction_id", "cluster").unionByName(bent), constrained


def _tonight_merges(ids: SparkIds) -> IdAssignment:
    """Tonight's merges (`auto_merges`) and the redirects of their merged ids, collected: what
    `update_history` reads of the id assignment."""
    merges = _collect(ids.auto_merges, AUTO_MERGE_SCHEMA).sort("survivor_id")
    merged = merges.get_column("merged_ids").explode().drop_nulls().to_list()
    redirects = _only(ids.redirects, "from_contact_id", merged, REDIRECT_SCHEMA)
    return IdAssignment(
        contact_of_cluster=pl.DataFrame(schema={"cluster": pl.String, "contact_id": pl.String}),
        redirects=redirects.sort("from_contact_id"),
        auto_merges=merges,
    )


def _merge_members(constraints: Constraints, merges: pl.DataFrame) -> set[str]:
    """Every id that may be a side of tonight's merges: the admins' joins' and the auto ones'."""
    meta = constraints.join_meta
    ids = set(meta.get_column("survivor_id").to_list())
    ids |= set(meta.get_column("sides").explode().drop_nulls().to_list())
    ids |= set(merges.get_column("survivor_id").to_list())
    return ids | set(merges.get_column("merged_ids").explode().drop_nulls().to_list())


def _ids(
    clusters: DataFrame,
    previous: SparkPrevious,
    constrained: ConstrainedClusters,
    held: pl.Series,
    decided_at: datetime,
    work: str,
) -> SparkIds:
    """`assign_ids` on Spark, forced pairs first; each table saved once (each is read twice)."""
    spark = clusters.sparkSession
    ids = assign_ids(
        clusters,
        previous,
        decided_at,
        forced=on_spark(spark, constrained.forced_ids, "cluster string, contact_id string"),
        held=on_spark(spark, held.to_frame("contact_id"), "contact_id string"),
    )
    return SparkIds(
        contact_of_cluster=saved(ids.contact_of_cluster, work, "contact_of_cluster"),
        redirects=saved(ids.redirects, work, "redirects"),
        auto_merges=saved(ids.auto_merges, work, "merges"),
    )


@dataclass(frozen=True)
class LastNight:
    """What the step reads of the published file besides the ids (small: on the driver)."""

    merges: pl.DataFrame  # MERGES_SCHEMA
    sides: pl.DataFrame  # MERGE_SIDES_SCHEMA
    restored: pl.DataFrame  # interaction_id, contact_id, occurred_at of restored deletions


def _history(
    previous: SparkPrevious,
    ids: SparkIds,
    constraints: Constraints,
    constrained: ConstrainedClusters,
    last: LastNight,
    decisions: pl.DataFrame,
    decided_at: datetime,
) -> SparkResolution:
    """The merge history and the outcomes on the driver; the figures counted by Spark."""
    tonight = _tonight_merges(ids)
    members = _merge_members(constraints, tonight.auto_merges)
    nothing = PreviousState.empty()
    rows = _only(previous.assignment, "contact_id", members, PREVIOUS_ASSIGNMENT_SCHEMA)
    history = update_history(
        last.merges,
        last.sides,
        PreviousState(rows, nothing.contacts, nothing.redirects),
        tonight,
        constraints,
        constrained,
        decided_at,
    )
    erased = erased_contact_ids(decisions, nothing.redirects).to_list()
    via = _only(previous.redirects, "to_contact_id", erased, REDIRECT_SCHEMA)
    contacts = ids.contact_of_cluster
    resolution = Resolution(
        constraints=constraints,
        constrained=constrained,
        ids=tonight,
        history=history,
        outcomes=decision_outcomes(decisions, constraints, constrained),
    )
    return SparkResolution(
        resolution=resolution,
        contacts=contacts.count(),
        new_contacts=contacts.join(previous.contacts, "contact_id", "left_anti").count(),
        redirects=ids.redirects.count(),
        erased=erased_contact_ids(decisions, via),
    )


def resolve_on_spark(
    spark: SparkSession,
    work: str,
    db_path: Path,
    files: IdFiles,
    last: LastNight,
    ambiguous: pl.DataFrame,
    decisions: pl.DataFrame,
    held: pl.Series,
    decided_at: datetime,
) -> SparkResolution:
    """`dedup.identity.resolution.resolve_ids` of the clusters work file with the tables that
    grow with the workspace on Spark (module docstring); Spark writes `files.assignment` and
    `files.redirects`."""
    previous = previous_on_spark(spark, db_path, Path(work) / "previous", last.restored)
    named = named_rows(previous, named_contacts(decisions, last.merges))
    constraints = constraints_from_decisions(decisions, named, last.merges, last.sides)
    clusters, constrained = constrained_on_spark(
        spark.read.parquet(str(files.clusters)),
        spark.read.parquet(str(files.interactions)),
        ambiguous,
        constraints,
    )
    clusters = saved(clusters, work, "contact_clusters")
    ids = _ids(clusters, previous, constrained, held, decided_at, work)
    assignment = clusters.join(ids.contact_of_cluster, "cluster")
    write_file(
        assignment.select("interaction_id", "contact_id"), files.assignment, "interaction_id"
    )
    write_file(ids.redirects, files.redirects, "from_contact_id")
    return _history(previous, ids, constraints, constrained, last, decisions, decided_at)
