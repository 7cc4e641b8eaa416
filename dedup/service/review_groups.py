"""Review by person: open proposals grouped by the contacts they connect, decided at once.

A *group* is a connected component of the proposal graph (`dedup.identity.graph`): its nodes
are live contacts, its edges the open proposals — pending in the published file, not decided in
the log since, naming no deleted contact, and not made moot by merges waiting in the log
(`review.joined_by_pending`). A group is named by its most probable proposal, and any of its
proposals finds it. One contact in two proposals makes a group of three: the admin sees the
three side by side and decides once.

Deciding a group appends ordinary decisions (`dedup.decisions`) in one transaction, so the run
applies them like any other and each merge is undone on its own (`contacts unmerge`):

- **accept all**: the admin picks the survivor; every other member joins it by one merge of its
  own: the accepted proposal between that member and the survivor where there is one
  (`merges.kind = 'proposal'`), else a manual merge whose note names the accepted proposals that
  connect them. A proposal between two members neither of which survives gets no decision of its
  own: its contacts become one, and the run publishes it as `superseded` (docs/matching.md).
- **reject all**: every proposal of the group is rejected.
- **split**: per proposal accept, reject or leave pending. Each set of contacts the accepted
  proposals connect becomes one contact, kept under the admin's survivor where it is in the set,
  else under the contact seen first (the rule `accept_all_above` and auto-merge use). A
  rejection inside such a set contradicts it and is refused.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl

from dedup.decisions import ACCEPT_PROPOSAL, MANUAL_MERGE, REJECT_PROPOSAL, Decision, append_many
from dedup.identity.graph import connected_components
from dedup.layout import StateLayout
from dedup.matching import groups as proposal_graph
from dedup.service import read_cache, review
from dedup.service.explain_words import in_words, load_base_weights

# The saved Splink model (assets.resources.ContactsSettings.model_path): its m/u say how much
# of an exact agreement's weight is the value's rarity.
MODEL_FILE = Path("model") / "splink_model.json"
MEMBER_FIELDS = (
    "name",
    "email",
    "phone",
    "company",
    "channels",
    "audience",
    "tags",
    "first_seen",
    "last_seen",
    "conversation_count",
    "identity_verified",
)
ACCEPT, REJECT, LEAVE = "accept", "reject", "leave"
OPEN_SQL = """
    SELECT proposal_id, contact_id_l, contact_id_r, match_probability, match_weight, explanation
    FROM merge_proposals WHERE status = 'pending'
    ORDER BY match_probability DESC NULLS LAST, proposal_id
"""


def with_groups(proposals: pl.DataFrame) -> pl.DataFrame:
    """`proposals` (proposal_id, contact_id_l, contact_id_r, match_probability) plus `group_id`:
    the id of the most probable proposal of its connected component (ties: smallest id)."""
    if proposals.height == 0:
        return proposals.with_columns(pl.lit(None, pl.String).alias("group_id"))
    components = proposal_graph.proposal_groups(proposals, status=None).select(
        "proposal_id", pl.col("group_id").alias("_component")
    )
    ranked = proposals.join(components, on="proposal_id", how="left").sort(
        pl.col("match_probability").fill_null(1.0), "proposal_id", descending=[True, False]
    )
    return ranked.with_columns(
        pl.col("proposal_id").first().over("_component").alias("group_id")
    ).drop("_component")


def open_proposals(db: Path) -> pl.DataFrame:
    """Every open proposal (module docstring) with its `group_id`, most probable first.

    Computed once per version of the decision log and the published file (`read_cache`: a
    decision or a publish shows in the very next read), not per request.
    """
    return read_cache.CACHE.get(
        ("open_proposals", db), review.pending_files(db), lambda: _open_proposals(db)
    )


def _open_proposals(db: Path) -> pl.DataFrame:
    log = review.pending_decisions(db)
    decided = [d["proposal_id"] for d in log if d["proposal_id"]]
    joined = review.joined_by_pending(log)
    hidden = list(review.hidden_ids(db))
    with review.published(db) as con:
        frame = con.execute(OPEN_SQL).pl()
    frame = frame.filter(
        ~pl.col("proposal_id").is_in(decided)
        & ~pl.col("contact_id_l").is_in(hidden)
        & ~pl.col("contact_id_r").is_in(hidden)
    )
    moot = [
        p
        for p, left, right in frame.select("proposal_id", "contact_id_l", "contact_id_r").rows()
        if review.one_after_pending(joined, left, right)
    ]
    return with_groups(frame.filter(~pl.col("proposal_id").is_in(moot)))


def _members(db: Path, ids: list[str]) -> list[dict]:
    """The contacts `ids`, seen first first (the default survivor leads)."""
    with review.published(db) as con:
        return review._rows(
            con,
            f"""
            SELECT contact_id, {", ".join(MEMBER_FIELDS)} FROM contacts
            WHERE contact_id IN (SELECT unnest(?)) ORDER BY first_seen, contact_id
            """,
            [ids],
        )


def proposal_groups(
    db: Path, min_probability: float = 0.0, search: str | None = None, limit: int = 50
) -> list[dict]:
    """The review queue by person: one row per group, most probable first.

    Each row: `group_id`, `size` (contacts), `proposals` (how many), `match_probability` (the
    group's highest), `members` (contact_id, name, email; seen first first) and, for a group of
    two, the pair as `review_queue` gives it (`proposal_id`, `contact_id_l`, `name_l`, ...).
    `search` keeps groups with a member whose name or email contains it.
    """
    if search and not any(ch.isalnum() for ch in search):
        return []
    rows = []
    for group in _groups(db):
        top = group["top"]
        if (top["match_probability"] or 0.0) < min_probability:
            continue
        if search and search.lower() not in group["text"]:
            continue
        members = group["members"]
        people = {m["contact_id"]: m for m in members}
        rows.append(_queue_row(group["group_id"], top, group["proposals"], members, people))
        if len(rows) == limit:
            break
    return rows


def _groups(db: Path) -> list[dict]:
    """Every open group, most probable first: `group_id`, its `top` proposal, how many
    `proposals`, its `members` (MEMBER_FIELDS, seen first first) and the `text` a search looks
    in. Kept while the log and the published file keep their version, like open_proposals:
    at 6,000 proposals, reading their 12,000 contacts and grouping them took ~0.5-1 s a
    request (docs/performance.md)."""

    def load() -> list[dict]:
        frame = open_proposals(db)
        if frame.height == 0:
            return []
        ids = pl.concat([frame["contact_id_l"], frame["contact_id_r"]]).unique().to_list()
        people = {m["contact_id"]: m for m in _members(db, ids)}
        seen_first = {c: n for n, c in enumerate(people)}
        parts: dict[str, list[dict]] = {}
        for row in frame.iter_rows(named=True):  # most probable first: a group's first is its top
            parts.setdefault(row["group_id"], []).append(row)
        groups = []
        for group_id, part in parts.items():
            member_ids = {c for p in part for c in (p["contact_id_l"], p["contact_id_r"])}
            members = [
                people[c] for c in sorted(member_ids & seen_first.keys(), key=seen_first.get)
            ]
            text = " ".join(f"{m['name'] or ''} {m['email'] or ''}" for m in members).lower()
            groups.append(
                {
                    "group_id": group_id,
                    "top": part[0],
                    "proposals": len(part),
                    "members": members,
                    "text": text,
                }
            )
        return groups

    return read_cache.CACHE.get(("proposal_groups", db), review.pending_files(db), load)


def _queue_row(group_id: str, top: dict, n: int, members: list[dict], people: dict) -> dict:
    row = {
        "group_id": group_id,
        "size": len(members),
        "proposals": n,
        "match_probability": top["match_probability"],
        "status": "pending",
        "members": [{k: m[k] for k in ("contact_id", "name", "email")} for m in members],
    }
    if len(members) == 2:
        left, right = people[top["contact_id_l"]], people[top["contact_id_r"]]
        row.update(
            proposal_id=top["proposal_id"],
            contact_id_l=left["contact_id"],
            name_l=left["name"],
            email_l=left["email"],
            contact_id_r=right["contact_id"],
            name_r=right["name"],
            email_r=right["email"],
        )
    return row


def _group_of(db: Path, proposal_id: str) -> pl.DataFrame:
    frame = open_proposals(db)
    found = frame.filter(pl.col("proposal_id") == proposal_id)
    if found.height == 0:
        raise review.ReviewError(
            f"proposal {proposal_id} is not open (decided, superseded, unknown, or its contacts "
            "become one at the next run already)"
        )
    return frame.filter(pl.col("group_id") == found.item(0, "group_id"))


def proposal_group(db: Path, proposal_id: str) -> dict:
    """The group `proposal_id` is in: `group_id`, `members` (MEMBER_FIELDS, seen first first),
    `differs` (field → members disagree), `proposals` (most probable first, each with names and
    its explanation `in_words`) and `survivor` (the suggested one: seen first)."""
    part = _group_of(db, proposal_id)
    member_ids = sorted(set(part["contact_id_l"]) | set(part["contact_id_r"]))
    members = _members(db, member_ids)
    names = {m["contact_id"]: m["name"] for m in members}
    bases = load_base_weights(StateLayout(db).state_dir / MODEL_FILE)
    proposals = [
        {
            **p,
            "name_l": names.get(p["contact_id_l"]),
            "name_r": names.get(p["contact_id_r"]),
            "words": in_words(p["explanation"], p["match_weight"], bases),
        }
        for p in part.to_dicts()
    ]
    return {
        "group_id": part.item(0, "group_id"),
        "members": members,
        "fields": MEMBER_FIELDS,
        "differs": {
            f: len({repr(m.get(f)) for m in members}) > 1
            for f in MEMBER_FIELDS
            if f != "first_seen"
        },
        "proposals": proposals,
        "survivor": members[0]["contact_id"] if members else None,
    }


def words_for(db: Path, proposal: dict) -> dict:
    """One proposal's explanation `in_words` (the card's "why"), rarity from the saved model."""
    bases = load_base_weights(StateLayout(db).state_dir / MODEL_FILE)
    return in_words(proposal.get("explanation"), proposal.get("match_weight"), bases)


def group_size(db: Path, proposal_id: str) -> int:
    """How many contacts the group of `proposal_id` holds (0 when the proposal is not open)."""
    try:
        part = _group_of(db, proposal_id)
    except review.ReviewError:
        return 0
    return len(set(part["contact_id_l"]) | set(part["contact_id_r"]))


@dataclass(frozen=True)
class Edge:
    proposal_id: str
    contact_id_l: str
    contact_id_r: str


def _accepted_sets(edges: list[Edge], members: list[str], accept: set[str]) -> list[list[str]]:
    """The sets of `members` (in their order) that the accepted edges connect, two or more."""
    index = {c: i for i, c in enumerate(members)}
    chosen = [e for e in edges if e.proposal_id in accept]
    label = connected_components(
        len(members),
        np.array([index[e.contact_id_l] for e in chosen], dtype=np.int64),
        np.array([index[e.contact_id_r] for e in chosen], dtype=np.int64),
    )
    sets: dict[int, list[str]] = {}
    for contact, root in zip(members, label.tolist(), strict=True):
        sets.setdefault(root, []).append(contact)
    return [s for s in sets.values() if len(s) > 1]


def _joins(
    edges: list[Edge], accept: set[str], contacts: list[str], survivor: str
) -> list[Decision]:
    """One merge per contact of `contacts` other than `survivor`: the accepted proposal between
    them, else a manual merge that names the accepted proposals of the set."""
    direct = {
        frozenset((e.contact_id_l, e.contact_id_r)): e for e in edges if e.proposal_id in accept
    }
    inside = sorted(
        e.proposal_id
        for e in edges
        if e.proposal_id in accept and e.contact_id_l in contacts and e.contact_id_r in contacts
    )
    out = []
    for member in contacts:
        if member == survivor:
            continue
        edge = direct.get(frozenset((survivor, member)))
        if edge is not None:
            out.append(
                Decision(
                    kind=ACCEPT_PROPOSAL,
                    proposal_id=edge.proposal_id,
                    contact_id_l=edge.contact_id_l,
                    contact_id_r=edge.contact_id_r,
                    survivor_id=survivor,
                )
            )
        else:
            out.append(
                Decision(
                    kind=MANUAL_MERGE,
                    contact_id_l=survivor,
                    contact_id_r=member,
                    survivor_id=survivor,
                    note=f"group decision: accepted proposals {', '.join(inside)} connect them",
                )
            )
    return out


def plan(
    edges: list[Edge],
    members: list[str],
    accept: Collection[str],
    reject: Collection[str],
    survivor: str | None,
) -> list[Decision]:
    """The decisions that carry out one group decision (module docstring), without a note or
    an author. `members`: the group's contacts, seen first first.

    Raises ReviewError for a proposal both accepted and rejected, a survivor outside the group,
    or a rejection between contacts the accepted proposals make one.
    """
    accept, reject = set(accept), set(reject)
    if accept & reject:
        raise review.ReviewError(f"{sorted(accept & reject)[0]} is both accepted and rejected")
    if survivor is not None and survivor not in members:
        raise review.ReviewError(f"survivor {survivor} is not a contact of this group")
    decisions: list[Decision] = []
    where: dict[str, int] = {}
    for n, contacts in enumerate(_accepted_sets(edges, members, accept)):
        where.update({c: n for c in contacts})
        keep = survivor if survivor in contacts else contacts[0]
        decisions += _joins(edges, accept, contacts, keep)
    for e in edges:
        if e.proposal_id not in reject:
            continue
        left, right = where.get(e.contact_id_l), where.get(e.contact_id_r)
        if left is not None and left == right:
            raise review.ReviewError(
                f"cannot reject {e.proposal_id}: the proposals you accept make "
                f"{e.contact_id_l} and {e.contact_id_r} one contact"
            )
        decisions.append(
            Decision(
                kind=REJECT_PROPOSAL,
                proposal_id=e.proposal_id,
                contact_id_l=e.contact_id_l,
                contact_id_r=e.contact_id_r,
            )
        )
    return decisions


def _choices(ids: list[str], action: str, picks: dict[str, str] | None) -> tuple[list, list]:
    """(accepted, rejected) proposal ids of `action` on the group's proposals `ids`."""
    if action == ACCEPT:
        return ids, []
    if action == REJECT:
        return [], ids
    if action != "split":
        raise review.ReviewError(f"unknown group action {action!r} (accept, reject or split)")
    picks = picks or {}
    strangers = sorted(set(picks) - set(ids))
    if strangers:
        raise review.ReviewError(f"{strangers[0]} is not a proposal of this group")
    wrong = sorted(v for v in picks.values() if v not in (ACCEPT, REJECT, LEAVE))
    if wrong:
        raise review.ReviewError(f"unknown choice {wrong[0]!r} (accept, reject or leave)")
    return (
        [p for p in ids if picks.get(p) == ACCEPT],
        [p for p in ids if picks.get(p) == REJECT],
    )


def _refuse_two_accounts(db: Path, decisions: list[Decision]) -> None:
    """ReviewError when a contact the decisions make would hold two verified user ids (two
    accounts of the customer's product; the run would refuse the merge: docs/review.md)."""
    sets: dict[str, set[str]] = {}
    for d in decisions:
        if d.kind in (ACCEPT_PROPOSAL, MANUAL_MERGE):
            sets.setdefault(d.survivor_id, {d.survivor_id}).update((d.contact_id_l, d.contact_id_r))
    with review.published(db) as con:
        for contacts in sets.values():
            accounts = con.execute(
                """
                SELECT count(DISTINCT user_id) FROM interactions
                WHERE contact_id IN (SELECT unnest(?)) AND identity_verified AND user_id IS NOT NULL
                """,
                [sorted(contacts)],
            ).fetchone()[0]
            if accounts > 1:
                raise review.ReviewError(
                    f"{', '.join(sorted(contacts))} hold {accounts} verified accounts "
                    f"({accounts} verified user ids); they cannot become one contact"
                )


def decide_group(
    db: Path,
    proposal_id: str,
    action: str,
    survivor: str | None = None,
    picks: dict[str, str] | None = None,
    shown: Collection[str] | None = None,
    note: str | None = None,
    who: str | None = None,
) -> list[str]:
    """Decide the whole group of `proposal_id` at once; returns the decision ids.

    Args:
        action: `accept` (every member merges into `survivor`), `reject` (every proposal), or
            `split` (`picks`: proposal id → accept, reject or leave; absent: leave).
        survivor: the contact that stays (required to accept; with split, where it applies).
        shown: the proposal ids the admin saw; when the group has changed since (a decision
            by someone else), nothing is decided.
    """
    part = _group_of(db, proposal_id)
    ids = part["proposal_id"].to_list()
    if shown is not None and set(shown) != set(ids):
        raise review.ReviewError(
            "the group changed since it was shown (another decision or a run); reload it"
        )
    if action == ACCEPT and not survivor:
        raise review.ReviewError("choose the contact that stays (the survivor)")
    accept, reject = _choices(ids, action, picks)
    members = [
        m["contact_id"]
        for m in _members(db, sorted(set(part["contact_id_l"]) | set(part["contact_id_r"])))
    ]
    edges = [
        Edge(*row) for row in part.select("proposal_id", "contact_id_l", "contact_id_r").rows()
    ]
    decisions = plan(edges, members, accept, reject, survivor)
    if not decisions:
        raise review.ReviewError("nothing to decide: every proposal is left pending")
    review._within_bulk_limit(len(decisions))
    review.refuse_deleted(db, *members)
    _refuse_two_accounts(db, decisions)
    signed = [
        replace(d, note=" · ".join(t for t in (note, d.note) if t) or None, decided_by=who)
        for d in decisions
    ]
    return append_many(StateLayout(db).decisions_path, signed)
