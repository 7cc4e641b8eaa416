"""Native provider exports of the demo workspace: WhatsApp Cloud API webhooks (JSONL), an mbox
inbox, Twilio SMS logs (CSV), a Slack workspace export, and HubSpot / Salesforce contact exports.

About a third of the plain persons write on one to four native channels, from their first
persona's facets; a share of them is in a CRM. A separate random stream (seeded from the config's
seed) keeps the askvault output unchanged whether ``native`` is on or off. Truth:
``_truth/native_truth.parquet`` (interaction_id, person_id, source) and
``_truth/crm_truth.parquet`` (system, record_id, person_id).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
import shutil
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path

import polars as pl

from contacts.demo.files import write_parquet
from contacts.demo.state import State

NATIVE_SOURCES: tuple[str, ...] = ("whatsapp", "slack", "email", "sms", "hubspot", "salesforce")
_BUSINESS_NUMBER = "+14155238886"  # the demo workspace's Twilio / WhatsApp number
_WA_PHONE_NUMBER_ID = "106540352242922"
_SLACK_TEAM = "T0DEMO0001"
# The demo workspace's own domain and inbox: `contacts demo` passes them as staff settings.
DEMO_STAFF_DOMAIN = "askvault-demo.example"
DEMO_SUPPORT_EMAIL = f"support@{DEMO_STAFF_DOMAIN}"
_HUBSPOT_STAGE = {
    "free": "Lead",
    "paid": "Customer",
    "growth": "Customer",
    "enterprise": "Customer",
    "internal": "Other",
}


def write_native(g: State, out: Path) -> int:
    """Native exports for about a third of the plain persons, from their first persona's facets.

    Each chosen person writes on one to four native channels (on random export days); a share is
    in HubSpot or Salesforce. A separate random stream keeps the askvault output unchanged.
    Truth: ``_truth/native_truth.parquet`` (interaction_id, person_id, source) and
    ``_truth/crm_truth.parquet`` (system, record_id, person_id). Returns the number of malformed
    records planted (one per interaction source on the last day when ``bad_records``).
    """
    cfg = g.cfg
    per_day, crm, crm_truth = _plan(g)
    for source in NATIVE_SOURCES:
        if (out / source).exists():
            shutil.rmtree(out / source)
    days = [date.fromordinal(cfg.start_day.toordinal() + d).isoformat() for d in range(cfg.days)]
    nat = _NativeOut(out, days, cfg.bad_records)
    bad = 0
    for (ch, day), msgs in sorted(per_day.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        msgs.sort(key=lambda m: (m["t"], m["n"]))
        bad += _WRITERS[ch](nat, day, msgs)
    _write_crm(nat, crm, cfg.start_day)
    tr = out / "_truth"
    write_parquet(
        pl.DataFrame(nat.truth, schema=["interaction_id", "person_id", "source"], orient="row"),
        tr / "native_truth.parquet",
    )
    write_parquet(
        pl.DataFrame(crm_truth, schema=["system", "record_id", "person_id"], orient="row"),
        tr / "crm_truth.parquet",
    )
    return bad


@dataclass
class _NativeOut:
    """Where the native files go, and the truth rows written so far."""

    out: Path
    days: list[str]  # each export day's folder name
    bad_records: bool
    truth: list[tuple[str, str, str]] = field(default_factory=list)

    def folder(self, source: str, day: int) -> Path:
        path = self.out / source / self.days[day]
        path.mkdir(parents=True, exist_ok=True)
        return path

    def plant_bad(self, day: int) -> bool:
        """One malformed record per source, on the last day, when the config asks for them."""
        return self.bad_records and day == len(self.days) - 1


def _plan(g: State) -> tuple[dict[tuple[str, int], list[dict]], dict[str, list[dict]], list]:
    """Who writes on which native channel and when ({(channel, day): messages}), and who is in
    which CRM (records per system, and their truth rows)."""
    cfg = g.cfg
    rng = random.Random(cfg.seed * 1_000_003 + 17)
    r = rng.random
    per_day: dict[tuple[str, int], list[dict]] = {}
    crm: dict[str, list[dict]] = {"hubspot": [], "salesforce": []}
    crm_truth: list[tuple[str, str, str]] = []
    n = 0
    for p in g.persons:
        if p.case != "plain" or r() >= 0.35:
            continue
        pa = p.personas[0]
        email = pa.email[0] if pa.email is not None and pa.email[3] != 2 else None
        phone = f"+{pa.phone[0]}{pa.phone[1]}" if pa.phone is not None else None
        channels = [
            ch
            for ch, needs, share in (
                ("whatsapp", phone, 0.6),
                ("email", email, 0.6),
                ("sms", phone, 0.35),
                ("slack", email, 0.3),
            )
            if needs and r() < share
        ]
        for ch in channels:
            for _ in range(1 + int(r() * 3)):
                n += 1
                day = int(r() * cfg.days)
                t = g.day0 + day * 86400 + 28800 + int(r() * 36000)
                per_day.setdefault((ch, day), []).append(
                    {"n": n, "t": t, "p": p, "name": pa.full, "email": email, "phone": phone}
                )
        if (email or phone) and r() < 0.5:
            system = "hubspot" if r() < 0.6 else "salesforce"
            rid = (
                str(100 + len(crm["hubspot"]))
                if system == "hubspot"
                else f"0035g{len(crm['salesforce']) + 1:08d}AAB"
            )
            crm[system].append(
                {"rid": rid, "p": p, "first": pa.first, "last": pa.full[len(pa.first) + 1 :],
                 "email": email, "phone": phone}
            )  # fmt: skip
            crm_truth.append((system, rid, p.pid))
    return per_day, crm, crm_truth


def _whatsapp(nat: _NativeOut, day: int, msgs: list[dict]) -> int:
    """One day's WhatsApp Cloud API webhook payloads, one JSON object per line."""
    lines = []
    for m in msgs:
        wa, mid = m["phone"][1:], f"wamid.DEMO{m['n']:012d}"
        value = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": _BUSINESS_NUMBER[1:],
                "phone_number_id": _WA_PHONE_NUMBER_ID,
            },
            "contacts": [{"profile": {"name": m["name"]}, "wa_id": wa}],
            "messages": [
                {"from": wa, "id": mid, "timestamp": str(m["t"]), "type": "text",
                 "text": {"body": "Hi!"}}
            ],
        }  # fmt: skip
        lines.append(_wa_payload(value))
        nat.truth.append((f"wa:{mid}", m["p"].pid, "whatsapp"))
        if m["n"] % 3 == 0:  # the business answered: its delivery receipt arrives too
            status = {"id": f"wamid.OUT{m['n']:012d}", "status": "delivered",
                      "timestamp": str(m["t"] + 90), "recipient_id": wa}  # fmt: skip
            lines.append(_wa_payload({"statuses": [status]}))
    if nat.plant_bad(day):
        lines.append('{"object": "whatsapp_business_account", "entry": [')
    (nat.folder("whatsapp", day) / "webhooks.jsonl").write_text("\n".join(lines) + "\n")
    return int(nat.plant_bad(day))


def _mbox(nat: _NativeOut, day: int, msgs: list[dict]) -> int:
    """One day's inbox: each message (some replies in a thread), staff answers, one bounce."""
    chunks = []
    prev: dict[str, str] = {}
    for m in msgs:
        msg = EmailMessage()
        msg["From"] = formataddr((m["name"], m["email"]), charset="utf-8")
        msg["To"] = DEMO_SUPPORT_EMAIL
        msg["Subject"] = "Question"
        msg["Date"] = format_datetime(datetime.fromtimestamp(m["t"], timezone.utc))
        mid = f"<demo.{m['n']}@mail.example.net>"
        msg["Message-ID"] = mid
        root = prev.get(m["email"])
        if root is not None:  # a reply in the person's earlier thread
            msg["In-Reply-To"] = root
            msg["References"] = root
        prev.setdefault(m["email"], mid)
        msg.set_content("Hello, a question about my account.")
        chunks.append(_mbox_chunk(msg, m["email"], m["t"]))
        nat.truth.append((f"email:{mid[1:-1]}", m["p"].pid, "email"))
        if m["n"] % 4 == 0:  # the support team answers in the thread (staff: skipped)
            ans = EmailMessage()
            ans["From"] = f"Demo Support <{DEMO_SUPPORT_EMAIL}>"
            ans["To"] = formataddr((m["name"], m["email"]), charset="utf-8")
            ans["Subject"] = "Re: Question"
            ans["Date"] = format_datetime(datetime.fromtimestamp(m["t"] + 600, timezone.utc))
            ans["Message-ID"] = f"<answer.{m['n']}@{DEMO_STAFF_DOMAIN}>"
            ans["In-Reply-To"] = mid
            ans["References"] = f"{root or mid}"
            ans.set_content("Thanks, we are on it.")
            chunks.append(_mbox_chunk(ans, DEMO_SUPPORT_EMAIL, m["t"] + 600))
    bounce = EmailMessage()
    bounce["From"] = "Mail Delivery Subsystem <MAILER-DAEMON@mx.askvault-demo.example>"
    bounce["To"] = "support@askvault-demo.example"
    bounce["Subject"] = "Undelivered Mail Returned to Sender"
    bounce["Date"] = format_datetime(datetime.fromtimestamp(msgs[0]["t"], timezone.utc))
    bounce["Message-ID"] = f"<bounce.{day}@mx.askvault-demo.example>"
    bounce.set_content("This is the mail system.")
    chunks.append(_mbox_chunk(bounce, "MAILER-DAEMON", msgs[0]["t"]))
    (nat.folder("email", day) / "inbox.mbox").write_bytes(b"".join(chunks))
    if nat.plant_bad(day):
        (nat.folder("email", day) / "truncated.mbox").write_bytes(b"Subject: cut\n\n")
    return int(nat.plant_bad(day))


def _sms(nat: _NativeOut, day: int, msgs: list[dict]) -> int:
    """One day's Twilio message log (CSV), inbound and outbound."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["From", "To", "Body", "Status", "SentDate", "ApiVersion", "NumSegments",
                "ErrorCode", "AccountSid", "Sid", "Direction", "Price", "PriceUnit"])  # fmt: skip
    for m in msgs:
        sid = f"SM{hashlib.sha256(str(m['n']).encode()).hexdigest()[:32]}"
        when = datetime.fromtimestamp(m["t"], timezone.utc).isoformat()
        inbound = m["n"] % 2 == 0
        frm, to = (m["phone"], _BUSINESS_NUMBER) if inbound else (_BUSINESS_NUMBER, m["phone"])
        w.writerow([frm, to, "Hi", "received" if inbound else "delivered", when,
                    "2010-04-01", 1, 0, "ACdemo", sid,
                    "inbound" if inbound else "outbound-api", "-0.0079", "USD"])  # fmt: skip
        nat.truth.append((f"sms:{sid}", m["p"].pid, "sms"))
    if nat.plant_bad(day):
        w.writerow(["+15550000000", _BUSINESS_NUMBER, "no sid", "received", "", "", "", "", "", "", "inbound", "", ""])  # fmt: skip
    (nat.folder("sms", day) / "messages.csv").write_text(buf.getvalue())
    return int(nat.plant_bad(day))


def _slack(nat: _NativeOut, day: int, msgs: list[dict]) -> int:
    """One day's Slack workspace export: users.json, channels.json, the channel's day file."""
    export = nat.folder("slack", day) / "slack-export"
    (export / "community").mkdir(parents=True)
    users, seen = [], set()
    messages = []
    for m in msgs:
        uid = f"U{int(m['p'].pid[1:]):09d}"
        if uid not in seen:
            seen.add(uid)
            users.append({"id": uid, "team_id": _SLACK_TEAM, "name": uid.lower(),
                          "deleted": False, "real_name": m["name"], "is_bot": False,
                          "profile": {"real_name": m["name"], "email": m["email"],
                                      "phone": "", "team": _SLACK_TEAM}})  # fmt: skip
        ts = f"{m['t']}.{m['n'] % 1_000_000:06d}"
        messages.append({"type": "message", "user": uid, "text": "Hi", "ts": ts})
        nat.truth.append((f"slack:C0DEMO0001:{ts}", m["p"].pid, "slack"))
        if m["n"] % 3 == 0:  # a staff member replies in a thread (skipped)
            messages.append({"type": "message", "user": "U0STAFF001", "text": "On it",
                             "ts": f"{m['t'] + 60}.000001", "thread_ts": ts})  # fmt: skip
    users.append({"id": "U0STAFF001", "name": "ingrid", "deleted": False,
                  "real_name": "Ingrid Support", "is_bot": False,
                  "profile": {"real_name": "Ingrid Support",
                              "email": f"ingrid@{DEMO_STAFF_DOMAIN}"}})  # fmt: skip
    users.append({"id": "B0DEMOBOT", "name": "helpbot", "deleted": False,
                  "is_bot": True, "profile": {"real_name": "HelpBot"}})  # fmt: skip
    messages.append({"type": "message", "subtype": "bot_message", "bot_id": "B0DEMOBOT",
                     "text": "Office hours at 3pm", "ts": f"{msgs[-1]['t'] + 1}.000001"})  # fmt: skip
    (export / "users.json").write_text(json.dumps(users, ensure_ascii=False, indent=1))
    (export / "channels.json").write_text(
        json.dumps([{"id": "C0DEMO0001", "name": "community"}], indent=1)
    )
    (export / "community" / f"{nat.days[day]}.json").write_text(
        json.dumps(messages, ensure_ascii=False, indent=1)
    )
    if nat.plant_bad(day):
        (export / "community" / "broken.json").write_text('{"ok": false}')
    return int(nat.plant_bad(day))


_WRITERS = {"whatsapp": _whatsapp, "email": _mbox, "sms": _sms, "slack": _slack}


def _write_crm(nat: _NativeOut, crm: dict[str, list[dict]], start_day: date) -> None:
    """The HubSpot and Salesforce contact exports, on the last export day."""
    for system, rows in crm.items():
        if not rows:
            continue
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        if system == "hubspot":
            w.writerow(["Record ID", "First Name", "Last Name", "Email", "Phone Number",
                        "Company Name", "Lifecycle Stage", "Create Date", "Last Activity Date"])  # fmt: skip
            for x in rows:
                stage = _HUBSPOT_STAGE.get(x["p"].plan or "", "Lead")
                w.writerow([x["rid"], x["first"], x["last"], x["email"] or "", x["phone"] or "",
                            "", stage, start_day.isoformat() + " 09:00", ""])  # fmt: skip
            name = "hubspot-crm-exports-all-contacts.csv"
        else:
            w.writerow(["Id", "FirstName", "LastName", "Email", "Phone", "MobilePhone",
                        "Account Name", "LeadSource", "Plan__c"])  # fmt: skip
            for x in rows:
                w.writerow([x["rid"], x["first"], x["last"], x["email"] or "", "",
                            x["phone"] or "", "", "Web", (x["p"].plan or "").title()])  # fmt: skip
            name = "Contact.csv"
        (nat.folder(system, len(nat.days) - 1) / name).write_text(buf.getvalue())


def _wa_payload(value: dict) -> str:
    change = {"value": value, "field": "messages"}
    entry = {"id": "102290129340398", "changes": [change]}
    return json.dumps({"object": "whatsapp_business_account", "entry": [entry]}, ensure_ascii=False)


def _mbox_chunk(msg, sender: str, t: int) -> bytes:
    """One mbox entry: the `From ` separator line, the message, `>From ` quoting, a blank line."""
    stamp = datetime.fromtimestamp(t, timezone.utc).strftime("%a %b %d %H:%M:%S %Y")
    body = msg.as_bytes()
    body = re.sub(rb"(?m)^(>*From )", rb">\1", body)
    return f"From {sender} {stamp}\n".encode() + body.rstrip(b"\n") + b"\n\n"
