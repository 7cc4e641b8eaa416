"""Stable contact ids: tonight's clusters inherit last night's contact ids.

Rules (docs/identity.md):
- A cluster and a previous contact are paired one-to-one by *mutual* preference: a cluster prefers
  the oldest previous contact it shares interactions with (so when two contacts merge, the older
  survives); a previous contact prefers the cluster holding most of its interactions (so a split
  keeps the id on the larger part). Paired rounds repeat until no pair is left; every round pairs
  at least the globally oldest contact, so it ends.
- A previous contact left unpaired was merged away: it redirects to the id of the cluster that
  holds most of its interactions, and a `merges` row of kind `auto` records it.
- A cluster left unpaired gets a new id derived from its smallest interaction id, so a rebuild from
  scratch gives the same ids and a re-run is byte-identical. An id is never reused.
- Redirect chains are flattened so every redirect points at a live contact.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import polars as pl

ID_PREFIX = "contact_"

PREVIOUS_ASSIGNMENT_SCHEMA = {"interaction_id": pl.String, "contact_id": pl.String}
PREVIOUS_CONTACTS_SCHEMA = {"contact_id": pl.String, "first_seen": pl.Datetime("us", "UTC")}
REDIRECT_SCHEMA = {"from_contact_id": pl.String, "to_contact_id": pl.String}
AUTO_MERGE_SCHEMA = {
    "merge_id": pl.String,
    "survivor_id": pl.String,
    "merged_ids": pl.List(pl.String),
}


@dataclass(frozen=True)
class PreviousState:
    """What the last published snapshot said about ids."""

    assignment: pl.DataFrame  # interaction_id, contact_id
    contacts: pl.DataFrame  # contact_id, first_seen
    redirects: pl.DataFrame  # from_contact_id, to_contact_id

    @classmethod
    def empty(cls) -> PreviousState:
        return cls(
            pl.DataFrame(schema=PREVIOUS_ASSIGNMENT_SCHEMA),
            pl.DataFrame(schema=PREVIOUS_CONTACTS_SCHEMA),
            pl.DataFrame(schema=REDIRECT_SCHEMA),
        )


@dataclass
class IdAssignment:
    contact_of_cluster: pl.DataFrame  # cluster, contact_id
    redirects: pl.DataFrame  # from_contact_id, to_contact_id (every redirect, flattened)
    auto_merges: pl.DataFrame  # merge_id, survivor_id, merged_ids (tonight's)


def new_contact_id(seed: str, attempt: int = 0) -> str:
    text = seed if attempt == 0 else f"{seed}#{attempt}"
    return ID_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:16]


def _pair_mutually(cand: pl.DataFrame) -> pl.DataFrame:
    """One-to-one pairs (cluster, contact_id) by mutual preference; see module docstring."""
    pairs = []
    while cand.height:
        cluster_pick = cand.sort("first_seen", "contact_id", nulls_last=True).unique(
            "cluster", keep="first"
        )
        contact_pick = cand.sort(
            pl.col("n_shared"), pl.col("cluster"), descending=[True, False]
        ).unique("contact_id", keep="first")
        mutual = cluster_pick.join(contact_pick, on=["cluster", "contact_id"], how="inner").select(
            "cluster", "contact_id"
        )
        if mutual.height == 0:  # cannot happen (see docstring); guard against an endless loop
            raise RuntimeError("stable id pairing made no progress")
        pairs.append(mutual)
        cand = cand.join(mutual.select("cluster"), on="cluster", how="anti").join(
            mutual.select("contact_id"), on="contact_id", how="anti"
        )
    if not pairs:
        return pl.DataFrame(schema={"cluster": pl.String, "contact_id": pl.String})
    return pl.concat(pairs)


def _fresh_ids(clusters: pl.Series, used: list[pl.Series]) -> list[str]:
    """A new id per cluster, in order: its seed's hash, or the next attempt while the id is
    taken (by one of `used` or an earlier cluster of this call)."""
    seeds = clusters.to_list()
    first = [new_contact_id(seed) for seed in seeds]
    firsts = pl.Series(first, dtype=pl.String).implode()
    # Nearly always no first attempt is taken: then the loop below would keep every one, and
    # the used ids (a million on a full night) need not become a Python set.
    if len(set(first)) == len(first) and not any(u.is_in(firsts).any() for u in used):
        return first
    taken = {i for u in used for i in u.to_list()}
    out = []
    for seed in seeds:
        attempt = 0
        cid = new_contact_id(seed)
        while cid in taken:
            attempt += 1
            cid = new_contact_id(seed, attempt)
        taken.add(cid)
        out.append(cid)
    return out


def _flatten(redirects: pl.DataFrame, live: pl.Series) -> pl.DataFrame:
    """Follow chains until each redirect ends at a live id; drop those that end nowhere."""
    current = redirects
    for _ in range(64):
        step = current.join(
            redirects.rename({"from_contact_id": "to_contact_id", "to_contact_id": "_next"}),
            on="to_contact_id",
            how="left",
        )
        if step.get_column("_next").null_count() == step.height:
            break
        current = step.select(
            "from_contact_id", pl.coalesce("_next", "to_contact_id").alias("to_contact_id")
        )
    return (
        current.filter(pl.col("to_contact_id").is_in(live.implode()))
        .filter(~pl.col("from_contact_id").is_in(live.implode()))
        .unique("from_contact_id", keep="first")
        .sort("from_contact_id")
    )


def assign_ids(
    clusters: pl.DataFrame,
    previous: PreviousState,
    decided_at: datetime,
    forced: pl.DataFrame | None = None,
    held: pl.Series | None = None,
    carried: pl.DataFrame | None = None,
) -> IdAssignment:
    """Give every cluster a contact id, reusing last night's where the data says so.

    Args:
        clusters: interaction_id, cluster.
        previous: the last published snapshot's ids.
        decided_at: stamped into merge ids so a later re-merge of the same ids is a new event.
        forced: cluster, contact_id pairs fixed by admins' decisions (a chosen survivor, the
            sides of an unmerge); they are paired first and the rules apply to the rest.
        held: ids of deleted contacts that may still be restored (dedup.admin.deletion): no cluster
            gets them, and redirects into them are kept.
        carried: cluster, contact_id of clusters left out of `clusters` because each holds
            exactly its contact's interactions of last night and no decision names either
            (`dedup.identity.carried_ids`): such a pair shares interactions with nothing else, so
            the rules pair them whatever the other clusters do; they count as live here.
    """
    held = pl.Series("contact_id", [], dtype=pl.String) if held is None else held
    overlap = (
        clusters.join(previous.assignment, on="interaction_id", how="inner")
        .group_by("cluster", "contact_id")
        .agg(pl.len().alias("n_shared"))
        .join(previous.contacts, on="contact_id", how="left")
    )
    if forced is not None and forced.height:
        forced = forced.select("cluster", "contact_id").cast(pl.String)
        rest = overlap.join(forced.select("cluster"), on="cluster", how="anti").join(
            forced.select("contact_id"), on="contact_id", how="anti"
        )
        paired = pl.concat([forced, _pair_mutually(rest)])
    else:
        paired = _pair_mutually(overlap)

    all_clusters = clusters.select("cluster").unique().sort("cluster")
    unpaired = all_clusters.join(paired, on="cluster", how="anti")
    used = [
        previous.contacts.get_column("contact_id"),
        previous.redirects.get_column("from_contact_id"),
        previous.assignment.get_column("contact_id"),
        held,
    ]
    fresh = unpaired.with_columns(
        pl.Series("contact_id", _fresh_ids(unpaired.get_column("cluster"), used), dtype=pl.String)
    )
    kept = [] if carried is None else [carried.select("cluster", "contact_id").cast(pl.String)]
    contact_of_cluster = pl.concat([paired, fresh, *kept]).sort("cluster")

    # Previous contacts that lost every cluster were merged into the holder of most of them.
    losers = (
        overlap.join(paired.select("contact_id"), on="contact_id", how="anti")
        .sort(pl.col("n_shared"), pl.col("cluster"), descending=[True, False])
        .unique("contact_id", keep="first")
        .join(contact_of_cluster.rename({"contact_id": "to_contact_id"}), on="cluster")
        .select(pl.col("contact_id").alias("from_contact_id"), "to_contact_id")
    )
    live = contact_of_cluster.get_column("contact_id")
    redirects = _flatten(pl.concat([previous.redirects, losers]), pl.concat([live, held]))

    stamp = decided_at.isoformat()
    merges = (
        losers.group_by("to_contact_id")
        .agg(pl.col("from_contact_id").sort().alias("merged_ids"))
        .sort("to_contact_id")
        .rename({"to_contact_id": "survivor_id"})
    )
    merge_ids = [
        "merge_" + hashlib.sha256(f"{s}|{','.join(m)}|{stamp}".encode()).hexdigest()[:16]
        for s, m in zip(
            merges.get_column("survivor_id").to_list(),
            merges.get_column("merged_ids").to_list(),
            strict=True,
        )
    ]
    merges = merges.with_columns(pl.Series("merge_id", merge_ids, dtype=pl.String)).select(
        list(AUTO_MERGE_SCHEMA)
    )
    return IdAssignment(
        contact_of_cluster=contact_of_cluster, redirects=redirects, auto_merges=merges
    )
