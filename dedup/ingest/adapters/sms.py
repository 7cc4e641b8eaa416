"""Twilio message-log CSV → canonical interactions.

The Console's "Export CSV" of Messaging logs has the columns
`From,To,Body,Status,SentDate,ApiVersion,NumSegments,ErrorCode,AccountSid,Sid,Direction,Price,
PriceUnit` (order and extra columns vary; matched by name, case- and punctuation-insensitive).

Tools that export the log through the REST API name the columns after the API's fields:
`SMS Message SID`, `Date Sent`, `Date Created`, ... (e.g. jmadden/twilio-sms-log-export); they read
the same.

Mapping: `interaction_id` = `sms:<Sid>`; `Direction` `inbound` → the contact is `From`, any
`outbound-*` (`outbound-api`, `outbound-reply`, `outbound-call`) → the contact is `To`;
`occurred_at` = `SentDate`; `conversation_id` = `sms:<business number>:<contact number>` (SMS has
no threads: one conversation per pair of numbers). `row` is the CSV line (header = line 1).

WhatsApp through Twilio: the same log holds WhatsApp messages, their numbers written
`whatsapp:+<number>`. Those rows are WhatsApp interactions (`channel` `whatsapp`, the number
without the prefix as `phone`, `conversation_id` = `whatsapp:<business number>:<contact number>`),
so the person meets their SMS and Cloud API messages on the phone key.

Left out and counted: outbound messages that never reached the number (`failed`,
`undelivered`): a mistyped number is not a person who wrote to the business.
Quarantined: a file without `Sid`/`From`/`To`/`Direction`, a row without a Sid, an unknown
direction, a row with the wrong number of fields.
"""

from __future__ import annotations

from collections import Counter
from email.utils import parsedate_to_datetime
from pathlib import Path

from dedup.ingest.adapters.base import (
    DEFAULT_CONFIG,
    Records,
    Rejects,
    SourceConfig,
    header_key,
    read_csv_rows,
    read_file,
    result,
)
from dedup.ingest.readers import FileOrigin, ReadResult

REQUIRED = ("sid", "from", "to", "direction")
# Column names differ between the Console export, the REST API's CSV and BulkExport
# (`SentDate`, `DateSent`, `date_sent`; `Sid`, `MessageSid`): normalized names, preferred first.
ALIASES = {
    "sid": ("sid", "messagesid", "smsmessagesid", "smssid"),
    "sentdate": ("sentdate", "datesent", "datecreated"),
}
UNDELIVERED = ("failed", "undelivered")
# Twilio's address scheme for WhatsApp senders and recipients (`whatsapp:+14155238886`).
WHATSAPP_PREFIX = "whatsapp:"


def read_sms(path: Path, origin: FileOrigin, config: SourceConfig = DEFAULT_CONFIG) -> ReadResult:
    """Read one Twilio message-log CSV. Never raises on bad content."""
    records, rejects, skipped = Records(), Rejects(origin), Counter[str]()
    data = read_file(path, origin, rejects)
    if data is None:
        return result(records, rejects, skipped, origin)
    header, rows = read_csv_rows(data, rejects, origin.file)
    if not header:
        return result(records, rejects, skipped, origin)
    index = {header_key(h): i for i, h in enumerate(header)}
    missing = [c for c in REQUIRED if not any(k in index for k in ALIASES.get(c, (c,)))]
    if missing:
        rejects.add(
            None,
            f"not a Twilio message log: CSV header lacks {', '.join(missing)} "
            f"(has {', '.join(header[:12])})",
            None,
        )
        return result(records, rejects, skipped, origin)

    def get(record: list[str], key: str) -> str | None:
        i = next((index[k] for k in ALIASES.get(key, (key,)) if k in index), None)
        value = record[i].strip() if i is not None else ""
        return value or None

    for line, record in rows:
        raw = ",".join(record)
        sid = get(record, "sid")
        if sid is None:
            rejects.add(line, "message without Sid", raw)
            continue
        iid = f"sms:{sid}"
        direction = (get(record, "direction") or "").lower()
        status = (get(record, "status") or "").lower()
        sender, recipient = get(record, "from"), get(record, "to")
        channel = "whatsapp" if _is_whatsapp(sender) or _is_whatsapp(recipient) else "sms"
        sender, recipient = _number(sender), _number(recipient)
        if direction == "inbound":
            contact, business = sender, recipient
        elif direction.startswith("outbound"):
            contact, business = recipient, sender
            if status in UNDELIVERED:
                skipped["undelivered_outbound"] += 1
                continue
        else:
            rejects.add(line, f"unknown Direction {direction!r}", raw, iid)
            continue
        if contact is None:
            rejects.add(line, "message without the contact's number", raw, iid)
            continue
        if config.is_business_number(contact):
            skipped["business_to_business"] += 1
            continue
        records.add(
            origin.file,
            line,
            interaction_id=iid,
            channel=channel,
            occurred_at=_iso(get(record, "sentdate")),
            conversation_id=f"{channel}:{business or 'unknown'}:{contact}",
            phone=contact,
        )
    return result(records, rejects, skipped, origin)


def _is_whatsapp(value: str | None) -> bool:
    return value is not None and value.lower().startswith(WHATSAPP_PREFIX)


def _number(value: str | None) -> str | None:
    """The number of a Twilio address: `whatsapp:+1415...` → `+1415...`; others unchanged."""
    if _is_whatsapp(value):
        return value[len(WHATSAPP_PREFIX) :].strip() or None  # type: ignore[index]
    return value


def _iso(value: str | None) -> str | None:
    """Twilio's REST API writes RFC 2822 dates (`Sun, 01 Nov 2026 14:12:44 +0000`); the Console
    and BulkExport write ISO 8601. RFC 2822 becomes ISO; anything else is left to validation."""
    if value is None or value[:1].isdigit():
        return value
    try:
        return parsedate_to_datetime(value).isoformat()
    except (TypeError, ValueError, IndexError):
        return value
