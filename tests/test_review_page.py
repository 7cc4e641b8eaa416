"""Reviewing Splink's proposals: the CLI loop, the web page's safety, and a real browser."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assets.resources import ContactsSettings
from contacts.cli import app
from contacts.runner import run_pipeline
from contacts.web import CSRF_COOKIE, create_app
from dedup.decisions import read_all
from dedup.layout import StateLayout
from tests.conftest import SCRIPT_NAME, query
from tests.webauth import serving, sign_in_browser, signed_in_client

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def world(review_world: Path) -> Path:
    """A published file with pending proposals (generated people plus hand-made near-twins and
    a visitor named with a script, `tests.conftest.review_world`; read only)."""
    return review_world


@pytest.fixture
def copy(world: Path, tmp_path: Path):
    """A private copy of the world's published file and state, plus a runner for it."""
    db = tmp_path / "contacts.duckdb"
    shutil.copy(world / "out" / "contacts.duckdb", db)
    shutil.copytree(world / "out" / "contacts.duckdb.state", tmp_path / "contacts.duckdb.state")

    def run() -> None:
        run_pipeline(ContactsSettings(exports_dir=str(world / "exports"), db_path=str(db)))

    return db, run


def pending(db: Path) -> list[dict]:
    return query(
        db,
        """
        SELECT p.proposal_id, p.contact_id_l, p.contact_id_r
        FROM merge_proposals p WHERE status = 'pending'
        ORDER BY match_probability DESC, proposal_id
        """,
    ).rows(named=True)


def test_cli_review_loop_accept_reject_and_bulk_cap(copy) -> None:
    db, run = copy
    queue = pending(db)
    assert len(queue) >= 2, "the world must have proposals to review"
    first, second = queue[0], queue[1]
    runner = CliRunner()
    listed = runner.invoke(app, ["proposals", "list", "--db", str(db)])
    assert listed.exit_code == 0 and first["proposal_id"] in listed.output
    # Keep the right-hand contact, whichever is older.
    ok = runner.invoke(
        app,
        [
            "proposals",
            "accept",
            first["proposal_id"],
            "--survivor",
            first["contact_id_r"],
            "--db",
            str(db),
        ],
    )
    assert ok.exit_code == 0, ok.output
    again = runner.invoke(
        app,
        [
            "proposals",
            "accept",
            first["proposal_id"],
            "--survivor",
            first["contact_id_r"],
            "--db",
            str(db),
        ],
    )
    assert again.exit_code == 1 and "already decided" in again.output
    ok = runner.invoke(app, ["proposals", "reject", second["proposal_id"], "--db", str(db)])
    assert ok.exit_code == 0, ok.output
    # Decided proposals leave the queue at once.
    listed = runner.invoke(app, ["proposals", "list", "--db", str(db), "--limit", "500"])
    assert first["proposal_id"] not in listed.output and second["proposal_id"] not in listed.output
    capped = runner.invoke(
        app, ["proposals", "accept", "--all-above", "0.5", "--limit", "201", "--db", str(db)]
    )
    assert capped.exit_code == 1 and "at most 200" in capped.output

    run()
    status = dict(query(db, "SELECT proposal_id, status FROM merge_proposals").iter_rows())
    assert status[first["proposal_id"]] == "accepted"
    assert status[second["proposal_id"]] == "rejected"
    merge = query(db, "SELECT * FROM merges WHERE kind = 'proposal'").row(0, named=True)
    assert merge["survivor_id"] == first["contact_id_r"]
    assert merge["merged_ids"] == [first["contact_id_l"]]
    redirect = query(
        db,
        f"SELECT to_contact_id FROM contact_redirects WHERE from_contact_id = '{first['contact_id_l']}'",
    )
    assert redirect.item() == first["contact_id_r"]
    live = set(query(db, "SELECT contact_id FROM contacts").get_column("contact_id"))
    assert {second["contact_id_l"], second["contact_id_r"]} <= live
    # Another night: the rejected pair is still not proposed again.
    run()
    rows = query(
        db,
        f"SELECT status FROM merge_proposals WHERE proposal_id = '{second['proposal_id']}'",
    )
    assert rows.get_column("status").to_list() == ["rejected"]


def test_state_changing_request_needs_the_page_token(copy) -> None:
    db, _ = copy
    target = pending(db)[0]["proposal_id"]
    client = signed_in_client(db, follow_redirects=False)
    refused = client.post(f"/proposals/{target}/reject", data={})
    assert refused.status_code == 403
    forged = client.post(f"/proposals/{target}/reject", data={"csrf_token": "guess"})
    assert forged.status_code == 403
    assert read_all(StateLayout(db).decisions_path).height == 0
    page = client.get(f"/proposals/{target}")
    assert page.status_code == 200
    token = client.cookies.get(CSRF_COOKIE)
    assert token and f'value="{token}"' in page.text
    accepted = client.post(f"/proposals/{target}/reject", data={"csrf_token": token})
    assert accepted.status_code == 303
    assert read_all(StateLayout(db).decisions_path).height == 1
    assert client.get(f"/proposals/{target}/reject").status_code == 405


def test_a_visitor_typed_script_renders_as_text(copy) -> None:
    db, _ = copy
    contact = query(db, "SELECT contact_id FROM contacts WHERE email = 'xss@attacker.test'").item()
    client = signed_in_client(db)
    html = client.get(f"/contacts/{contact}").text
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in html
    assert SCRIPT_NAME not in html


@pytest.fixture
def server(copy):
    db, run = copy
    with serving(create_app(db)) as base:
        yield base, db, run


def test_browser_accept_reject_and_undo(server, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, db, run = server
    queue = pending(db)
    first, second = queue[0], queue[1]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        sign_in_browser(page, base, db)
        page.goto(f"{base}/proposals")
        rows = page.locator("#queue tbody tr[data-proposal]")
        expect(rows.first).to_have_attribute("data-proposal", first["proposal_id"])
        # Escaped, not executed: a dialog would mean the script ran.
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        rows.first.get_by_role("link", name="Review").click()
        expect(page.locator("#card")).to_be_visible()
        page.screenshot(path=str(tmp_path / "review-card.png"), full_page=True)
        # Keyboard: "2" merges keeping the right-hand contact, then the next card opens.
        page.keyboard.press("2")
        expect(page.locator(".msg")).to_contain_text(f"accepted {first['proposal_id']}")
        expect(page).to_have_url(re.compile(rf"/proposals/{second['proposal_id']}\?msg="))
        page.locator("#reject").click()
        expect(page.locator(".msg")).to_contain_text(f"rejected {second['proposal_id']}")

        run()  # the nightly job applies both decisions
        survivor, merged = first["contact_id_r"], first["contact_id_l"]
        page.goto(f"{base}/contacts/{merged}")
        expect(page.locator("body")).to_contain_text(f"{merged} was merged into this contact")
        merge_row = page.locator("#merges tr", has_text="proposal")
        merge_row.get_by_role("button").click()
        expect(page.locator(".msg")).to_contain_text("undoing")
        assert dialogs == []
        browser.close()

    run()  # the next run undoes the merge
    live = set(query(db, "SELECT contact_id FROM contacts").get_column("contact_id"))
    assert {survivor, merged} <= live, (
        query(db, "SELECT kind, merge_id, outcome, detail FROM admin_decisions").rows(),
        query(db, "SELECT * FROM merges WHERE kind <> 'auto'"),
        query(db, "SELECT merge_id, contact_id, count(*) FROM merge_sides GROUP BY ALL").rows(),
    )
    kinds = query(
        db,
        "SELECT kind, undone_at IS NOT NULL FROM merges WHERE kind IN ('proposal', 'unmerge') ORDER BY kind",
    ).rows()
    assert kinds == [("proposal", True), ("unmerge", False)]
    status = dict(query(db, "SELECT proposal_id, status FROM merge_proposals").iter_rows())
    assert status[second["proposal_id"]] == "rejected"
    assert status[first["proposal_id"]] == "accepted"
    # The pair the admin pulled apart is not proposed again.
    again = query(
        db,
        f"SELECT count(*) FROM merge_proposals WHERE status = 'pending' AND "
        f"contact_id_l = '{min(survivor, merged)}' AND contact_id_r = '{max(survivor, merged)}'",
    )
    assert again.item() == 0


def test_browser_contacts_page_searches_and_remembers_columns(server) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, db, _run = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_context().new_page()
        sign_in_browser(page, base, db)
        page.goto(f"{base}/contacts")
        headers = page.locator("#contacts thead th[data-col]")
        expect(headers.first).to_have_text("contact_id")
        assert "phone" not in headers.all_inner_texts()
        # Show phone, move it to the front, hide tags.
        page.locator("#column-options summary").click()
        page.locator('#column-order li[data-col="phone"] input').check()
        page.locator('#column-order li[data-col="tags"] input').uncheck()
        for _ in range(len(headers.all_inner_texts())):
            page.locator('#column-order li[data-col="phone"] .up').click()
        page.locator("#apply-columns").click()
        expect(page).to_have_url(re.compile(r"cols="))
        chosen = page.locator("#contacts thead th[data-col]").all_inner_texts()
        assert chosen[:2] == ["phone", "contact_id"] and "tags" not in chosen
        # Remembered by this browser: a bare /contacts comes back with the same columns.
        page.goto(f"{base}/contacts")
        expect(page).to_have_url(re.compile(r"cols="))
        assert page.locator("#contacts thead th[data-col]").all_inner_texts() == chosen
        # Search narrows the list (full text through the fts index).
        page.fill('input[name="q"]', "Priyanka")
        page.locator('#filters button[type="submit"]').click()
        rows = page.locator("#contacts tbody tr")
        expect(rows).to_have_count(2)
        # Bulk delete: tick both, confirm, gone from the list at once; restore from Deleted.
        picked = [
            page.locator('#contacts tbody input[name="contact_id"]').nth(i).get_attribute("value")
            for i in range(2)
        ]
        page.on("dialog", lambda d: d.accept())
        page.locator("#select-all").check()
        page.locator("#delete-selected").click()
        expect(page.locator(".msg")).to_contain_text("deleted 2 contact(s)")
        page.fill('input[name="q"]', "Priyanka")
        page.locator('#filters button[type="submit"]').click()
        expect(page.locator("#contacts tbody")).to_contain_text("No contact matches.")
        page.locator("header a", has_text="Deleted").click()
        expect(page.locator("#deleted tbody tr")).to_have_count(2)
        page.locator(f'#deleted input[value="{picked[0]}"]').check()
        page.locator("#restore-selected").click()
        expect(page.locator(".msg")).to_contain_text("restoring 1 contact(s)")
        expect(page.locator("#deleted tbody tr")).to_have_count(1)
        browser.close()
    _run()
    live = set(query(db, "SELECT contact_id FROM contacts").get_column("contact_id"))
    assert picked[0] in live and picked[1] not in live
    assert query(db, "SELECT contact_id FROM deleted_contacts").rows() == [(picked[1],)]
