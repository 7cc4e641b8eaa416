"""No input makes an adapter raise: arbitrary JSON shapes and bytes end as records or quarantine."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dedup.ingest.adapters.base import SourceConfig
from dedup.ingest.adapters.crm import read_hubspot
from dedup.ingest.adapters.mail import read_mail
from dedup.ingest.adapters.slack import read_slack
from dedup.ingest.adapters.sms import read_sms
from dedup.ingest.adapters.whatsapp import read_whatsapp
from dedup.ingest.readers import FileOrigin

CONFIG = SourceConfig(staff_domains=("acme.io",), business_phone_numbers=("+14155238886",))
KEYS = ("object", "entry", "changes", "value", "field", "messages", "contacts", "statuses",
        "from", "id", "timestamp", "wa_id", "profile", "name", "metadata", "user", "ts",
        "thread_ts", "subtype", "bot_id", "email", "phone", "real_name", "is_bot", "team_id")  # fmt: skip
scalars = st.none() | st.booleans() | st.integers(-5, 10**12) | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=6),
    max_leaves=30,
)  # fmt: skip
# Mostly well-shaped payloads with random holes, so the deep branches are reached too.
wa_payloads = st.fixed_dictionaries(
    {"object": st.just("whatsapp_business_account") | json_values,
     "entry": st.lists(st.fixed_dictionaries({"changes": st.lists(st.fixed_dictionaries(
         {"field": st.sampled_from(["messages", "smb_message_echoes", "x"]) | json_values,
          "value": st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5)}), max_size=3)
     }) | json_values, max_size=3) | json_values}
)  # fmt: skip
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(out, n_inputs: int | None = None) -> None:
    assert out.records.height + out.quarantine.height + sum(out.skipped.values()) >= 0
    assert out.records.get_column("interaction_id").null_count() == 0


@FUZZ
@given(st.lists(wa_payloads | json_values, max_size=5))
def test_whatsapp_never_raises(payloads: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.jsonl"
        path.write_text("\n".join(json.dumps(p) for p in payloads) + "\n")
        _check(read_whatsapp(path, FileOrigin("whatsapp", "2026-11-01", "w.jsonl"), CONFIG))


ids = st.sampled_from(["U1", "U2", "B1"])
slack_users = st.lists(
    st.fixed_dictionaries(
        {"id": ids},
        optional={"profile": json_values | st.dictionaries(st.sampled_from(KEYS), json_values),
                  "real_name": json_values, "is_bot": json_values, "team_id": json_values},
    ) | json_values,
    max_size=4,
) | json_values  # fmt: skip
slack_messages = st.fixed_dictionaries(
    {"user": ids | json_values, "ts": st.just("1793527200.000100") | json_values},
    optional={"thread_ts": json_values, "subtype": json_values, "bot_id": json_values,
              "user_profile": json_values, "team": json_values},
) | json_values  # fmt: skip


@FUZZ
@given(slack_users, st.lists(slack_messages, max_size=6), json_values)
def test_slack_never_raises(users, messages: list, channels) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "export"
        (export / "general").mkdir(parents=True)
        (export / "users.json").write_text(json.dumps(users))
        (export / "channels.json").write_text(json.dumps(channels))
        (export / "general" / "2026-11-01.json").write_text(json.dumps(messages))
        _check(read_slack(export, FileOrigin("slack", "2026-11-01", "export"), CONFIG))


@FUZZ
@given(st.binary(max_size=400), st.text(max_size=60))
def test_mail_and_csv_never_raise(junk: bytes, header: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        mbox = Path(tmp) / "m.mbox"
        mbox.write_bytes(b"From x Sun Nov  1 00:00:00 2026\n" + junk)
        _check(read_mail(mbox, FileOrigin("email", "2026-11-01", "m.mbox"), CONFIG))
        eml = Path(tmp) / "m.eml"
        eml.write_bytes(f"From: {header}\nDate: {header}\n\n".encode("utf-8", "replace") + junk)
        _check(read_mail(eml, FileOrigin("email", "2026-11-01", "m.eml"), CONFIG))
        csv_path = Path(tmp) / "s.csv"
        csv_path.write_bytes(b"Sid,From,To,Direction,SentDate\n" + junk)
        _check(read_sms(csv_path, FileOrigin("sms", "2026-11-01", "s.csv"), CONFIG))
        crm = Path(tmp) / "h.csv"
        crm.write_bytes(b"Record ID,Email\n" + junk)
        out = read_hubspot(crm, FileOrigin("hubspot", "2026-11-01", "h.csv"))
        assert out.records.get_column("record_id").null_count() == 0
