"""Undoing one of several merges into one survivor leaves the others merged (dedup.identity):
the last published file, the decision log and tonight's clusters as inline frames, through
`resolve_ids` as the nightly job calls it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from dedup.decisions import DECISIONS_SCHEMA, MANUAL_MERGE, UNMERGE
from dedup.identity.automerge import AMBIGUOUS_SCHEMA, KEY_COLUMNS
from dedup.identity.constraints import MERGE_SIDES_SCHEMA, decision_merge_id
from dedup.identity.merge_history import MERGES_SCHEMA, UNMERGE_WINDOW
from dedup.identity.resolution import PreviousIds, resolve_ids
from dedup.identity.stable_ids import PreviousState

DAY1 = datetime(2026, 11, 1, 9, tzinfo=UTC)
NOW = DAY1 + timedelta(days=3)

# (decision id, survivor, merged contact, decided on day n, what each side held just before)
Merge = tuple[str, str, str, int, dict[str, list[str]]]


def _merge_decision(decision_id: str, survivor: str, merged: str, day: int) -> dict:
    return {
        "decision_id": decision_id,
        "kind": MANUAL_MERGE,
        "contact_id_l": survivor,
        "contact_id_r": merged,
        "survivor_id": survivor,
        "decided_by": "ana",
        "decided_at": DAY1 + timedelta(days=day),
    }


def _previous(holds: dict[str, list[str]], merges: list[Merge]) -> PreviousIds:
    """The published file after `merges`: `holds` is what each live contact holds now."""
    redirects = {merged: survivor for _, survivor, merged, _, _ in merges}
    for merged, survivor in redirects.items():  # a chain redirects to its end
        while survivor in redirects:
            survivor = redirects[survivor]
        redirects[merged] = survivor
    rows = [
        {
            "merge_id": decision_merge_id(did),
            "kind": "manual",
            "survivor_id": survivor,
            "merged_ids": [merged],
            "decided_by": "ana",
            "decided_at": DAY1 + timedelta(days=day),
            "reversible_until": DAY1 + timedelta(days=day) + UNMERGE_WINDOW,
        }
        for did, survivor, merged, day, _ in merges
    ]
    sides = [
        (decision_merge_id(did), contact, i)
        for did, _, _, _, held in merges
        for contact, ids in held.items()
        for i in ids
    ]
    state = PreviousState(
        assignment=pl.DataFrame(
            [(i, c) for c, ids in holds.items() for i in ids],
            schema=["interaction_id", "contact_id"],
            orient="row",
        ),
        contacts=pl.DataFrame({"contact_id": list(holds), "first_seen": [DAY1] * len(holds)}),
        redirects=pl.DataFrame(
            list(redirects.items()),
            schema={"from_contact_id": pl.String, "to_contact_id": pl.String},
            orient="row",
        ),
    )
    return PreviousIds(
        state=state,
        merges=pl.DataFrame(rows, schema=MERGES_SCHEMA),
        sides=pl.DataFrame(sides, schema=MERGE_SIDES_SCHEMA, orient="row"),
    )


def _tonight(previous: PreviousIds, merges: list[Merge], undone: str):
    """Tonight's run after the admin undid merge `undone`: every interaction is its own cluster
    (no key joins them; only the admin's merges did)."""
    log = [_merge_decision(did, s, m, day) for did, s, m, day, _ in merges]
    log.append(
        {
            "decision_id": "d_undo",
            "kind": UNMERGE,
            "merge_id": decision_merge_id(undone),
            "decided_by": "ana",
            "decided_at": NOW - timedelta(hours=1),
        }
    )
    interactions = previous.state.assignment.get_column("interaction_id").sort()
    keys = pl.DataFrame({"interaction_id": interactions}).with_columns(
        pl.lit(None, pl.String).alias(column) for column in KEY_COLUMNS.values()
    )
    done = resolve_ids(
        pl.DataFrame({"interaction_id": interactions, "cluster": interactions}),
        pl.DataFrame(schema=AMBIGUOUS_SCHEMA),
        lambda: keys,
        pl.DataFrame(log, schema=DECISIONS_SCHEMA),
        previous,
        pl.Series("contact_id", [], dtype=pl.String),
        NOW,
    )
    refused = done.outcomes.filter(pl.col("outcome") != "applied").to_dicts()
    return dict(done.assignment.sort("interaction_id").iter_rows()), refused


def test_undoing_the_earlier_of_two_merges_into_one_survivor_keeps_the_later() -> None:
    # c2 merged into c3 on day 1; c1 into c3 on day 2, when c3 already held c2's i2: the later
    # merge's recorded sides include the side undone tonight.
    merges = [
        ("d_c2", "c3", "c2", 0, {"c2": ["i2"], "c3": ["i3"]}),
        ("d_c1", "c3", "c1", 1, {"c1": ["i1"], "c3": ["i2", "i3"]}),
    ]
    previous = _previous({"c3": ["i1", "i2", "i3"]}, merges)
    assert _tonight(previous, merges, undone="d_c2") == (
        {"i1": "c3", "i2": "c2", "i3": "c3"},
        [],
    )


def test_undoing_the_inner_merge_of_a_chain_keeps_the_outer() -> None:
    # c1 merged into c3, then c3 into c4; undoing the first brings c1 back, c3 stays in c4.
    merges = [
        ("d_c1", "c3", "c1", 0, {"c1": ["i1"], "c3": ["i3"]}),
        ("d_c3", "c4", "c3", 1, {"c3": ["i1", "i3"], "c4": ["i4"]}),
    ]
    previous = _previous({"c4": ["i1", "i3", "i4"]}, merges)
    assert _tonight(previous, merges, undone="d_c1") == (
        {"i1": "c1", "i3": "c4", "i4": "c4"},
        [],
    )
