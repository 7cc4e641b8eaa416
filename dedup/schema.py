"""Names and types of the canonical interaction record (SPEC: "Canonical interaction record").

One home for column lists so readers, validation and publishing agree on them.
"""

from __future__ import annotations

import json
import re
from typing import Any

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

# Custom attributes: one set of limits for every way in (ingest quarantines, the Contact API's
# PATCH and bulk edits refuse, the nightly build drops what older data still holds), so no stored
# value can make a read fail (an attribute nested 300 deep made every API read of its contact 500).
# A value is at most MAX_FIELD_BYTES as compact JSON text, the cap every text field has on ingest.
MAX_ATTRIBUTE_VALUE_BYTES = MAX_FIELD_BYTES
MAX_ATTRIBUTE_KEY_CHARS = 100
# Nesting of the attributes object, itself level 1 (`{"a": [1]}` is 2 deep). 20 is Elasticsearch's
# default `index.mapping.depth.limit` for documents; CRM custom properties are flat, so real
# attributes stay far below it, and serializers (pydantic, json) stay far from their recursion caps.
MAX_ATTRIBUTE_DEPTH = 20

# Characters that never belong in a tag or a name someone types: C0/C1 controls (NUL ends strings
# in C tools, CR/LF split CSV rows and log lines) and the Unicode bidirectional embeddings,
# overrides and isolates that make text display in another order than it reads (CVE-2021-42574).
UNSAFE_TEXT = r"\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[{UNSAFE_TEXT}]")


def text_problem(value: str) -> str | None:
    """Why `value` may not be stored as typed text (a tag, a name); None when it may."""
    found = _UNSAFE.search(value)
    if found is None:
        return None
    return f"holds a control or bidirectional-override character (U+{ord(found.group()):04X})"


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
        else:
            deepest = max(deepest, level)
            continue
        deepest = max(deepest, level + 1)
    return deepest


def attribute_problem(key: str, value: Any) -> str | None:
    """Why one attribute (a parsed JSON value) breaks the limits; None when it keeps them."""
    if not key or len(key) > MAX_ATTRIBUTE_KEY_CHARS:
        return f"attribute name must have 1 to {MAX_ATTRIBUTE_KEY_CHARS} characters"
    if _depth(value) + 1 > MAX_ATTRIBUTE_DEPTH:
        return f"attribute {key[:40]!r} is nested deeper than {MAX_ATTRIBUTE_DEPTH} levels"
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_ATTRIBUTE_VALUE_BYTES:
        return (
            f"attribute {key[:40]!r} is {size:,} bytes as JSON "
            f"(limit {MAX_ATTRIBUTE_VALUE_BYTES:,})"
        )
    return None


def attributes_problem(attributes: Any) -> str | None:
    """Why an attributes object (parsed, or JSON text) breaks the limits; None when it keeps them.

    The one check behind ingest, the Contact API's edits and the nightly build.
    """
    if isinstance(attributes, str):
        try:
            attributes = json.loads(attributes)
        except RecursionError:
            return f"attributes are nested deeper than {MAX_ATTRIBUTE_DEPTH} levels"
        except ValueError:
            return "attributes is not valid JSON"
    if not isinstance(attributes, dict):
        return "attributes must be a JSON object"
    if len(attributes) > MAX_ATTRIBUTE_KEYS:
        return f"attributes has {len(attributes)} keys (limit {MAX_ATTRIBUTE_KEYS})"
    for key, value in attributes.items():
        problem = attribute_problem(key, value)
        if problem:
            return problem
    return None


def empty_raw() -> pl.DataFrame:
    return pl.DataFrame(schema=RAW_SCHEMA)


def empty_quarantine() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)
