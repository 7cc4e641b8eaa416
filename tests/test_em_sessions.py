"""Which comparisons each EM session may train (dedup.matching.settings.TRAINING_BLOCKS).

Splink leaves untrained the comparisons whose columns a session's blocking rule reads. The
email session's pairs are chosen by email local part, which is mostly built from the name, so
that session must not train the name comparison, while pairing exactly what `email_user`
alone pairs.
"""

from __future__ import annotations

import duckdb
import polars as pl
from splink import block_on
from splink.internals.parse_sql import get_columns_used_from_sql

from dedup.matching.settings import EMAIL_TRAINING_BLOCK, NAME, TRAINING_BLOCKS


def _rule_sql(rule) -> str:
    return rule.get_blocking_rule("duckdb").blocking_rule_sql


def _pairs(records: pl.DataFrame, rule) -> set[tuple[int, int]]:
    sql = f"SELECT l.id, r.id FROM records l JOIN records r ON l.id < r.id AND ({_rule_sql(rule)})"
    return set(duckdb.sql(sql).fetchall())


def test_the_email_session_leaves_the_name_comparison_to_the_other_sessions() -> None:
    assert TRAINING_BLOCKS[2] is EMAIL_TRAINING_BLOCK
    used = set(get_columns_used_from_sql(_rule_sql(EMAIL_TRAINING_BLOCK), "duckdb"))
    name_columns = {
        c.input_name for c in NAME.get_comparison("duckdb")._input_columns_used_by_case_statement
    }
    # Splink's own test for a comparison a session cannot estimate (em_training_session.py).
    assert used & name_columns
    assert "email_user" in used


def test_the_email_session_pairs_what_the_local_part_alone_pairs() -> None:
    # Nameless records on either side or both still pair: the name condition holds for all.
    records = pl.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6],
            "email_user": ["johnsmith", "johnsmith", "ana", "ana", "ana", None],
            "first_name": ["john", None, None, None, "ana", "x"],
        }
    )
    expected = _pairs(records, block_on("email_user"))
    assert expected == {(1, 2), (3, 4), (3, 5), (4, 5)}
    assert _pairs(records, EMAIL_TRAINING_BLOCK) == expected
