"""Stable ids: growth keeps the id, merges keep the older one, splits keep it on the larger part."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from dedup.identity.stable_ids import PreviousState, assign_ids, new_contact_id

NOW = datetime(2026, 11, 20, tzinfo=UTC)


def clusters(mapping: dict[str, list[str]]) -> pl.DataFrame:
    rows = [(iid, c) for c, ids in mapping.items() for iid in ids]
    return pl.DataFrame(rows, schema=["interaction_id", "cluster"], orient="row")


def previous(
    assign: dict[str, list[str]], first_seen: dict[str, int], redirects=()
) -> PreviousState:
    return PreviousState(
        assignment=pl.DataFrame(
            [(iid, cid) for cid, ids in assign.items() for iid in ids],
            schema=["interaction_id", "contact_id"],
            orient="row",
        ),
        contacts=pl.DataFrame(
            {
                "contact_id": list(first_seen),
                "first_seen": [datetime(2026, 11, d, tzinfo=UTC) for d in first_seen.values()],
            }
        ),
        redirects=pl.DataFrame(
            list(redirects),
            schema={"from_contact_id": pl.String, "to_contact_id": pl.String},
            orient="row",
        ),
    )


def ids_of(result) -> dict[str, str]:
    return dict(result.contact_of_cluster.iter_rows())


def test_first_run_ids_are_derived_from_smallest_interaction() -> None:
    result = assign_ids(clusters({"a": ["a", "b"], "c": ["c"]}), PreviousState.empty(), NOW)
    assert ids_of(result) == {"a": new_contact_id("a"), "c": new_contact_id("c")}
    assert ids_of(result)["a"].startswith("contact_") and len(ids_of(result)["a"]) == 24


def test_growth_keeps_id_even_when_smallest_interaction_changes() -> None:
    prev = previous({"contact_old": ["m", "n"]}, {"contact_old": 1})
    result = assign_ids(clusters({"a": ["a", "m", "n"]}), prev, NOW)
    assert ids_of(result) == {"a": "contact_old"}
    assert result.redirects.height == 0 and result.auto_merges.height == 0


def test_merge_keeps_older_id_and_redirects_newer() -> None:
    prev = previous(
        {"contact_new": ["x1", "x2", "x3"], "contact_old": ["y1"]},
        {"contact_new": 5, "contact_old": 2},
    )
    result = assign_ids(clusters({"x1": ["x1", "x2", "x3", "y1"]}), prev, NOW)
    assert ids_of(result) == {"x1": "contact_old"}
    assert result.redirects.rows() == [("contact_new", "contact_old")]
    assert result.auto_merges.select("survivor_id", "merged_ids").rows() == [
        ("contact_old", ["contact_new"])
    ]


def test_split_keeps_id_on_larger_part() -> None:
    prev = previous({"contact_p": ["a", "b", "c"]}, {"contact_p": 1})
    result = assign_ids(clusters({"a": ["a"], "b": ["b", "c"]}), prev, NOW)
    got = ids_of(result)
    assert got["b"] == "contact_p"
    assert got["a"] == new_contact_id("a")


def test_fresh_id_never_reuses_a_redirected_id() -> None:
    # "a" once formed contact new_contact_id("a"), which was merged away into contact_s.
    old = new_contact_id("a")
    prev = previous(
        {"contact_s": ["a", "b", "c"]}, {"contact_s": 1}, redirects=[(old, "contact_s")]
    )
    result = assign_ids(clusters({"a": ["a"], "b": ["b", "c"]}), prev, NOW)
    got = ids_of(result)
    assert got["a"] not in {old, "contact_s"}
    assert got["a"] == new_contact_id("a", 1)


def test_redirect_chains_are_flattened() -> None:
    prev = previous(
        {"contact_b": ["b"], "contact_c": ["c"]},
        {"contact_b": 3, "contact_c": 1},
        redirects=[("contact_a", "contact_b")],
    )
    result = assign_ids(clusters({"b": ["b", "c"]}), prev, NOW)
    assert sorted(result.redirects.rows()) == [
        ("contact_a", "contact_c"),
        ("contact_b", "contact_c"),
    ]


def test_contact_whose_interactions_vanished_is_dropped_not_redirected() -> None:
    prev = previous(
        {"contact_gone": ["g"], "contact_k": ["k"]}, {"contact_gone": 1, "contact_k": 1}
    )
    result = assign_ids(clusters({"k": ["k"]}), prev, NOW)
    assert ids_of(result) == {"k": "contact_k"} and result.redirects.height == 0
