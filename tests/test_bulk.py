"""Bulk actions (≤ 200 contacts): durable admin edits applied by every later run."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from contacts.cli import app
from dedup.decisions import read_all
from dedup.layout import StateLayout
from dedup.service.review import merge_contacts, unmerge
from tests.conftest import copy_night, night_once, query, rec, write_jsonl

NO_MATCHING = {"min_contacts_to_match": 10**9}


def crowd(exports: Path) -> None:
    people = [
        rec(
            f"p{i:03d}",
            "2026-11-01T09:00:00Z",
            email=f"person{i}@crowd.test",
            contact_tags=["crowd"],
        )
        for i in range(201)
    ]
    people += [
        rec("ada", "2026-11-01T08:00:00Z", name="Ada", email="ada@x.test", contact_tags=["trial"]),
        rec("bea", "2026-11-01T08:30:00Z", name="Bea", email="bea@x.test"),
    ]
    write_jsonl(exports, "2026-11-01", "crowd.jsonl", people)


def cid(db: Path, email: str) -> str:
    return query(db, f"SELECT contact_id FROM contacts WHERE email = '{email}'").item()


def row(db: Path, contact_id: str) -> dict:
    return query(
        db,
        f"SELECT tags, audience, crm_sync_status FROM contacts WHERE contact_id = '{contact_id}'",
    ).row(0, named=True)


def bulk(db: Path, *args: str):
    return CliRunner().invoke(app, ["bulk", *args, "--db", str(db)])


@pytest.fixture(scope="module")
def crowd_night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The crowd's first night (no matching), run once for the module."""
    return night_once(tmp_path_factory.mktemp("crowd"), crowd, **NO_MATCHING)


@pytest.fixture
def after_crowd_night(crowd_night: Path, exports: Path, db: Path) -> None:
    """This test's `exports` and `db` as `crowd(exports); run(**NO_MATCHING)` leaves them: a
    private copy of the module's first night."""
    copy_night(crowd_night, exports, db)


def test_bulk_edits_are_capped_durable_and_follow_merges(
    exports: Path, db: Path, run, after_crowd_night
) -> None:
    ada, bea = cid(db, "ada@x.test"), cid(db, "bea@x.test")

    refused = bulk(db, "tag-add", "vip", "--tag", "crowd")
    assert refused.exit_code == 1 and "201 contacts selected" in refused.output
    assert read_all(StateLayout(db).decisions_path).height == 0

    assert bulk(db, "tag-add", "vip", "--id", ada, "--id", bea).exit_code == 0
    assert bulk(db, "tag-remove", "trial", "--id", ada).exit_code == 0
    assert bulk(db, "audience", "enterprise", "--id", bea).exit_code == 0
    wrong = bulk(db, "audience", "emperors", "--id", bea)
    assert wrong.exit_code == 1 and "unknown audience" in wrong.output
    # Visible at once as pending on the contact.
    shown = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["show", ada, "--db", str(db)])
    assert "pending: tag_add" in shown.output and "pending: tag_remove" in shown.output

    run(**NO_MATCHING)
    assert row(db, ada)["tags"] == ["vip"]  # "trial" came from its interactions, removed anyway
    assert (row(db, bea)["tags"], row(db, bea)["audience"]) == (["vip"], "enterprise")
    run(**NO_MATCHING)
    assert row(db, ada)["tags"] == ["vip"] and row(db, bea)["audience"] == "enterprise"

    # A forced CRM re-sync marks the contact pending on the run that applies it.
    assert bulk(db, "crm-resync", "--id", ada).exit_code == 0
    run(**NO_MATCHING)
    assert row(db, ada)["crm_sync_status"] == "pending"

    # Edits follow a merge to the survivor and come back with their side on unmerge.
    write_jsonl(
        exports,
        "2026-11-02",
        "c.jsonl",
        [rec("cid", "2026-11-02T08:00:00Z", name="Cy", email="cy@x.test")],
    )
    run(**NO_MATCHING)
    cy = cid(db, "cy@x.test")
    merge_contacts(db, ada, cy, survivor=cy)
    run(**NO_MATCHING)
    assert "vip" in row(db, cy)["tags"]
    merge_id = query(db, "SELECT merge_id FROM merges WHERE kind = 'manual'").item()
    unmerge(db, merge_id)
    run(**NO_MATCHING)
    assert row(db, ada)["tags"] == ["vip"] and row(db, cy)["tags"] == []


def test_tasks_follow_merges_and_unmerges(exports: Path, db: Path, run, after_crowd_night) -> None:
    ada, bea = cid(db, "ada@x.test"), cid(db, "bea@x.test")
    runner = CliRunner(env={"COLUMNS": "250"})
    added = runner.invoke(
        app,
        [
            "task",
            "add",
            bea,
            "call back about pricing",
            "--due",
            "2d",
            "--assignee",
            "sam",
            "--db",
            str(db),
        ],
    )
    assert added.exit_code == 0, added.output
    late = runner.invoke(
        app, ["task", "add", bea, "send contract", "--due", "2020-01-01", "--db", str(db)]
    )
    assert late.exit_code == 0
    bad = runner.invoke(app, ["task", "add", bea, "x", "--due", "soonish", "--db", str(db)])
    assert bad.exit_code == 1 and "due must be like" in bad.output
    # Visible at once, before any run.
    listed = runner.invoke(app, ["task", "list", "--db", str(db)])
    assert "call back about pricing" in listed.output and "overdue" in listed.output
    shown = runner.invoke(app, ["show", bea, "--db", str(db)])
    assert "send contract" in shown.output and "tasks" in shown.output
    merge_contacts(db, ada, bea, survivor=ada)
    run(**NO_MATCHING)
    moved = query(
        db, "SELECT contact_id, written_on, status FROM contact_tasks ORDER BY title"
    ).rows()
    assert moved == [(ada, bea, "open"), (ada, bea, "overdue")]
    merge_id = query(db, "SELECT merge_id FROM merges WHERE kind = 'manual'").item()
    unmerge(db, merge_id)
    task_id = query(db, "SELECT task_id FROM contact_tasks WHERE title = 'send contract'").item()
    assert runner.invoke(app, ["task", "done", task_id, "--db", str(db)]).exit_code == 0
    run(**NO_MATCHING)
    back = query(db, "SELECT contact_id, status FROM contact_tasks ORDER BY title").rows()
    assert back == [(bea, "open"), (bea, "done")]


def test_the_cli_offers_every_bulk_action_the_service_knows() -> None:
    # The CLI spells its bulk commands itself (importing the review service at startup costs
    # ~0.5 s on every command); the API's literal is built from the service's table.
    from contacts.cli.analyst import bulk_app
    from contacts.web.api import BulkRequest
    from dedup.service.review import BULK_ACTIONS

    assert {c.name for c in bulk_app.registered_commands} == set(BULK_ACTIONS)
    assert set(BulkRequest.model_fields["action"].annotation.__args__) == {*BULK_ACTIONS, "restore"}
