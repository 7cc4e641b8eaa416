"""Ingest throughput per native adapter: records per second of `ingest_day` (read + validate).

Writes one export day per source with `--records` messages (WhatsApp JSONL webhooks with a
status receipt every third payload, one Slack export folder, one mbox, one Twilio CSV, one HubSpot
and one Salesforce CSV), then times `dedup.ingest.days.ingest_day` on each, best of `--repeat`.

    uv run python benchmarks/adapters.py [--records 20000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contacts.demo.native import _mbox_chunk, _wa_payload  # noqa: E402
from dedup.ingest.adapters.base import SourceConfig  # noqa: E402
from dedup.ingest.days import ingest_day  # noqa: E402

DAY = "2026-11-01"
T0 = int(datetime(2026, 11, 1, 8, tzinfo=UTC).timestamp())
FIRST = ("Renée", "Søren", "Priya", "Mateo", "Łukasz", "Wei", "Aoife", "John")
LAST = ("Dubois", "Østergaard", "Sharma", "López", "Kowalski", "Chen", "Byrne", "Smith")


def person(i: int) -> tuple[str, str, str]:
    name = f"{FIRST[i % 8]} {LAST[(i // 8) % 8]}"
    return name, f"user{i}@example{i % 97}.com", f"+1415{2000000 + i % 7000000:07d}"


def write_exports(root: Path, n: int) -> None:
    def folder(source: str) -> Path:
        path = root / source / DAY
        path.mkdir(parents=True)
        return path

    lines = []
    for i in range(n):
        name, _, phone = person(i)
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "14155238886", "phone_number_id": "1065"},
            "contacts": [{"profile": {"name": name}, "wa_id": phone[1:]}],
            "messages": [
                {"from": phone[1:], "id": f"wamid.B{i:012d}", "timestamp": str(T0 + i),
                 "type": "text", "text": {"body": "Hi"}}
            ],
        }  # fmt: skip
        lines.append(_wa_payload(value))
        if i % 3 == 0:
            lines.append(_wa_payload({"statuses": [{"id": f"wamid.O{i}", "status": "read"}]}))
    (folder("whatsapp") / "webhooks.jsonl").write_text("\n".join(lines) + "\n")

    export = folder("slack") / "export"
    (export / "general").mkdir(parents=True)
    users = [
        {"id": f"U{i:08d}", "real_name": person(i)[0], "is_bot": False, "deleted": False,
         "profile": {"email": person(i)[1], "phone": ""}}
        for i in range(max(1, n // 10))
    ]  # fmt: skip
    (export / "users.json").write_text(json.dumps(users))
    (export / "channels.json").write_text(json.dumps([{"id": "C1", "name": "general"}]))
    msgs = [
        {"type": "message", "user": f"U{i % len(users):08d}", "text": "hi",
         "ts": f"{T0 + i}.{i % 1000000:06d}"}
        for i in range(n)
    ]  # fmt: skip
    (export / "general" / f"{DAY}.json").write_text(json.dumps(msgs))

    chunks = []
    for i in range(n):
        name, addr, _ = person(i)
        msg = EmailMessage()
        msg["From"] = formataddr((name, addr), charset="utf-8")
        msg["To"] = "support@acme.io"
        msg["Subject"] = "Question"
        msg["Date"] = format_datetime(datetime.fromtimestamp(T0 + i, UTC))
        msg["Message-ID"] = f"<b{i}@example.com>"
        if i % 2:
            msg["In-Reply-To"] = msg["References"] = f"<b{i - 1}@example.com>"
        msg.set_content("Hello")
        chunks.append(_mbox_chunk(msg, addr, T0 + i))
    (folder("email") / "inbox.mbox").write_bytes(b"".join(chunks))

    with open(folder("sms") / "messages.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["From", "To", "Body", "Status", "SentDate", "ApiVersion", "NumSegments",
                    "ErrorCode", "AccountSid", "Sid", "Direction", "Price", "PriceUnit"])  # fmt: skip
        for i in range(n):
            phone = person(i)[2]
            inbound = i % 2 == 0
            frm, to = (phone, "+14155238886") if inbound else ("+14155238886", phone)
            when = datetime.fromtimestamp(T0 + i, UTC).isoformat()
            w.writerow([frm, to, "hi", "received", when, "2010-04-01", 1, 0, "AC1",
                        f"SM{i:032x}", "inbound" if inbound else "outbound-api", "-0.0079", "USD"])  # fmt: skip

    with open(folder("hubspot") / "contacts.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Record ID", "First Name", "Last Name", "Email", "Phone Number",
                    "Company Name", "Lifecycle Stage", "Create Date", "Last Activity Date"])  # fmt: skip
        for i in range(n):
            name, addr, phone = person(i)
            first, last = name.split(" ", 1)
            w.writerow([i, first, last, addr, phone, "Acme", "Customer", "2026-10-01 09:00", ""])
    with open(folder("salesforce") / "Contact.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Id", "FirstName", "LastName", "Email", "Phone", "MobilePhone",
                    "Account Name", "LeadSource", "Plan__c"])  # fmt: skip
        for i in range(n):
            name, addr, phone = person(i)
            first, last = name.split(" ", 1)
            w.writerow([f"0035g{i:010d}A", first, last, addr, "", phone, "Acme", "Web", "Growth"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    config = SourceConfig(staff_domains=("acme.io",))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        write_exports(root, args.records)
        print(f"wrote {args.records:,} records per source in {time.perf_counter() - started:.1f} s")
        print(f"{platform.machine()}, Python {platform.python_version()}")
        print("| source | records | seconds (best) | records / s |")
        print("| --- | ---: | ---: | ---: |")
        for source in ("whatsapp", "slack", "email", "sms", "hubspot", "salesforce"):
            best = float("inf")
            for _ in range(args.repeat):
                t = time.perf_counter()
                day = ingest_day(root, source, DAY, config)
                best = min(best, time.perf_counter() - t)
            rows = day.accepted.height
            assert day.quarantine.height == 0, day.quarantine.head()
            print(f"| {source} | {rows:,} | {best:.2f} | {rows / best:,.0f} |")


if __name__ == "__main__":
    main()
