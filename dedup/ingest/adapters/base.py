"""What every native adapter shares: settings, column-wise record building, skip counting.

An adapter reads one provider file (or one Slack export folder) and returns a `ReadResult` with
canonical `RAW_SCHEMA` records, quarantine rows for input it could not read, and counts of input
it deliberately left out (status updates, bots, auto-replies). Parsing a message is Python; the
frame is built once per file from column lists, never row by row.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass

import orjson
import polars as pl

from dedup.ingest.readers import FileOrigin, ReadResult, _Rejects
from dedup.schema import CANONICAL_FIELDS, RAW_SCHEMA, empty_raw

# Local parts of automated senders: never a person (SPEC: mailer-daemon, noreply).
AUTOMATED_LOCAL_PARTS: tuple[str, ...] = (
    "mailer-daemon",
    "postmaster",
    "noreply",
    "no-reply",
    "no_reply",
    "donotreply",
    "do-not-reply",
    "bounce",
    "bounces",
)


@dataclass(frozen=True)
class SourceConfig:
    """Workspace facts the native adapters need to tell customers from the workspace itself.

    Args:
        staff_domains: email domains of the workspace's own people (lower case, e.g. `acme.io`):
            Slack members and mail senders on them are staff, not contacts.
        workspace_emails: the workspace's own addresses (e.g. `support@acme.io`), skipped as
            senders even when their domain is not a staff domain (a shared inbox on gmail).
        business_phone_numbers: the workspace's own WhatsApp / SMS numbers (digits, any format);
            a message sent from one of them is the business talking, not a contact.
    """

    staff_domains: tuple[str, ...] = ()
    workspace_emails: tuple[str, ...] = ()
    business_phone_numbers: tuple[str, ...] = ()

    def is_staff_email(self, address: str | None) -> bool:
        if not address or "@" not in address:
            return False
        address = address.strip().lower()
        domain = address.rpartition("@")[2]
        return address in {e.lower() for e in self.workspace_emails} or any(
            domain == d.lower() or domain.endswith("." + d.lower()) for d in self.staff_domains
        )

    def is_business_number(self, number: str | None) -> bool:
        digits = digits_of(number)
        return bool(digits) and digits in {digits_of(n) for n in self.business_phone_numbers}


DEFAULT_CONFIG = SourceConfig()


def digits_of(value: str | None) -> str:
    return "".join(ch for ch in value or "" if ch.isdigit())


class Records:
    """Canonical records of one file, gathered column by column."""

    def __init__(self) -> None:
        self.columns: dict[str, list] = {f: [] for f in CANONICAL_FIELDS}
        self.files: list[str] = []
        self.rows: list[int | None] = []

    def add(self, file: str, row: int | None, **values: object) -> None:
        for f in CANONICAL_FIELDS:
            self.columns[f].append(values.get(f))
        self.files.append(file)
        self.rows.append(row)

    def __len__(self) -> int:
        return len(self.rows)

    def frame(self, origin: FileOrigin) -> pl.DataFrame:
        if not self.rows:
            return empty_raw()
        data = {
            f: pl.Series(f, self.columns[f], dtype=RAW_SCHEMA[f], strict=False)
            for f in CANONICAL_FIELDS
        }
        data["source"] = pl.Series("source", [origin.source] * len(self.rows), dtype=pl.String)
        data["export_day"] = pl.Series(
            "export_day", [origin.export_day] * len(self.rows), dtype=pl.String
        )
        data["file"] = pl.Series("file", self.files, dtype=pl.String)
        data["row"] = pl.Series("row", self.rows, dtype=pl.Int64)
        return pl.DataFrame(data).select([pl.col(c).cast(t) for c, t in RAW_SCHEMA.items()])


class Rejects(_Rejects):
    """Quarantine rows of one read; `file` may name a member inside an archive or folder."""

    def add_in(
        self, file: str, row: int | None, reason: str, raw: str | bytes | None, iid: str | None
    ) -> None:
        self.add(row, reason, raw, iid)
        self.rows[-1]["file"] = file


def result(
    records: Records, rejects: Rejects, skipped: Counter[str], origin: FileOrigin
) -> ReadResult:
    return ReadResult(records.frame(origin), rejects.frame(), dict(sorted(skipped.items())))


def dumps(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()


def attributes(values: dict[str, object]) -> str | None:
    """Provider extras as the canonical `attributes` JSON object; empty values dropped."""
    kept = {k: v for k, v in values.items() if v not in (None, "")}
    return dumps(kept) if kept else None


def read_csv_rows(
    data: bytes, rejects: Rejects, file: str
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (1-based line, fields) of a CSV export; broken rows are quarantined.

    Provider CSVs come from spreadsheets: a UTF-8 byte-order mark and a ragged trailing empty line
    are normal. A row with the wrong number of fields is quarantined with its line.
    """
    text = data.decode("utf-8-sig", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except (StopIteration, csv.Error):
        rejects.add_in(file, None, "CSV file has no header row", None, None)
        return [], []
    rows: list[tuple[int, list[str]]] = []
    start = reader.line_num + 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rejects.add_in(file, start, f"malformed CSV: {exc}", None, None)
            start = reader.line_num + 1
            continue
        line, start = start, reader.line_num + 1
        if not record or all(not v.strip() for v in record):
            continue
        raw = ",".join(record).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        if len(record) != len(header):
            rejects.add_in(
                file, line, f"expected {len(header)} fields, got {len(record)}", raw, None
            )
            continue
        if any("\udc80" <= ch <= "\udcff" for v in record for ch in v):
            rejects.add_in(file, line, "not valid UTF-8", raw, None)
            continue
        rows.append((line, record))
    return header, rows


def header_key(name: str) -> str:
    """`Phone Number`, `phone_number` and `PHONENUMBER` are one column (exports differ by tool)."""
    return "".join(ch for ch in name.lower() if ch.isalnum())
