"""Native adapters on committed provider-shaped sample files (tests/data/<source>/)."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import polars as pl
import pytest

from dedup.ingest.adapters.base import SourceConfig
from dedup.ingest.adapters.crm import read_hubspot, read_salesforce
from dedup.ingest.adapters.mail import read_mail
from dedup.ingest.adapters.slack import read_slack
from dedup.ingest.adapters.sms import read_sms
from dedup.ingest.adapters.whatsapp import read_whatsapp
from dedup.ingest.days import day_files, fingerprint, ingest_day
from dedup.ingest.readers import FileOrigin, ReadResult
from dedup.schema import QUARANTINE_SCHEMA, RAW_SCHEMA

DATA = Path(__file__).parent / "data"
CONFIG = SourceConfig(
    staff_domains=("acme.io",),
    workspace_emails=("support@acme.io",),
    business_phone_numbers=("+1 415 523 8886",),
)


def read(reader, rel: str, config: SourceConfig = CONFIG) -> ReadResult:
    origin = FileOrigin(rel.split("/")[0], "2026-11-01", rel)
    out = reader(DATA / rel, origin, config=config)
    assert out.records.schema == pl.Schema(RAW_SCHEMA) or reader in (read_hubspot, read_salesforce)
    assert out.quarantine.schema == pl.Schema(QUARANTINE_SCHEMA)
    return out


def by_id(result: ReadResult) -> dict[str, dict]:
    return {r["interaction_id"]: r for r in result.records.to_dicts()}


def reasons(result: ReadResult) -> list[tuple[int | None, str]]:
    rows = [(r["row"], r["reason"]) for r in result.quarantine.to_dicts()]
    return sorted(rows, key=lambda x: (x[0] or 0, x[1]))


# --- WhatsApp -----------------------------------------------------------------------------------


def test_whatsapp_single_payload_maps_contact_and_profile_name() -> None:
    out = read(read_whatsapp, "whatsapp/webhook-2026-11-01T0930.json")
    (row,) = out.records.to_dicts()
    assert (
        row["interaction_id"] == "wa:wamid.HBgLMTQxNTY5MjM4MTAVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    )
    assert (row["channel"], row["phone"], row["name"]) == (
        "whatsapp",
        "14156923810",
        "Renée Dubois",
    )
    assert row["occurred_at"] == "1793525400"
    assert row["conversation_id"] == "wa:106540352242922:14156923810"
    assert (row["source"], row["file"], row["row"]) == (
        "whatsapp",
        "whatsapp/webhook-2026-11-01T0930.json",
        1,
    )
    assert out.quarantine.height == 0 and out.skipped == {}


def test_whatsapp_jsonl_skips_statuses_and_echoes_and_quarantines_bad_lines() -> None:
    out = read(read_whatsapp, "whatsapp/webhooks-2026-11-01.jsonl")
    rows = by_id(out)
    # Two customers batched in one payload (line 1), a reply on line 3.
    assert sorted((r["name"], r["phone"], r["row"]) for r in rows.values()) == [
        ("Priya Sharma", "447911123456", 1),
        ("Søren Østergaard", "4915112345678", 1),
        ("Søren Østergaard", "4915112345678", 3),
    ]
    # Line 2 is two delivery receipts; line 4 the business's own message (an echo).
    assert out.skipped == {"business_message": 1, "status_update": 2}
    got = reasons(out)
    assert [r for r, _ in got] == [5, 6, 7]
    assert got[0][1].startswith("invalid JSON")
    assert "not a WhatsApp webhook payload (object='page'" in got[1][1]
    assert got[2][1] == "WhatsApp message without 'id'"


def test_whatsapp_message_from_business_number_is_skipped(tmp_path: Path) -> None:
    src = (DATA / "whatsapp/webhook-2026-11-01T0930.json").read_text()
    path = tmp_path / "echo.json"
    path.write_text(src)
    config = SourceConfig(business_phone_numbers=("+1 415 692 3810",))
    out = read_whatsapp(path, FileOrigin("whatsapp", "2026-11-01", "echo.json"), config=config)
    assert out.records.height == 0 and out.skipped == {"business_message": 1}


# --- Slack --------------------------------------------------------------------------------------


def _slack_expectations(out: ReadResult, prefix: str) -> None:
    rows = by_id(out)
    assert sorted(rows) == [
        "slack:C01GENERAL:1793527200.000200",
        "slack:C01GENERAL:1793527800.000400",
        "slack:C01GENERAL:1793530000.000600",
        "slack:C01SUPPORT:1793532000.000100",
    ]
    thread_reply = rows["slack:C01GENERAL:1793527800.000400"]
    assert thread_reply["conversation_id"] == "slack:C01GENERAL:1793527200.000200"
    assert thread_reply["session_id"] == "slack:T02ACMEHQ:U01MATEO"
    assert thread_reply["email"] is None and thread_reply["name"] == "Mateo López"
    assert thread_reply["file"] == f"{prefix}/general/2026-11-01.json"
    assert thread_reply["row"] == 4
    renee = rows["slack:C01SUPPORT:1793532000.000100"]
    assert (renee["email"], renee["phone"]) == ("renee.dubois@example.org", "+1 415 692 3810")
    # A deleted member's history is still a person's history.
    assert rows["slack:C01GENERAL:1793530000.000600"]["name"] == "Łukasz Kowalski"
    # The helpbot message and Slackbot; the staff reply (acme.io); a channel join.
    assert out.skipped == {"bot": 2, "staff": 1, "system_message": 1}
    assert sorted((r["file"], r["row"], r["reason"]) for r in out.quarantine.to_dicts()) == [
        (f"{prefix}/support/2026-11-01.json", 3, "message without 'ts'"),
        (f"{prefix}/support/2026-11-02.json", None, "channel file is not a JSON array of messages"),
    ]


def test_slack_folder_export() -> None:
    _slack_expectations(read(read_slack, "slack/acme-export"), "slack/acme-export")


def test_slack_zip_export_with_top_folder_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "acme Slack export Nov 1 2026.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for member in sorted((DATA / "slack/acme-export").rglob("*.json")):
            rel = member.relative_to(DATA / "slack/acme-export").as_posix()
            archive.write(member, f"acme Slack export Nov 1 2026/{rel}")
    rel = "slack/2026-11-01/acme Slack export Nov 1 2026.zip"
    out = read_slack(path, FileOrigin("slack", "2026-11-01", rel), config=CONFIG)
    _slack_expectations(out, rel)


def test_slack_without_staff_domains_counts_staff_as_contacts() -> None:
    out = read(read_slack, "slack/acme-export", config=SourceConfig())
    assert out.records.height == 5 and "staff" not in out.skipped


def test_slack_file_that_is_not_an_export_is_quarantined(tmp_path: Path) -> None:
    bad = tmp_path / "export.zip"
    bad.write_bytes(b"not a zip at all")
    out = read_slack(bad, FileOrigin("slack", "2026-11-01", "slack/2026-11-01/export.zip"))
    assert out.records.height == 0
    assert (
        out.quarantine.get_column("reason").to_list()[0].startswith("not a readable Slack export")
    )


# --- email --------------------------------------------------------------------------------------


def test_mbox_threads_decodes_names_and_skips_automated_mail() -> None:
    out = read(read_mail, "email/support-inbox.mbox")
    rows = by_id(out)
    first, reply = (
        rows["email:CAF8x2yQ1@mail.example.org"],
        rows["email:CAF8x2yQ2@mail.example.org"],
    )
    # RFC 2047 quoted-printable and base64 encoded words both decode to the same name.
    assert first["name"] == reply["name"] == "Renée Dubois"
    assert first["email"] == "Renee.Dubois@example.org"
    assert (
        reply["conversation_id"] == first["conversation_id"] == "email:CAF8x2yQ1@mail.example.org"
    )
    assert first["occurred_at"] == "2026-11-01T12:15:00+01:00"
    assert (first["row"], reply["row"]) == (1, 3)
    # A message without Message-ID gets a stable hash id.
    (no_id,) = [r for r in rows if r.startswith("email:sha256:")]
    assert rows[no_id]["email"] == "wei.chen@example.com"
    assert read(read_mail, "email/support-inbox.mbox").records.get_column(
        "interaction_id"
    ).to_list() == list(rows)
    assert out.skipped == {"auto_reply": 1, "automated_sender": 1, "workspace_sender": 2}
    assert reasons(out) == [
        (7, "message without a readable Date: header"),
        (8, "message without a readable From: address"),
    ]


def test_eml_with_latin1_encoded_name() -> None:
    (row,) = read(read_mail, "email/francois.eml").records.to_dicts()
    assert row["name"] == "François Lefèvre"
    assert row["email"] == "francois.lefevre+shop@gmail.com"
    assert row["interaction_id"] == "email:20261102140000.GA1234@gmail.com"


def test_file_that_is_not_mail_is_quarantined() -> None:
    out = read(read_mail, "email/broken.mbox")
    assert out.records.height == 0
    assert reasons(out) == [(None, "not an mbox file: it does not start with a 'From ' line")]


# --- SMS ----------------------------------------------------------------------------------------


def test_twilio_log_inbound_from_outbound_to() -> None:
    out = read(read_sms, "sms/messages-2026-11-01.csv")
    rows = by_id(out)
    assert {k: (v["phone"], v["row"]) for k, v in rows.items()} == {
        "sms:SM1f0e2d3c4b5a69788796a5b4c3d2e1f0": ("+16467302291", 2),  # inbound: From
        "sms:SM2a0e2d3c4b5a69788796a5b4c3d2e1f1": ("+16467302291", 3),  # outbound-reply: To
        "sms:SM3b0e2d3c4b5a69788796a5b4c3d2e1f2": ("+33612345678", 4),  # outbound-api: To
    }
    assert rows["sms:SM2a0e2d3c4b5a69788796a5b4c3d2e1f1"]["conversation_id"] == (
        "sms:+14155238886:+16467302291"
    )
    assert out.skipped == {"undelivered_outbound": 2}
    assert reasons(out) == [
        (7, "message without Sid"),
        (8, "unknown Direction 'trunking-originating'"),
        (9, "expected 13 fields, got 5"),
    ]


def test_csv_that_is_not_a_twilio_log_is_quarantined_whole() -> None:
    out = read(read_sms, "sms/exported-from-phone.csv")
    assert out.records.height == 0
    ((row, reason),) = reasons(out)
    assert row is None and reason.startswith("not a Twilio message log: CSV header lacks sid")


# --- CRM ----------------------------------------------------------------------------------------


def test_hubspot_export_records_and_quarantine() -> None:
    out = read(read_hubspot, "hubspot/hubspot-crm-exports-all-contacts-2026-11-01.csv")
    assert out.records.get_column("record_id").to_list() == ["51", "52", "53", "54"]
    first = out.records.row(0, named=True)
    assert (first["name"], first["email"], first["phone"]) == (
        "Renée Dubois",
        "renee.dubois@example.org",
        "+1 (415) 692-3810",
    )
    assert '"lifecyclestage":"Customer"' in first["attributes"]
    assert reasons(out) == [(6, "hubspot row without a record id")]


def test_salesforce_contact_export_and_wrong_object_export() -> None:
    out = read(read_salesforce, "salesforce/Contact-export-2026-11-01.csv")
    assert out.records.get_column("object_type").unique().to_list() == ["contact"]
    priya = out.records.row(0, named=True)
    assert (priya["phone"], priya["company"]) == ("+44 7911 123456", "Nimbus Media")
    wrong = read(read_salesforce, "salesforce/Opportunity-export.csv")
    assert wrong.records.height == 0
    assert reasons(wrong)[0][1].startswith("not a salesforce export")


# --- day folders --------------------------------------------------------------------------------


@pytest.fixture
def slack_day(tmp_path: Path) -> Path:
    exports = tmp_path / "exports"
    shutil.copytree(DATA / "slack/acme-export", exports / "slack/2026-11-01/acme-export")
    return exports


def test_slack_folder_in_a_day_is_one_input_and_its_files_change_the_fingerprint(
    slack_day: Path,
) -> None:
    files = day_files(slack_day, "slack", "2026-11-01")
    assert [p.name for p in files] == ["acme-export"]
    before = fingerprint(files)
    inner = slack_day / "slack/2026-11-01/acme-export/general/2026-11-01.json"
    inner.write_text(inner.read_text().replace("Perfect, thanks", "Perfect, thank you!"))
    assert fingerprint(files) != before
    # Other sources still see files only: a stray folder in an askvault day is not read.
    (slack_day / "askvault/2026-11-01/notes").mkdir(parents=True)
    assert day_files(slack_day, "askvault", "2026-11-01") == []


def test_ingest_day_validates_native_records_and_reports_skips(slack_day: Path) -> None:
    day = ingest_day(slack_day, "slack", "2026-11-01", CONFIG)
    assert day.accepted.height == 4
    assert day.accepted.schema["occurred_at"] == pl.Datetime("us", "UTC")
    assert day.skipped == {"bot": 2, "staff": 1, "system_message": 1}
    assert day.quarantine.height == 2
    ts = day.accepted.filter(pl.col("interaction_id") == "slack:C01SUPPORT:1793532000.000100")
    assert str(ts.get_column("occurred_at")[0]) == "2026-11-01 11:20:00.000100+00:00"


def test_whatsapp_json_file_holding_one_payload_per_line_and_unsupported_files(
    tmp_path: Path,
) -> None:
    lines = (DATA / "whatsapp/webhooks-2026-11-01.jsonl").read_text().splitlines()[:3]
    named_json = tmp_path / "webhooks.json"
    named_json.write_text("\n".join(lines) + "\n")
    out = read_whatsapp(named_json, FileOrigin("whatsapp", "2026-11-01", "w/webhooks.json"))
    assert out.records.height == 3 and out.quarantine.height == 0
    notes = tmp_path / "notes.txt"
    notes.write_text("call back Søren\n")
    out = read_whatsapp(notes, FileOrigin("whatsapp", "2026-11-01", "w/notes.txt"))
    assert out.records.height == 0
    assert out.quarantine.get_column("reason").to_list() == [
        "unsupported file type 'notes.txt' (expected .json or .jsonl)"
    ]


def test_slack_private_channel_folder_uses_its_id_from_groups_json(tmp_path: Path) -> None:
    export = tmp_path / "export"
    shutil.copytree(DATA / "slack/acme-export", export)
    (export / "groups.json").write_text('[{"id": "G01VIP", "name": "vip-customers"}]')
    (export / "vip-customers").mkdir()
    (export / "vip-customers/2026-11-01.json").write_text(
        '[{"type": "message", "user": "U01RENEE", "text": "hi", "ts": "1793530000.000100"}]'
    )
    out = read_slack(export, FileOrigin("slack", "2026-11-01", "slack/2026-11-01/export"))
    assert "slack:G01VIP:1793530000.000100" in by_id(out)


def test_twilio_api_style_column_names(tmp_path: Path) -> None:
    path = tmp_path / "messages.csv"
    path.write_text(
        "message_sid,from,to,body,status,date_sent,direction\n"
        "SMaa01,+16467302291,+14155238886,hi,received,2026-11-01T10:00:00Z,inbound\n"
        'SMaa02,+16467302291,+14155238886,hi,received,"Sun, 01 Nov 2026 11:00:00 +0000",inbound\n'
    )
    out = read_sms(path, FileOrigin("sms", "2026-11-01", "sms/messages.csv"))
    assert out.records.select("interaction_id", "occurred_at", "phone").rows() == [
        ("sms:SMaa01", "2026-11-01T10:00:00Z", "+16467302291"),
        ("sms:SMaa02", "2026-11-01T11:00:00+00:00", "+16467302291"),
    ]
