"""Survivorship and list rules of the contacts table, on an in-memory DuckDB."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import polars as pl

from dedup.config import EngineConfig
from dedup.snapshot.files import write_table
from dedup.snapshot.profiles import build_contacts


def t(hour: int) -> datetime:
    return datetime(2026, 11, 1, hour, tzinfo=UTC)


def interactions(*rows: dict) -> pl.DataFrame:
    base = {
        "interaction_id": None,
        "contact_id": "c1",
        "channel": "widget",
        "occurred_at": None,
        "conversation_id": None,
        "session_id": None,
        "identity_verified": False,
        "user_id": None,
        "verified_user_id": None,
        "plan_norm": None,
        "name_display": None,
        "email_address": None,
        "email_norm": None,
        "phone_e164": None,
        "company_display": None,
        "contact_tags": None,
        "attributes": None,
    }
    schema = {
        **dict.fromkeys(base, pl.String),
        "occurred_at": pl.Datetime("us", "UTC"),
        "identity_verified": pl.Boolean,
        "contact_tags": pl.List(pl.String),
    }
    return pl.DataFrame([{**base, **r} for r in rows], schema=schema)


def build(frame: pl.DataFrame, config: EngineConfig | None = None) -> dict:
    con = duckdb.connect()
    write_table(con, "interactions", frame)
    build_contacts(con, config or EngineConfig())
    return con.sql("SELECT * FROM contacts").pl().row(0, named=True)


def test_verified_beats_recent_and_cased_beats_shouting() -> None:
    row = build(
        interactions(
            {
                "interaction_id": "a",
                "occurred_at": t(1),
                "name_display": "Robert Stone",
                "identity_verified": True,
                "verified_user_id": "u1",
                "plan_norm": "paid",
            },
            {
                "interaction_id": "b",
                "occurred_at": t(5),
                "name_display": "Bobby",
                "plan_norm": "enterprise",
            },
            {"interaction_id": "c", "occurred_at": t(2), "company_display": "Acme Inc"},
            {"interaction_id": "d", "occurred_at": t(6), "company_display": "ACME INC"},
        )
    )
    assert row["name"] == "Robert Stone"  # verified wins over the newer self-asserted name
    assert (
        row["audience"] == "paid_users"
    )  # audience from the verified identify(), not the lead form
    assert row["company"] == "Acme Inc"  # mixed case preferred over the newer shouted spelling
    assert row["identity_verified"] and row["user_id"] == "u1" and row["verified_at"] == t(1)


def test_lists_counts_and_defaults() -> None:
    row = build(
        interactions(
            {
                "interaction_id": "a",
                "occurred_at": t(1),
                "channel": "sms",
                "conversation_id": "x",
                "contact_tags": ["b", "a"],
                "phone_e164": "+14155552671",
            },
            {
                "interaction_id": "b",
                "occurred_at": t(3),
                "channel": "widget",
                "conversation_id": "x",
                "contact_tags": ["a", "c"],
                "plan_norm": "mystery",
            },
            {"interaction_id": "c", "occurred_at": t(2), "channel": "sms"},
        )
    )
    assert row["channels"] == ["sms", "widget"]
    assert row["tags"] == ["a", "b", "c"]
    assert (
        row["conversation_count"] == 2
    )  # conversation x, plus one interaction without a conversation
    assert (row["first_seen"], row["last_seen"], row["last_conversation_at"]) == (t(1), t(3), t(3))
    assert (
        row["audience"] == "public" and row["unknown_plans"] == 1
    )  # unknown plan → default, counted
    assert row["is_lead"] and row["email"] is None and row["phone"] == "+14155552671"


def test_tags_keep_fifty_most_recent() -> None:
    rows = [
        {
            "interaction_id": f"i{i:02d}",
            "occurred_at": datetime(2026, 11, 1, 0, i, tzinfo=UTC),
            "contact_tags": [f"tag{i:02d}"],
        }
        for i in range(55)
    ]
    row = build(interactions(*rows))
    assert len(row["tags"]) == 50 and row["tags_dropped"] == 5
    assert "tag54" in row["tags"] and "tag04" not in row["tags"]
