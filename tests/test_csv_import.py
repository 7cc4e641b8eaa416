"""`contacts import FILE.csv`: mapped, merged like any source, and idempotent."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from contacts.cli import app
from dedup.ingest.csv_import import detect_mapping
from tests.conftest import query, rec, write_jsonl


def test_header_detection_and_overrides() -> None:
    mapping = detect_mapping(["First Name", "Last Name", "E-mail Address", "Mobile", "Tags"])
    assert mapping == {
        "first_name": "First Name",
        "last_name": "Last Name",
        "email": "E-mail Address",
        "phone": "Mobile",
        "contact_tags": "Tags",
    }
    assert detect_mapping(["Work", "Who"], {"email": "Work"})["email"] == "Work"


def test_import_merges_like_any_source_and_twice_is_a_no_op(
    exports: Path, db: Path, tmp_path: Path
) -> None:
    write_jsonl(exports, "2026-11-01", "a.jsonl", [rec("w1", email="ada@x.test", name="Ada")])
    sheet = tmp_path / "leads.csv"
    sheet.write_text(
        "First Name,Last Name,E-mail Address,Mobile,Company,Tags\n"
        'Ada,Lovelace,ADA@x.test,+1 415 555 0101,Engines Ltd,"vip, trade show"\n'
        "Grace,Hopper,grace@navy.test,,Navy,\n"
        "Broken,Row,not-an-email,,,\n"
    )
    runner = CliRunner()
    first = runner.invoke(app, ["import", str(sheet), "--exports", str(exports), "--db", str(db)])
    assert first.exit_code == 0, first.output
    assert "3 row(s) mapped" in first.output
    ada = query(db, "SELECT * FROM contacts WHERE email_norm = 'ada@x.test'").row(0, named=True)
    # The imported row joined the widget contact by email, with its tags and company.
    assert sorted(ada["channels"]) == ["api", "widget"] and ada["company"] == "Engines Ltd"
    assert sorted(ada["tags"]) == ["trade show", "vip"]
    assert query(db, "SELECT count(*) FROM contacts").item() == 3
    before = query(db, "SELECT contact_id, interaction_count FROM contacts ORDER BY 1").rows()
    again = runner.invoke(app, ["import", str(sheet), "--exports", str(exports), "--db", str(db)])
    assert again.exit_code == 0 and "already imported" in again.output
    assert (
        query(db, "SELECT contact_id, interaction_count FROM contacts ORDER BY 1").rows() == before
    )
    bad = runner.invoke(
        app,
        ["import", str(sheet), "--exports", str(exports), "--map", "email=Nope", "--db", str(db)],
    )
    assert bad.exit_code == 1 and "no column 'Nope'" in bad.output
