"""Deterministic auto-merge on inline frames: what merges, and the hubs that must not."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from dedup.config import HubLimits
from dedup.identity.automerge import auto_merge
from dedup.identity.graph import connected_components

COLUMNS = ["interaction_id", "email_norm", "verified_user_id", "session_id", "phone_e164"]


def frame(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=dict.fromkeys(COLUMNS, pl.String), orient="row")


def groups(result) -> set[frozenset[str]]:
    g = result.clusters.group_by("cluster").agg(pl.col("interaction_id"))
    return {frozenset(ids) for ids in g.get_column("interaction_id").to_list()}


def test_connected_components_chain_and_isolated() -> None:
    labels = connected_components(6, np.array([5, 4, 3, 1]), np.array([4, 3, 2, 1]))
    assert labels.tolist() == [0, 1, 2, 2, 2, 2]


def test_transitive_merge_across_key_types() -> None:
    # anonymous session → same session gives an email → same email with a phone → SMS from phone
    result = auto_merge(
        frame(
            ("i1", None, None, "s1", None),
            ("i2", "jane@x.com", None, "s1", None),
            ("i3", "jane@x.com", None, None, "+14155552671"),
            ("i4", None, None, None, "+14155552671"),
            ("i5", None, None, "s9", "+14155552671"),
            ("other", "bob@x.com", None, None, None),
            ("keyless", None, None, None, None),
        )
    )
    assert groups(result) == {
        frozenset({"i1", "i2", "i3", "i4", "i5"}),
        frozenset({"other"}),
        frozenset({"keyless"}),
    }
    assert result.ambiguous_keys.height == 0
    assert result.clusters.filter(pl.col("interaction_id") == "i4").item(0, "cluster") == "i1"


HUBS = [
    # household phone: each family member typed the home phone with their own email
    pytest.param(
        frame(
            ("h1", "mom@x.com", None, None, "+14155550101"),
            ("h2", "kid@x.com", None, None, "+14155550101"),
        ),
        ("phone", "+14155550101"),
        id="household-phone",
    ),
    # office switchboard shared by colleagues (emails and a verified user)
    pytest.param(
        frame(
            ("w1", "ann@acme.com", None, None, "+14155550102"),
            ("w2", "bo@acme.com", None, None, "+14155550102"),
            ("w3", None, "u9", None, "+14155550102"),
        ),
        ("phone", "+14155550102"),
        id="switchboard",
    ),
    # throwaway email typed by strangers with their own phones
    pytest.param(
        frame(*[(f"t{i}", "test@test.com", None, None, f"+1415555020{i}") for i in range(4)]),
        ("email", "test@test.com"),
        id="throwaway-email",
    ),
    # kiosk session shared by several people
    pytest.param(
        frame(*[(f"k{i}", f"p{i}@x.com", None, "kiosk", None) for i in range(3)]),
        ("session", "kiosk"),
        id="kiosk-session",
    ),
    # two verified accounts on one browser are two people
    pytest.param(
        frame(("v1", None, "u1", "shared", None), ("v2", None, "u2", "shared", None)),
        ("session", "shared"),
        id="session-two-users",
    ),
]


@pytest.mark.parametrize(("data", "hub"), HUBS)
def test_ambiguous_keys_do_not_merge(data: pl.DataFrame, hub: tuple[str, str]) -> None:
    result = auto_merge(data)
    assert all(len(g) == 1 for g in groups(result)), groups(result)
    assert (hub[0], hub[1]) in set(
        result.ambiguous_keys.select("key_type", "key_value").iter_rows()
    )


def test_phone_between_an_email_and_a_verified_user_is_a_hub() -> None:
    result = auto_merge(
        frame(
            ("a", "jane@x.com", None, None, "+14155552671"), ("b", None, "u1", None, "+14155552671")
        )
    )
    assert groups(result) == {frozenset("a"), frozenset("b")}


def test_phone_with_two_emails_of_one_person_is_not_a_hub() -> None:
    # A session already says the work and personal email are one person; the phone joins them.
    result = auto_merge(
        frame(
            ("a", "jane@work.com", None, "s1", "+14155552671"),
            ("b", "jane@home.com", None, "s1", None),
            ("c", "jane@home.com", None, None, "+14155552671"),
            ("d", None, None, None, "+14155552671"),
        )
    )
    assert groups(result) == {frozenset("abcd")}


def test_phone_with_two_unlinked_emails_is_left_for_proposals() -> None:
    result = auto_merge(
        frame(
            ("a", "jane@work.com", None, None, "+14155552671"),
            ("b", "jane@home.com", None, None, "+14155552671"),
        )
    )
    assert groups(result) == {frozenset("a"), frozenset("b")}
    assert result.ambiguous_keys.get_column("key_type").to_list() == ["phone"]


def test_limits_are_configurable() -> None:
    data = frame(*[(f"k{i}", f"p{i}@x.com", None, "kiosk", None) for i in range(3)])
    assert len(groups(auto_merge(data, HubLimits(session_max_emails=5)))) == 1


def test_email_with_a_few_phones_still_merges() -> None:
    # People change numbers; three phones on one address is one person (limit 3).
    data = frame(*[(f"e{i}", "jane@x.com", None, None, f"+1415555030{i}") for i in range(3)])
    assert len(groups(auto_merge(data))) == 1
