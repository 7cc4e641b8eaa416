"""Issue 22, the engine's side: attribute limits, deleted contacts out of review, export paths,
forged audiences, hostile text, private temp folders, a damaged decision log, file modes.

Every test runs the real pipeline (or the real service functions on its published file).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dedup.decisions import SET_ATTRIBUTE, Decision, append
from dedup.layout import StateLayout
from dedup.schema import MAX_ATTRIBUTE_DEPTH, MAX_ATTRIBUTE_VALUE_BYTES, attributes_problem
from tests.conftest import contact_of, query, rec, signed, write_jsonl

NO_MATCHING = {"min_contacts_to_match": 10**9}


def nested(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


# --- item 3 / 8: one limit for attributes ------------------------------------------------------


def test_ingest_quarantines_attributes_over_the_limits(exports: Path, db: Path, run) -> None:
    write_jsonl(
        exports,
        "2026-11-01",
        "a.jsonl",
        [
            rec("deep", email="deep@x.test", attributes={"k": nested(300)}),
            rec("big", email="big@x.test", attributes={"k": "x" * (MAX_ATTRIBUTE_VALUE_BYTES + 1)}),
            rec("longkey", email="key@x.test", attributes={"k" * 101: 1}),
            # At the limits exactly: the attributes object is level 1, so 19 more levels fit.
            rec(
                "edge",
                email="edge@x.test",
                attributes={"k": nested(MAX_ATTRIBUTE_DEPTH - 1), "v": "x" * 8000},
            ),
        ],
    )
    summary = run(**NO_MATCHING)
    reasons = dict(query(db, "SELECT interaction_id, reason FROM quarantine").iter_rows())
    assert set(reasons) == {"deep", "big", "longkey"}, reasons
    assert reasons["deep"] == f"attribute 'k' is nested deeper than {MAX_ATTRIBUTE_DEPTH} levels"
    assert "bytes as JSON (limit 8,192)" in reasons["big"]
    assert "attribute name must have 1 to 100 characters" in reasons["longkey"]
    assert summary.quarantined == 3
    stored = json.loads(query(db, "SELECT attributes::VARCHAR FROM contacts").item())
    assert stored["k"] == nested(MAX_ATTRIBUTE_DEPTH - 1)


def test_build_drops_values_over_the_limits_that_older_staging_holds() -> None:
    """Days staged by an older version skip today's ingest check: the build drops those values."""
    import duckdb
    import polars as pl

    from dedup.config import EngineConfig
    from dedup.snapshot.files import write_table
    from dedup.snapshot.profiles import build_contacts

    frame = pl.DataFrame(
        {
            "interaction_id": ["a", "b"],
            "contact_id": ["c1", "c1"],
            "channel": ["widget", "widget"],
            "occurred_at": [None, None],
            "attributes": [
                json.dumps({"deep": nested(300), "ok": "fine"}),
                json.dumps({"huge": "x" * 5_000_000, "seat": 12}),
            ],
        },
        schema_overrides={"occurred_at": pl.Datetime("us", "UTC")},
    ).with_columns(
        pl.lit(None, pl.String).alias(c)
        for c in (
            "conversation_id session_id user_id verified_user_id plan_norm name_display "
            "email_address email_norm phone_e164 company_display"
        ).split()
    )
    frame = frame.with_columns(
        pl.lit(False).alias("identity_verified"),
        pl.lit(None, pl.List(pl.String)).alias("contact_tags"),
        pl.Series("occurred_at", ["2026-11-01 09:00", "2026-11-01 10:00"]).str.to_datetime(
            time_zone="UTC"
        ),
    )
    con = duckdb.connect()
    write_table(con, "interactions", frame)
    build_contacts(con, EngineConfig())
    text, dropped = con.execute(
        "SELECT attributes::VARCHAR, attributes_dropped FROM contacts"
    ).fetchone()
    assert json.loads(text) == {"ok": "fine", "seat": 12} and dropped == 2
    assert attributes_problem(text) is None


def test_logged_attribute_edit_over_the_limits_is_never_applied(
    exports: Path, db: Path, run
) -> None:
    """An edit a log took before the limits existed (5 MB, 300 deep) is skipped by every run."""
    write_jsonl(exports, "2026-11-01", "a.jsonl", [rec("a1", email="a@x.test")])
    run(**NO_MATCHING)
    contact = contact_of(db)["a1"]
    log = StateLayout(db).decisions_path
    for key, value in (("deep", nested(300)), ("huge", "x" * 5_000_000), ("seat", 12)):
        append(
            log, Decision(SET_ATTRIBUTE, contact_id_l=contact, subject=key, note=json.dumps(value))
        )
    run(**NO_MATCHING)
    text = query(db, "SELECT attributes::VARCHAR FROM contacts").item()
    assert json.loads(text) == {"seat": 12}


def test_attribute_edit_over_the_limits_is_refused_and_nothing_saved(
    exports: Path, db: Path, run
) -> None:
    from dedup.decisions import read_all
    from dedup.service.review import ReviewError, edit_contact

    write_jsonl(exports, "2026-11-01", "a.jsonl", [rec("a1", email="a@x.test")])
    run(**NO_MATCHING)
    contact = contact_of(db)["a1"]
    for bad in ({"deep": nested(300)}, {"big": "x" * 5_000_000}, {"k" * 101: 1}):
        with pytest.raises(ReviewError) as refused:
            edit_contact(db, contact, tags_add=["ok"], attributes={"seat": 1, **bad})
        assert "\n" not in str(refused.value)
    assert read_all(StateLayout(db).decisions_path).height == 0
    edit_contact(db, contact, attributes={"seat": nested(MAX_ATTRIBUTE_DEPTH - 1), "gone": None})
    assert read_all(StateLayout(db).decisions_path).height == 2


# --- item 7: a forged identity never raises the audience ---------------------------------------


def test_failed_verification_does_not_raise_the_audience(exports: Path, db: Path, run) -> None:
    write_jsonl(
        exports,
        "2026-11-01",
        "a.jsonl",
        [
            # Mallory claims Bob's user id with a bad hash and an internal plan.
            rec(
                "forged",
                user_id="u_bob",
                user_hash="00" * 32,
                plan="internal",
                email="mallory@evil.test",
            ),
            # An identify() without any hash is no verification either.
            rec("unsigned", user_id="u_eve", plan="enterprise", email="eve@evil.test"),
            rec(
                "bob",
                user_id="u_bob",
                user_hash=signed("u_bob"),
                plan="enterprise",
                email="bob@acme.test",
            ),
            # A plan the product recorded with no identity claim keeps counting (docs/schema.md).
            rec("lead", plan="paid", email="lead@shop.test"),
        ],
    )
    run(**NO_MATCHING)
    of = contact_of(db)
    audience = dict(query(db, "SELECT contact_id, audience FROM contacts").iter_rows())
    assert audience[of["forged"]] == "public"
    assert audience[of["unsigned"]] == "public"
    assert audience[of["bob"]] == "enterprise"
    assert audience[of["lead"]] == "paid_users"
    unknown = dict(query(db, "SELECT contact_id, unknown_plans FROM contacts").iter_rows())
    assert unknown[of["forged"]] == 0  # an untrusted plan is not an unknown one
