"""End to end through the real Dagster jobs, in process, into real DuckDB files."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pytest

from contacts.runner import IngestBatch, PipelineError, ingest_batches
from tests.conftest import (
    contact_of,
    copy_night,
    night_once,
    night_summary,
    query,
    rec,
    signed,
    write_jsonl,
)

D1, D2 = "2026-11-01", "2026-11-02"


def _day_one(exports: Path) -> None:
    write_jsonl(
        exports,
        D1,
        "a.jsonl",
        [
            # Jane: anonymous widget session, then a lead form in the same session, then WhatsApp.
            rec(
                "j1",
                "2026-11-01T09:00:00Z",
                session_id="sess-j",
                conversation_id="cj1",
                contact_tags=["prospect"],
                attributes={"city": "Boston", "size": "10"},
            ),
            rec(
                "j2",
                "2026-11-01T09:05:00Z",
                session_id="sess-j",
                conversation_id="cj1",
                email="Jane.Doe+chat@Gmail.com",
                name="jane doe",
                phone="(415) 555-2671",
            ),
            rec(
                "j3",
                "2026-11-01T12:00:00+02:00",
                channel="whatsapp",
                phone="14155552671",
                name="Jane D",
                conversation_id="cj2",
                attributes={"city": "Cambridge"},
            ),
            # Verified user Bob with a plan; a forger claims his user id with a bad hash.
            rec(
                "b1",
                "2026-11-01T08:00:00Z",
                channel="api",
                user_id="u_bob",
                user_hash=signed("u_bob"),
                plan="Enterprise",
                email="bob@acme.com",
                name="Bob Stone",
                company="Acme Inc",
                contact_tags=["vip"],
            ),
            rec(
                "b2",
                "2026-11-01T08:30:00Z",
                user_id="u_bob",
                user_hash=signed("u_bob"),
                session_id="sess-b",
            ),
            rec(
                "f1",
                "2026-11-01T11:00:00Z",
                user_id="u_bob",
                user_hash="00" * 32,
                email="mallory@evil.test",
                plan="internal",
            ),
            # A household phone typed by two family members with their own emails.
            rec("h1", "2026-11-01T10:00:00Z", email="mom@home.test", phone="+1 617 555 0199"),
            rec("h2", "2026-11-01T10:10:00Z", email="kid@home.test", phone="617.555.0199"),
            # A bad record: quarantined, not fatal.
            rec("bad", "yesterday"),
        ],
    )


@pytest.fixture(scope="module")
def day_one_night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`_day_one`'s exports and the first night on them, run once for the module."""
    return night_once(tmp_path_factory.mktemp("day-one"), _day_one)


@pytest.fixture
def after_day_one(day_one_night: Path, exports: Path, db: Path) -> None:
    """This test's `exports` and `db` as `_day_one(exports); run()` leaves them: a private copy
    of the module's first night."""
    copy_night(day_one_night, exports, db)


def test_contacts_table_end_to_end(day_one_night: Path, db: Path, after_day_one) -> None:
    # The first night's summary is the module's run's; `db` is a copy of what it published.
    summary = night_summary(day_one_night)
    assert (summary.interactions, summary.quarantined) == (8, 1)
    by_iid = contact_of(db)
    assert by_iid["j1"] == by_iid["j2"] == by_iid["j3"]
    assert by_iid["b1"] == by_iid["b2"]
    assert by_iid["f1"] != by_iid["b1"], "a forged user_hash must never merge"
    assert by_iid["h1"] != by_iid["h2"], "a household phone must not merge two people"
    assert summary.contacts == len(set(by_iid.values())) == 5

    jane = query(db, f"SELECT * FROM contacts WHERE contact_id = '{by_iid['j1']}'").row(
        0, named=True
    )
    assert jane["channels"] == ["whatsapp", "widget"]
    assert jane["email"] == "jane.doe+chat@gmail.com"
    assert jane["email_norm"] == "janedoe@gmail.com"
    assert jane["phone"] == "+14155552671"
    assert jane["name"] == "Jane D"  # most recent (no verified record to prefer)
    assert jane["conversation_count"] == 2
    assert jane["audience"] == "public" and jane["identity_verified"] is False
    assert jane["tags"] == ["prospect"]
    assert json.loads(jane["attributes"]) == {
        "city": "Cambridge",
        "size": "10",
    }  # latest value wins
    assert jane["is_lead"] is True
    assert jane["crm_sync_status"] == "pending"  # a lead; no CRM export knows her (docs/sources.md)

    bob = query(db, f"SELECT * FROM contacts WHERE contact_id = '{by_iid['b1']}'").row(
        0, named=True
    )
    assert bob["identity_verified"] is True and bob["user_id"] == "u_bob"
    assert bob["audience"] == "enterprise"
    assert bob["company"] == "Acme Inc"
    assert str(bob["verified_at"]).startswith("2026-11-01 08:00:00")
    mallory = query(db, f"SELECT * FROM contacts WHERE contact_id = '{by_iid['f1']}'").row(
        0, named=True
    )
    assert mallory["identity_verified"] is False and mallory["user_id"] is None

    hubs = query(db, "SELECT key_type, key_value FROM ambiguous_keys").rows()
    assert hubs == [("phone", "+16175550199")]
    q = query(db, "SELECT source, file, row, reason, interaction_id FROM quarantine").rows()
    assert q == [
        ("askvault", f"askvault/{D1}/a.jsonl", 9, "unparseable occurred_at 'yesterday'", "bad")
    ]


def test_rerun_is_byte_identical(exports: Path, db: Path, run, after_day_one) -> None:
    first = query(db, "SELECT * FROM contacts ORDER BY contact_id")
    first_i = query(db, "SELECT * FROM interactions ORDER BY interaction_id")
    summary = run()
    assert summary.days_ingested == [], "an unchanged day is not ingested again"
    assert query(db, "SELECT * FROM contacts ORDER BY contact_id").equals(first)
    assert query(db, "SELECT * FROM interactions ORDER BY interaction_id").equals(first_i)


def test_fresh_rebuild_gives_the_same_ids(
    exports: Path, tmp_path: Path, db: Path, after_day_one
) -> None:
    from assets.resources import ContactsSettings
    from contacts.runner import run_pipeline

    other = tmp_path / "elsewhere" / "contacts.duckdb"
    run_pipeline(ContactsSettings(exports_dir=str(exports), db_path=str(other)))
    assert contact_of(db) == contact_of(other)


def test_new_day_keeps_ids_and_merges_redirect(exports: Path, db: Path, run) -> None:
    _day_one(exports)
    write_jsonl(
        exports,
        D1,
        "b.jsonl",
        [rec("s1", "2026-10-30T10:00:00Z", channel="sms", phone="+1 212 555 0142")],
    )
    run()
    before = contact_of(db)
    write_jsonl(
        exports,
        D2,
        "a.jsonl",
        [
            # Bob's email typed with the SMS number: the SMS-only contact and Bob merge.
            rec("m1", "2026-11-02T09:00:00Z", email="bob@acme.com", phone="2125550142"),
            rec("n1", "2026-11-02T09:00:00Z", email="new@person.test"),
        ],
    )
    summary = run()
    assert summary.days_ingested == [D2]
    after = contact_of(db)
    survivor = after["m1"]
    # The SMS contact first seen 2026-10-30 is older than Bob's (2026-11-01): it survives.
    assert survivor == before["s1"] == after["b1"] == after["s1"]
    assert {k: v for k, v in after.items() if k not in {"b1", "b2", "m1", "n1"}} == {
        k: v for k, v in before.items() if k not in {"b1", "b2"}
    }
    redirects = query(db, "SELECT from_contact_id, to_contact_id FROM contact_redirects").rows()
    assert redirects == [(before["b1"], survivor)]
    merges = query(
        db,
        "SELECT kind, survivor_id, merged_ids, date_diff('day', decided_at, reversible_until) AS w FROM merges",
    )
    assert merges.select("kind", "survivor_id", "merged_ids").rows() == [
        ("auto", survivor, [before["b1"]])
    ]
    assert merges.item(0, "w") == 30


def test_redelivered_interaction_is_one_and_the_later_version_wins(
    exports: Path, db: Path, run
) -> None:
    write_jsonl(exports, D1, "a.jsonl", [rec("x1", email="a@x.test", contact_tags=["old"])])
    write_jsonl(exports, D2, "a.jsonl", [rec("x1", email="a@x.test", contact_tags=["new"])])
    write_jsonl(exports, D2, "b.jsonl", [rec("x1", email="a@x.test", contact_tags=["new"])])
    summary = run()
    assert summary.interactions == 1 and summary.updates == 1
    assert query(db, "SELECT tags, interaction_count FROM contacts").rows() == [(["new"], 1)]
    # export_day is published as a DATE (issue 23 item 12).
    assert query(db, "SELECT export_day, file FROM interactions").rows() == [
        (date.fromisoformat(D2), f"askvault/{D2}/b.jsonl")
    ]


def test_removed_export_day_drops_its_records(exports: Path, db: Path, run) -> None:
    write_jsonl(exports, D1, "a.jsonl", [rec("x1", email="a@x.test")])
    write_jsonl(exports, D2, "a.jsonl", [rec("x2", email="b@x.test")])
    run()
    for f in (exports / "askvault" / D2).iterdir():
        f.unlink()
    (exports / "askvault" / D2).rmdir()
    assert run().interactions == 1


def test_attributes_keep_fifty_latest_keys(exports: Path, db: Path, run) -> None:
    records = [
        rec(f"a{i}", f"2026-11-01T10:{i:02d}:00Z", email="many@x.test", attributes={f"k{i:02d}": i})
        for i in range(55)
    ]
    write_jsonl(exports, D1, "a.jsonl", records)
    run()
    attributes, dropped = query(db, "SELECT attributes, attributes_dropped FROM contacts").row(0)
    keys = set(json.loads(attributes))
    assert len(keys) == 50 and dropped == 5
    assert "k54" in keys and "k04" not in keys


def test_failing_check_blocks_publish_and_keeps_last_file(exports: Path, db: Path, run) -> None:
    write_jsonl(
        exports,
        D1,
        "a.jsonl",
        [rec("v1", user_id="u1", user_hash=signed("u1"), session_id="kiosk")],
    )
    run()
    published = db.read_bytes()
    write_jsonl(
        exports,
        D2,
        "a.jsonl",
        [rec("v2", user_id="u2", user_hash=signed("u2"), session_id="kiosk")],
    )
    # Loosening the session cap lets two verified users merge: the hub check must stop it.
    with pytest.raises(PipelineError, match="no_contact_over_hub_limit"):
        run(session_max_user_ids=5)
    assert db.read_bytes() == published
    assert query(db, "SELECT count(*) FROM interactions").item() == 1


def test_reader_keeps_working_while_a_run_publishes(exports: Path, db: Path, run) -> None:
    write_jsonl(exports, D1, "a.jsonl", [rec("x1", email="a@x.test")])
    run()
    reader = duckdb.connect(str(db), read_only=True)
    try:
        write_jsonl(exports, D2, "a.jsonl", [rec("x2", email="b@x.test")])
        run()
        # The open reader still sees the snapshot it opened; a new reader sees the new one.
        assert reader.execute("SELECT count(*) FROM contacts").fetchone() == (1,)
    finally:
        reader.close()
    assert query(db, "SELECT count(*) FROM contacts").item() == 2


def test_relative_paths_work_like_the_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`contacts demo` and most people pass relative paths; every step must accept them (GX's
    data docs refused a relative folder once, so the demo published nothing)."""
    from assets.resources import ContactsSettings
    from contacts.runner import run_pipeline
    from dedup.layout import StateLayout

    write_jsonl(tmp_path / "exports", "2026-11-01", "a.jsonl", [rec("r1", email="rel@path.test")])
    monkeypatch.chdir(tmp_path)
    run_pipeline(ContactsSettings(exports_dir="exports", db_path="out/c.duckdb"))
    assert query(Path("out/c.duckdb"), "SELECT count(*) FROM contacts").item() == 1
    assert any(StateLayout(Path("out/c.duckdb")).output_dir.rglob("index.html"))


def test_consecutive_stale_days_of_the_same_sources_ingest_in_one_run() -> None:
    keys = [f"2026-11-0{d}" for d in range(1, 8)]
    stale = {
        "2026-11-01": {"askvault"},
        "2026-11-02": {"askvault"},
        "2026-11-03": {"askvault", "sms"},
        "2026-11-05": {"askvault"},
        "2026-11-06": {"askvault"},
    }
    assert ingest_batches(stale, keys) == [
        IngestBatch(("askvault",), "2026-11-01", "2026-11-02"),
        IngestBatch(("askvault", "sms"), "2026-11-03", "2026-11-03"),
        IngestBatch(("askvault",), "2026-11-05", "2026-11-06"),  # 11-04 is not stale
    ]
