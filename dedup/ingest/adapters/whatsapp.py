"""WhatsApp Cloud API webhook payloads → canonical interactions.

A file holds one webhook payload (`.json`, or a JSON array of payloads) or one payload per line
(`.jsonl`). Each payload is `{"object": "whatsapp_business_account", "entry": [{"id",
"changes": [{"field": "messages", "value": {...}}]}]}`; `value.contacts[]` carries
`{profile: {name}, wa_id}` and `value.messages[]` carries `{from, id, timestamp, type, ...}`.

Mapping: `interaction_id` = `wa:<message id>`; the contact is `from` (the `wa_id`, E.164 digits
without `+`; the engine adds the `+` on the WhatsApp channel and undoes the country quirks of
wa_ids, `dedup.identity.normalize`) with the profile name of the matching `contacts[]` entry;
`conversation_id` = `wa:<business phone_number_id>:<wa_id>` (one chat per customer and business
number: the Cloud API has no thread id for inbound messages). `row` is the payload's position in
the file (its line in JSONL).

Usernames (Cloud API, 2026): every message also carries `from_user_id`, the business-scoped user
id (BSUID, `US.13491208655302741918`; `contacts[].user_id`), and a user who adopted a username
may come with no `from`/`wa_id` at all. The BSUID is the user's key of their own:
`session_id` = `wa-user:<BSUID>` (like Slack's member key; from `contacts[].user_id` when the
message itself lacks `from_user_id`), so a username-only user is one contact, and joins their
earlier messages that carried both the BSUID and the phone. A message without `from` has
`conversation_id` = `wa:<phone_number_id>:<BSUID>`; its name is the profile name, else the
username.

Left out and counted, not quarantined: payloads with only `statuses` (delivery receipts of the
business's own messages), message echoes and messages sent from the business's own number,
`system` messages (WhatsApp's notices that a user changed number or security code: not written
by the person), and changes of other fields (`account_update`, templates, ...).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson

from dedup.ingest.adapters.base import (
    DEFAULT_CONFIG,
    Records,
    Rejects,
    SourceConfig,
    digits_of,
    dumps,
    read_file,
    result,
)
from dedup.ingest.readers import FileOrigin, ReadResult
from dedup.schema import MAX_RECORD_BYTES

SUFFIXES = (".json", ".jsonl", ".ndjson")


def read_whatsapp(
    path: Path, origin: FileOrigin, config: SourceConfig = DEFAULT_CONFIG
) -> ReadResult:
    """Read one WhatsApp webhook file. Never raises on bad content."""
    records, rejects, skipped = Records(), Rejects(origin), Counter[str]()
    data = read_file(path, origin, rejects)
    if data is None:
        return result(records, rejects, skipped, origin)
    if path.suffix.lower() not in SUFFIXES:
        rejects.add(None, f"unsupported file type '{path.name}' (expected .json or .jsonl)", None)
        return result(records, rejects, skipped, origin)
    for row, payload, raw in _payloads(data, path, rejects):
        _read_payload(payload, raw, row, origin, config, records, rejects, skipped)
    return result(records, rejects, skipped, origin)


def _payloads(data: bytes, path: Path, rejects: Rejects):
    """(position, payload, raw text) of every payload in the file; unreadable ones quarantined."""
    if path.suffix.lower() == ".json":
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            lines = [line for line in data.split(b"\n") if line.strip()]
            if len(lines) < 2:
                rejects.add(None, f"invalid JSON: {str(exc).splitlines()[0][:200]}", data)
                return
            doc = None  # several documents, one per line: a JSONL file named .json
        if doc is not None:
            docs = doc if isinstance(doc, list) else [doc]
            for i, payload in enumerate(docs, start=1):
                yield i, payload, None
            return
    for lineno, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        if len(line) > MAX_RECORD_BYTES:
            rejects.add(lineno, f"payload too large ({len(line):,} bytes)", line)
            continue
        try:
            payload = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            rejects.add(lineno, f"invalid JSON: {str(exc).splitlines()[0][:200]}", line)
            continue
        yield lineno, payload, line


def _read_payload(
    payload: object,
    raw: bytes | None,
    row: int,
    origin: FileOrigin,
    config: SourceConfig,
    records: Records,
    rejects: Rejects,
    skipped: Counter[str],
) -> None:
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        kind = payload.get("object") if isinstance(payload, dict) else type(payload).__name__
        rejects.add(
            row,
            f"not a WhatsApp webhook payload (object={kind!r}, expected 'whatsapp_business_account')",
            raw if raw is not None else dumps(payload),
        )
        return
    entries = payload.get("entry")
    if not isinstance(entries, list):
        rejects.add(row, "webhook payload has no 'entry' list", raw or dumps(payload))
        return
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            rejects.add(row, "webhook entry has no 'changes' list", dumps(entry))
            continue
        for change in changes:
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict):
                rejects.add(row, "webhook change has no 'value' object", dumps(change))
                continue
            field = change.get("field")
            if field == "smb_message_echoes":
                echoes = value.get("message_echoes")
                skipped["business_message"] += len(echoes) if isinstance(echoes, list) else 1
                continue
            if field != "messages":
                skipped[f"field_{field}"] += 1
                continue
            _read_value(value, row, origin, config, records, rejects, skipped)


def _read_value(
    value: dict,
    row: int,
    origin: FileOrigin,
    config: SourceConfig,
    records: Records,
    rejects: Rejects,
    skipped: Counter[str],
) -> None:
    statuses = value.get("statuses")
    if isinstance(statuses, list):
        skipped["status_update"] += len(statuses)
    messages = value.get("messages")
    if messages is None:
        return
    if not isinstance(messages, list):
        rejects.add(row, "'messages' is not a list", dumps(value))
        return
    metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
    business_number = digits_of(str(metadata.get("display_phone_number") or "")) or None
    phone_number_id = str(metadata.get("phone_number_id") or "unknown")
    names, user_ids = _profiles(value.get("contacts"))
    for message in messages:
        if not isinstance(message, dict):
            rejects.add(row, "WhatsApp message is not an object", dumps(message))
            continue
        mid = message.get("id")
        if not isinstance(mid, str) or not mid:
            rejects.add(row, "WhatsApp message without 'id'", dumps(message))
            continue
        iid = f"wa:{mid}"
        phone, user_id = _id_text(message.get("from")), _id_text(message.get("from_user_id"))
        user_id = user_id or user_ids.get(phone or "")
        if message.get("type") == "system":
            skipped["system_message"] += 1
            continue
        if phone is None and user_id is None:
            rejects.add(
                row, "WhatsApp message without 'from' or 'from_user_id'", dumps(message), iid
            )
            continue
        if phone is not None and (config.is_business_number(phone) or phone == business_number):
            skipped["business_message"] += 1
            continue
        timestamp = message.get("timestamp")
        records.add(
            origin.file,
            row,
            interaction_id=iid,
            channel="whatsapp",
            occurred_at=None if timestamp is None else str(timestamp),
            conversation_id=f"wa:{phone_number_id}:{phone or user_id}",
            session_id=None if user_id is None else f"wa-user:{user_id}",
            phone=phone,
            name=names.get(phone or "") or names.get(user_id or ""),
        )


def _id_text(value: object) -> str | None:
    """An id or name as text (a number is accepted); anything else, or blank, is absent."""
    text = str(value).strip() if isinstance(value, (str, int)) else ""
    return text or None


def _profiles(contacts: object) -> tuple[dict[str, str], dict[str, str]]:
    """From `contacts[]`: sender id (`wa_id` and `user_id`, the BSUID) → its profile name (else
    its username), and `wa_id` → BSUID (for messages that carry `from` but no `from_user_id`)."""
    names: dict[str, str] = {}
    user_ids: dict[str, str] = {}
    for contact in contacts if isinstance(contacts, list) else []:
        if not isinstance(contact, dict):
            continue
        wa_id, user_id = _id_text(contact.get("wa_id")), _id_text(contact.get("user_id"))
        if wa_id is not None and user_id is not None:
            user_ids[wa_id] = user_id
        profile = contact.get("profile") if isinstance(contact.get("profile"), dict) else {}
        name = _id_text(profile.get("name")) or _id_text(profile.get("username"))
        for sender in (wa_id, user_id):
            if sender is not None and name is not None:
                names[sender] = name
    return names, user_ids
