"""Admins' decisions as constraints on tonight's clusters.

The decision log speaks in contact ids as the admin saw them; the engine clusters interactions.
This module translates one into the other and bends the auto-merge result to fit:

- **separations** (a rejected proposal, an unmerge): groups of interactions, one *side* per
  contact id, that must not end in one contact. When tonight's keys put two sides of a group in
  one cluster, the cluster is split: every side keeps its pinned interactions, and the others
  join the side their identifiers reach first (email before verified user id before phone
  before session, the order of `KEY_STRENGTH`). A key that reaches two sides is a *bridging key*:
  it joins nobody and is reported.
- **joins** (an accepted proposal, a manual merge): the clusters holding either contact's
  interactions become one, and the admin's survivor keeps its id. A join covers what its
  contacts hold in the last published file, less what tonight's unmerges give back to a contact
  the join does not name (by the id the admin saw or its id now): after one of two merges into
  one survivor is undone, the survivor still holds the undone side there, and the other merge's
  join would otherwise span two separated sides, be refused, and its member come apart under a
  new id. (Not the merge's `merge_sides`: they are dropped when its window closes, and a merge
  done after the undone one recorded the undone side in its survivor's.)

Which interactions a side holds: for contacts that are apart in the last published file, what
each holds there (so an interaction that arrived since follows its identifiers); for an unmerge
applied for the first time, what each side held when it was merged (`merge_sides`, recorded by
the run that did the merge). A separation wins over a join that would undo it unless the join is
the later decision; decisions apply in the order they were taken.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import polars as pl

from dedup.decisions import MERGE_KINDS, REJECT_PROPOSAL, UNMERGE
from dedup.identity.automerge import AMBIGUOUS_SCHEMA, KEY_COLUMNS
from dedup.identity.graph import connected_components
from dedup.identity.stable_ids import PreviousState

# Which key decides the side of an interaction reachable from two sides at once.
KEY_STRENGTH = {"email": 0, "user_id": 1, "phone": 2, "session": 3}

MERGE_SIDES_SCHEMA = {"merge_id": pl.String, "contact_id": pl.String, "interaction_id": pl.String}
SEPARATION_SCHEMA = {
    "group_id": pl.String,
    "label": pl.String,
    "interaction_id": pl.String,
    "decided_at": pl.Datetime("us", "UTC"),
    "restore": pl.Boolean,  # the side of an unmerge applied tonight: its id comes back
}
JOIN_SCHEMA = {"join_id": pl.String, "interaction_id": pl.String}
JOIN_META_SCHEMA = {
    "join_id": pl.String,
    "decision_id": pl.String,
    "kind": pl.String,
    "survivor_id": pl.String,
    "sides": pl.List(pl.String),
    "decided_by": pl.String,
    "decided_at": pl.Datetime("us", "UTC"),
    "note": pl.String,
    "first_time": pl.Boolean,
}
UNMERGE_SCHEMA = {
    "decision_id": pl.String,
    "merge_id": pl.String,
    "decided_by": pl.String,
    "decided_at": pl.Datetime("us", "UTC"),
    "note": pl.String,
}
PAIR_SCHEMA = {"contact_id_l": pl.String, "contact_id_r": pl.String}
SKIPPED_SCHEMA = {"decision_id": pl.String, "kind": pl.String, "reason": pl.String}


def decision_merge_id(decision_id: str) -> str:
    """The `merges.merge_id` of the merge a decision makes: known before the run applies it."""
    return "merge_" + hashlib.sha256(decision_id.encode()).hexdigest()[:16]


def unmerge_row_id(decision_id: str) -> str:
    return "unmerge_" + hashlib.sha256(decision_id.encode()).hexdigest()[:16]


@dataclass
class Constraints:
    separations: pl.DataFrame  # SEPARATION_SCHEMA: pinned interactions per side
    joins: pl.DataFrame  # JOIN_SCHEMA: interactions that must end in one contact, per join
    join_meta: pl.DataFrame  # JOIN_META_SCHEMA
    unmerges: pl.DataFrame  # UNMERGE_SCHEMA: unmerges applied for the first time tonight
    separated_pairs: pl.DataFrame  # PAIR_SCHEMA (ordered l < r): never proposed again
    skipped: pl.DataFrame  # SKIPPED_SCHEMA: decisions that could not apply, and why


def _resolver(previous: PreviousState):
    live = set(previous.contacts.get_column("contact_id").to_list())
    redirect = dict(previous.redirects.iter_rows())

    def resolve(contact_id: str | None) -> str | None:
        if contact_id is None:
            return None
        if contact_id in live:
            return contact_id
        target = redirect.get(contact_id)
        return target if target in live else None

    return resolve


def _merge_rows(targets: set[str], merges: pl.DataFrame) -> dict[str, dict]:
    """The merges an unmerge targets, or already undone, by merge id."""
    return {
        row["merge_id"]: row
        for row in merges.filter(
            pl.col("merge_id").is_in(list(targets)) | pl.col("undone_at").is_not_null()
        ).iter_rows(named=True)
    }


def _named(rows: list[dict], merge_rows: dict[str, dict]) -> set[str | None]:
    named = {r[c] for r in rows for c in ("contact_id_l", "contact_id_r", "survivor_id")}
    return named | {c for m in merge_rows.values() for c in (m["survivor_id"], *m["merged_ids"])}


def named_contacts(decisions: pl.DataFrame, merges: pl.DataFrame) -> set[str]:
    """Every contact id the decisions name (as the admin saw it), and the ids of the merges an
    unmerge targets or that were undone: of last night's ids, `constraints_from_decisions`
    reads only these, the ids they redirect to and those ids' interactions (so an engine that
    keeps the assignment elsewhere hands it that much: dedup.spark.contact_ids)."""
    rows = decisions.to_dicts()
    targets = {r["merge_id"] for r in rows if r["kind"] == UNMERGE}
    return {c for c in _named(rows, _merge_rows(targets, merges)) if c is not None}


@dataclass
class _Log:
    """What the decisions name, looked up once: the log is small, the assignment is not."""

    rows: list[dict]
    resolve: Callable[[str | None], str | None]
    merge_rows: dict[str, dict]  # merges an unmerge targets, or already undone
    members_of: dict[str, list[str]]  # live contact -> its interactions in the last file
    sides_of: dict[str, dict[str, list[str]]]  # merge -> contact -> interactions it held
    undone: set[str]  # merge ids undone (tonight or before)
    merged_after: dict[frozenset, datetime]  # pair -> latest merge decision on it


def _read_log(
    decisions: pl.DataFrame,
    previous: PreviousState,
    merges: pl.DataFrame,
    merge_sides: pl.DataFrame,
) -> _Log:
    resolve = _resolver(previous)
    rows = list(decisions.sort("decided_at", "decision_id").iter_rows(named=True))
    targets = {r["merge_id"] for r in rows if r["kind"] == UNMERGE}
    merge_rows = _merge_rows(targets, merges)
    wanted = [x for x in {resolve(c) for c in _named(rows, merge_rows)} if x is not None]
    members_of = dict(
        previous.assignment.filter(pl.col("contact_id").is_in(wanted))
        .group_by("contact_id")
        .agg(pl.col("interaction_id"))
        .iter_rows()
    )
    sides_of: dict[str, dict[str, list[str]]] = {}
    for merge_id, contact_id, ids in (
        merge_sides.filter(pl.col("merge_id").is_in(list(targets)))
        .group_by("merge_id", "contact_id")
        .agg(pl.col("interaction_id"))
        .iter_rows()
    ):
        sides_of.setdefault(merge_id, {})[contact_id] = ids
    undone = {r["merge_id"] for r in rows if r["kind"] == UNMERGE and r["merge_id"] is not None} | {
        m for m, row in merge_rows.items() if row["undone_at"] is not None
    }
    # The latest merge decision on a pair beats an earlier rejection of it.
    merged_after: dict[frozenset, datetime] = {}
    for r in rows:
        if r["kind"] in MERGE_KINDS and decision_merge_id(r["decision_id"]) not in undone:
            merged_after[frozenset((r["contact_id_l"], r["contact_id_r"]))] = r["decided_at"]
    return _Log(rows, resolve, merge_rows, members_of, sides_of, undone, merged_after)


@dataclass
class _Tonight:
    """Constraints collected decision by decision, in the order they were taken."""

    log: _Log
    separations: list[tuple] = field(default_factory=list)
    joins: list[tuple[str, str]] = field(default_factory=list)
    named: dict[str, set[str]] = field(default_factory=dict)  # join -> ids it names or is now
    join_meta: list[dict] = field(default_factory=list)
    unmerges: list[dict] = field(default_factory=list)
    pairs: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)

    def pin(self, group: str, label: str, ids: list[str], at: datetime, restore=False) -> None:
        self.separations.extend((group, label, i, at, restore) for i in ids)

    def reject(self, r: dict) -> None:
        did, kind, at = r["decision_id"], r["kind"], r["decided_at"]
        pair = frozenset((r["contact_id_l"], r["contact_id_r"]))
        if self.log.merged_after.get(pair, at) > at:
            return
        left, right = self.log.resolve(r["contact_id_l"]), self.log.resolve(r["contact_id_r"])
        if left is None or right is None:
            self.skipped.append((did, kind, "a contact of the pair no longer exists"))
            return
        self.pairs.append((left, right))
        if left == right:
            self.skipped.append((did, kind, f"both are already contact {left}; unmerge it instead"))
            return
        self.pin(did, left, self.log.members_of.get(left, []), at)
        self.pin(did, right, self.log.members_of.get(right, []), at)

    def unmerge(self, r: dict) -> None:
        did, kind, at = r["decision_id"], r["kind"], r["decided_at"]
        target = self.log.merge_rows.get(r["merge_id"])
        if target is None:
            self.skipped.append((did, kind, f"merge {r['merge_id']} is not in the published file"))
            return
        if target["reversible_until"] is not None and at > target["reversible_until"]:
            self.skipped.append((did, kind, "decided after the 30-day unmerge window closed"))
            return
        ids = [target["survivor_id"], *target["merged_ids"]]
        now_ids = [self.log.resolve(c) for c in ids]
        first_time = target["undone_at"] is None
        if first_time:
            keep = ("decision_id", "merge_id", "decided_by", "decided_at", "note")
            self.unmerges.append({k: r[k] for k in keep})
        if not first_time and None not in now_ids and len(set(now_ids)) == len(ids):
            # Already apart: keep them apart as they are now, new interactions included.
            for c in now_ids:
                self.pin(did, c, self.log.members_of.get(c, []), at)
        elif r["merge_id"] in self.log.sides_of:
            for c, held in self.log.sides_of[r["merge_id"]].items():
                self.pin(did, c, held, at, restore=True)
        else:
            self.skipped.append((did, kind, "no record of what each side held"))
            return
        self.pairs.extend((a, b) for a in ids for b in ids if a < b)

    def merge(self, r: dict) -> None:
        did, kind, at = r["decision_id"], r["kind"], r["decided_at"]
        if decision_merge_id(did) in self.log.undone:
            return
        resolve = self.log.resolve
        left, right = resolve(r["contact_id_l"]), resolve(r["contact_id_r"])
        survivor = resolve(r["survivor_id"])
        if left is None or right is None or survivor is None:
            self.skipped.append((did, kind, "a contact of the pair no longer exists"))
            return
        self.joins.extend((did, i) for c in {left, right} for i in self.log.members_of.get(c, []))
        self.named[did] = {r["contact_id_l"], r["contact_id_r"], r["survivor_id"], left, right}
        self.join_meta.append(
            {
                "join_id": did,
                "decision_id": did,
                "kind": kind,
                "survivor_id": survivor,
                "sides": sorted({left, right}),
                "decided_by": r["decided_by"],
                "decided_at": at,
                "note": r["note"],
                "first_time": left != right,
            }
        )

    def kept_joins(self) -> list[tuple[str, str]]:
        """The joins less the interactions tonight's unmerges give back to a contact the join
        does not name (module docstring)."""
        restored: dict[str, set[str]] = {}
        for _, label, interaction, _, restore in self.separations:
            if restore:
                restored.setdefault(interaction, set()).add(label)
        return [
            (join, i) for join, i in self.joins if not restored.get(i, set()) - self.named[join]
        ]

    def constraints(self) -> Constraints:
        pairs = pl.DataFrame(self.pairs, schema=PAIR_SCHEMA, orient="row")
        return Constraints(
            separations=pl.DataFrame(self.separations, schema=SEPARATION_SCHEMA, orient="row"),
            joins=pl.DataFrame(self.kept_joins(), schema=JOIN_SCHEMA, orient="row").unique(),
            join_meta=pl.DataFrame(self.join_meta, schema=JOIN_META_SCHEMA),
            unmerges=pl.DataFrame(self.unmerges, schema=UNMERGE_SCHEMA),
            separated_pairs=pairs.select(
                pl.min_horizontal(list(PAIR_SCHEMA)).alias("contact_id_l"),
                pl.max_horizontal(list(PAIR_SCHEMA)).alias("contact_id_r"),
            ).unique(),
            skipped=pl.DataFrame(self.skipped, schema=SKIPPED_SCHEMA, orient="row"),
        )


def constraints_from_decisions(
    decisions: pl.DataFrame,
    previous: PreviousState,
    merges: pl.DataFrame,
    merge_sides: pl.DataFrame,
) -> Constraints:
    """Tonight's constraints from the whole decision log.

    Args:
        decisions: the decision log (`dedup.decisions.DECISIONS_SCHEMA`), any order.
        previous: ids of the last published file.
        merges: last published `merges` (to find unmerge targets and their reversibility).
        merge_sides: last published `merge_sides`.
    """
    tonight = _Tonight(_read_log(decisions, previous, merges, merge_sides))
    for r in tonight.log.rows:
        if r["kind"] == REJECT_PROPOSAL:
            tonight.reject(r)
        elif r["kind"] == UNMERGE:
            tonight.unmerge(r)
        elif r["kind"] in MERGE_KINDS:
            tonight.merge(r)
    return tonight.constraints()


@dataclass
class ConstrainedClusters:
    clusters: pl.DataFrame  # interaction_id, cluster
    forced_ids: pl.DataFrame  # cluster, contact_id: ids decisions fix for tonight's clusters
    bridging_keys: pl.DataFrame  # AMBIGUOUS_SCHEMA rows for keys that joined separated sides
    conflicts: pl.DataFrame  # SKIPPED_SCHEMA: joins refused because they undo a separation


def _key_edges(keys: pl.DataFrame, ambiguous: pl.DataFrame) -> pl.DataFrame:
    """(interaction_id, key_type, key_value) for every usable key of the given interactions."""
    edges = pl.concat(
        [
            keys.select(
                "interaction_id",
                pl.lit(key_type).alias("key_type"),
                pl.col(column).alias("key_value"),
            ).filter(pl.col("key_value").is_not_null())
            for key_type, column in KEY_COLUMNS.items()
        ]
    )
    return edges.join(
        ambiguous.select("key_type", "key_value"), on=["key_type", "key_value"], how="anti"
    )


def _split(
    members: pl.DataFrame, seeds: pl.DataFrame, edges: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Label every member interaction with the side its keys reach first.

    Args:
        members: interaction_id of the clusters being split.
        seeds: interaction_id, label (pinned sides).
        edges: key edges of the members.

    Returns:
        (interaction_id, label) for every member, and the bridging keys (key_type, key_value,
        labels). Members no side reaches are labelled by their own components.
    """
    labels = seeds.unique("interaction_id", keep="last")
    bridges = []
    for _ in range(10_000):  # each round labels at least one interaction or stops
        reached = (
            edges.join(labels, on="interaction_id")
            .group_by("key_type", "key_value")
            .agg(pl.col("label").unique().sort().alias("labels"))
        )
        bridging = reached.filter(pl.col("labels").list.len() > 1)
        bridges.append(bridging)
        good = reached.filter(pl.col("labels").list.len() == 1).with_columns(
            pl.col("labels").list.first().alias("label")
        )
        candidates = (
            edges.join(labels.select("interaction_id"), on="interaction_id", how="anti")
            .join(good.select("key_type", "key_value", "label"), on=["key_type", "key_value"])
            .with_columns(pl.col("key_type").replace_strict(KEY_STRENGTH).alias("_strength"))
            .sort("_strength", "label")
            .unique("interaction_id", keep="first")
            .select("interaction_id", "label")
        )
        if candidates.height == 0:
            break
        labels = pl.concat([labels, candidates])
    rest = members.join(labels, on="interaction_id", how="anti")
    if rest.height:
        # Reached by nobody (only through bridging keys): components of their own.
        bridge_keys = pl.concat(bridges).select("key_type", "key_value").unique()
        own = edges.join(rest, on="interaction_id").join(
            bridge_keys, on=["key_type", "key_value"], how="anti"
        )
        index = rest.with_row_index("node")
        star = (
            own.join(index, on="interaction_id")
            .with_columns(pl.col("node").min().over("key_type", "key_value").alias("_to"))
            .filter(pl.col("node") != pl.col("_to"))
        )
        comp = connected_components(
            index.height, star.get_column("node").to_numpy(), star.get_column("_to").to_numpy()
        )
        rest_labels = index.with_columns(pl.Series("_comp", comp, dtype=pl.Int64)).select(
            "interaction_id",
            pl.lit(None, pl.String).alias("label"),
            pl.col("interaction_id").min().over("_comp").alias("_own"),
        )
        labels = pl.concat(
            [
                labels.with_columns(pl.lit(None, pl.String).alias("_own")),
                rest_labels,
            ]
        )
    else:
        labels = labels.with_columns(pl.lit(None, pl.String).alias("_own"))
    all_bridges = (
        pl.concat(bridges)
        .sort("key_type", "key_value")
        .unique(["key_type", "key_value"], keep="last")
        if bridges
        else pl.DataFrame()
    )
    return labels, all_bridges


def _bridging_report(edges: pl.DataFrame, bridges: pl.DataFrame) -> pl.DataFrame:
    """AMBIGUOUS_SCHEMA rows for keys that reach two sides an admin separated."""
    if bridges.height == 0:
        return pl.DataFrame(schema=AMBIGUOUS_SCHEMA)
    counts = (
        edges.join(bridges, on=["key_type", "key_value"])
        .group_by("key_type", "key_value")
        .agg(pl.len().alias("n_interactions"))
    )
    return (
        bridges.join(counts, on=["key_type", "key_value"])
        .select(
            "key_type",
            "key_value",
            pl.format(
                "joins contacts an admin separated ({})", pl.col("labels").list.join(", ")
            ).alias("reason"),
            pl.col("labels").list.len().cast(pl.UInt32).alias("n_linked"),
            pl.col("n_interactions").cast(pl.UInt32),
        )
        .sort("key_type", "key_value")
    )


def _separate(
    clusters: pl.DataFrame, keys: pl.DataFrame, ambiguous: pl.DataFrame, constraints: Constraints
) -> tuple[pl.DataFrame, pl.DataFrame | None, pl.DataFrame]:
    """Split the clusters that hold two sides of a separation.

    Returns the clusters, the ids the split fixes (cluster, contact_id; None when nothing was
    split) and the bridging keys.
    """
    sep = constraints.separations.join(clusters, on="interaction_id")
    violated = (
        sep.group_by("group_id", "cluster")
        .agg(pl.col("label").n_unique().alias("n"))
        .filter(pl.col("n") > 1)
    )
    if violated.height == 0:
        return clusters, None, pl.DataFrame(schema=AMBIGUOUS_SCHEMA)
    seeds = (
        sep.join(violated.select("group_id", "cluster"), on=["group_id", "cluster"])
        .sort("decided_at", "group_id")
        .select("interaction_id", "label", "cluster")
    )
    members = clusters.join(violated.select("cluster").unique(), on="cluster").select(
        "interaction_id"
    )
    edges = _key_edges(keys.join(members, on="interaction_id"), ambiguous)
    labels, bridges = _split(members, seeds.select("interaction_id", "label"), edges)
    # A side's new cluster is named by its smallest interaction, like any cluster.
    relabelled = labels.with_columns(
        pl.when(pl.col("label").is_not_null())
        .then(pl.col("interaction_id").min().over("label"))
        .otherwise(pl.col("_own"))
        .alias("cluster")
    )
    clusters = pl.concat(
        [
            clusters.join(members, on="interaction_id", how="anti"),
            relabelled.select("interaction_id", "cluster"),
        ]
    )
    forced = (
        relabelled.filter(pl.col("label").is_not_null())
        .select("cluster", pl.col("label").alias("contact_id"))
        .unique()
    )
    return clusters, forced, _bridging_report(edges, bridges)


def _restored_ids(constraints: Constraints, clusters: pl.DataFrame) -> pl.DataFrame:
    """The sides of an unmerge get their ids back even where no key joins them any more (the
    merge was an admin's, or the key that made it is gone): each id goes to the cluster that
    holds most of what it held."""
    return (
        constraints.separations.filter(pl.col("restore"))
        .join(clusters, on="interaction_id")
        .group_by("label", "cluster")
        .agg(pl.len().alias("n"))
        .sort(["n", "cluster"], descending=[True, False])
        .unique("label", keep="first")
        .select("cluster", pl.col("label").alias("contact_id"))
    )


def _allowed_joins(
    meta: pl.DataFrame,
    joined: pl.DataFrame,
    label_of: dict[str, str],
    keys: pl.DataFrame,
    clusters: pl.DataFrame,
) -> tuple[list[str], list[tuple[str, str, str]]]:
    """The joins that may apply, in decision order, and the refused ones with their reason."""
    # Two verified user ids are two accounts: no contact may hold both (the blocking hub
    # check), so a join that would make one is not applied, even when each side verified
    # only after the admin merged them. Clusters joined by earlier decisions count as one.
    accounts = {
        cluster: set(ids)
        for cluster, ids in keys.filter(pl.col(KEY_COLUMNS["user_id"]).is_not_null())
        .join(clusters, on="interaction_id")
        .group_by("cluster")
        .agg(pl.col(KEY_COLUMNS["user_id"]).unique())
        .iter_rows()
    }
    joined_into: dict[str, str] = {}

    def root(cluster: str) -> str:
        while cluster in joined_into:
            cluster = joined_into[cluster]
        return cluster

    allowed: list[str] = []
    conflicts: list[tuple[str, str, str]] = []
    for row in meta.iter_rows(named=True):
        parts = joined.filter(pl.col("join_id") == row["join_id"]).get_column("cluster").to_list()
        if len({label_of[c] for c in parts if c in label_of}) > 1:
            conflicts.append(
                (row["decision_id"], row["kind"], "would join contacts an admin separated")
            )
            continue
        roots = sorted({root(c) for c in parts})
        ids = set().union(*(accounts.get(r, set()) for r in roots))
        if len(ids) > 1:
            conflicts.append((row["decision_id"], row["kind"], "would join two verified accounts"))
            continue
        for other in roots[1:]:
            joined_into[other] = roots[0]
        if roots:
            accounts[roots[0]] = ids
        allowed.append(row["join_id"])
    return allowed, conflicts


def _join(
    clusters: pl.DataFrame, joined: pl.DataFrame, meta: pl.DataFrame, separated: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Clusters after the allowed joins, and the ids they force (survivors first)."""
    names = clusters.select("cluster").unique().sort("cluster").with_row_index("node")
    star = (
        joined.join(names, on="cluster")
        .with_columns(pl.col("node").min().over("join_id").alias("_to"))
        .filter(pl.col("node") != pl.col("_to"))
    )
    comp = connected_components(
        names.height,
        star.get_column("node").to_numpy().astype(np.int64),
        star.get_column("_to").to_numpy().astype(np.int64),
    )
    remap = (
        names.with_columns(pl.Series("_comp", comp, dtype=pl.Int64))
        .with_columns(pl.col("cluster").min().over("_comp").alias("_merged"))
        .select("cluster", "_merged")
    )
    clusters = clusters.join(remap, on="cluster").select(
        "interaction_id", pl.col("_merged").alias("cluster")
    )
    # The latest decision names the survivor of the cluster it lands in.
    survivors = (
        joined.join(remap, on="cluster")
        .join(meta.select("join_id", "survivor_id", "decided_at"), on="join_id")
        .sort("decided_at", "join_id")
        .unique("_merged", keep="last")
        .select(pl.col("_merged").alias("cluster"), pl.col("survivor_id").alias("contact_id"))
    )
    moved = separated.join(remap, on="cluster").select(
        pl.col("_merged").alias("cluster"), "contact_id"
    )
    return clusters, pl.concat([survivors, moved]).unique("cluster", keep="first")


def apply_constraints(
    clusters: pl.DataFrame,
    keys: pl.DataFrame,
    ambiguous: pl.DataFrame,
    constraints: Constraints,
) -> ConstrainedClusters:
    """Split clusters that join separated sides, then join what admins merged.

    Args:
        clusters: interaction_id, cluster (from `auto_merge`).
        keys: interaction_id and the `KEY_COLUMNS` of every interaction.
        ambiguous: auto-merge's ambiguous keys (they link nobody here either).
        constraints: from `constraints_from_decisions`.
    """
    clusters, split_ids, bridging = _separate(clusters, keys, ambiguous, constraints)
    forced_parts = [split_ids] if split_ids is not None else []
    forced_parts.append(_restored_ids(constraints, clusters))
    separated = pl.concat(forced_parts).unique("cluster", keep="first")
    conflicts: list[tuple[str, str, str]] = []
    forced = separated
    if constraints.joins.height:
        joined = (
            constraints.joins.join(clusters, on="interaction_id")
            .select("join_id", "cluster")
            .unique()
        )
        meta = constraints.join_meta.sort("decided_at", "join_id")
        allowed, conflicts = _allowed_joins(
            meta, joined, dict(separated.iter_rows()), keys, clusters
        )
        joined = joined.filter(pl.col("join_id").is_in(allowed))
        if joined.height:
            clusters, forced = _join(clusters, joined, meta, separated)
    # One contact id is forced onto one cluster at most: the first claim stands.
    forced = forced.sort("cluster").unique("contact_id", keep="first").sort("cluster")
    return ConstrainedClusters(
        clusters=clusters.sort("interaction_id"),
        forced_ids=forced,
        bridging_keys=bridging,
        conflicts=pl.DataFrame(conflicts, schema=SKIPPED_SCHEMA, orient="row"),
    )
