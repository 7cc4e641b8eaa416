"""The decision log: admins' decisions, durable across runs, outside the rebuilt snapshot.

One DuckDB file (`<db>.state/decisions.duckdb`), append-only. Admin commands open it for a
moment to append; the nightly run opens it read-only to read. DuckDB lets one process write a
file and then locks out other processes, readers included, so both sides retry briefly instead
of failing: an admin never loses a decision because a run was reading, and a run never misses
one because an admin was writing (a decision appended after the run read the log is applied by
the next run).
"""

from __future__ import annotations

import getpass
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import duckdb
import polars as pl

DECISIONS_DDL = """
CREATE TABLE IF NOT EXISTS decisions (
    decision_id VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,
    proposal_id VARCHAR,
    contact_id_l VARCHAR,
    contact_id_r VARCHAR,
    survivor_id VARCHAR,
    decided_by VARCHAR NOT NULL,
    decided_at TIMESTAMPTZ NOT NULL,
    note VARCHAR,
    merge_id VARCHAR,
    subject VARCHAR
)
"""

# Logs written before `merge_id` existed gain the column on the next append.
MIGRATIONS = (
    "ALTER TABLE decisions ADD COLUMN IF NOT EXISTS merge_id VARCHAR",
    "ALTER TABLE decisions ADD COLUMN IF NOT EXISTS subject VARCHAR",
)

# Salted hashes of an erased person's identifiers: what ingest drops from every export, past or
# future. Only hashes: the list itself must not become a copy of the erased data.
SUPPRESSION_DDL = """
CREATE TABLE IF NOT EXISTS suppression (
    decision_id VARCHAR NOT NULL,
    identifier_kind VARCHAR NOT NULL,
    identifier_hash VARCHAR NOT NULL,
    added_at TIMESTAMPTZ NOT NULL
)
"""
# The interactions a soft delete hid, as salted hashes of their ids (`dedup.admin.deletion`): a run
# keeps them out of the engine while the deletion stands, and for good once it is purged.
DELETION_MEMBERS_DDL = """
CREATE TABLE IF NOT EXISTS deletion_members (
    decision_id VARCHAR NOT NULL,
    interaction_hash VARCHAR NOT NULL
)
"""
DELETION_MEMBERS_SCHEMA: dict[str, pl.DataType] = {
    "decision_id": pl.String(),
    "interaction_hash": pl.String(),
}
SUPPRESSION_SCHEMA: dict[str, pl.DataType] = {
    "decision_id": pl.String(),
    "identifier_kind": pl.String(),
    "identifier_hash": pl.String(),
    "added_at": pl.Datetime("us", "UTC"),
}

DECISIONS_SCHEMA: dict[str, pl.DataType] = {
    "decision_id": pl.String(),
    "kind": pl.String(),
    "proposal_id": pl.String(),
    "contact_id_l": pl.String(),
    "contact_id_r": pl.String(),
    "survivor_id": pl.String(),
    "decided_by": pl.String(),
    "decided_at": pl.Datetime("us", "UTC"),
    "note": pl.String(),
    "merge_id": pl.String(),
    "subject": pl.String(),  # the identifier a decision is about (revoke: the verified user id)
}

# Decision kinds. Pairs are contact ids as the admin saw them in the published file; a run follows
# them through `contact_redirects` to tonight's ids.
REJECT_PROPOSAL = "reject_proposal"  # contact_id_l/r must stay apart; never proposed again
ACCEPT_PROPOSAL = "accept_proposal"  # contact_id_l/r become one contact, survivor_id survives
MANUAL_MERGE = "manual_merge"  # same as accept, without a proposal
UNMERGE = "unmerge"  # merge_id is undone: its sides come back and stay apart
NOTE = "note"  # contact_id_l gets an agent-only note (the `note` text)
ERASE = "erase"  # contact_id_l is erased (GDPR); its identifiers go to `suppression`
REVOKE_VERIFICATION = "revoke_verification"  # contact_id_l's verified identity is distrusted
TAG_ADD = "tag_add"  # contact_id_l gets tag `subject`
TAG_REMOVE = "tag_remove"  # contact_id_l loses tag `subject` (even one its interactions carry)
SET_AUDIENCE = "set_audience"  # contact_id_l's audience is `subject` from now on
CRM_RESYNC = "crm_resync"  # contact_id_l is marked for a CRM re-sync (`pending`)
SET_ATTRIBUTE = "set_attribute"  # attribute `subject` of contact_id_l := JSON `note` (null: unset)
EDIT_KINDS = (TAG_ADD, TAG_REMOVE, SET_AUDIENCE, CRM_RESYNC, SET_ATTRIBUTE)
TASK_ADD = "task_add"  # contact_id_l gets task `note` (title); `subject` JSON: assignee, due_at
TASK_DONE = "task_done"  # `subject` is the task id (the task_add decision id)
TASK_KINDS = (TASK_ADD, TASK_DONE)
DELETE = "delete"  # contact_id_l is hidden, restorable for 30 days, then purged (not an erasure)
RESTORE = "restore"  # undoes the deletion whose decision id is `subject`, within its 30 days
MERGE_KINDS = (ACCEPT_PROPOSAL, MANUAL_MERGE)
KINDS = (
    REJECT_PROPOSAL,
    ACCEPT_PROPOSAL,
    MANUAL_MERGE,
    UNMERGE,
    NOTE,
    ERASE,
    REVOKE_VERIFICATION,
    *EDIT_KINDS,
    *TASK_KINDS,
    DELETE,
    RESTORE,
)

T = TypeVar("T")


class DecisionLogError(RuntimeError):
    """The decision log cannot be read or written (damaged, not a DuckDB file); one line."""


@dataclass(frozen=True)
class Decision:
    kind: str
    proposal_id: str | None = None
    contact_id_l: str | None = None
    contact_id_r: str | None = None
    survivor_id: str | None = None
    note: str | None = None
    decided_by: str | None = None
    merge_id: str | None = None
    subject: str | None = None


# A damaged file does not heal by waiting, but a log another process is creating this instant
# reads as "not a valid DuckDB file" for a moment: other errors get this long before they count.
SETTLE_SECONDS = 2.0
# What a locked, half-created or damaged file raises (a mistake in our SQL raises others, as is).
FILE_ERRORS = (
    duckdb.IOException,
    duckdb.SerializationException,
    duckdb.InternalException,
    duckdb.FatalException,
)


def _retry(path: Path, action: Callable[[], T], seconds: float = 30.0) -> T:
    started = time.monotonic()
    while True:
        try:
            return action()
        except FILE_ERRORS as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            # Another process holds the file (a run reading, an admin writing): wait our turn.
            locked = isinstance(exc, duckdb.IOException) and "lock" in first.lower()
            waited = time.monotonic() - started
            if waited <= (seconds if locked else SETTLE_SECONDS):
                time.sleep(0.1)
                continue
            advice = (
                "another process holds it; try again when it is done"
                if locked
                else "restore it from your backup (docs/operations.md, Files)"
            )
            raise DecisionLogError(
                f"the decision log {path} cannot be used: {first}; {advice}"
            ) from None


def _decision_id(decision: Decision, at: datetime, n: int = 0) -> str:
    seed = (
        f"{decision.kind}|{decision.proposal_id}|{decision.contact_id_l}|{decision.contact_id_r}"
        f"|{decision.merge_id}|{decision.subject}|{at.isoformat()}|{n}"
    )
    return "dec_" + hashlib.sha256(seed.encode()).hexdigest()[:16]


def append(
    path: Path,
    decision: Decision,
    now: datetime | None = None,
    also: Callable[[duckdb.DuckDBPyConnection, str], None] | None = None,
) -> str:
    """Append one decision; returns its id.

    `also(con, decision_id)` runs in the same transaction (an erasure's suppression rows and
    redactions land together with the decision or not at all).
    """
    each = None if also is None else (lambda con, ids: also(con, ids[0]))
    return append_many(path, [decision], now, each)[0]


def append_many(
    path: Path,
    decisions: list[Decision],
    now: datetime | None = None,
    also: Callable[[duckdb.DuckDBPyConnection, list[str]], None] | None = None,
) -> list[str]:
    """Append decisions in one transaction (a bulk action: all or nothing); returns their ids.

    `also(con, decision_ids)` runs inside that transaction too (ids in `decisions`' order).
    """
    if not decisions:
        return []
    decided_at = now or datetime.now(UTC)
    for d in decisions:
        if d.kind not in KINDS:
            raise ValueError(f"unknown decision kind {d.kind!r}")
    ids = [_decision_id(d, decided_at, n) for n, d in enumerate(decisions)]
    path.parent.mkdir(parents=True, exist_ok=True)

    def write() -> None:
        con = duckdb.connect(str(path))
        try:
            con.execute(DECISIONS_DDL)
            con.execute(SUPPRESSION_DDL)
            con.execute(DELETION_MEMBERS_DDL)
            for statement in MIGRATIONS:
                con.execute(statement)
            con.execute("BEGIN")
            con.executemany(
                f"INSERT INTO decisions ({', '.join(DECISIONS_SCHEMA)}) "
                f"VALUES ({', '.join('?' * len(DECISIONS_SCHEMA))})",
                [
                    [
                        decision_id,
                        d.kind,
                        d.proposal_id,
                        d.contact_id_l,
                        d.contact_id_r,
                        d.survivor_id,
                        d.decided_by or getpass.getuser(),
                        decided_at,
                        d.note,
                        d.merge_id,
                        d.subject,
                    ]
                    for decision_id, d in zip(ids, decisions, strict=True)
                ],
            )
            if also is not None:
                also(con, ids)
            con.execute("COMMIT")
        finally:
            con.close()

    _retry(path, write)
    return ids


def _read_table(path: Path, table: str, schema: dict[str, pl.DataType], order: str) -> pl.DataFrame:
    """`schema`'s columns of `table` in the log (a column the log predates reads as null)."""
    if not path.exists():
        return pl.DataFrame(schema=schema)

    def read() -> pl.DataFrame:
        con = duckdb.connect(str(path), read_only=True)
        try:
            present = {
                r[0]
                for r in con.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [table]
                ).fetchall()
            }
            if not present:
                return pl.DataFrame(schema=schema)
            columns = ", ".join(c if c in present else f"NULL AS {c}" for c in schema)
            return con.sql(f"SELECT {columns} FROM {table} ORDER BY {order}").pl()
        finally:
            con.close()

    return _retry(path, read).cast(schema)  # type: ignore[arg-type]


def read_all(path: Path) -> pl.DataFrame:
    """Every decision, oldest first; empty when none was ever taken."""
    return _read_table(path, "decisions", DECISIONS_SCHEMA, "decided_at, decision_id")


def read_suppression(path: Path) -> pl.DataFrame:
    """Every suppressed identifier hash (empty when nobody was ever erased)."""
    return _read_table(path, "suppression", SUPPRESSION_SCHEMA, "ALL")


def read_deletion_members(path: Path) -> pl.DataFrame:
    """Every deleted interaction's hash with its deletion's decision id."""
    return _read_table(path, "deletion_members", DELETION_MEMBERS_SCHEMA, "ALL")
