"""GDPR erasure, suppression, identity verification and safe merging, through real runs."""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from contacts.cli import app
from dedup.decisions import NOTE, read_all
from dedup.identity.normalize import read_phone_lookup
from dedup.identity.verify import expected_hash, verified_user_ids
from dedup.ingest.days import read_staged, read_staged_crm
from dedup.layout import StateLayout
from dedup.service.review import add_note, revoke_verification
from dedup.snapshot.retention import RetentionPolicy, purge
from tests.conftest import contact_of, copy_night, night_once, query, rec, signed, write_jsonl

NO_MATCHING = {"min_contacts_to_match": 10**9}
ZED_EMAIL = "Zebulon.Quartz+promo@Example.test"
ZED_NORM = "zebulon.quartz@example.test"
ZED_PHONE = "+14155550199"
ZED_NAME = "Zebulon Quartz"


def zed_and_friend(exports: Path, day: str = "2026-11-01", suffix: str = "") -> None:
    write_jsonl(
        exports,
        day,
        f"people{suffix}.jsonl",
        [
            rec(
                f"z1{suffix}",
                f"{day}T09:00:00Z",
                name=ZED_NAME,
                email=ZED_EMAIL,
                phone="(415) 555-0199",
                session_id=f"zsess{suffix}",
                contact_tags=["vip"],
                attributes={"favourite": "quartz"},
            ),
            rec(
                f"z2{suffix}",
                f"{day}T10:00:00Z",
                channel="whatsapp",
                name=ZED_NAME,
                phone="14155550199",
            ),
            rec(
                f"f1{suffix}", f"{day}T11:00:00Z", name="Frieda Friend", email="frieda@friends.test"
            ),
        ],
    )
    # His CRM record, and a broken record of his: quarantined, with his address in its raw text.
    crm = exports / "hubspot" / day
    crm.mkdir(parents=True, exist_ok=True)
    (crm / f"contacts{suffix}.csv").write_text(
        "Record ID,First Name,Last Name,Email,Phone Number,Company Name,Lifecycle Stage\n"
        f"9{len(suffix)},Zebulon,Quartz,{ZED_EMAIL},(415) 555-0199,Quartz Mining,Customer\n"
        f"8{len(suffix)},Frieda,Friend,frieda@friends.test,,Friends Inc,Lead\n"
    )
    folder = exports / "askvault" / day
    (folder / f"broken{suffix}.jsonl").write_text(
        f'{{"interaction_id": "zbad{suffix}", "channel": "widget", "occurred_at": "not a time", '
        f'"email": "{ZED_EMAIL}"}}\n'
    )


def every_text(db: Path) -> str:
    """Every value of every table and view in the published file, as one string."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        # Tables and views of every schema, the full-text index's word list included.
        names = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() UNION ALL "
            "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal"
        ).fetchall()
        parts = []
        for schema, name in names:
            rows = con.execute(
                f'SELECT CAST(COLUMNS(*) AS VARCHAR) FROM "{schema}"."{name}"'
            ).fetchall()
            parts.extend(str(v) for row in rows for v in row)
        return "\n".join(parts).lower()
    finally:
        con.close()


def phone_lookup_text(db: Path) -> str:
    lookup = read_phone_lookup(StateLayout(db).cache_dir, "US")
    assert lookup is not None
    return " ".join(str(v) for row in lookup.rows() for v in row).lower()


def traces(text: str) -> list[str]:
    needles = [ZED_NORM, "zebulon", "quartz", "4155550199", ZED_EMAIL.lower(), "zsess"]
    return [n for n in needles if n in text]


@pytest.fixture(scope="module")
def first_night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Zed and Frieda's first night (no matching), run once for the module."""
    return night_once(tmp_path_factory.mktemp("zed-and-friend"), zed_and_friend, **NO_MATCHING)


@pytest.fixture
def after_first_night(first_night: Path, exports: Path, db: Path) -> None:
    """This test's `exports` and `db` as `zed_and_friend(exports); run(**NO_MATCHING)` leaves
    them: a private copy of the module's first night."""
    copy_night(first_night, exports, db)


def test_erase_removes_every_trace_and_old_exports_do_not_bring_it_back(
    exports: Path, db: Path, run, after_first_night
) -> None:
    zed = contact_of(db)["z1"]
    assert contact_of(db)["z2"] == zed
    assert traces(every_text(db)), "the fixture must put Zed in the published file"
    assert "4155550199" in phone_lookup_text(db), "the fixture must put Zed's phone in the lookup"
    assert query(db, "SELECT count(*) FROM crm_links").item() == 2
    add_note(db, zed, "Zebulon called about quartz", who="ann")
    runner = CliRunner()
    wrong = runner.invoke(app, ["erase", zed, "--confirm", "frieda@friends.test", "--db", str(db)])
    assert wrong.exit_code == 1 and "nothing erased" in wrong.output
    ok = runner.invoke(
        app, ["erase", zed, "--confirm", "zebulon.quartz@example.test", "--db", str(db)]
    )
    assert ok.exit_code == 0, ok.output
    # The log keeps that a note was written, not what it said.
    notes = read_all(StateLayout(db).decisions_path).filter(pl.col("kind") == NOTE)
    assert notes.get_column("note").to_list() == [None]

    run(**NO_MATCHING)
    assert traces(every_text(db)) == []
    assert traces(phone_lookup_text(db)) == []  # the phone lookup kept for the next run too
    assert query(db, "SELECT count(*) FROM contacts").item() == 1
    audit = query(db, "SELECT * FROM erasures").row(0, named=True)
    assert audit["interactions_removed"] == 2 and audit["identifiers_suppressed"] >= 5
    # The pipeline's own copy of the exports is scrubbed too.
    staged = read_staged(StateLayout(db).staging_root, "accepted")
    assert "z1" not in staged.get_column("interaction_id").to_list()
    crm_staged = read_staged_crm(StateLayout(db).staging_root)
    assert crm_staged.get_column("email").to_list() == ["frieda@friends.test"]

    # Re-read every old export from scratch, and add a new day where Zed writes again.
    shutil.rmtree(StateLayout(db).staging_root)
    zed_and_friend(exports, "2026-11-05", suffix="-later")
    run(**NO_MATCHING)
    assert traces(every_text(db)) == []
    assert query(db, "SELECT count(*) FROM contacts").item() == 1  # Frieda, both days
    # The audit row keeps the counts of the run that applied it.
    assert query(db, "SELECT interactions_removed FROM erasures").item() == 2


def test_allow_new_policy_lets_an_erased_person_start_over(
    exports: Path, db: Path, run, after_first_night
) -> None:
    zed = contact_of(db)["z1"]
    assert (
        CliRunner().invoke(app, ["erase", zed, "--confirm", ZED_NORM, "--db", str(db)]).exit_code
        == 0
    )
    run(**NO_MATCHING, after_erasure="allow_new")
    assert "z1" not in contact_of(db)
    later = datetime.now(UTC).replace(microsecond=0).isoformat()
    write_jsonl(exports, "2026-11-25", "back.jsonl", [rec("zback", later, email=ZED_EMAIL)])
    run(**NO_MATCHING, after_erasure="allow_new")
    owner = contact_of(db)
    assert "zback" in owner and owner["zback"] != zed and "z1" not in owner


def test_batch_erasure_requests_suppress_known_and_unknown_people(
    exports: Path, db: Path, run, tmp_path: Path, after_first_night
) -> None:
    requests = tmp_path / "requests.csv"
    requests.write_text(
        "email,request_id\nzebulon.quartz@example.test,rte-1\nghost@nowhere.test,rte-2\n"
    )
    result = CliRunner().invoke(app, ["erase", "--requests", str(requests), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "2 request(s), 1 contact(s)" in result.output
    # The ghost writes in later: suppressed too.
    write_jsonl(
        exports,
        "2026-11-02",
        "ghost.jsonl",
        [rec("g1", "2026-11-02T09:00:00Z", email="Ghost@Nowhere.test")],
    )
    run(**NO_MATCHING)
    owner = contact_of(db)
    assert "g1" not in owner and "z1" not in owner and "f1" in owner
    assert query(db, "SELECT count(*) FROM erasures").item() == 2


def test_secret_rotation_grace_period_and_identity_failures(
    exports: Path, db: Path, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = "old-secret", "new-secret"
    monkeypatch.setenv("ASKVAULT_IDENTITY_SECRET", new)
    monkeypatch.setenv("ASKVAULT_IDENTITY_SECRET_PREVIOUS", old)
    monkeypatch.setenv("ASKVAULT_IDENTITY_SECRET_PREVIOUS_UNTIL", "2026-11-02T00:00:00Z")
    write_jsonl(
        exports,
        "2026-11-03",
        "ids.jsonl",
        [
            # Signed with the old secret inside the grace period: verified.
            rec(
                "in-grace",
                "2026-11-01T09:00:00Z",
                session_id="s1",
                user_id="u1",
                user_hash=expected_hash("u1", old),
            ),
            # Signed with the old secret after it: stale, not verified.
            rec(
                "stale",
                "2026-11-03T09:00:00Z",
                session_id="s2",
                user_id="u2",
                user_hash=expected_hash("u2", old),
            ),
            rec(
                "current",
                "2026-11-03T09:00:00Z",
                session_id="s3",
                user_id="u3",
                user_hash=expected_hash("u3", new),
            ),
            rec(
                "forged", "2026-11-03T09:00:00Z", session_id="s4", user_id="u3", user_hash="0" * 64
            ),
            rec(
                "forged2", "2026-11-03T09:01:00Z", session_id="s4", user_id="u3", user_hash="f" * 64
            ),
        ],
    )
    run(**NO_MATCHING)
    verified = dict(
        query(db, "SELECT interaction_id, identity_verified FROM interactions").iter_rows()
    )
    assert verified == {
        "in-grace": True,
        "stale": False,
        "current": True,
        "forged": False,
        "forged2": False,
    }
    owner = contact_of(db)
    assert owner["forged"] != owner["current"]  # a forged claim to u3 merges nobody
    failures = query(
        db, "SELECT session_id, reason, failures FROM identity_failures ORDER BY ALL"
    ).rows()
    assert failures == [("s2", "stale", 1), ("s4", "forged", 2)]
    # The failure report names sessions and reasons only: no user ids, hashes or secrets.
    columns = query(db, "SELECT * FROM identity_failures LIMIT 0").columns
    assert columns == ["session_id", "reason", "failures", "first_at", "last_at"]
    text = every_text(db)
    assert old not in text and new not in text


def test_verified_user_ids_without_grace_limit_accepts_previous_secret() -> None:
    frame = pl.DataFrame(
        {
            "user_id": ["a"],
            "user_hash": [expected_hash("a", "old")],
            "occurred_at": [datetime(2030, 1, 1, tzinfo=UTC)],
        }
    )
    assert verified_user_ids(frame, ("new", "old")).get_column("identity_verified").to_list() == [
        True
    ]
    cutoff = datetime(2029, 1, 1, tzinfo=UTC)
    out = verified_user_ids(frame, ("new", "old"), cutoff)
    assert out.get_column("identity_verified").to_list() == [False]
    assert out.get_column("identity_failure").to_list() == ["stale"]


def test_self_asserted_session_does_not_inherit_enterprise_audience(
    exports: Path, db: Path, run
) -> None:
    write_jsonl(
        exports,
        "2026-11-01",
        "audience.jsonl",
        [
            rec(
                "boss",
                "2026-11-01T09:00:00Z",
                session_id="s-boss",
                user_id="ceo-1",
                user_hash=signed("ceo-1"),
                plan="enterprise",
                email="ceo@bigcorp.test",
            ),
            # Someone else's browser types the CEO's address into a lead form.
            rec("lead", "2026-11-01T10:00:00Z", session_id="s-anon", email="ceo@bigcorp.test"),
        ],
    )
    run(**NO_MATCHING)
    owner = contact_of(db)
    assert owner["boss"] == owner["lead"]
    assert query(db, "SELECT audience FROM contacts").item() == "enterprise"
    sessions = {
        r[0]: r[1:]
        for r in query(
            db, "SELECT session_id, audience, evidence, contact_audience FROM session_audience"
        ).rows()
    }
    assert sessions["s-boss"] == ("enterprise", "verified_identity", "enterprise")
    assert sessions["s-anon"] == ("public", "self_asserted", "enterprise")


def test_revoked_verification_is_re_evaluated(exports: Path, db: Path, run) -> None:
    write_jsonl(
        exports,
        "2026-11-01",
        "v.jsonl",
        [
            rec(
                "v1",
                "2026-11-01T09:00:00Z",
                user_id="u9",
                user_hash=signed("u9"),
                email="nine@x.test",
            )
        ],
    )
    run(**NO_MATCHING)
    contact = contact_of(db)["v1"]
    revoke_verification(db, contact, who="ann")
    time.sleep(1.1)  # v2 occurs after the revocation, to the second
    later = datetime.now(UTC).replace(microsecond=0).isoformat()
    write_jsonl(
        exports,
        "2026-11-25",
        "v.jsonl",
        [rec("v2", later, user_id="u9", user_hash=signed("u9"), email="nine@x.test")],
    )
    run(**NO_MATCHING)
    # Claims up to the revocation are distrusted; the next session verifies again.
    verified = dict(
        query(db, "SELECT interaction_id, identity_verified FROM interactions").iter_rows()
    )
    assert verified == {"v1": False, "v2": True}
    failures = query(db, "SELECT reason FROM identity_failures").get_column("reason").to_list()
    assert "revoked" in failures


def test_purge_deletes_expired_state_only(db: Path, after_first_night) -> None:
    layout = StateLayout(db)
    old_leftover = layout.build_path
    old_leftover.write_bytes(b"killed build")
    backups = layout.state_dir / "backups"
    backups.mkdir()
    old_backup, new_backup = backups / "2026-07-01.duckdb", backups / "2026-11-20.duckdb"
    old_backup.write_bytes(b"x")
    new_backup.write_bytes(b"y")
    ancient = time.time() - 100 * 86_400
    os.utime(old_leftover, (ancient, ancient))
    os.utime(old_backup, (ancient, ancient))
    removed = purge(db, RetentionPolicy(work_days=30, backup_days=90))
    assert set(removed) == {old_leftover, old_backup}
    assert new_backup.exists() and db.exists()
    # A backup taken before an erasure goes once the erasure is 30 days old.
    zed = contact_of(db)["z1"]
    assert (
        CliRunner().invoke(app, ["erase", zed, "--confirm", ZED_NORM, "--db", str(db)]).exit_code
        == 0
    )
    soon = purge(db, RetentionPolicy(), now=datetime.now(UTC))
    assert new_backup not in soon
    later = datetime.fromtimestamp(time.time() + 31 * 86_400, UTC)
    assert new_backup in purge(db, RetentionPolicy(work_days=10_000), now=later)
    result = CliRunner().invoke(app, ["purge", "--db", str(db)])
    assert result.exit_code == 0 and "purged" in result.output
