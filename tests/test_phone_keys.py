"""Phone keys end to end (issue 21): one person on WhatsApp and SMS is one contact, whatever shape
WhatsApp gives their number; a conversation is never split; a username-only user is a contact.

Real pipeline (Dagster in process, DuckDB out) over native exports: Cloud API webhook payloads
(`whatsapp/`, JSONL) and a Twilio message log (`sms/`, the Console's CSV columns).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import polars as pl
import pytest

from assets.resources import ContactsSettings
from contacts.runner import run_pipeline
from dedup.identity.normalize import (
    classify_phone,
    phone_lookup_name,
    read_phone_lookup,
    write_phone_lookup,
)
from tests.conftest import SECRET, query

DAY = "2026-11-01"
BUSINESS = "+14155238886"
PHONE_NUMBER_ID = "106540352242922"

# (label, wa_id as WhatsApp sends it, the same number as an SMS log writes it, E.164, valid)
SHAPES = [
    # Mexico: wa_ids keep the mobile `1` the country dropped in 2019.
    ("mexico", "5215512345678", "+525512345678", "+525512345678", True),
    # Brazil: an older account's wa_id lacks the ninth digit mobiles gained.
    ("brazil", "551187654321", "+5511987654321", "+5511987654321", True),
    # UK drama range: possible, not valid in libphonenumber's metadata.
    ("uk_drama", "447700900123", "+447700900123", "+447700900123", False),
    # US test number (the 555 range Meta hands out): possible, not valid.
    ("us_test", "15550001111", "+15550001111", "+15550001111", False),
]
# An Israeli number in a range libphonenumber does not know as assigned (pywa's test wa_id).
UNKNOWN_RANGE = "972987654321"
BSUID = "US.13491208655302741918"  # Meta's documented example business-scoped user id


def _message(mid: str, ts: int, sender: str | None, user_id: str | None) -> dict:
    message = {"id": mid, "timestamp": str(ts), "type": "text", "text": {"body": "hi"}}
    if sender is not None:
        message["from"] = sender
    if user_id is not None:
        message["from_user_id"] = user_id
    return message


def _payload(messages: list[dict], contacts: list[dict]) -> dict:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": BUSINESS[1:], "phone_number_id": PHONE_NUMBER_ID},
        "contacts": contacts,
        "messages": messages,
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }


def _write_whatsapp(exports: Path, payloads: list[dict]) -> None:
    folder = exports / "whatsapp" / DAY
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "webhooks.jsonl").write_text("".join(json.dumps(p) + "\n" for p in payloads))


def _write_sms(exports: Path, rows: list[tuple[str, str]]) -> None:
    """(sid, customer number) of inbound texts, as the Twilio Console's log export writes them."""
    folder = exports / "sms" / DAY
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "messages.csv").open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["From", "To", "Body", "Status", "SentDate", "Sid", "Direction"])
        for k, (sid, number) in enumerate(rows):
            when = f"{DAY}T1{k % 10}:00:00Z"
            out.writerow([number, BUSINESS, "hello", "received", when, sid, "inbound"])


def _exports(exports: Path) -> None:
    payloads, sms = [], []
    for k, (label, wa_id, sms_number, _, _) in enumerate(SHAPES):
        contact = {"profile": {"name": f"Person {label}"}, "wa_id": wa_id}
        payloads.append(
            _payload([_message(f"wamid.{label}", 1793525400 + k, wa_id, None)], [contact])
        )
        sms.append((f"SM{label}", sms_number))
    # Nine messages of one conversation, one payload each (as webhooks arrive).
    for n in range(9):
        contact = {"profile": {"name": "Test Name"}, "wa_id": UNKNOWN_RANGE}
        msg = _message(f"wamid.unknown{n}", 1793530000 + n, UNKNOWN_RANGE, None)
        payloads.append(_payload([msg], [contact]))
    # A username-only user: BSUID and username, no phone (Cloud API with usernames).
    sheena = {"profile": {"name": "Sheena Nelson", "username": "@sheena"}, "user_id": BSUID}
    for n in range(3):
        payloads.append(
            _payload([_message(f"wamid.user{n}", 1793540000 + n, None, BSUID)], [sheena])
        )
    # A user seen first with phone and BSUID, later with the BSUID only (phone withheld).
    both = {"profile": {"name": "Priya Sharma"}, "wa_id": "447911123456", "user_id": "GB.4242"}
    later = {"profile": {"name": "Priya Sharma", "username": "@priya"}, "user_id": "GB.4242"}
    payloads.append(_payload([_message("wamid.p1", 1793550000, "447911123456", "GB.4242")], [both]))
    payloads.append(_payload([_message("wamid.p2", 1793550100, None, "GB.4242")], [later]))
    _write_whatsapp(exports, payloads)
    _write_sms(exports, sms)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, Path]:
    """One run for the module's tests (the `run` fixture's pipeline, shared: a run takes ~20 s)."""
    root = tmp_path_factory.mktemp("phone_keys")
    exports, db = root / "exports", root / "out" / "contacts.duckdb"
    _exports(exports)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ASKVAULT_IDENTITY_SECRET", SECRET)
        settings = ContactsSettings(
            exports_dir=str(exports), db_path=str(db), business_phone_numbers=[BUSINESS]
        )
        run_pipeline(settings)
    published = query(
        db,
        "SELECT interaction_id, contact_id, channel, phone_e164, phone_valid, session_id, "
        "conversation_id, name FROM interactions ORDER BY interaction_id",
    )
    return published, db


@pytest.fixture
def published(pipeline: tuple[pl.DataFrame, Path]) -> pl.DataFrame:
    return pipeline[0]


def _contacts(published: pl.DataFrame, prefix: str) -> set[str]:
    return set(
        published.filter(pl.col("interaction_id").str.starts_with(prefix)).get_column("contact_id")
    )


def test_whatsapp_and_sms_of_one_person_are_one_contact_for_every_number_shape(
    published: pl.DataFrame,
) -> None:
    seen = set()
    for label, _, _, e164, valid in SHAPES:
        rows = published.filter(
            pl.col("interaction_id").is_in([f"wa:wamid.{label}", f"sms:SM{label}"])
        )
        assert rows.height == 2, label
        assert rows.get_column("phone_e164").to_list() == [e164, e164], label
        assert rows.get_column("phone_valid").to_list() == [valid, valid], label
        (contact,) = set(rows.get_column("contact_id"))  # one contact, not two
        seen.add(contact)
    assert len(seen) == len(SHAPES)  # and four people stay four contacts


def test_a_conversation_from_an_unknown_range_number_is_one_contact(
    published: pl.DataFrame,
) -> None:
    assert classify_phone(f"+{UNKNOWN_RANGE}", "US") == (f"+{UNKNOWN_RANGE}", False)
    rows = published.filter(pl.col("interaction_id").str.starts_with("wa:wamid.unknown"))
    assert rows.height == 9
    assert len(set(rows.get_column("conversation_id"))) == 1
    assert len(set(rows.get_column("contact_id"))) == 1  # was 9 contacts: no phone key at all


def test_a_username_only_user_is_one_contact_and_joins_their_phone_era(
    pipeline: tuple[pl.DataFrame, Path],
) -> None:
    published, db = pipeline
    rows = published.filter(pl.col("interaction_id").str.starts_with("wa:wamid.user"))
    assert rows.height == 3  # not quarantined as "without 'from'"
    assert set(rows.get_column("session_id")) == {f"wa-user:{BSUID}"}
    assert set(rows.get_column("conversation_id")) == {f"wa:{PHONE_NUMBER_ID}:{BSUID}"}
    (contact,) = set(rows.get_column("contact_id"))
    name = query(db, f"SELECT name FROM contacts WHERE contact_id = '{contact}'").item()
    assert name == "Sheena Nelson"
    # The BSUID joins a user's messages from before and after their phone was withheld.
    assert len(_contacts(published, "wa:wamid.p")) == 1
    assert contact not in _contacts(published, "wa:wamid.p")
    quarantined = query(db, "SELECT count(*) FROM quarantine WHERE source = 'whatsapp'").item()
    assert quarantined == 0


def test_a_lookup_saved_under_the_old_rules_is_ignored_and_removed(tmp_path: Path) -> None:
    # Before the rules' revision an unknown-range number was saved as null; reusing that entry
    # would drop the key again on the first night after an upgrade.
    old = tmp_path / "phone_e164-US-0.0.parquet"
    pl.DataFrame({"phone_key": ["+447700900123"], "phone_e164": [None]}).write_parquet(old)
    assert phone_lookup_name("US") != old.name
    assert read_phone_lookup(tmp_path, "US") is None
    fresh = pl.DataFrame(
        {"phone_key": ["+447700900123"], "phone_e164": ["+447700900123"], "phone_valid": [False]}
    )
    write_phone_lookup(tmp_path, "US", fresh)
    assert not old.exists()
    assert read_phone_lookup(tmp_path, "US").rows() == [("+447700900123", "+447700900123", False)]
