"""Admins' merges, unmerges and rejections, applied by real runs of the nightly job."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contacts.cli import app
from dedup.decisions import REJECT_PROPOSAL, Decision, append, read_all
from dedup.layout import StateLayout
from dedup.service.review import ReviewError, add_note, contact_detail, merge_contacts, unmerge
from tests.conftest import (
    contact_of,
    copy_night,
    during_a_run,
    night_once,
    query,
    rec,
    signed,
    write_jsonl,
)

NO_MATCHING = {"min_contacts_to_match": 10**9}

PROFILE = "SELECT contact_id, name, tags, audience, attributes::VARCHAR AS attributes, emails, channels FROM contacts"


def contact_with(db: Path, email: str) -> str:
    found = query(db, f"SELECT contact_id FROM contacts WHERE list_contains(emails, '{email}')")
    assert found.height == 1, found
    return found.item()


def profiles(db: Path) -> dict[str, dict]:
    return {r["contact_id"]: r for r in query(db, PROFILE).iter_rows(named=True)}


def two_people(exports: Path) -> None:
    """Ada (enterprise, vip) and Bea (free, trial): different emails, one shared kiosk-ish session later."""
    write_jsonl(
        exports,
        "2026-11-01",
        "a.jsonl",
        [
            rec(
                "a1",
                "2026-11-01T09:00:00Z",
                name="Ada Lovelace",
                email="ada@engines.test",
                plan="enterprise",
                contact_tags=["vip"],
                attributes={"seat": "12"},
            ),
            rec(
                "b1",
                "2026-11-01T10:00:00Z",
                channel="whatsapp",
                name="Bea Lovelace",
                email="bea@home.test",
                phone="+14155550100",
                plan="free",
                contact_tags=["trial"],
                attributes={"pet": "cat"},
            ),
        ],
    )


@pytest.fixture(scope="module")
def first_night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ada and Bea's first night (no matching), run once for the module."""
    return night_once(tmp_path_factory.mktemp("two-people"), two_people, **NO_MATCHING)


@pytest.fixture
def after_first_night(first_night: Path, exports: Path, db: Path) -> None:
    """This test's `exports` and `db` as `two_people(exports); run(**NO_MATCHING)` leaves them: a private copy of the module's
    first night."""
    copy_night(first_night, exports, db)


def bridge_by_session(exports: Path, day: str, tag: str) -> None:
    """One browser session in which both emails were typed: auto-merge joins Ada and Bea."""
    write_jsonl(
        exports,
        day,
        "bridge.jsonl",
        [
            rec(
                f"s1-{tag}", f"{day}T09:00:00Z", session_id=f"sess-{tag}", email="ada@engines.test"
            ),
            rec(f"s2-{tag}", f"{day}T09:05:00Z", session_id=f"sess-{tag}", email="bea@home.test"),
        ],
    )


def test_manual_merge_keeps_chosen_survivor_across_runs(
    exports: Path, db: Path, run, after_first_night
) -> None:
    ada, bea = contact_with(db, "ada@engines.test"), contact_with(db, "bea@home.test")
    assert ada != bea
    # Bea is the younger contact; the admin keeps her id anyway.
    merge_contacts(db, ada, bea, survivor=bea, note="same person, two inboxes", who="ann")
    run(**NO_MATCHING)
    assert query(db, "SELECT count(*) FROM contacts").item() == 1
    assert contact_with(db, "ada@engines.test") == bea
    assert (
        query(
            db,
            "SELECT to_contact_id FROM contact_redirects WHERE from_contact_id = ?".replace(
                "?", f"'{ada}'"
            ),
        ).item()
        == bea
    )
    merge = query(db, "SELECT * FROM merges WHERE kind = 'manual'").row(0, named=True)
    assert merge["survivor_id"] == bea and merge["merged_ids"] == [ada]
    assert merge["decided_by"] == "ann" and merge["reason"] == "same person, two inboxes"
    assert merge["reversible_until"] - merge["decided_at"] == timedelta(days=30)
    # What each side held is recorded, so the merge can be undone.
    sides = query(
        db,
        "SELECT contact_id, list(interaction_id ORDER BY interaction_id) AS ids FROM merge_sides GROUP BY ALL ORDER BY ALL",
    )
    assert dict(sides.iter_rows()) == {ada: ["a1"], bea: ["b1"]}
    # Later nights keep it: no new merge rows, same survivor, new mail for Ada lands on it.
    write_jsonl(
        exports,
        "2026-11-02",
        "a.jsonl",
        [rec("a2", "2026-11-02T09:00:00Z", email="ADA@engines.test")],
    )
    run(**NO_MATCHING)
    assert query(db, "SELECT count(*) FROM contacts").item() == 1
    assert contact_with(db, "ada@engines.test") == bea
    assert query(db, "SELECT count(*) FROM merges").item() == 1
    assert query(db, "SELECT outcome FROM admin_decisions").item() == "applied"


def test_unmerge_restores_both_contacts_and_keeps_them_apart(
    exports: Path, db: Path, run, after_first_night
) -> None:
    ada, bea = contact_with(db, "ada@engines.test"), contact_with(db, "bea@home.test")
    before = profiles(db)
    add_note(db, bea, "asked for a refund <b>twice</b>", who="ann")

    bridge_by_session(exports, "2026-11-02", "x")
    run(**NO_MATCHING)
    assert query(db, "SELECT count(*) FROM contacts").item() == 1
    merge = query(db, "SELECT * FROM merges WHERE kind = 'auto'").row(0, named=True)
    assert merge["survivor_id"] == ada and merge["merged_ids"] == [bea]
    merged = profiles(db)[ada]
    assert set(merged["tags"]) == {"vip", "trial"}
    # Bea's note follows her into the survivor.
    assert query(db, "SELECT contact_id FROM contact_notes").item() == ada

    unmerge(db, merge["merge_id"], note="two sisters", who="ann")
    run(**NO_MATCHING)
    after = profiles(db)
    assert set(after) == {ada, bea}
    for cid in (ada, bea):
        for field in ("name", "tags", "audience", "attributes", "emails"):
            assert after[cid][field] == before[cid][field], (cid, field)
    # What arrived since follows its identifiers: each session row goes to its email's side.
    owner = dict(query(db, "SELECT interaction_id, contact_id FROM interactions").iter_rows())
    assert owner["s1-x"] == ada and owner["s2-x"] == bea
    assert query(db, "SELECT contact_id FROM contact_notes").item() == bea
    detail = query(db, f"SELECT notes FROM contact_detail WHERE contact_id = '{bea}'").item()
    assert [n["note"] for n in detail] == ["asked for a refund <b>twice</b>"]
    assert query(db, "SELECT count(*) FROM contact_redirects").item() == 0
    rows = query(db, "SELECT kind, undone_at IS NOT NULL AS undone FROM merges ORDER BY decided_at")
    assert rows.rows() == [("auto", True), ("unmerge", False)]
    bridge = query(
        db, "SELECT key_type, key_value, reason FROM ambiguous_keys WHERE key_type = 'session'"
    )
    assert bridge.row(0)[:2] == ("session", "sess-x")
    assert "admin separated" in bridge.row(0)[2]

    # A new night with the same shared key, and Ada's email typed with Bea's phone: they stay
    # apart, ids unchanged; the email decides the row's side and the phone is reported.
    bridge_by_session(exports, "2026-11-03", "y")
    write_jsonl(
        exports,
        "2026-11-03",
        "phone.jsonl",
        [rec("p1", "2026-11-03T11:00:00Z", email="ada@engines.test", phone="+1 415 555 0100")],
    )
    run(**NO_MATCHING)
    assert set(profiles(db)) == {ada, bea}
    assert contact_of(db)["p1"] == ada
    keys = query(db, "SELECT key_type, key_value FROM ambiguous_keys").rows()
    assert ("phone", "+14155550100") in keys and ("session", "sess-y") in keys
    # And an undone merge cannot be undone twice.
    with pytest.raises(ReviewError, match="already undone"):
        unmerge(db, merge["merge_id"])


def test_unmerge_after_30_days_is_refused(exports: Path, db: Path, run, after_first_night) -> None:
    bridge_by_session(exports, "2026-11-02", "x")
    run(**NO_MATCHING)
    merge = query(db, "SELECT merge_id, decided_at FROM merges").row(0, named=True)
    with pytest.raises(ReviewError, match="30 days"):
        unmerge(db, merge["merge_id"], now=merge["decided_at"] + timedelta(days=31))
    result = CliRunner().invoke(app, ["unmerge", "merge_nope", "--db", str(db)])
    assert result.exit_code == 1 and "no merge merge_nope" in result.output
    assert read_all(StateLayout(db).decisions_path).height == 0


def test_rejected_pair_stays_apart_when_a_key_joins_them(
    exports: Path, db: Path, run, after_first_night
) -> None:
    ada, bea = contact_with(db, "ada@engines.test"), contact_with(db, "bea@home.test")
    append(
        StateLayout(db).decisions_path,
        Decision(kind=REJECT_PROPOSAL, contact_id_l=min(ada, bea), contact_id_r=max(ada, bea)),
    )
    bridge_by_session(exports, "2026-11-02", "x")
    run(**NO_MATCHING)
    assert set(profiles(db)) == {ada, bea}
    assert query(db, "SELECT count(*) FROM merges").item() == 0


def test_manual_merge_refuses_bad_input(exports: Path, db: Path, run, after_first_night) -> None:
    ada, bea = contact_with(db, "ada@engines.test"), contact_with(db, "bea@home.test")
    runner = CliRunner()
    for args, message in (
        (["merge", ada, ada, "--survivor", ada], "itself"),
        (["merge", ada, bea, "--survivor", "contact_x"], "survivor must be"),
        (["merge", ada, "contact_missing", "--survivor", ada], "no contact contact_missing"),
    ):
        result = runner.invoke(app, [*args, "--db", str(db)])
        assert result.exit_code == 1, result.output
        assert message in result.output
        assert len(result.output.strip().splitlines()) == 1
    result = runner.invoke(app, ["show", ada, "--db", str(db)])
    assert result.exit_code == 0 and "Ada Lovelace" in result.output


def test_decision_taken_while_a_run_builds_is_applied_by_the_next_run(
    exports: Path, db: Path, run, after_first_night
) -> None:
    ada, bea = contact_with(db, "ada@engines.test"), contact_with(db, "bea@home.test")
    # A second process runs the job; this one decides while it builds.
    decision = during_a_run(
        exports, db, lambda: merge_contacts(db, ada, bea, survivor=ada, who="ann")
    )
    # That run read the log before the decision: nothing of it is applied, nothing half-applied.
    assert query(db, "SELECT count(*) FROM contacts").item() == 2
    assert query(db, "SELECT count(*) FROM admin_decisions").item() == 0
    assert [d["decision_id"] for d in contact_detail(db, ada)["pending"]] == [decision]
    run(**NO_MATCHING)
    assert query(db, "SELECT count(*) FROM contacts").item() == 1
    assert query(db, "SELECT decision_id, outcome FROM admin_decisions").rows() == [
        (decision, "applied")
    ]
    assert json.loads(query(db, "SELECT to_json(merged_ids) FROM merges").item()) == [bea]


def test_two_verified_accounts_are_never_one_contact(exports: Path, db: Path, run) -> None:
    write_jsonl(
        exports,
        "2026-11-01",
        "a.jsonl",
        [
            rec("a1", name="Ann Lee", email="ann@work.test", user_id="u1", user_hash=signed("u1")),
            rec("b1", name="Ann Lee", email="ann@home.test", user_id="u2", user_hash=signed("u2")),
            rec("c1", name="Ann Lee", email="ann@old.test"),
        ],
    )
    run(**NO_MATCHING)
    work, home, old = (
        contact_with(db, e) for e in ("ann@work.test", "ann@home.test", "ann@old.test")
    )
    with pytest.raises(ReviewError, match="two verified accounts"):
        merge_contacts(db, work, home, survivor=work)
    # Merged while the third contact was not verified; it later verifies as the second account.
    merge_contacts(db, work, old, survivor=work)
    run(**NO_MATCHING)
    assert contact_with(db, "ann@old.test") == work
    write_jsonl(
        exports,
        "2026-11-02",
        "a.jsonl",
        [
            rec(
                "c2",
                "2026-11-02T10:00:00Z",
                email="ann@old.test",
                user_id="u2",
                user_hash=signed("u2"),
            )
        ],
    )
    # The run publishes (no contact over the hub limit) and says why the merge no longer holds.
    run(**NO_MATCHING)
    assert query(db, "SELECT outcome, detail FROM admin_decisions").rows() == [
        ("not applied", "would join two verified accounts")
    ]
    assert contact_with(db, "ann@work.test") != contact_with(db, "ann@old.test")
    assert contact_with(db, "ann@old.test") == contact_with(db, "ann@home.test")
