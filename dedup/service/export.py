"""Bulk CSV exports: contacts (all, a saved view's or a filter's) and merge proposals.

Format: UTF-8 with a header, one row per contact, list columns joined with `;`, timestamps
ISO 8601 in UTC (`2026-11-01T09:05:00Z`), booleans `true`/`false`, empty cell for null.

Formula injection (OWASP "CSV Injection"): a spreadsheet runs a cell starting with `=`, `+`, `-`,
`@`, tab or carriage return as a formula. Every text cell starting with one of them gets a single
quote in front (`=HYPERLINK(...)` → `'=HYPERLINK(...)`), and cells are quoted by the CSV writer
where they hold a separator, quote or newline. One exception keeps phones useful: the `phone`
column holds numbers the pipeline normalized to E.164 (`+14155552671`), which cannot carry a
formula, so a cell that is exactly `+` and 7-15 digits is left as is; anything else in it is
neutralized like every other cell (docs/schema.md, "Exports").

Before that, characters no spreadsheet cell should carry are removed: NUL and the other control
characters (tab, CR and LF stay: the writer quotes them, and a leading one is a formula trigger)
and the Unicode bidirectional overrides that make a cell display in another order than it reads.
The maintained `defusedcsv` was weighed and not used (docs/decisions.md).

`check_export_target` refuses an `--out` inside the state folder or onto the database: an export
must never replace the published file, the decision log or the suppression list.

The file is written under a temporary name in the target folder, checked, then renamed over the
target; a failed check removes the temporary file and leaves any previous export in place.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from dedup.layout import StateLayout
from dedup.schema import UNSAFE_TEXT
from dedup.service.search import ContactFilter, count, search

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
FORMULA_START = r"^[=+\-@\t\r]"
E164 = r"^\+[1-9][0-9]{6,14}$"
# dedup.schema.UNSAFE_TEXT without tab, CR and LF (see the module docstring).
EXPORT_STRIPPED = "[" + UNSAFE_TEXT.replace(r"\x00-\x1f", r"\x00-\x08\x0b\x0c\x0e-\x1f") + "]"
# Admins' bulk actions (tag, audience, export, CRM re-sync) handle at most this many contacts.
BULK_ACTION_LIMIT = 200

CONTACT_EXPORT_COLUMNS: tuple[str, ...] = (
    "contact_id",
    "name",
    "email",
    "phone",
    "company",
    "channels",
    "audience",
    "identity_verified",
    "conversation_count",
    "last_conversation_at",
    "tags",
    "first_seen",
    "last_seen",
    "crm_sync_status",
)
# Cells the pipeline itself formats (ids, E.164 phones, timestamps, numbers, audience set).
E164_COLUMNS = frozenset({"phone"})

PROPOSALS_EXPORT_SQL = """
SELECT p.proposal_id, p.status, p.match_probability, p.match_weight, p.created_at,
       p.contact_id_l, l.name AS name_l, l.email AS email_l, l.phone AS phone_l,
       p.contact_id_r, r.name AS name_r, r.email AS email_r, r.phone AS phone_r
FROM merge_proposals p
JOIN contacts l ON l.contact_id = p.contact_id_l
JOIN contacts r ON r.contact_id = p.contact_id_r
WHERE p.status = 'pending' AND NOT list_has_any([p.contact_id_l, p.contact_id_r], ?::VARCHAR[])
ORDER BY p.match_probability DESC NULLS LAST, p.proposal_id
"""


class ExportError(RuntimeError):
    """An export that was refused or failed its checks; nothing was written."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    rows: int
    seconds: float


# A check reads the written temporary file and returns what is wrong with it (empty = fine).
ExportCheck = Callable[[Path, pl.DataFrame], list[str]]


def to_csv_frame(frame: pl.DataFrame, e164_columns: frozenset[str] = E164_COLUMNS) -> pl.DataFrame:
    """Every column as export text: lists joined, times ISO UTC, formula cells neutralized."""
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.List):
            # An empty list is an empty cell, like null: nothing to list either way.
            col = pl.when(col.list.len() > 0).then(col.list.join(";"))
        elif isinstance(dtype, pl.Datetime):
            if dtype.time_zone is None:
                col = col.dt.replace_time_zone("UTC")
            col = col.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif dtype == pl.Boolean:
            col = pl.when(col).then(pl.lit("true")).when(~col).then(pl.lit("false"))
        elif dtype != pl.String:
            col = col.cast(pl.String)
        col = col.str.replace_all(EXPORT_STRIPPED, "")
        risky = col.str.contains(FORMULA_START)
        if name in e164_columns:
            risky = risky & ~col.str.contains(E164)
        exprs.append(pl.when(risky).then(pl.lit("'") + col).otherwise(col).alias(name))
    return frame.select(exprs)


def check_export_target(out: Path, db: Path) -> None:
    """ExportError when `out` would overwrite the database, its WAL or temp files, or anything
    in its state folder (decision log, suppression list, staging, API keys, nightly exports)."""
    target = out.expanduser().resolve()
    database = db.expanduser().resolve()
    state = StateLayout(database).state_dir
    wal, temp = (database.with_name(database.name + s) for s in (".wal", ".tmp"))
    same_file = target.exists() and database.exists() and target.samefile(database)
    if (
        same_file
        or target in (database, wal)
        or target.is_relative_to(state)
        or target.is_relative_to(temp)
    ):
        raise ExportError(
            f"refusing to write an export to {out}: it is the database, its WAL or temp files, "
            f"or inside its state folder {state}; choose a path outside them"
        )


def enforce_bulk_limit(rows: int, limit: int | None) -> None:
    """Refuse a selection larger than `limit` (None = no cap), before anything is written."""
    if limit is not None and rows > limit:
        raise ExportError(
            f"{rows:,} contacts selected; a bulk action handles at most {limit:,}. "
            "Narrow the filter or the saved view"
        )


def write_checked_csv(frame: pl.DataFrame, out: Path, check: ExportCheck) -> ExportResult:
    """Write `frame` (already export text) to `out` via a temporary file, checked before rename."""
    started = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        frame.write_csv(tmp, include_header=True, null_value="", quote_style="necessary")
        problems = check(tmp, frame)
        if problems:
            raise ExportError(f"export not written, its check failed: {problems[0]}")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportResult(out, frame.height, time.perf_counter() - started)


def contacts_for_export(
    con: duckdb.DuckDBPyConnection,
    flt: ContactFilter,
    max_rows: int | None = None,
    hidden: Collection[str] = (),
) -> pl.DataFrame:
    """The export columns of the contacts `flt` selects (all live contacts for an empty filter),
    without the `hidden` ids (deleted since the published file was built)."""
    if max_rows is not None:
        enforce_bulk_limit(count(con, flt, hidden=hidden), max_rows)
    return search(con, flt, hidden=hidden).select(CONTACT_EXPORT_COLUMNS)


def export_contacts(
    con: duckdb.DuckDBPyConnection,
    flt: ContactFilter,
    out: Path,
    check: ExportCheck,
    max_rows: int | None = None,
    hidden: Collection[str] = (),
) -> ExportResult:
    """Export the contacts `flt` selects to `out`; refused when more than `max_rows` match."""
    return write_checked_csv(
        to_csv_frame(contacts_for_export(con, flt, max_rows, hidden)), out, check
    )


def export_proposals(
    con: duckdb.DuckDBPyConnection, out: Path, check: ExportCheck, hidden: Collection[str] = ()
) -> ExportResult:
    """Export pending merge proposals with both contacts' name, email and phone; a proposal
    naming a contact no longer live, or `hidden` (deleted since the build), is left out."""
    frame = con.execute(PROPOSALS_EXPORT_SQL, [sorted(hidden)]).pl()
    return write_checked_csv(to_csv_frame(frame, frozenset({"phone_l", "phone_r"})), out, check)
