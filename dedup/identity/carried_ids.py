"""Contact ids carried over for the clusters whose interactions did not change (issue 25).

`resolve_ids` bends every cluster by the decisions, pairs every cluster with last night's
contacts and records the merges, over all of history. Most clusters of a night are last night's
contacts unchanged, and for those the rules give a known answer:

- A cluster whose interactions are *exactly* one previous contact's (every one it held in the
  published file, no other) shares interactions with that contact only, and the contact with it
  only: the pairing (`stable_ids`) is by mutual preference among the contacts and clusters that
  share interactions, so the two pair in the first round whatever the other clusters do, unless
  a decision forces one of them elsewhere. Nothing else reads such a pair: it takes no fresh id
  (so it moves no other cluster's next hash), loses no contact (no redirect, no `merges` row),
  and its contact id only counts as live when redirects are flattened.
- A decision reaches a cluster only through interactions it pins or joins
  (`constraints.Constraints.separations`, `.joins`) and a contact only as a side's label or a
  join's survivor or side; clusters holding none of those interactions come out of
  `apply_constraints` as they went in, and the joins' verified-account check reads only the
  clusters they join.

So a cluster is carried over when it holds exactly the interactions of a contact of the
published file, none of tonight's constraints' interactions, and its contact is no label,
survivor or side of a decision; every other cluster goes through the same functions as the
full path (`apply_constraints`, `assign_ids`, `update_history`) with last night's full state,
and the carried pairs join the result. The files written are the full path's, row for row.

"Exactly the interactions of a contact": each night keeps, beside its clusters, one row per
contact it assigned (`<cache>/ids/clusters-<gen>.parquet`: the cluster, its contact id, its
size and two sums of a 64-bit hash of its interaction ids), under a token naming the run that
wrote it (its `run_id`, which the published file's `pipeline_runs` holds once that night is
published) and the code it ran. Every contact of a night holds exactly the interactions of its
cluster (one contact per cluster), and the published `interactions` are that night's
assignment; so when the published file's last run is the kept one's, a cluster of tonight with
the kept row's label, size and sums is that contact's interactions (two different sets with
the same size and sums are assumed not to occur, as the identity index assumes of its hashes).
A night that was killed after this step, a Spark night (which keeps nothing), another release
or `--full` assigns every cluster (`IdsPlan.full` says why), as does a night where more than
`MAX_CHANGED_SHARE` of the interactions are in clusters not carried over.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from dedup.code_token import code_token
from dedup.generations import kept_state, write_generation
from dedup.identity import constraints as constraints_module
from dedup.identity import merge_history, resolution, stable_ids
from dedup.identity.constraints import (
    ConstrainedClusters,
    Constraints,
    apply_constraints,
    constraints_from_decisions,
)
from dedup.identity.merge_history import decision_outcomes, update_history
from dedup.identity.resolution import PreviousIds, Resolution, resolve_ids
from dedup.identity.stable_ids import assign_ids

# Above this share of interactions to assign again, the full path is as cheap.
MAX_CHANGED_SHARE = 0.5
KEPT_SCHEMA = {
    "cluster": pl.String,
    "contact_id": pl.String,
    "n": pl.UInt32,
    "h_lo": pl.UInt64,
    "h_hi": pl.UInt64,
}
STATS = ["cluster", "n", "h_lo", "h_hi"]
_HASH_SEED = 25
_LOW = 1 << 32


def ids_token() -> str:
    """The code the kept rows and the carrying rely on, and Polars' hashes."""
    modules = (stable_ids, constraints_module, merge_history, resolution, sys.modules[__name__])
    return code_token([pl.__version__], modules)


def cluster_stats(clusters: pl.DataFrame) -> pl.DataFrame:
    """cluster, n, h_lo, h_hi: its size and the sums of the low and high 32 bits of its
    interaction ids' hashes (each sum below 2^64 for any cluster under 2^32 rows)."""
    h = pl.col("interaction_id").hash(_HASH_SEED)
    return clusters.group_by("cluster").agg(
        pl.len().cast(pl.UInt32).alias("n"),
        (h % _LOW).sum().alias("h_lo"),
        (h // _LOW).sum().alias("h_hi"),
    )


@dataclass
class IdsPlan:
    """How tonight's ids were made; `full` says why every cluster was assigned."""

    full: str | None = None
    assigned: int = 0  # interactions of the clusters assigned again
    clusters_assigned: int = 0
    carried: int = 0  # clusters carried over
    carried_rows: int = 0

    def describe(self) -> str:
        if self.full:
            return f"full: {self.full}"
        return (
            f"incremental: {self.assigned:,} interactions of {self.clusters_assigned:,} "
            f"clusters assigned again, {self.carried:,} contacts carried over "
            f"({self.carried_rows:,} interactions)"
        )


class KeptIds:
    """The contacts a night assigned, kept under `root` for the next night."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def read(self, published_run: str | None) -> pl.DataFrame | str:
        """The kept rows if they describe the published file's last run under this code, or
        why they cannot be used."""
        state = kept_state(self.root)
        if state is None:
            return "no contact ids kept yet"
        run, _, token = str(state.get("token", "")).partition(" ")
        if token != ids_token():
            return "contact id code changed"
        if published_run is None or run != published_run:
            return (
                "the kept contact ids are not the published file's (a night that did not publish)"
            )
        try:
            kept = pl.read_parquet(self.root / f"clusters-{state.get('gen')}.parquet")
            return kept.select(list(KEPT_SCHEMA)).cast(KEPT_SCHEMA)  # type: ignore[arg-type]
        except (OSError, pl.exceptions.PolarsError):
            return "kept contact ids unreadable"

    def write(self, run_id: str, stats: pl.DataFrame, contact_of_cluster: pl.DataFrame) -> None:
        rows = stats.join(contact_of_cluster, on="cluster").select(list(KEPT_SCHEMA))
        write_generation(self.root, f"{run_id} {ids_token()}", {"clusters": rows})


@dataclass
class CarriedResolution:
    resolution: Resolution
    stats: pl.DataFrame  # STATS of every constrained cluster (tomorrow's kept rows)
    plan: IdsPlan


def resolve_carried(
    clusters: pl.DataFrame,
    ambiguous: pl.DataFrame,
    load_keys: Callable[[pl.Series | None], pl.DataFrame],
    decisions: pl.DataFrame,
    previous: PreviousIds,
    held: pl.Series,
    decided_at: datetime,
    kept: pl.DataFrame | str,
    max_share: float | None = None,
) -> CarriedResolution:
    """`resolve_ids` with the clusters that hold exactly a kept contact carried over (module
    docstring); every cluster assigned when `kept` is a reason (or too much changed).

    Args:
        clusters, ambiguous, decisions, previous, held, decided_at: as `resolve_ids`.
        load_keys: interaction_id and the key columns of the given interactions (None: all).
        kept: `KeptIds.read`'s answer.
        max_share: of the interactions, at most this many in clusters assigned again
            (`MAX_CHANGED_SHARE` unless given), or every cluster is.
    """
    stats = cluster_stats(clusters)
    plan = IdsPlan(full=kept if isinstance(kept, str) else None)
    if isinstance(kept, pl.DataFrame):
        constraints = constraints_from_decisions(
            decisions, previous.state, previous.merges, previous.sides
        )
        carried = _carried(clusters, stats, kept, constraints)
        is_carried = pl.col("cluster").is_in(carried.get_column("cluster").implode())
        rest, kept_rows = clusters.filter(~is_carried), clusters.filter(is_carried)
        share = MAX_CHANGED_SHARE if max_share is None else max_share
        if rest.height <= share * clusters.height:
            keys = load_keys(rest.get_column("interaction_id")) if decisions.height else None
            bent = _over_rest(kept_rows, rest, ambiguous, keys, constraints)
            resolved = _assigned(bent, carried, constraints, decisions, previous, held, decided_at)
            plan.assigned, plan.carried = rest.height, carried.height
            plan.clusters_assigned = stats.height - carried.height
            plan.carried_rows = clusters.height - rest.height
            return CarriedResolution(resolved, bent.stats(stats, carried), plan)
        plan.full = f"{rest.height:,} of {clusters.height:,} interactions in changed clusters"
    resolved = resolve_ids(
        clusters, ambiguous, lambda: load_keys(None), decisions, previous, held, decided_at
    )
    plan.assigned, plan.clusters_assigned = clusters.height, stats.height
    return CarriedResolution(resolved, cluster_stats(resolved.constrained.clusters), plan)


def _carried(
    clusters: pl.DataFrame,
    stats: pl.DataFrame,
    kept: pl.DataFrame,
    constraints: Constraints,
) -> pl.DataFrame:
    """STATS and contact_id of the clusters carried over: a kept contact's interactions
    exactly, none a decision pins or joins, and a contact no decision may force elsewhere.

    Both are needed: an unmerge pins what each side held when it was merged, which may lie in
    another contact's cluster by now (that cluster may be split), while its survivor's cluster
    holds none of it (the survivor's id is forced onto the cluster holding most of it)."""
    pinned = pl.concat(
        [
            constraints.separations.get_column("interaction_id"),
            constraints.joins.get_column("interaction_id"),
        ]
    )
    reached = (
        clusters.filter(pl.col("interaction_id").is_in(pinned.implode()))
        .get_column("cluster")
        .unique()
    )
    named = pl.concat(
        [
            constraints.separations.get_column("label"),
            constraints.join_meta.get_column("survivor_id"),
            constraints.join_meta.get_column("sides").explode(),
        ]
    ).drop_nulls()
    return (
        stats.join(kept, on=STATS)
        .filter(~pl.col("cluster").is_in(reached.implode()))
        .filter(~pl.col("contact_id").is_in(named.implode()))
    )


def _assigned(
    bent: _Rest,
    carried: pl.DataFrame,
    constraints: Constraints,
    decisions: pl.DataFrame,
    previous: PreviousIds,
    held: pl.Series,
    decided_at: datetime,
) -> Resolution:
    """`resolve_ids`' last steps over the rest, with the carried pairs among the live ids."""
    ids = assign_ids(
        bent.clusters_rest,
        previous.state,
        decided_at,
        bent.constrained.forced_ids,
        held=held,
        carried=carried.select("cluster", "contact_id"),
    )
    history = update_history(
        previous.merges,
        previous.sides,
        previous.state,
        ids,
        constraints,
        bent.constrained,
        decided_at,
    )
    return Resolution(
        constraints=constraints,
        constrained=bent.constrained,
        ids=ids,
        history=history,
        outcomes=decision_outcomes(decisions, constraints, bent.constrained),
    )


@dataclass
class _Rest:
    """The decisions applied to the clusters not carried over."""

    constrained: ConstrainedClusters  # its clusters: every interaction's, as the full path's
    clusters_rest: pl.DataFrame  # the constrained clusters of the rest only

    def stats(self, stats: pl.DataFrame, carried: pl.DataFrame) -> pl.DataFrame:
        """Tomorrow's kept statistics: the carried clusters' are tonight's."""
        return pl.concat(
            [
                stats.join(carried.select("cluster"), on="cluster"),
                cluster_stats(self.clusters_rest),
            ]
        )


def _over_rest(
    kept_rows: pl.DataFrame,
    rest: pl.DataFrame,
    ambiguous: pl.DataFrame,
    keys: pl.DataFrame | None,
    constraints: Constraints,
) -> _Rest:
    """`apply_constraints` over the rest; its clusters with the carried ones' rows, sorted by
    interaction id as `apply_constraints` sorts every row on the full path."""
    bent = apply_constraints(rest, pl.DataFrame() if keys is None else keys, ambiguous, constraints)
    every = pl.concat([kept_rows.select("interaction_id", "cluster"), bent.clusters])
    constrained = ConstrainedClusters(
        clusters=every.sort("interaction_id"),
        forced_ids=bent.forced_ids,
        bridging_keys=bent.bridging_keys,
        conflicts=bent.conflicts,
    )
    return _Rest(constrained=constrained, clusters_rest=bent.clusters)
