"""Property-based sweep: random and hostile canonical records never crash ingest or normalization.

Every record written is either accepted or quarantined (counts add up), whatever it contains:
huge strings, control characters, SQL-looking text, invalid UTF-8, deeply nested JSON.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dedup.config import EngineConfig
from dedup.identity.interactions import prepare_interactions
from dedup.ingest.days import ingest_day

HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "'; DROP TABLE contacts; --",
            "Robert'); DELETE FROM interactions;--",
            '=HYPERLINK("http://x","y")',
            "<script>alert(1)</script>",
            "\x00\x01\x02\x1b[31m",
            "\u202eevil\u202c",
            "💥" * 50,
            "a" * 100_000,
            "  \t\r\n ",
            "NULL",
            "null",
            "+1 (415) 555-0199 ext. 9",
            "Name <addr@x.test>",
            "@@@",
        ]
    ),
)


def deep_json(depth: int) -> dict:
    node: dict = {"leaf": "x"}
    for _ in range(depth):
        node = {"n": node}
    return node


VALUE = st.one_of(
    st.none(),
    HOSTILE_TEXT,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.lists(HOSTILE_TEXT, max_size=4),
)
TIME = st.one_of(
    st.sampled_from(
        ["2026-11-01T10:00:00Z", "2026-11-01T10:00:00+05:30", "1761990000", "yesterday", ""]
    ),
    st.integers(min_value=-(2**40), max_value=2**40),
    HOSTILE_TEXT,
)
ATTRIBUTES = st.one_of(
    st.none(),
    st.dictionaries(HOSTILE_TEXT, VALUE, max_size=6),
    st.integers(min_value=1, max_value=200).map(deep_json),
    st.dictionaries(st.text(min_size=1, max_size=5), st.integers(), min_size=51, max_size=60),
    HOSTILE_TEXT,
)
RECORD = st.fixed_dictionaries(
    {
        "interaction_id": st.one_of(st.none(), HOSTILE_TEXT),
        "channel": st.one_of(
            st.sampled_from(["widget", "WhatsApp", "sms", "email", "slack", "api", "fax"]), VALUE
        ),
        "occurred_at": TIME,
    },
    optional={
        "email": VALUE,
        "phone": VALUE,
        "name": VALUE,
        "company": VALUE,
        "session_id": VALUE,
        "user_id": VALUE,
        "user_hash": VALUE,
        "plan": VALUE,
        "contact_tags": VALUE,
        "conversation_id": VALUE,
        "attributes": ATTRIBUTES,
    },
)


def _line(record: dict, broken: bool) -> bytes:
    text = json.dumps(record, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")
    # Some lines carry bytes that are not UTF-8 at all.
    return (text[:-1] + b', "x": "\xff\xfe"}' if broken else text) + b"\n"


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    records=st.lists(RECORD, min_size=1, max_size=12),
    broken=st.lists(st.booleans(), min_size=12, max_size=12),
)
def test_hostile_records_are_accepted_or_quarantined(
    records: list[dict], broken: list[bool]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "askvault" / "2026-11-01"
        folder.mkdir(parents=True)
        (folder / "hostile.jsonl").write_bytes(
            b"".join(_line(r, b) for r, b in zip(records, broken, strict=False))
        )
        day = ingest_day(root, "askvault", "2026-11-01")
        per_record = day.quarantine.filter(day.quarantine["row"].is_not_null())
        whole_file = day.quarantine.filter(day.quarantine["row"].is_null()).height
        # One outcome per line; a whole-file rejection (row null) stands for all of them.
        assert whole_file or day.accepted.height + per_record.get_column("row").n_unique() == len(
            records
        )
        assert day.quarantine.get_column("reason").null_count() == 0
        prepared = prepare_interactions(day.accepted, EngineConfig(identity_secrets=("s",)))
        assert prepared.interactions.height <= day.accepted.height
        assert prepared.interactions.get_column("interaction_id").is_unique().all()
