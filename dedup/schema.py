"""Names and types of the canonical interaction record (SPEC: "Canonical interaction record").

One home for column lists so readers, validation and publishing agree on them.
"""

from __future__ import annotations

import polars as pl

CHANNELS: tuple[str, ...] = ("widget", "whatsapp", "slack", "email", "sms", "api")

# Scalar text fields of the canonical record, in SPEC order.
TEXT_FIELDS: tuple[str, ...] = (
    "interaction_id",
    "channel",
    "occurred_at",
    "conversation_id",
    "session_id",
    "user_id",
    "user_hash",
    "plan",
    "email",
    "phone",
    "name",
    "company",
)
LIST_FIELDS: tuple[str, ...] = ("contact_tags", "conversation_tags")
JSON_FIELDS: tuple[str, ...] = ("attributes",)
CANONICAL_FIELDS: tuple[str, ...] = TEXT_FIELDS + LIST_FIELDS + JSON_FIELDS
REQUIRED_FIELDS: tuple[str, ...] = ("interaction_id", "channel", "occurred_at")

# Provenance carried on every staged row, so a bad or surprising value can be traced to a file line.
PROVENANCE: dict[str, pl.DataType] = {
    "source": pl.String(),
    "export_day": pl.String(),
    "file": pl.String(),
    "row": pl.Int64(),
}

# A staged record before validation: every value still text as delivered (lists already split),
# so one vectorised validation pass serves CSV, JSONL and Parquet alike.
RAW_SCHEMA: dict[str, pl.DataType] = {
    **{f: pl.String() for f in TEXT_FIELDS},
    **{f: pl.List(pl.String()) for f in LIST_FIELDS},
    "attributes": pl.String(),
    **PROVENANCE,
}

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "export_day": pl.String(),
    "file": pl.String(),
    "row": pl.Int64(),
    "reason": pl.String(),
    "raw": pl.String(),
    "interaction_id": pl.String(),
}

# Limits from SPEC and the issue: a record over them is quarantined, never truncated silently.
MAX_ATTRIBUTE_KEYS = 50
MAX_TAGS = 50
MAX_RAW_CHARS = 64 * 1024
MAX_RECORD_BYTES = 1024 * 1024
MAX_FIELD_BYTES = 8 * 1024


def empty_raw() -> pl.DataFrame:
    return pl.DataFrame(schema=RAW_SCHEMA)


def empty_quarantine() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)
