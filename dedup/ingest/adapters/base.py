"""What every native adapter shares: settings, column-wise record building, skip counting.

An adapter reads one provider file (or one Slack export folder) and returns a `ReadResult` with
canonical `RAW_SCHEMA` records, quarantine rows for input it could not read, and counts of input
it deliberately left out (status updates, bots, auto-replies). Parsing a message is Python; the
frame is built once per file from column lists, never row by row.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson
import polars as pl

from dedup.ingest.readers import (
    FileOrigin,
    ReadResult,
    RefusedFile,
    _Rejects,
    csv_records,
    depth_below_root,
    max_file_bytes,
    open_beneath,
    open_component,
    open_regular,
    read_capped,
    read_export_bytes,
    unreadable,
)
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


def read_file(path: Path, origin: FileOrigin, rejects: _Rejects) -> bytes | None:
    """One export file's bytes, read the safe way (`readers.read_export_bytes`: no symlink
    followed, regular files only, decompressed size capped); None once the reason is recorded."""
    try:
        return read_export_bytes(path, origin)
    except RefusedFile as refused:
        rejects.add(None, refused.reason, None)
    except OSError as exc:
        rejects.add(None, unreadable(exc), None)
    return None


def result(
    records: Records, rejects: Rejects, skipped: Counter[str], origin: FileOrigin
) -> ReadResult:
    return ReadResult(records.frame(origin), rejects.frame(), dict(sorted(skipped.items())))


# --- opening export files (no symlink followed, regular files only, size capped) ------------


def read_export_folder(
    folder: Path, origin: FileOrigin, rejects: Rejects, suffix: str, max_depth: int
) -> dict[str, bytes]:
    """Files named `*<suffix>` in an export folder (Slack) and its sub-folders down to
    `max_depth` levels: relative POSIX name → bytes. Hidden names (`.…`) are left out.

    The walk follows no symlink: one inside the folder, or a FIFO, device or socket named like
    a member, is quarantined with its path and no byte of it is read. The members together may
    yield at most `max_file_bytes()`; past it `RefusedFile` (the export is quarantined whole).
    A member that vanishes mid-walk is quarantined; the rest is read.
    """
    budget = max_file_bytes()
    members: dict[str, bytes] = {}
    fd = open_beneath(folder, depth_below_root(folder, origin), directory=True)
    try:
        _walk(fd, "", max_depth, suffix, origin.file, rejects, members, budget)
    finally:
        os.close(fd)
    return members


def _walk(
    fd: int,
    prefix: str,
    levels: int,
    suffix: str,
    shown: str,
    rejects: Rejects,
    members: dict[str, bytes],
    budget: int,
) -> int:
    """One folder of `read_export_folder` (opened as `fd`); returns the byte budget left."""
    with os.scandir(fd) as listing:
        entries = sorted(listing, key=lambda e: e.name)
    for entry in entries:
        name = f"{prefix}{entry.name}"
        where = f"{shown}/{name}"
        if entry.name.startswith("."):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                if levels > 1:
                    inner = open_component(entry.name, os.O_RDONLY | os.O_DIRECTORY, fd, where)
                    try:
                        budget = _walk(
                            inner, f"{name}/", levels - 1, suffix, shown, rejects, members, budget
                        )
                    finally:
                        os.close(inner)
                continue
            if entry.is_symlink():
                raise RefusedFile(f"symlink not followed: {where}")
            if not entry.name.endswith(suffix):
                continue
            with os.fdopen(open_regular(entry.name, fd, where), "rb", buffering=0) as fh:
                data = read_capped(fh, budget, "export", cap=max_file_bytes())
        except OSError as exc:
            rejects.add_in(where, None, unreadable(exc), None, None)
            continue
        except RefusedFile as refused:
            if refused.reason.startswith("export inflates"):
                raise
            rejects.add_in(where, None, refused.reason, None, None)
            continue
        members[name] = data
        budget -= len(data)
    return budget


def read_zip_members(path: Path, origin: FileOrigin, wanted) -> dict[str, bytes]:
    """Members of a `.zip` export whose name `wanted(name)` accepts: name → bytes.

    The archive is opened without following a symlink below the exports root; members are
    inflated a chunk at a time and together may yield at most `max_file_bytes()` (a zip bomb
    stops there with `RefusedFile`). Raises `zipfile.BadZipFile` / `OSError` as `ZipFile` does.
    """
    budget = cap = max_file_bytes()
    fd = open_beneath(path, depth_below_root(path, origin))
    members: dict[str, bytes] = {}
    with os.fdopen(fd, "rb") as fh, zipfile.ZipFile(fh) as archive:
        for info in archive.infolist():
            if info.is_dir() or not wanted(info.filename):
                continue
            with archive.open(info) as member:
                data = read_capped(member, budget, "export", cap=cap)
            members[info.filename] = data
            budget -= len(data)
    return members


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
    for line, record in csv_records(
        reader, lambda at, why: rejects.add_in(file, at, why, None, None)
    ):
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
