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
from tests.conftest import contact_of, copy_night, night_once, query, rec, signed, write_jsonl

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


def one_contact(exports: Path) -> None:
    write_jsonl(exports, "2026-11-01", "a.jsonl", [rec("a1", email="a@x.test")])


@pytest.fixture(scope="module")
def one_contact_night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One contact's first night (no matching), run once for the module."""
    return night_once(tmp_path_factory.mktemp("one-contact"), one_contact, **NO_MATCHING)


@pytest.fixture
def after_one_contact(one_contact_night: Path, exports: Path, db: Path) -> None:
    """This test's `exports` and `db` as `one_contact(exports); run(**NO_MATCHING)` leaves them:
    a private copy of the module's night."""
    copy_night(one_contact_night, exports, db)


def test_logged_attribute_edit_over_the_limits_is_never_applied(
    db: Path, run, after_one_contact
) -> None:
    """An edit a log took before the limits existed (5 MB, 300 deep) is skipped by every run."""
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
    db: Path, after_one_contact
) -> None:
    from dedup.decisions import read_all
    from dedup.service.review import ReviewError, edit_contact

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


# --- item 5: a deleted contact leaves review at once, and no decision may name it --------------


@pytest.fixture(scope="module")
def proposals_world(generated_night: Path) -> Path:
    """A published file with pending proposals (generated people, as the review page's tests):
    the session's shared night, read only (`_copy_world`)."""
    return generated_night


def _copy_world(world: Path, tmp_path: Path) -> tuple[Path, Path]:
    import shutil

    db = tmp_path / "contacts.duckdb"
    shutil.copy(world / "out" / "contacts.duckdb", db)
    shutil.copytree(world / "out" / "contacts.duckdb.state", tmp_path / "contacts.duckdb.state")
    return db, world / "exports"


def test_deleted_contact_leaves_review_and_cannot_be_merged_into(
    proposals_world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import polars as pl
    from typer.testing import CliRunner

    from assets.resources import ContactsSettings
    from contacts.cli import app
    from contacts.runner import run_pipeline
    from dedup.decisions import read_all
    from dedup.service.export import export_proposals
    from dedup.service.review import (
        ReviewError,
        accept_all_above,
        accept_proposal,
        delete_contacts,
        hidden_ids,
        merge_contacts,
        proposal_card,
        published,
        reject_proposal,
        review_queue,
    )

    db, exports = _copy_world(proposals_world, tmp_path)
    queue = review_queue(db, limit=200)
    assert len(queue) >= 3, "the world must have proposals"
    # The queue's search box: punctuation alone (LIKE wildcards included) finds nobody.
    for text in ("%", "_", ".", "@", "!!!"):
        assert review_queue(db, "all", search=text) == [], text
    someone = next(r["email_l"] for r in queue if r["email_l"])
    assert review_queue(db, "all", search=someone.upper())
    first, second = queue[0], queue[1]
    gone, other = first["contact_id_l"], first["contact_id_r"]
    before = dict(
        query(
            db, f"SELECT interaction_id, contact_id FROM interactions WHERE contact_id = '{other}'"
        ).iter_rows()
    )
    delete_contacts(db, [gone], who="ann")

    # Out of the queue and the card at once, with its PII.
    assert all(gone not in (r["contact_id_l"], r["contact_id_r"]) for r in review_queue(db, "all"))
    refusals = [
        lambda: proposal_card(db, first["proposal_id"]),
        lambda: accept_proposal(db, first["proposal_id"], survivor=gone),
        lambda: accept_proposal(db, first["proposal_id"], survivor=other),
        lambda: reject_proposal(db, first["proposal_id"]),
        lambda: merge_contacts(db, other, gone, survivor=gone),
    ]
    for refused in refusals:
        with pytest.raises(ReviewError, match=f"contact {gone} is deleted") as exc:
            refused()
        assert "\n" not in str(exc.value)
    cli = CliRunner()
    for args in (
        ["proposals", "show", first["proposal_id"]],
        ["proposals", "accept", first["proposal_id"], "--survivor", gone],
    ):
        result = cli.invoke(app, [*args, "--db", str(db)])
        assert result.exit_code == 1 and f"contact {gone} is deleted" in result.output
        assert first["name_l"] is None or first["name_l"] not in result.output
    with published(db) as con:
        written = tmp_path / "proposals.csv"
        export_proposals(con, written, lambda _p, _f: [], hidden=hidden_ids(db))
    assert gone not in written.read_text()

    # A contact in a merge waiting for the run cannot be deleted under it.
    accept_proposal(db, second["proposal_id"], survivor=second["contact_id_r"])
    with pytest.raises(ReviewError, match="in a merge waiting for the next run"):
        delete_contacts(db, [second["contact_id_l"]])
    # Bulk acceptance passes over proposals naming the deleted contact.
    assert accept_all_above(db, 0.0, 200)
    accepted = read_all(StateLayout(db).decisions_path).filter(pl.col("kind") == "accept_proposal")
    named = accepted.select("contact_id_l", "contact_id_r", "survivor_id").to_numpy().ravel()
    assert gone not in set(named)

    run_pipeline(ContactsSettings(exports_dir=str(exports), db_path=str(db)))
    # The other side kept every interaction it had; the trash holds the deleted contact alone.
    after = dict(
        query(
            db,
            "SELECT interaction_id, contact_id FROM interactions "
            f"WHERE interaction_id IN ({', '.join(repr(i) for i in before)})",
        ).iter_rows()
    )
    assert set(after) == set(before)
    assert (
        query(db, f"SELECT count(*) FROM deleted_contacts WHERE contact_id = '{gone}'").item() == 1
    )
    assert (
        query(db, f"SELECT count(*) FROM deleted_contacts WHERE contact_id = '{other}'").item() == 0
    )


# --- item 6: an export never overwrites the database or its state ------------------------------


def test_export_refuses_the_database_and_its_state_folder(exports: Path, db: Path, run) -> None:
    from typer.testing import CliRunner

    from contacts.cli import app
    from dedup.service.review import add_note

    write_jsonl(exports, "2026-11-01", "a.jsonl", [rec("a1", email="a@x.test", name="Ada")])
    run(**NO_MATCHING)
    add_note(db, contact_of(db)["a1"], "keep me", who="ann")
    layout = StateLayout(db)
    protected = {p: p.read_bytes() for p in (db, layout.decisions_path) if p.exists()}
    link = db.parent / "innocent.csv"
    link.symlink_to(layout.decisions_path)
    targets = [
        db,
        db.parent / "contacts.duckdb.wal",
        layout.decisions_path,
        layout.state_dir / "views.json",
        layout.output_dir / "exports" / "contacts.csv",
        db.parent / "contacts.duckdb.state" / ".." / "contacts.duckdb",
        link,
    ]
    for target in targets:
        result = CliRunner().invoke(app, ["export", "--db", str(db), "--out", str(target)])
        assert result.exit_code == 1, target
        assert "refusing to write an export" in result.output
    assert {p: p.read_bytes() for p in protected} == protected
    fine = db.parent / "people.csv"
    assert CliRunner().invoke(app, ["export", "--db", str(db), "--out", str(fine)]).exit_code == 0
    assert "Ada" in fine.read_text()


# --- lows --------------------------------------------------------------------------------------


def test_search_edges_give_a_clear_answer(exports: Path, db: Path, run) -> None:
    from typer.testing import CliRunner

    from contacts.cli import app

    write_jsonl(
        exports,
        "2026-11-01",
        "a.jsonl",
        [rec("a1", email="ada@x.test", name="Ada Lovelace"), rec("b1", email="bo@x.test")],
    )
    run(**NO_MATCHING)
    cli = CliRunner()
    huge = cli.invoke(app, ["search", "--db", str(db), "--created-within", "99999999999"])
    assert huge.exit_code == 1 and isinstance(huge.exception, SystemExit)  # not OverflowError
    assert "created_within_days must be 0 to 36,525 (100 years)" in huge.output
    for text in ("!!!", "—", "'", "*"):
        result = cli.invoke(app, ["search", text, "--db", str(db)])
        assert result.exit_code == 0 and "0 contact(s) match" in result.output, text
    found = cli.invoke(app, ["search", "Ada", "--db", str(db)])
    assert "1 contact(s) match" in found.output


def test_control_and_bidi_characters_are_refused_on_edit_and_stripped_in_exports(
    exports: Path, db: Path, run, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from contacts.cli import app
    from dedup.decisions import read_all
    from dedup.service.review import ReviewError, bulk_edit, edit_contact

    write_jsonl(
        exports,
        "2026-11-01",
        "a.jsonl",
        [
            rec(
                "a1",
                email="ada@x.test",
                name="Ada\x00 \u202eecnalevoL",
                company="\u202e=cmd|' /C calc'!A0",
                contact_tags=["n\x00ul"],
            )
        ],
    )
    run(**NO_MATCHING)
    contact = contact_of(db)["a1"]
    for tag in ("a\x00b", "line\nbreak", "c\rr", "\u202egnp.exe", "\u2066x"):
        with pytest.raises(ReviewError, match="control or bidirectional-override"):
            bulk_edit(db, "tag-add", [contact], tag)
        with pytest.raises(ReviewError, match="control or bidirectional-override"):
            edit_contact(db, contact, tags_add=[tag])
    edit_contact(db, contact, tags_remove=["n\x00ul"])  # removing what an export brought: fine
    assert read_all(StateLayout(db).decisions_path).get_column("kind").to_list() == ["tag_remove"]

    out = tmp_path / "people.csv"
    assert CliRunner().invoke(app, ["export", "--db", str(db), "--out", str(out)]).exit_code == 0
    text = out.read_text(encoding="utf-8")
    assert "\x00" not in text and "\u202e" not in text
    assert "Ada ecnalevoL" in text
    # The bidi override hid a formula trigger; once stripped, the trigger is neutralized.
    assert "'=cmd|' /C calc'!A0" in text


def test_matching_spills_to_private_per_run_folders() -> None:
    import gc
    import os
    import tempfile

    from dedup.duck import private_session

    def spill_folder(con) -> Path:
        return Path(con.execute("SELECT current_setting('temp_directory')").fetchone()[0])

    first, second = private_session("splink"), private_session("splink")
    folders = [spill_folder(first), spill_folder(second)]
    assert folders[0] != folders[1]
    for folder in folders:
        assert folder.parent == Path(tempfile.gettempdir())
        assert folder.name.startswith("contacts-splink-")
        assert os.stat(folder).st_mode & 0o777 == 0o700
    del first, second
    gc.collect()
    assert not any(folder.exists() for folder in folders)
    # No module of the engine names a fixed shared folder any more.
    engine = Path(__file__).parents[1] / "dedup"
    fixed = ('"contacts-splink"', '"contacts-records"', '"contacts-splink-reports"')
    for source in engine.rglob("*.py"):
        assert not any(f in source.read_text() for f in fixed), source


def test_damaged_decision_log_is_one_clear_line(db: Path, after_one_contact) -> None:
    import time

    from typer.testing import CliRunner

    from contacts.cli import app

    StateLayout(db).decisions_path.write_bytes(b"not a database at all\n" * 100)
    started = time.monotonic()
    result = CliRunner().invoke(app, ["proposals", "list", "--db", str(db)])
    assert time.monotonic() - started < 10  # a damaged file is not a lock worth 30 s of retries
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "decision log" in lines[0] and "cannot be used" in lines[0]


def test_published_file_and_api_keys_are_not_world_readable(exports: Path, db: Path, run) -> None:
    import os

    previous = os.umask(0o022)  # the common default, under which both were 0644
    try:
        write_jsonl(exports, "2026-11-01", "a.jsonl", [rec("a1", email="a@x.test")])
        run(**NO_MATCHING)
        _check_modes(db, run)
    finally:
        os.umask(previous)


def _check_modes(db: Path, run) -> None:
    import os

    from dedup.service.apikeys import create_key, revoke_key

    layout = StateLayout(db)
    assert os.stat(db).st_mode & 0o777 == 0o640
    assert os.stat(layout.state_dir).st_mode & 0o007 == 0
    _, key = create_key(layout.api_keys_path, "read", "ci")
    assert os.stat(layout.api_keys_path).st_mode & 0o777 == 0o600
    revoke_key(layout.api_keys_path, key.key_id)
    assert os.stat(layout.api_keys_path).st_mode & 0o777 == 0o600
    run(**NO_MATCHING)  # every publish, not only the first
    assert os.stat(db).st_mode & 0o777 == 0o640
