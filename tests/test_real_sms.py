"""Twilio message logs as other tools export them (issue 21): `SMS Message SID` and friends, and
WhatsApp rows (`whatsapp:+…`) inside a Twilio log read as WhatsApp, not SMS."""

from __future__ import annotations

import shutil
from pathlib import Path

from dedup.ingest.adapters.base import SourceConfig
from dedup.ingest.adapters.sms import read_sms
from dedup.ingest.readers import FileOrigin
from tests.conftest import query

REAL = Path(__file__).parent / "data" / "real" / "sms"
TOOL_EXPORT = "constructed-twilio-log-export-tool.csv"
D1 = "2026-11-01"
BUSINESS = "+14155238886"


def test_a_log_exported_by_another_tool_reads_and_whatsapp_rows_are_whatsapp() -> None:
    out = read_sms(
        REAL / TOOL_EXPORT,
        FileOrigin("sms", D1, f"sms/{D1}/{TOOL_EXPORT}"),
        SourceConfig(business_phone_numbers=(BUSINESS,)),
    )
    assert out.quarantine.height == 0  # the old reader: "header lacks sid"
    rows = out.records.select(
        "interaction_id", "channel", "phone", "conversation_id", "occurred_at", "row"
    ).rows()
    assert rows == [
        ("sms:SM0f1e2d3c4b5a69788796a5b4c3d2e1f0", "sms", "+16467302291",
         f"sms:{BUSINESS}:+16467302291", "2026-11-01 14:12:44", 2),
        ("sms:SM1f1e2d3c4b5a69788796a5b4c3d2e1f1", "sms", "+16467302291",
         f"sms:{BUSINESS}:+16467302291", "2026-11-01 14:13:02", 3),
        ("sms:SM2f1e2d3c4b5a69788796a5b4c3d2e1f2", "whatsapp", "+5215512345678",
         f"whatsapp:{BUSINESS}:+5215512345678", "2026-11-01 15:20:00", 4),
        ("sms:SM3f1e2d3c4b5a69788796a5b4c3d2e1f3", "whatsapp", "+5215512345678",
         f"whatsapp:{BUSINESS}:+5215512345678", "2026-11-01 15:21:10", 5),
    ]  # fmt: skip
    # A failed WhatsApp template is no person; the sandbox number talking to itself is the business.
    assert out.skipped == {"undelivered_outbound": 1, "business_to_business": 1}


def test_console_and_api_column_names_read_alike(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(
        "SmsSid,From,To,DateSent,Direction,Status\n"
        "SMa1,whatsapp:+16467302291,whatsapp:+14155238886,2026-11-01T09:00:00Z,inbound,received\n"
    )
    out = read_sms(path, FileOrigin("sms", D1, "sms/x/log.csv"))
    assert out.records.select("interaction_id", "channel", "phone").rows() == [
        ("sms:SMa1", "whatsapp", "+16467302291")
    ]


def test_one_person_on_sms_and_whatsapp_through_twilio_is_one_contact(
    exports: Path, db: Path, run
) -> None:
    folder = exports / "sms" / D1
    folder.mkdir(parents=True)
    shutil.copy(REAL / TOOL_EXPORT, folder / TOOL_EXPORT)
    (folder / "whatsapp-same-person.csv").write_text(
        "SMS Message SID,From,To,Date Sent,Status,Direction,Body\n"
        "SM9f1e2d3c4b5a69788796a5b4c3d2e1f9,whatsapp:+16467302291,whatsapp:+14155238886,"
        "2026-11-01 18:00:00,received,inbound,Hi again on WhatsApp\n"
    )
    run(business_phone_numbers=[BUSINESS])
    channels = query(
        db,
        "SELECT channels FROM contacts WHERE list_contains(phones, '+16467302291')",
    ).rows()
    assert channels == [(["sms", "whatsapp"],)]
    per_channel = dict(
        query(db, "SELECT channel, count(*) FROM interactions GROUP BY ALL").iter_rows()
    )
    assert per_channel == {"sms": 2, "whatsapp": 3}
