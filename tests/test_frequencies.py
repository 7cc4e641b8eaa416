"""Term frequencies that do not count the pair being scored (dedup.matching.frequencies)."""

from __future__ import annotations

import math

import polars as pl
import pytest

from dedup.matching.frequencies import term_frequencies


def _levels(u: float | None) -> list[dict]:
    return [{"comparison": "name", "gamma": 3, "column": "full_name", "weight": 0.5,
             "minimum": 0.0, "u": u}]  # fmt: skip


def _records(sizes: dict[str, int], nulls: int = 0) -> pl.DataFrame:
    names = [name for name, k in sizes.items() for _ in range(k)] + [None] * nulls
    return pl.DataFrame({"unique_id": [str(i) for i in range(len(names))], "full_name": names})


def test_a_value_only_the_pair_holds_scores_the_levels_u_in_a_small_table() -> None:
    # 560 records: Splink's share would be 2/560 for the pair's own name, 20x the level's u.
    records = _records({"ann lee": 2, "bo chen": 5, **{f"p{i}": 1 for i in range(553)}}, nulls=7)
    u = 0.00018
    tf = dict(term_frequencies(records, _levels(u)).select("value", "tf").iter_rows())
    n = 560  # null names do not count
    assert tf["ann lee"] == pytest.approx(1 / (n - 2 + 1 / u))
    # Within 10% of u: no adjustment worth speaking of (log2 ratio ~0.14 bits).
    assert abs(math.log2(tf["ann lee"] / u)) < 0.15
    # A value others hold is scored by its count among them (3 others of 558, shrunk).
    assert tf["bo chen"] == pytest.approx(4 / (n - 2 + 1 / u))
    assert tf["bo chen"] > tf["ann lee"]
    # A singleton never reaches an exact level, but must not be 0 (log2 in the tf rise).
    assert tf["p0"] == pytest.approx(1 / (n - 2 + 1 / u))


def test_in_a_large_table_a_unique_pair_is_rarer_than_u_as_splink_would_say() -> None:
    records = _records({"ann lee": 2, **{f"p{i}": 1 for i in range(199_998)}})
    u = 1e-4
    tf = dict(term_frequencies(records, _levels(u)).select("value", "tf").iter_rows())
    assert tf["ann lee"] == pytest.approx(1 / (199_998 + 10_000))
    assert tf["ann lee"] < u / 10  # more than 3 bits of evidence before the weight


def test_without_a_u_the_share_is_splinks() -> None:
    records = _records({"ann lee": 2, "bo chen": 6})
    tf = dict(term_frequencies(records, _levels(None)).select("value", "tf").iter_rows())
    assert tf == {"ann lee": pytest.approx(0.25), "bo chen": pytest.approx(0.75)}
