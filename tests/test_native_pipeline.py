"""Native exports end to end: real sample files, real Dagster in process, real DuckDB output."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from tests.conftest import copy_night, night_once, query, rec, write_jsonl

DATA = Path(__file__).parent / "data"
D1, D2 = "2026-11-01", "2026-11-02"
WORKSPACE = {
    "staff_domains": ["acme.io"],
    "workspace_emails": ["support@acme.io"],
    "business_phone_numbers": ["+14155238886"],
    "hubspot_portal_id": "4412345",
    "salesforce_instance": "acme",
}


def _place(exports: Path, source: str, day: str, *samples: str) -> None:
    folder = exports / source / day
    folder.mkdir(parents=True, exist_ok=True)
    for sample in samples:
        src = DATA / source / sample
        if src.is_dir():
            shutil.copytree(src, folder / src.name)
        else:
            shutil.copy(src, folder / src.name)


def _all_native_sources(exports: Path) -> None:
    # Renée: on the website widget first (email + phone + plan), then WhatsApp (wa_id = her phone),
    # then email (From = her email), then Slack (profile email); HubSpot knows her as a customer.
    write_jsonl(
        exports,
        D1,
        "widget.jsonl",
        [
            rec(
                "w1",
                "2026-11-01T08:30:00Z",
                session_id="sess-renee",
                conversation_id="cw1",
                email="renee.dubois@example.org",
                phone="(415) 692-3810",
                name="Renée Dubois",
                plan="enterprise",
            )
        ],
    )
    _place(exports, "whatsapp", D1, "webhook-2026-11-01T0930.json", "webhooks-2026-11-01.jsonl")
    _place(exports, "email", D1, "support-inbox.mbox", "francois.eml", "broken.mbox")
    _place(exports, "slack", D1, "acme-export")
    _place(exports, "sms", D1, "messages-2026-11-01.csv")
    _place(exports, "hubspot", D1, "hubspot-crm-exports-all-contacts-2026-11-01.csv")
    _place(exports, "salesforce", D1, "Contact-export-2026-11-01.csv")


@pytest.fixture(scope="module")
def native_night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every native source's first night, run once for the module, recorded in a Dagster
    instance at `dagster_home` (the metadata test reads it)."""
    return night_once(
        tmp_path_factory.mktemp("native"), _all_native_sources, dagster_home=True, **WORKSPACE
    )


@pytest.fixture
def after_native_night(native_night: Path, exports: Path, db: Path) -> None:
    """This test's `exports` and `db` as `_all_native_sources(exports); run(**WORKSPACE)` leaves
    them: a private copy of the module's night."""
    copy_night(native_night, exports, db)


def test_widget_then_whatsapp_then_email_is_one_contact_with_crm_link(
    db, after_native_night
) -> None:
    renee = query(
        db,
        "SELECT c.* FROM contacts c JOIN interactions i USING (contact_id) "
        "WHERE i.interaction_id = 'w1'",
    ).to_dicts()[0]
    ids = set(
        query(
            db,
            f"SELECT interaction_id FROM interactions WHERE contact_id = '{renee['contact_id']}'",
        ).get_column("interaction_id")
    )
    assert ids == {
        "w1",
        "wa:wamid.HBgLMTQxNTY5MjM4MTAVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
        "email:CAF8x2yQ1@mail.example.org",
        "email:CAF8x2yQ2@mail.example.org",
        "slack:C01SUPPORT:1793532000.000100",
    }
    assert renee["channels"] == ["email", "slack", "whatsapp", "widget"]
    assert renee["name"] == "Renée Dubois"
    assert renee["conversation_count"] == 4  # widget, WhatsApp chat, one email thread, Slack
    # HubSpot record 51 has her email: synced, with a deep link; CRM says customer (paid_users)
    # while her identify() plan says enterprise: the plan wins and the disagreement is recorded.
    assert renee["crm_sync_status"] == "synced"
    assert renee["audience"] == "enterprise"
    links = query(db, f"SELECT * FROM crm_links WHERE contact_id = '{renee['contact_id']}'")
    assert links.select("system", "record_id", "matched_on", "url").rows() == [
        ("hubspot", "51", "email", "https://app.hubspot.com/contacts/4412345/record/0-1/51")
    ]
    mismatches = query(db, "SELECT * FROM tier_mismatches").to_dicts()
    assert mismatches == [
        {
            "contact_id": renee["contact_id"],
            "plan_audience": "enterprise",
            "crm_audience": "paid_users",
            "system": "hubspot",
            "record_id": "51",
        }
    ]


def test_crm_sync_states_and_crm_audience(db, after_native_night) -> None:
    status = dict(
        query(
            db,
            "SELECT name, crm_sync_status || coalesce(': ' || crm_sync_error, '') FROM contacts",
        ).iter_rows()
    )
    # Mateo is one contact on SMS (+1 646 730 2291) whose HubSpot record has that phone and an
    # email that is not an address; on Slack he is anonymous (no email or phone in his profile).
    assert status["Søren Østergaard"] == "synced"  # HubSpot by phone, no email on our side
    assert status["Priya Sharma"] == "synced"  # Salesforce by mobile phone
    assert status["François Lefèvre"] == "synced"  # Salesforce by email (+tag and dots ignored)
    assert status["Łukasz Kowalski"] == "pending"  # a lead the CRM does not know
    assert status["Mateo López"] == "not_synced"  # Slack guest: anonymous
    sms_mateo = query(
        db,
        "SELECT crm_sync_status, crm_sync_error FROM contacts WHERE list_contains(phones, "
        "'+16467302291')",
    ).rows()
    assert sms_mateo == [("error", "invalid email in hubspot record 53: 'mateo.lopez@example'")]
    # No identify() plan: the audience comes from Salesforce's Plan__c.
    wei = query(db, "SELECT audience, crm_sync_status FROM contacts WHERE email_norm LIKE 'wei%'")
    assert wei.rows() == [("growth", "synced")]
    urls = query(db, "SELECT url FROM crm_links WHERE system = 'salesforce' ORDER BY url")
    assert urls.get_column("url").to_list()[0] == (
        "https://acme.lightning.force.com/lightning/r/Contact/0035g00000XyZ12AAB/view"
    )
    # Every native source's malformed input is in quarantine, with where and why.
    per_source = dict(query(db, "SELECT source, count(*) FROM quarantine GROUP BY ALL").iter_rows())
    assert per_source == {"whatsapp": 3, "email": 3, "slack": 2, "sms": 3, "hubspot": 1}
    # CRM rows never become interactions.
    sources = set(query(db, "SELECT DISTINCT source FROM interactions").get_column("source"))
    assert sources == {"askvault", "whatsapp", "email", "slack", "sms"}


def test_a_new_native_day_reruns_only_that_source_partition(
    exports: Path, db: Path, run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    write_jsonl(exports, D1, "widget.jsonl", [rec("w1", email="renee.dubois@example.org")])
    _place(exports, "whatsapp", D1, "webhook-2026-11-01T0930.json")
    _place(exports, "email", D1, "support-inbox.mbox")
    first = run(**WORKSPACE)
    assert first.days_ingested == [D1]
    # Day 2: new webhooks, and Meta's retry of a day-1 webhook (the same message id again).
    _place(exports, "whatsapp", D2, "webhooks-2026-11-01.jsonl", "webhook-2026-11-01T0930.json")
    second = run(**WORKSPACE)
    assert second.days_ingested == [D2]
    instance = dg.DagsterInstance.get()
    try:

        def partitions(asset: str) -> list[str]:
            records = instance.fetch_materializations(dg.AssetKey(asset), limit=100).records
            return sorted(r.partition_key or "" for r in records)

        assert partitions("askvault_interactions") == [D1]
        assert partitions("email_interactions") == [D1]
        assert partitions("whatsapp_interactions") == [D1, D2]
        assert partitions("slack_interactions") == []
        # A third run with nothing new re-ingests nothing.
        assert run(**WORKSPACE).days_ingested == []
        assert partitions("whatsapp_interactions") == [D1, D2]
    finally:
        instance.dispose()
    # 1 message on day 1, 3 new on day 2; the retried delivery is the same interaction.
    assert query(db, "SELECT count(*) FROM interactions WHERE source = 'whatsapp'").item() == 4


def test_cli_reads_workspace_settings_from_the_environment(
    exports: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from contacts.cli import app

    _place(exports, "slack", D1, "acme-export")
    _place(exports, "email", D1, "support-inbox.mbox")
    monkeypatch.setenv("CONTACTS_STAFF_DOMAINS", "acme.io, example.net")
    result = CliRunner().invoke(app, ["run", "--exports", str(exports), "--db", str(db)])
    assert result.exit_code == 0, result.output
    senders = set(query(db, "SELECT email FROM interactions WHERE email IS NOT NULL")["email"])
    # Staff (acme.io) on Slack and in mail are not contacts; customers are.
    assert not any(e.lower().endswith("@acme.io") for e in senders)
    assert "renee.dubois@example.org" in senders


def test_dagster_metadata_reports_skips_and_tier_mismatches(
    native_night: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The instance the module's night (`_all_native_sources`, `run(**WORKSPACE)`) recorded in.
    monkeypatch.setenv("DAGSTER_HOME", str(native_night / "dagster_home"))
    instance = dg.DagsterInstance.get()
    try:

        def metadata(asset: str) -> dict:
            event = instance.get_latest_materialization_event(dg.AssetKey(asset))
            assert event is not None and event.asset_materialization is not None
            return {k: v.value for k, v in event.asset_materialization.metadata.items()}

        crm = metadata("crm_links")
        assert crm["tier_mismatches"] == 1
        assert crm["sync_errors"] == 1
        assert crm["unmatched_crm_records"] == 1  # HubSpot's "Ghost Record"
        whatsapp = metadata("whatsapp_interactions")
        assert whatsapp["skipped_by_reason"] == {"business_message": 1, "status_update": 2}
        assert whatsapp["quarantined"] == 3
    finally:
        instance.dispose()
