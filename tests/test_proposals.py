"""Proposal lifecycle across runs, on inline frames (pure function, no Splink)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from dedup.decisions import DECISIONS_SCHEMA, REJECT_PROPOSAL
from dedup.matching.proposals import (
    PREDICTION_SCHEMA,
    PROPOSALS_SCHEMA,
    proposal_id,
    update_proposals,
    without_two_accounts,
)

NIGHT1 = datetime(2026, 11, 1, 3, tzinfo=UTC)
NIGHT2 = datetime(2026, 11, 2, 3, tzinfo=UTC)
NO_REDIRECTS = pl.DataFrame(schema={"from_contact_id": pl.String, "to_contact_id": pl.String})


def predictions(*pairs: tuple[str, str, float]) -> pl.DataFrame:
    return pl.DataFrame(
        [(a, b, p, 5.0, "[]") for a, b, p in pairs], schema=PREDICTION_SCHEMA, orient="row"
    )


def decisions(*rejects: tuple[str, str]) -> pl.DataFrame:
    rows = [
        {
            "decision_id": f"d{i}",
            "kind": REJECT_PROPOSAL,
            "proposal_id": None,
            "contact_id_l": a,
            "contact_id_r": b,
            "survivor_id": None,
            "decided_by": "ann",
            "decided_at": NIGHT1,
            "note": "not her",
        }
        for i, (a, b) in enumerate(rejects)
    ]
    return pl.DataFrame(rows, schema=DECISIONS_SCHEMA)


def run(
    preds,
    previous=None,
    decided=None,
    redirects=NO_REDIRECTS,
    live=("a", "b", "c", "d"),
    now=NIGHT1,
):
    return update_proposals(
        preds,
        previous if previous is not None else pl.DataFrame(schema=PROPOSALS_SCHEMA),
        decided if decided is not None else pl.DataFrame(schema=DECISIONS_SCHEMA),
        redirects,
        pl.Series(list(live), dtype=pl.String),
        now,
    )


def statuses(frame: pl.DataFrame) -> dict[tuple[str, str], str]:
    return {
        (r["contact_id_l"], r["contact_id_r"]): r["status"] for r in frame.iter_rows(named=True)
    }


def test_pending_pair_keeps_id_and_created_at_across_runs() -> None:
    first = run(predictions(("b", "a", 0.95)))
    assert statuses(first) == {("a", "b"): "pending"}
    assert first.item(0, "proposal_id") == proposal_id("a", "b") == proposal_id("b", "a")
    second = run(predictions(("a", "b", 0.97)), previous=first, now=NIGHT2)
    assert second.item(0, "proposal_id") == first.item(0, "proposal_id")
    assert second.item(0, "created_at") == NIGHT1
    assert second.item(0, "match_probability") == 0.97


def test_rejected_pair_is_never_proposed_again() -> None:
    first = run(predictions(("a", "b", 0.95), ("c", "d", 0.93)))
    second = run(
        predictions(("a", "b", 0.99), ("c", "d", 0.93)),
        previous=first,
        decided=decisions(("b", "a")),
        now=NIGHT2,
    )
    assert statuses(second) == {("a", "b"): "rejected", ("c", "d"): "pending"}
    rejected = second.filter(pl.col("status") == "rejected").row(0, named=True)
    assert (rejected["decided_by"], rejected["note"], rejected["created_at"]) == (
        "ann",
        "not her",
        NIGHT1,
    )


def test_rejection_follows_redirects_to_the_survivor() -> None:
    # "a" was merged into "c" after the admin rejected (a, b): the rejection now binds (b, c).
    redirects = pl.DataFrame({"from_contact_id": ["a"], "to_contact_id": ["c"]})
    out = run(
        predictions(("b", "c", 0.96)),
        decided=decisions(("a", "b")),
        redirects=redirects,
        live=("b", "c"),
    )
    assert statuses(out) == {("b", "c"): "rejected"}


def test_pending_pair_whose_contacts_merged_is_superseded() -> None:
    first = run(predictions(("a", "b", 0.95)))
    redirects = pl.DataFrame({"from_contact_id": ["b"], "to_contact_id": ["a"]})
    second = run(
        predictions(), previous=first, redirects=redirects, live=("a", "c", "d"), now=NIGHT2
    )
    row = second.row(0, named=True)
    assert (row["status"], row["status_at"], row["proposal_id"]) == (
        "superseded",
        NIGHT2,
        first.item(0, "proposal_id"),
    )
    # ...and stays in the history on later nights.
    third = run(
        predictions(), previous=second, redirects=redirects, live=("a", "c", "d"), now=NIGHT2
    )
    assert statuses(third) == statuses(second)


def test_pair_that_fell_below_threshold_is_dropped() -> None:
    first = run(predictions(("a", "b", 0.95)))
    assert run(predictions(), previous=first, now=NIGHT2).height == 0


def test_candidate_pair_counts_per_blocking_rule() -> None:
    from dedup.matching.model import candidate_pairs
    from dedup.matching.records import RECORD_COLUMNS

    rows = [
        # three Ann Lee: 3 pairs on (first name, surname); two share a phone tail: 1 pair
        {
            "first_name": "ann",
            "first_name_canonical": "ann",
            "surname": "lee",
            "phone_last7": "5550101",
        },
        {
            "first_name": "ann",
            "first_name_canonical": "ann",
            "surname": "lee",
            "phone_last7": "5550101",
        },
        {"first_name": "ann", "first_name_canonical": "ann", "surname": "lee", "phone_last7": None},
        # swapped: lee ann ↔ ann lee makes 3 ordered pairs
        {"first_name": "lee", "first_name_canonical": "lee", "surname": "ann", "phone_last7": None},
    ]
    frame = pl.DataFrame(rows).with_columns(
        *[pl.lit(None, pl.String).alias(c) for c in RECORD_COLUMNS if c not in rows[0]]
    )
    assert candidate_pairs(frame) == [3, 1, 0, 0, 0, 3]


def test_two_verified_accounts_are_not_proposed() -> None:
    contacts = pl.DataFrame(
        {"contact_id": ["a", "b", "c", "d"], "user_id": ["u1", "u2", None, "u1"]}
    )
    scored = pl.DataFrame(
        {
            "contact_id_l": ["a", "a", "a", "b"],
            "contact_id_r": ["b", "c", "d", "c"],
            "match_probability": [0.99, 0.95, 0.9, 0.85],
        }
    )
    kept = without_two_accounts(scored, contacts)
    assert kept.columns == scored.columns
    assert kept.select("contact_id_l", "contact_id_r").rows() == [
        ("a", "c"),
        ("a", "d"),
        ("b", "c"),
    ]
