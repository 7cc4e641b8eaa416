"""Soft delete: hidden everywhere, restored exactly as before within 30 days, purged after."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contacts.cli import app
from contacts.web import CSRF_COOKIE
from dedup.ingest.days import read_staged
from dedup.layout import StateLayout
from dedup.service.apikeys import create_key
from dedup.service.review import (
    ReviewError,
    add_note,
    add_task,
    bulk_edit,
    contact_detail,
    delete_contacts,
    hidden_ids,
    restore_contacts,
    select_contacts,
)
from tests.conftest import copy_night, night_once, query, rec, write_jsonl
from tests.webauth import signed_in_client

NO_MATCHING = {"min_contacts_to_match": 10**9}

# Everything a restore must bring back, read from the published file.
SNAPSHOT = {
    "contact": "SELECT * REPLACE (attributes::VARCHAR AS attributes) FROM contacts "
    "WHERE contact_id = '{id}'",
    "interactions": "SELECT interaction_id, contact_id FROM interactions "
    "WHERE contact_id = '{id}' ORDER BY 1",
    "redirects": "SELECT * FROM contact_redirects WHERE to_contact_id = '{id}' ORDER BY 1",
    "notes": "SELECT * FROM contact_notes WHERE contact_id = '{id}' ORDER BY ALL",
    "tasks": "SELECT * EXCLUDE (status) FROM contact_tasks WHERE contact_id = '{id}' ORDER BY ALL",
    "merges": "SELECT * FROM merges WHERE survivor_id = '{id}' ORDER BY merge_id",
    "sides": "SELECT * FROM merge_sides WHERE contact_id = '{id}' ORDER BY ALL",
    "list": "SELECT * FROM contact_list WHERE contact_id = '{id}'",
}


def snapshot(db: Path, contact_id: str) -> dict[str, list]:
    return {k: query(db, sql.format(id=contact_id)).rows() for k, sql in SNAPSHOT.items()}


def ada_and_bea(exports: Path) -> None:
    """Ada: widget email, then a WhatsApp contact that a later form joins to her (a redirect).
    Bea: an unrelated contact that must not move."""
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
            rec("w1", "2026-11-01T11:00:00Z", channel="whatsapp", phone="+14155550101"),
            rec("b1", "2026-11-01T10:00:00Z", name="Bea Park", email="bea@home.test"),
        ],
    )


@pytest.fixture(scope="module")
def first_night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ada and Bea's first night (no matching), run once for the module."""
    return night_once(tmp_path_factory.mktemp("ada-and-bea"), ada_and_bea, **NO_MATCHING)


@pytest.fixture
def after_first_night(first_night: Path, exports: Path, db: Path) -> None:
    """This test's `exports` and `db` as `ada_and_bea(exports); run(**NO_MATCHING)` leaves them: a private copy of the module's
    first night."""
    copy_night(first_night, exports, db)


def join_whatsapp_to_ada(exports: Path) -> None:
    write_jsonl(
        exports,
        "2026-11-02",
        "join.jsonl",
        [
            rec(
                "a2",
                "2026-11-02T09:00:00Z",
                email="ada@engines.test",
                phone="+1 415 555 0101",
            )
        ],
    )


def contact_with(db: Path, email: str) -> str:
    return query(
        db, f"SELECT contact_id FROM contacts WHERE list_contains(emails, '{email}')"
    ).item()


def test_delete_hides_everywhere_and_restore_brings_back_exactly(
    exports: Path, db: Path, run, after_first_night
) -> None:
    whatsapp_id = query(
        db, "SELECT contact_id FROM interactions WHERE interaction_id = 'w1'"
    ).item()
    join_whatsapp_to_ada(exports)
    run(**NO_MATCHING)
    ada, bea = contact_with(db, "ada@engines.test"), contact_with(db, "bea@home.test")
    assert query(db, "SELECT to_contact_id FROM contact_redirects").rows() == [(ada,)]
    add_note(db, ada, "prefers email", who="ann")
    add_task(db, ada, "send the contract", due="3d", assignee="ann", who="ann")
    bulk_edit(db, "tag-add", [ada], "renewal", who="ann")
    run(**NO_MATCHING)
    before, bea_before = snapshot(db, ada), snapshot(db, bea)
    assert before["notes"] and before["tasks"] and before["sides"]
    assert query(db, f"SELECT tags FROM contacts WHERE contact_id = '{ada}'").item().to_list() == [
        "renewal",
        "vip",
    ]

    found = CliRunner().invoke(app, ["search", "Lovelace", "--db", str(db)])
    assert found.exit_code == 0 and ada in found.output
    (deletion,) = delete_contacts(db, [ada], who="ann")
    # Hidden at once from every read path, before any run.
    assert ada in hidden_ids(db)
    with pytest.raises(ReviewError, match="deleted"):
        contact_detail(db, ada)
    with pytest.raises(ReviewError, match="already deleted"):
        delete_contacts(db, [ada])
    with pytest.raises(ReviewError, match="restore first"):
        select_contacts(db, [ada])

    run(**NO_MATCHING)
    for table in ("contacts", "contact_list", "interactions", "contact_notes", "contact_tasks"):
        assert query(db, f"SELECT count(*) FROM {table} WHERE contact_id = '{ada}'").item() == 0
    assert (
        query(
            db, "SELECT count(*) FROM interactions WHERE interaction_id IN ('a1','a2','w1')"
        ).item()
        == 0
    )
    # Full-text search no longer finds her; Bea did not move.
    hits = CliRunner().invoke(app, ["search", "Lovelace", "--db", str(db)])
    assert hits.exit_code == 0 and ada not in hits.output
    assert snapshot(db, bea) == bea_before
    # The merged-away WhatsApp id still redirects to her (held), but resolves to nothing.
    assert query(db, "SELECT to_contact_id FROM contact_redirects").rows() == [(ada,)]
    with pytest.raises(ReviewError, match="deleted"):
        contact_detail(db, whatsapp_id)
    trash = query(db, "SELECT * FROM deleted_contacts").row(0, named=True)
    assert trash["contact_id"] == ada and trash["name"] == "Ada Lovelace"
    assert trash["deletion_id"] == deletion
    assert trash["restorable_until"] - trash["deleted_at"] == timedelta(days=30)
    assert query(db, "SELECT status, interactions FROM deletions").rows() == [("deleted", 3)]
    # A second night changes nothing: she stays hidden, her id is held.
    run(**NO_MATCHING)
    assert query(db, f"SELECT count(*) FROM contacts WHERE contact_id = '{ada}'").item() == 0

    restore_contacts(db, [ada], who="ann")
    run(**NO_MATCHING)
    assert snapshot(db, ada) == before
    assert snapshot(db, bea) == bea_before
    assert query(db, "SELECT count(*) FROM deleted_contacts").item() == 0
    assert query(db, "SELECT status, restored_by FROM deletions").rows() == [("restored", "ann")]
    with pytest.raises(ReviewError, match="already restored"):
        restore_contacts(db, [ada])


def test_person_writing_while_deleted_is_new_contact_joined_back_at_restore(
    exports: Path, db: Path, run, after_first_night
) -> None:
    ada = contact_with(db, "ada@engines.test")
    delete_contacts(db, [ada])
    write_jsonl(
        exports,
        "2026-11-03",
        "again.jsonl",
        [rec("a3", "2026-11-03T09:00:00Z", email="ADA@engines.test", name="Ada L.")],
    )
    run(**NO_MATCHING)
    newcomer = contact_with(db, "ada@engines.test")
    assert newcomer != ada
    assert (
        query(db, f"SELECT conversation_count FROM contacts WHERE contact_id = '{newcomer}'").item()
        == 1
    )
    restore_contacts(db, [ada])
    run(**NO_MATCHING)
    # The restored (older) id survives and the newcomer redirects to it, like any auto-merge.
    assert contact_with(db, "ada@engines.test") == ada
    assert (
        query(
            db, f"SELECT to_contact_id FROM contact_redirects WHERE from_contact_id = '{newcomer}'"
        ).item()
        == ada
    )
    got = query(
        db, f"SELECT interaction_id FROM interactions WHERE contact_id = '{ada}' ORDER BY 1"
    )
    assert got.get_column("interaction_id").to_list() == ["a1", "a3"]


def test_after_30_days_the_deletion_is_purged_for_good(
    exports: Path, db: Path, run, after_first_night
) -> None:
    ada = contact_with(db, "ada@engines.test")
    long_ago = datetime.now(UTC) - timedelta(days=31)
    delete_contacts(db, [ada], who="ann", now=long_ago)
    run(**NO_MATCHING)
    assert query(db, f"SELECT count(*) FROM contacts WHERE contact_id = '{ada}'").item() == 0
    assert query(db, "SELECT count(*) FROM deleted_contacts").item() == 0
    assert query(db, "SELECT status FROM deletions").item() == "purged"
    # Nothing of her stays in the published file or in staging.
    assert query(db, "SELECT count(*) FROM interactions WHERE interaction_id = 'a1'").item() == 0
    staged = read_staged(StateLayout(db).staging_root, "accepted")
    assert "a1" not in staged.get_column("interaction_id").to_list()
    with pytest.raises(ReviewError, match="purged for good"):
        restore_contacts(db, [ada])
    result = CliRunner().invoke(app, ["restore", ada, "--db", str(db)])
    assert result.exit_code == 1 and "purged" in result.output
    # Deleting is not erasing: a new message from her is a new contact.
    write_jsonl(
        exports,
        "2026-11-04",
        "back.jsonl",
        [rec("a9", "2026-11-04T09:00:00Z", email="ada@engines.test")],
    )
    run(**NO_MATCHING)
    back = contact_with(db, "ada@engines.test")
    assert back != ada
    got = query(
        db, f"SELECT list(interaction_id) FROM interactions WHERE contact_id = '{back}'"
    ).item()
    assert got.to_list() == ["a9"]


def test_cli_api_and_web_delete_and_restore(
    exports: Path, db: Path, run, after_first_night
) -> None:
    ada, bea = contact_with(db, "ada@engines.test"), contact_with(db, "bea@home.test")
    cli = CliRunner()
    # CLI: more than 200 is refused before anything is decided; then a real delete and listing.
    too_many = cli.invoke(app, ["delete", *[f"contact_{i}" for i in range(201)], "--db", str(db)])
    assert too_many.exit_code == 1 and "200" in too_many.output
    assert cli.invoke(app, ["delete", ada, "--db", str(db)]).exit_code == 0
    listed = cli.invoke(app, ["restore", "--db", str(db)])
    assert listed.exit_code == 0 and ada in listed.output
    assert cli.invoke(app, ["restore", ada, "--db", str(db)]).exit_code == 0
    assert hidden_ids(db) == set()

    # API: bulk delete, hidden from reads at once, bulk restore.
    keys = StateLayout(db).api_keys_path
    write_key, _ = create_key(keys, "write")
    auth = {"Authorization": f"Bearer {write_key}"}
    client = signed_in_client(db, follow_redirects=False)
    done = client.post(
        "/v1/contacts/bulk", json={"action": "delete", "contact_ids": [bea]}, headers=auth
    )
    assert done.status_code == 200 and done.json() == {"action": "delete", "contacts": 1}
    assert client.get(f"/v1/contacts/{bea}", headers=auth).status_code == 404
    listed_ids = [c["contact_id"] for c in client.get("/v1/contacts", headers=auth).json()["data"]]
    assert bea not in listed_ids and ada in listed_ids
    back = client.post(
        "/v1/contacts/bulk", json={"action": "restore", "contact_ids": [bea]}, headers=auth
    )
    assert back.status_code == 200
    assert client.get("/v1/contacts?limit=200", headers=auth).status_code == 200

    # Web: the list's form (with the page's token) deletes; the Deleted page restores.
    page = client.get("/contacts")
    token = page.cookies.get(CSRF_COOKIE) or client.cookies.get(CSRF_COOKIE)
    assert (
        client.post(
            "/contacts/delete", data={"contact_id": [ada], "csrf_token": "forged"}
        ).status_code
        == 403
    )
    gone = client.post("/contacts/delete", data={"contact_id": [ada], "csrf_token": token})
    assert gone.status_code == 303
    assert ada not in client.get("/contacts").text
    trash = client.get("/deleted")
    assert ada in trash.text and "Ada Lovelace" in trash.text
    assert (
        client.post("/deleted/restore", data={"contact_id": [ada], "csrf_token": token}).status_code
        == 303
    )
    assert ada not in client.get("/deleted").text
    run(**NO_MATCHING)
    assert query(db, "SELECT count(*) FROM contacts").item() == 3
    assert query(db, "SELECT list(status ORDER BY deleted_at) FROM deletions").item().to_list() == [
        "restored",
        "restored",
        "restored",
    ]
