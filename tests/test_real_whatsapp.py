"""The WhatsApp adapter on webhook payloads nobody here wrote (tests/data/real/README.md).

pywa's test data holds one JSON object per file mapping a case name to a webhook payload; a
webhook logger stores deliveries one payload per line, so each file is also replayed that way
(`_deliveries`). Expected per file: interactions, skips, quarantines; and end to end, pywa's
conversation from wa_id 972987654321 (a range libphonenumber does not know) is one contact.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dedup.ingest.adapters.whatsapp import read_whatsapp
from dedup.ingest.readers import FileOrigin
from tests.conftest import query

REAL = Path(__file__).parent / "data" / "real" / "whatsapp"
PYWA = REAL / "pywa"
DAY = "2026-11-01"
BSUID = "US.13491208655302741918"

# file → (interaction ids, skipped counts): every payload of the file delivered once, in order.
EXPECTED = {
    # 23 message types (text, media, stickers, reactions, locations, contacts, orders, replies,
    # forwards, referral); pywa reuses one message id for most, so 3 distinct ids.
    "message.json": (["wa:wamid.xyzxyz"] * 21 + ["wa:wamid.wegrchytvwcggt=", "wa:wamid.ID"], {}),
    "callback_button.json": (["wa:wamid.xyzxyz", "wa:wamid.xsidjw", "wa:wamid.xsidjx"], {}),
    # WhatsApp's notices of a changed number / security code: not written by the person.
    "system.json": ([], {"system_message": 2}),
    "message_status.json": ([], {"status_update": 7}),
    "outgoing_message.json": ([], {"business_message": 3}),
}


def _deliveries(src: Path, dest: Path) -> Path:
    """pywa's name → payload map as a webhook log: one payload per line, in the file's order."""
    payloads = json.loads(src.read_text()).values()
    dest.write_text("".join(json.dumps(p) + "\n" for p in payloads))
    return dest


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_pywa_fixture_as_delivered(name: str, tmp_path: Path) -> None:
    path = _deliveries(PYWA / name, tmp_path / f"pywa-{Path(name).stem}.jsonl")
    out = read_whatsapp(path, FileOrigin("whatsapp", DAY, path.name))
    ids, skipped = EXPECTED[name]
    assert sorted(out.records.get_column("interaction_id").to_list()) == sorted(ids)
    assert out.skipped == skipped
    assert out.quarantine.height == 0
    if ids:
        rows = out.records.select("phone", "session_id", "conversation_id").unique()
        # The BSUID comes from the message (`from_user_id`) or from `contacts[].user_id`.
        assert rows.rows() == [
            ("972987654321", f"wa-user:{BSUID}", "wa:1122334455667:972987654321")
        ]
        assert set(out.records.get_column("name")) == {"Test Name"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_pywa_file_as_it_is_is_quarantined_whole(name: str) -> None:
    # The file itself is a test suite's map of cases, not a delivery: one row says so.
    out = read_whatsapp(PYWA / name, FileOrigin("whatsapp", DAY, name))
    assert out.records.height == 0
    assert out.quarantine.get_column("reason").to_list() == [
        "not a WhatsApp webhook payload (object=None, expected 'whatsapp_business_account')"
    ]


def test_username_only_user_from_the_documented_payload_is_read() -> None:
    name = "username-only-user.json"
    out = read_whatsapp(REAL / "constructed" / name, FileOrigin("whatsapp", DAY, name))
    assert out.quarantine.height == 0 and out.skipped == {}
    (row,) = out.records.to_dicts()
    assert (row["phone"], row["session_id"], row["name"]) == (
        None,
        f"wa-user:{BSUID}",
        "Sheena Nelson",
    )
    assert row["conversation_id"] == f"wa:106540352242922:{BSUID}"


def test_pywa_conversation_is_one_contact_end_to_end(exports: Path, db: Path, run) -> None:
    folder = exports / "whatsapp" / DAY
    folder.mkdir(parents=True)
    for name in EXPECTED:
        _deliveries(PYWA / name, folder / f"pywa-{Path(name).stem}.jsonl")
    run()
    rows = query(
        db,
        "SELECT interaction_id, contact_id, phone_e164, phone_valid FROM interactions "
        "WHERE channel = 'whatsapp'",
    )
    # One interaction per message id (re-deliveries resolved), all one person.
    assert sorted(rows.get_column("interaction_id")) == [
        "wa:wamid.ID",
        "wa:wamid.wegrchytvwcggt=",
        "wa:wamid.xsidjw",
        "wa:wamid.xsidjx",
        "wa:wamid.xyzxyz",
    ]
    assert rows.select("phone_e164", "phone_valid").unique().rows() == [("+972987654321", False)]
    assert rows.get_column("contact_id").n_unique() == 1
    assert query(db, "SELECT count(*) FROM quarantine").item() == 0
    assert query(db, "SELECT count(*) FROM contacts").item() == 1
