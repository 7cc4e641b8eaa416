"""Admins' actions on the published file: the one place the CLI and the review page call.

Reads go to the published DuckDB file (read-only, a moment at a time); every action is appended
to the decision log (`dedup.decisions`) and applied by the next run. Until then it shows as
*pending*: `pending_decisions` is what the log holds beyond what the published file applied.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from dedup.admin.deletion import (
    DELETED,
    PURGED,
    RESTORED,
    TRASH_FILE,
    deletion_status,
    member_hash_sql,
)
from dedup.admin.privacy import ErasureSubject, erasure_rows, erasure_subject, salt
from dedup.decisions import (
    ACCEPT_PROPOSAL,
    CRM_RESYNC,
    DELETE,
    DELETION_MEMBERS_SCHEMA,
    ERASE,
    MANUAL_MERGE,
    MERGE_KINDS,
    NOTE,
    REJECT_PROPOSAL,
    RESTORE,
    REVOKE_VERIFICATION,
    SET_ATTRIBUTE,
    SET_AUDIENCE,
    TAG_ADD,
    TAG_REMOVE,
    UNMERGE,
    Decision,
    append,
    append_many,
    read_all,
    read_deletion_members,
)
from dedup.identity.normalize import email_norm
from dedup.layout import StateLayout
from dedup.schema import attribute_problem, text_problem
from dedup.service import read_cache
from dedup.service.export import BULK_ACTION_LIMIT, ExportError, enforce_bulk_limit
from dedup.service.saved_views import forget_person
from dedup.snapshot.files import table_names

MAX_BULK = BULK_ACTION_LIMIT  # contacts or proposals one admin action may touch


def _within_bulk_limit(n: int) -> None:
    """The one bulk cap (dedup.service.export.enforce_bulk_limit), as a ReviewError."""
    try:
        enforce_bulk_limit(n, MAX_BULK)
    except ExportError as exc:
        raise ReviewError(str(exc)) from None


MAX_NOTE_CHARS = 10_000


class ReviewError(Exception):
    """An action that cannot be taken; the message is one line a person can act on."""


class NotFound(ReviewError):
    """The contact (or deleted contact) named does not exist."""


def open_published(db: Path) -> duckdb.DuckDBPyConnection:
    """The published file, read-only; a missing or locked file is a one-line ReviewError.

    Where the process shares one connection (`read_cache.share_published`: the web app), this is
    a cursor on it, reopened after a new publish; otherwise a connection of its own.
    """
    if not db.exists():
        raise ReviewError(f"no published file at {db}; run `contacts run` or `contacts demo` first")
    reader = read_cache.shared_reader(db)
    try:
        if reader is not None:
            return reader.cursor()
        return duckdb.connect(str(db), read_only=True)
    except FileNotFoundError:
        raise ReviewError(
            f"no published file at {db}; run `contacts run` or `contacts demo` first"
        ) from None
    except duckdb.Error as exc:
        raise ReviewError(f"cannot open {db}: {str(exc).splitlines()[0]}") from exc


@contextmanager
def published(db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = open_published(db)
    try:
        yield con
    finally:
        con.close()


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    rel = con.execute(sql, params or [])
    cols = [d[0] for d in rel.description]
    return [dict(zip(cols, r, strict=True)) for r in rel.fetchall()]


def decision_log(db: Path) -> pl.DataFrame:
    """Every decision in the log (`read_all`), re-read only when the log file changed."""
    path = StateLayout(db).decisions_path
    return read_cache.CACHE.get(
        ("decisions", path), read_cache.duckdb_files(path), lambda: read_all(path)
    )


def _applied_ids(db: Path) -> frozenset[str]:
    """Decision ids the published file applied, read once per published file."""

    def load() -> frozenset[str]:
        if not db.exists():
            return frozenset()
        with published(db) as con:
            if "admin_decisions" not in table_names(con):
                return frozenset()
            return frozenset(
                r[0] for r in con.execute("SELECT decision_id FROM admin_decisions").fetchall()
            )

    return read_cache.CACHE.get(("applied", db), [db], load)


def pending_decisions(db: Path) -> list[dict]:
    """Decisions in the log that the published file has not applied yet (oldest first)."""

    def load() -> list[dict]:
        log = decision_log(db)
        if log.height == 0:
            return []
        applied = _applied_ids(db)
        return [r for r in log.iter_rows(named=True) if r["decision_id"] not in applied]

    pending = read_cache.CACHE.get(("pending", db), pending_files(db), load)
    return [dict(r) for r in pending]  # callers may change their rows


def live_contact(con: duckdb.DuckDBPyConnection, contact_id: str) -> str:
    """The live id for `contact_id`, following a redirect; ReviewError when unknown or deleted."""
    if con.execute("SELECT 1 FROM contacts WHERE contact_id = ?", [contact_id]).fetchone():
        return contact_id
    found = con.execute(
        "SELECT to_contact_id FROM contact_redirects WHERE from_contact_id = ?", [contact_id]
    ).fetchone()
    target = found[0] if found else contact_id
    if found and con.execute("SELECT 1 FROM contacts WHERE contact_id = ?", [target]).fetchone():
        return target
    if "deleted_contacts" in table_names(con):
        held = con.execute(
            "SELECT restorable_until FROM deleted_contacts WHERE contact_id = ?", [target]
        ).fetchone()
        if held:
            raise ReviewError(_deleted_message(target, held[0]))
    raise NotFound(f"no contact {contact_id}")


def _deleted_message(contact_id: str, until: datetime) -> str:
    return (
        f"contact {contact_id} is deleted; `contacts restore {contact_id}` brings it back "
        f"until {until:%Y-%m-%d %H:%M} UTC"
    )


def deletions(db: Path, now: datetime | None = None, counts: bool = True) -> pl.DataFrame:
    """Every deletion in the decision log and where it stands (`dedup.admin.deletion`), pending or not.

    The log is the truth: a deletion hides its contact from the moment it is appended, before any
    run has applied it. `counts=False` skips reading the member hashes (every read path asks).
    """
    path = StateLayout(db).decisions_path
    members = (
        read_deletion_members(path) if counts else pl.DataFrame(schema=DELETION_MEMBERS_SCHEMA)
    )
    return deletion_status(decision_log(db), members, now or datetime.now(UTC))


def _hidden(db: Path) -> frozenset[str]:
    # Deleted or purged does not depend on the hour (only which of the two), so the set is kept
    # for as long as the log is unchanged.
    path = StateLayout(db).decisions_path

    def load() -> frozenset[str]:
        found = deletions(db, counts=False).filter(pl.col("status").is_in([DELETED, PURGED]))
        return frozenset(found.get_column("contact_id").to_list())

    return read_cache.CACHE.get(("hidden", path), read_cache.duckdb_files(path), load)


def erasing_ids(db: Path) -> frozenset[str]:
    """Contacts with an erasure request the published file has not applied yet: gone from every
    read at once (the next run removes them), like a deletion."""

    def load() -> frozenset[str]:
        return frozenset(
            d["contact_id_l"]
            for d in pending_decisions(db)
            if d["kind"] == ERASE and d["contact_id_l"] is not None
        )

    return read_cache.CACHE.get(("erasing", db), pending_files(db), load)


def pending_files(db: Path) -> list[Path]:
    """The files `pending_decisions` is read from (its cache's key: `read_cache`)."""
    return [*read_cache.duckdb_files(StateLayout(db).decisions_path), db]


def hidden_ids(db: Path) -> set[str]:
    """Contacts deleted (restorable or purged) or being erased: every read path leaves them out
    at once."""
    return set(_hidden(db)) | erasing_ids(db)


def require_visible(db: Path, contact_id: str) -> None:
    """ReviewError when `contact_id` (a live id) was deleted or asked erased after the published
    file was built."""
    if contact_id in erasing_ids(db):
        raise ReviewError(f"contact {contact_id} is being erased; the next run removes it")
    if contact_id not in _hidden(db):
        return
    found = deletions(db, counts=False).filter(
        (pl.col("contact_id") == contact_id) & (pl.col("status") == DELETED)
    )
    if found.height:
        raise ReviewError(_deleted_message(contact_id, found.get_column("restorable_until")[-1]))


def refuse_deleted(db: Path, *contact_ids: str) -> None:
    """ReviewError when one of `contact_ids` is deleted (pending or applied) or being erased: no
    decision, card or queue row may name it, or a merge would pull other people's data into the
    trash."""
    erasing = sorted(erasing_ids(db).intersection(contact_ids))
    if erasing:
        raise ReviewError(f"contact {erasing[0]} is being erased; nothing can be decided about it")
    gone = sorted(_hidden(db).intersection(contact_ids))
    if gone:
        raise ReviewError(
            f"contact {gone[0]} is deleted; nothing can be decided about it "
            f"(`contacts restore {gone[0]}` first, while it is restorable)"
        )


def _refuse_pending_merge(db: Path, targets: list[str]) -> None:
    # A merge taken before the deletion would be applied together with it by the next run.
    for d in pending_decisions(db):
        named = {d["contact_id_l"], d["contact_id_r"], d["survivor_id"]}
        if d["kind"] in MERGE_KINDS and named.intersection(targets):
            raise ReviewError(
                f"{sorted(named.intersection(targets))[0]} is in a merge waiting for the next run "
                f"({d['decision_id']}); delete it after that run"
            )


def delete_contacts(
    db: Path, contact_ids: list[str], who: str | None = None, now: datetime | None = None
) -> list[str]:
    """Soft-delete live contacts (≤ MAX_BULK, all or nothing); returns the deletion ids.

    Each deletion records the salted hashes of the interactions the contact holds in the
    published file; the contact is hidden at once and restorable for 30 days.
    """
    _within_bulk_limit(len(contact_ids))
    if not contact_ids:
        raise ReviewError("no contact matches; nothing to delete")
    hidden = hidden_ids(db)
    layout = StateLayout(db)
    with published(db) as con:
        targets = sorted({live_contact(con, c) for c in contact_ids})
        already = sorted(hidden.intersection(targets))
        if already:
            raise ReviewError(f"already deleted: {', '.join(already)}")
        _refuse_pending_merge(db, targets)
        members = con.execute(
            f"""
            SELECT contact_id, {member_hash_sql("$salt", "interaction_id")} AS interaction_hash
            FROM interactions WHERE contact_id IN (SELECT unnest($ids))
            ORDER BY contact_id, interaction_hash
            """,
            {"salt": salt(layout.state_dir), "ids": targets},
        ).fetchall()

    def record_members(con: duckdb.DuckDBPyConnection, decision_ids: list[str]) -> None:
        deletion_of = dict(zip(targets, decision_ids, strict=True))
        con.executemany(
            "INSERT INTO deletion_members VALUES (?, ?)",
            [(deletion_of[contact], digest) for contact, digest in members],
        )

    return append_many(
        layout.decisions_path,
        [Decision(kind=DELETE, contact_id_l=c, decided_by=who) for c in targets],
        now,
        also=record_members,
    )


def trash(db: Path) -> list[dict]:
    """Deleted contacts that may still be restored, newest deletion first, with name and email
    (from `deleted_contacts`, or from `contacts` while the deletion waits for its run)."""
    waiting = (
        deletions(db, counts=False)
        .filter(pl.col("status") == DELETED)
        .sort("deleted_at", descending=True)
    )
    rows = waiting.to_dicts()
    if not rows or not db.exists():
        return rows
    with published(db) as con:
        sources = ["SELECT contact_id, name, email FROM contacts"]
        if "deleted_contacts" in table_names(con):
            sources.append("SELECT contact_id, name, email FROM deleted_contacts")
        found = {
            r[0]: r[1:]
            for r in con.execute(
                f"SELECT * FROM ({' UNION ALL '.join(sources)}) "
                "WHERE contact_id IN (SELECT unnest(?))",
                [[r["contact_id"] for r in rows]],
            ).fetchall()
        }
    for row in rows:
        row["name"], row["email"] = found.get(row["contact_id"], (None, None))
    return rows


def restore_contacts(
    db: Path, contact_ids: list[str], who: str | None = None, now: datetime | None = None
) -> list[str]:
    """Undo the deletion of these contacts (≤ MAX_BULK, each within 30 days of its deletion)."""
    _within_bulk_limit(len(contact_ids))
    if not contact_ids:
        raise ReviewError("name the contacts to restore")
    at = now or datetime.now(UTC)
    known = deletions(db, at, counts=False)
    chosen: list[Decision] = []
    for contact_id in sorted(set(contact_ids)):
        latest = known.filter(pl.col("contact_id") == contact_id).tail(1).to_dicts()
        if not latest:
            raise NotFound(f"no deleted contact {contact_id}; nothing to restore")
        row = latest[0]
        if row["status"] == PURGED:
            raise ReviewError(
                f"{contact_id} was deleted on {row['deleted_at']:%Y-%m-%d} and purged for good "
                f"on {row['restorable_until']:%Y-%m-%d}; it cannot be restored"
            )
        if row["status"] == RESTORED:
            raise ReviewError(f"{contact_id} is already restored")
        chosen.append(
            Decision(
                kind=RESTORE, contact_id_l=contact_id, subject=row["deletion_id"], decided_by=who
            )
        )
    return append_many(StateLayout(db).decisions_path, chosen, at)


def _require_live(con: duckdb.DuckDBPyConnection, contact_id: str) -> None:
    live = live_contact(con, contact_id)
    if live != contact_id:
        raise ReviewError(f"{contact_id} was merged into {live}; use {live}")


def _refuse_two_accounts(con: duckdb.DuckDBPyConnection, a: str, b: str) -> None:
    # Two verified user ids are two accounts of the customer's product; a contact holding both
    # fails the run's hub check, so the run would not apply the merge either (dedup.identity.constraints).
    accounts = {*_identifiers(con, a)["user_id"], *_identifiers(con, b)["user_id"]}
    if len(accounts) > 1:
        raise ReviewError(
            f"{a} and {b} are two verified accounts ({len(accounts)} verified user ids); "
            "they cannot be merged"
        )


def _proposal(con: duckdb.DuckDBPyConnection, proposal_id: str) -> dict:
    found = _rows(con, "SELECT * FROM merge_proposals WHERE proposal_id = ?", [proposal_id])
    if not found:
        raise ReviewError(f"no proposal {proposal_id}")
    return found[0]


def _pending_about(db: Path, key: str, value: str) -> dict | None:
    return next((d for d in pending_decisions(db) if d.get(key) == value), None)


def _check_open(db: Path, proposal: dict) -> None:
    if proposal["status"] != "pending":
        raise ReviewError(
            f"proposal {proposal['proposal_id']} is {proposal['status']}, not pending"
        )
    waiting = _pending_about(db, "proposal_id", proposal["proposal_id"])
    if waiting:
        raise ReviewError(
            f"proposal {proposal['proposal_id']} was already decided ({waiting['kind']} by "
            f"{waiting['decided_by']}); it takes effect at the next run"
        )
    pair = (proposal["contact_id_l"], proposal["contact_id_r"])
    if one_after_pending(joined_by_pending(pending_decisions(db)), *pair):
        raise ReviewError(
            f"proposal {proposal['proposal_id']}: {pair[0]} and {pair[1]} become one contact at "
            "the next run already (merges waiting in the decision log)"
        )


def joined_by_pending(waiting: list[dict]) -> dict[str, str]:
    """contact → one representative of the contacts the merges waiting in `waiting` (from
    `pending_decisions`) make one with it; a contact no waiting merge names is absent."""
    parent: dict[str, str] = {}

    def root(c: str) -> str:
        while parent.get(c, c) != c:
            c = parent[c]
        return c

    for d in waiting:
        if d["kind"] in MERGE_KINDS and d["contact_id_l"] and d["contact_id_r"]:
            a, b = root(d["contact_id_l"]), root(d["contact_id_r"])
            parent.setdefault(a, a)
            parent.setdefault(b, b)
            parent[max(a, b)] = min(a, b)
    return {c: root(c) for c in parent}


def one_after_pending(joined: dict[str, str], a: str, b: str) -> bool:
    """Whether waiting merges (`joined_by_pending`) make `a` and `b` one contact: a proposal
    between them is moot (the run supersedes it) and no longer asks for a decision."""
    return a in joined and joined.get(b) == joined[a]


def accept_proposal(
    db: Path, proposal_id: str, survivor: str, note: str | None = None, who: str | None = None
) -> str:
    """Accept a pending proposal; `survivor` (one of its two contacts) keeps its id."""
    with published(db) as con:
        proposal = _proposal(con, proposal_id)
    _check_open(db, proposal)
    pair = (proposal["contact_id_l"], proposal["contact_id_r"])
    if survivor not in pair:
        raise ReviewError(f"survivor must be {pair[0]} or {pair[1]}, not {survivor}")
    refuse_deleted(db, *pair)
    with published(db) as con:
        _refuse_two_accounts(con, *pair)
    return append(
        StateLayout(db).decisions_path,
        Decision(
            kind=ACCEPT_PROPOSAL,
            proposal_id=proposal_id,
            contact_id_l=pair[0],
            contact_id_r=pair[1],
            survivor_id=survivor,
            note=note,
            decided_by=who,
        ),
    )


def reject_proposal(
    db: Path, proposal_id: str, note: str | None = None, who: str | None = None
) -> str:
    """Reject a pending proposal: the pair is never proposed again and auto-merge keeps it apart."""
    with published(db) as con:
        proposal = _proposal(con, proposal_id)
    _check_open(db, proposal)
    refuse_deleted(db, proposal["contact_id_l"], proposal["contact_id_r"])
    return append(
        StateLayout(db).decisions_path,
        Decision(
            kind=REJECT_PROPOSAL,
            proposal_id=proposal_id,
            contact_id_l=proposal["contact_id_l"],
            contact_id_r=proposal["contact_id_r"],
            note=note,
            decided_by=who,
        ),
    )


def accept_all_above(
    db: Path, min_probability: float, limit: int, note: str | None = None, who: str | None = None
) -> list[str]:
    """Accept up to `limit` (≤ MAX_BULK) pending proposals at or above `min_probability`.

    The survivor of each is the contact seen first, the rule auto-merge uses.
    """
    if limit > MAX_BULK:
        raise ReviewError(f"at most {MAX_BULK} proposals per action (asked for {limit})")
    if not 0.0 <= min_probability <= 1.0:
        raise ReviewError(f"probability must be between 0 and 1, not {min_probability}")
    waiting = {d["proposal_id"] for d in pending_decisions(db)}
    with published(db) as con:
        picks = _rows(
            con,
            """
            SELECT p.proposal_id, p.contact_id_l, p.contact_id_r,
                   CASE WHEN (l.first_seen, l.contact_id) <= (r.first_seen, r.contact_id)
                        THEN p.contact_id_l ELSE p.contact_id_r END AS survivor
            FROM merge_proposals p
            JOIN contacts l ON l.contact_id = p.contact_id_l
            JOIN contacts r ON r.contact_id = p.contact_id_r
            WHERE p.status = 'pending' AND p.match_probability >= ?
            ORDER BY p.match_probability DESC, p.proposal_id
            """,
            [min_probability],
        )
    hidden = hidden_ids(db)
    picks = [
        p
        for p in picks
        if p["proposal_id"] not in waiting
        and not hidden.intersection((p["contact_id_l"], p["contact_id_r"]))
    ][:limit]
    # The query already chose pending, undecided proposals: append them all in one transaction.
    return append_many(
        StateLayout(db).decisions_path,
        [
            Decision(
                kind=ACCEPT_PROPOSAL,
                proposal_id=p["proposal_id"],
                contact_id_l=p["contact_id_l"],
                contact_id_r=p["contact_id_r"],
                survivor_id=p["survivor"],
                note=note,
                decided_by=who,
            )
            for p in picks
        ],
    )


def merge_contacts(
    db: Path, a: str, b: str, survivor: str, note: str | None = None, who: str | None = None
) -> str:
    """Merge two live contacts by hand; `survivor` keeps its id, the other redirects to it."""
    if a == b:
        raise ReviewError("a contact cannot be merged with itself")
    if survivor not in (a, b):
        raise ReviewError(f"survivor must be {a} or {b}, not {survivor}")
    refuse_deleted(db, a, b)
    with published(db) as con:
        _require_live(con, a)
        _require_live(con, b)
        _refuse_two_accounts(con, a, b)
    return append(
        StateLayout(db).decisions_path,
        Decision(
            kind=MANUAL_MERGE,
            contact_id_l=a,
            contact_id_r=b,
            survivor_id=survivor,
            note=note,
            decided_by=who,
        ),
    )


def unmerge(
    db: Path,
    merge_id: str,
    note: str | None = None,
    who: str | None = None,
    now: datetime | None = None,
) -> str:
    """Undo a merge within its 30-day window; both sides come back as they were."""
    now = now or datetime.now(UTC)
    with published(db) as con:
        found = _rows(con, "SELECT * FROM merges WHERE merge_id = ?", [merge_id])
    if not found:
        raise ReviewError(f"no merge {merge_id}")
    merge = found[0]
    if merge["kind"] == "unmerge":
        raise ReviewError(f"{merge_id} is an unmerge; merge the contacts again instead")
    if merge["undone_at"] is not None:
        raise ReviewError(f"merge {merge_id} was already undone on {merge['undone_at']:%Y-%m-%d}")
    until = merge["reversible_until"]
    if until is None or now > until:
        raise ReviewError(
            f"merge {merge_id} was done on {merge['decided_at']:%Y-%m-%d}; merges can be undone "
            f"for 30 days (until {until:%Y-%m-%d})"
            if until
            else f"merge {merge_id} cannot be undone"
        )
    if _pending_about(db, "merge_id", merge_id):
        raise ReviewError(
            f"merge {merge_id} is already being undone; it takes effect at the next run"
        )
    return append(
        StateLayout(db).decisions_path,
        Decision(kind=UNMERGE, merge_id=merge_id, note=note, decided_by=who),
        now=now,
    )


def add_note(db: Path, contact_id: str, text: str, who: str | None = None) -> str:
    """An agent-only note on a contact; it follows the contact through merges and unmerges."""
    text = text.strip()
    if not text:
        raise ReviewError("a note needs some text")
    if len(text) > MAX_NOTE_CHARS:
        raise ReviewError(f"a note has at most {MAX_NOTE_CHARS:,} characters")
    with published(db) as con:
        live = live_contact(con, contact_id)
    return append(
        StateLayout(db).decisions_path,
        Decision(kind=NOTE, contact_id_l=live, note=text, decided_by=who),
    )


def normalized_email(value: str) -> str | None:
    """The SPEC's `email_norm` of one typed address (the same expression ingest uses)."""
    return pl.select(email_norm(pl.lit(value, dtype=pl.String))).item()


def _identifiers(con: duckdb.DuckDBPyConnection, contact_id: str) -> dict[str, list[str]]:
    rows = con.execute(
        """
        SELECT list(DISTINCT email_norm) FILTER (WHERE email_norm IS NOT NULL),
               list(DISTINCT phone_e164) FILTER (WHERE phone_e164 IS NOT NULL),
               list(DISTINCT user_id) FILTER (WHERE identity_verified AND user_id IS NOT NULL),
               list(DISTINCT session_id) FILTER (WHERE session_id IS NOT NULL),
               list(interaction_id)
        FROM interactions WHERE contact_id = ?
        """,
        [contact_id],
    ).fetchone()
    kinds = ("email", "phone", "user_id", "session", "interaction")
    return {k: list(v or []) for k, v in zip(kinds, rows, strict=True)}


def _subject(
    db: Path, con: duckdb.DuckDBPyConnection, contact_id: str, alongside: Collection[str] = ()
) -> ErasureSubject:
    """What erasing `contact_id` suppresses and holds (dedup.admin.privacy.erasure_subject);
    contacts erased already or `alongside` it do not make an identifier shared."""
    layout = StateLayout(db)
    erased = read_all(layout.decisions_path).filter(pl.col("kind") == ERASE)
    ids = {*erased.get_column("contact_id_l").drop_nulls().to_list(), *alongside} - {contact_id}
    trash = layout.work_file(TRASH_FILE)  # deleted contacts: last run's, for a restore
    return erasure_subject(con, contact_id, ids, pl.read_parquet(trash) if trash.exists() else None)


def _erase(
    db: Path,
    contact_id: str | None,
    subject: ErasureSubject,
    aliases: list[str],
    who: str | None,
    request_id: str | None,
) -> str:
    layout = StateLayout(db)
    salt_hex = salt(layout.state_dir)

    def suppress_and_redact(con: duckdb.DuckDBPyConnection, decision_id: str) -> None:
        from datetime import UTC, datetime

        rows = erasure_rows(salt_hex, subject.own, decision_id, datetime.now(UTC), subject.shared)
        if rows:
            con.executemany("INSERT INTO suppression VALUES (?, ?, ?, ?)", rows)
        if aliases:
            # The log keeps that decisions were taken, not what people wrote about the person.
            con.execute(
                """
                UPDATE decisions SET note = NULL, subject = NULL
                WHERE contact_id_l IN (SELECT unnest($ids)) OR contact_id_r IN (SELECT unnest($ids))
                   OR survivor_id IN (SELECT unnest($ids))
                """,
                {"ids": aliases},
            )

    decision_id = append(
        layout.decisions_path,
        Decision(kind=ERASE, contact_id_l=contact_id, note=request_id, decided_by=who),
        also=suppress_and_redact,
    )
    # Saved views are people's state outside the log: one that names the person goes too.
    forget_person(
        layout.views_path,
        [*subject.own.get("email", []), *subject.own.get("phone", [])],
        subject.names,
    )
    return decision_id


def erase_contact(
    db: Path,
    contact_id: str,
    confirm: str,
    who: str | None = None,
    request_id: str | None = None,
    alongside: Collection[str] = (),
) -> str:
    """GDPR erasure of a live contact; `confirm` must be one of its email addresses.

    Only the contact's own interactions and own identifiers go; `alongside`: contacts erased by
    the same request (their identifiers do not count as someone else's).
    """
    with published(db) as con:
        _require_live(con, contact_id)
        emails = con.execute(
            "SELECT emails FROM contacts WHERE contact_id = ?", [contact_id]
        ).fetchone()[0]
        wanted = normalized_email(confirm)
        if not wanted or wanted not in (emails or []):
            raise ReviewError(
                f"--confirm {confirm!r} is not an email address of {contact_id}; nothing erased"
            )
        subject = _subject(db, con, contact_id, alongside)
        aliases = [contact_id] + [
            r[0]
            for r in con.execute(
                "SELECT from_contact_id FROM contact_redirects WHERE to_contact_id = ?",
                [contact_id],
            ).fetchall()
        ]
    return _erase(db, contact_id, subject, aliases, who, request_id)


def erase_live(
    db: Path, contact_id: str, who: str | None = None, request_id: str | None = None
) -> str:
    """Erasure of a live contact without an email to confirm (the Contact API's write scope is
    the confirmation)."""
    with published(db) as con:
        _require_live(con, contact_id)
        emails = con.execute(
            "SELECT emails FROM contacts WHERE contact_id = ?", [contact_id]
        ).fetchone()[0]
    if emails:
        return erase_contact(db, contact_id, emails[0], who, request_id)
    with published(db) as con:
        subject = _subject(db, con, contact_id)
    return _erase(db, contact_id, subject, [contact_id], who, request_id)


def erase_requests(db: Path, requests: Path, who: str | None = None) -> list[dict]:
    """Erase everyone a requests file names (CSV with an `email` column, optional `request_id`).

    A person the published file does not know is still suppressed, so a later export cannot
    bring them in. Returns one row per request: email, request_id, contacts erased.
    """
    try:
        with requests.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ReviewError(f"cannot read {requests}: {exc}") from exc
    if rows and "email" not in rows[0]:
        raise ReviewError(f"{requests} needs an `email` column")
    done = []
    for line, row in enumerate(rows, start=2):
        wanted = normalized_email(row.get("email") or "")
        if not wanted:
            raise ReviewError(f"{requests}:{line}: not an email address: {row.get('email')!r}")
        request_id = (row.get("request_id") or "").strip() or None
        with published(db) as con:
            found = [
                r[0]
                for r in con.execute(
                    "SELECT contact_id FROM contacts WHERE list_contains(emails, ?) ORDER BY 1",
                    [wanted],
                ).fetchall()
            ]
        for contact_id in found:
            erase_contact(db, contact_id, wanted, who, request_id, alongside=found)
        if not found:
            _erase(db, None, ErasureSubject(own={"email": [wanted]}), [], who, request_id)
        done.append({"email": wanted, "request_id": request_id, "contacts": found})
    return done


def revoke_verification(db: Path, contact_id: str, who: str | None = None) -> str:
    """Distrust a contact's verified identity up to now; its next session must verify again."""
    with published(db) as con:
        _require_live(con, contact_id)
        user_id = con.execute(
            "SELECT user_id FROM contacts WHERE contact_id = ?", [contact_id]
        ).fetchone()[0]
    if user_id is None:
        raise ReviewError(f"{contact_id} has no verified identity to revoke")
    return append(
        StateLayout(db).decisions_path,
        Decision(
            kind=REVOKE_VERIFICATION, contact_id_l=contact_id, subject=user_id, decided_by=who
        ),
    )


BULK_ACTIONS = {
    "tag-add": TAG_ADD,
    "tag-remove": TAG_REMOVE,
    "audience": SET_AUDIENCE,
    "crm-resync": CRM_RESYNC,
    "delete": DELETE,  # soft delete (`delete_contacts`): hidden, restorable for 30 days
}
MAX_TAG_CHARS = 100


def select_contacts(db: Path, contact_ids: list[str] | None = None, flt=None) -> list[str]:
    """The live contact ids a bulk action targets: given ids (redirects followed) or a filter.

    Refuses more than MAX_BULK before anything is decided.
    """
    from dedup.service.search import FilterError, count, search

    hidden = hidden_ids(db)
    with published(db) as con:
        if contact_ids:
            chosen = sorted({live_contact(con, c) for c in contact_ids})
            gone = sorted(hidden.intersection(chosen))
            if gone:
                raise ReviewError(f"deleted, restore first: {', '.join(gone)}")
        elif flt is not None:
            try:
                _within_bulk_limit(count(con, flt, hidden=hidden))
                chosen = search(con, flt, hidden=hidden).get_column("contact_id").to_list()
            except FilterError as exc:
                raise ReviewError(str(exc)) from None
        else:
            raise ReviewError("choose contacts: give contact ids or a filter")
    _within_bulk_limit(len(chosen))
    return chosen


def check_audience(db: Path, value: str | None) -> None:
    """ReviewError unless `value` is an audience of the published audience map."""
    with published(db) as con:
        known = {r[0] for r in con.execute("SELECT DISTINCT audience FROM audience_map").fetchall()}
        known |= {r[0] for r in con.execute("SELECT DISTINCT audience FROM contacts").fetchall()}
    known.discard(None)
    if value not in known:
        raise ReviewError(f"unknown audience {value!r} (one of {', '.join(sorted(known))})")


def bulk_edit(
    db: Path, action: str, contact_ids: list[str], value: str | None = None, who: str | None = None
) -> list[str]:
    """One decision per contact (≤ MAX_BULK), appended together; applied by the next run."""
    kind = BULK_ACTIONS.get(action)
    if kind is None:
        raise ReviewError(f"unknown bulk action {action!r} ({', '.join(BULK_ACTIONS)})")
    if kind == DELETE:
        return delete_contacts(db, contact_ids, who)
    _within_bulk_limit(len(contact_ids))
    if not contact_ids:
        raise ReviewError("no contact matches; nothing to do")
    if kind in (TAG_ADD, TAG_REMOVE):
        value = _tag(value, kind)
    elif kind == SET_AUDIENCE:
        check_audience(db, value)
    else:
        value = None
    return append_many(
        StateLayout(db).decisions_path,
        [Decision(kind=kind, contact_id_l=c, subject=value, decided_by=who) for c in contact_ids],
    )


def _tag(value: str | None, kind: str = TAG_ADD) -> str:
    value = (value or "").strip()
    if not value or len(value) > MAX_TAG_CHARS:
        raise ReviewError(f"a tag needs 1 to {MAX_TAG_CHARS} characters")
    # A tag to add is new text: no control or bidi-override characters. Removing one an export
    # brought in stays possible.
    problem = text_problem(value) if kind == TAG_ADD else None
    if problem:
        raise ReviewError(f"tag {value.encode('unicode_escape').decode()[:60]!r} {problem}")
    return value


def check_attributes(attributes: dict[str, Any] | None) -> None:
    """ReviewError unless every attribute to set keeps the limits (`dedup.schema`; None unsets)."""
    for key, value in (attributes or {}).items():
        # Unsetting needs only a name; the value None stands in for any small value.
        problem = attribute_problem(key, 0 if value is None else value)
        if problem:
            raise ReviewError(f"{problem}; nothing saved")


def edit_contact(
    db: Path,
    contact_id: str,
    tags_add: Collection[str] = (),
    tags_remove: Collection[str] = (),
    audience: str | None = None,
    attributes: dict[str, Any] | None = None,
    who: str | None = None,
) -> list[str]:
    """Edits of one live contact, appended together (the Contact API's PATCH).

    Tags to add and remove, the audience (one of the audience map's), attributes to set (any
    JSON value; None unsets the key). Checked like `bulk_edit`'s; applied by the next run.
    """
    check_attributes(attributes)
    decisions = [
        Decision(kind=kind, contact_id_l=contact_id, subject=_tag(tag, kind), decided_by=who)
        for kind, tags in ((TAG_ADD, tags_add), (TAG_REMOVE, tags_remove))
        for tag in sorted(tags)
    ]
    if audience is not None:
        check_audience(db, audience)
        decisions.append(
            Decision(kind=SET_AUDIENCE, contact_id_l=contact_id, subject=audience, decided_by=who)
        )
    decisions += [
        Decision(
            kind=SET_ATTRIBUTE,
            contact_id_l=contact_id,
            subject=key,
            note=None if value is None else json.dumps(value),
            decided_by=who,
        )
        for key, value in sorted((attributes or {}).items())
    ]
    return append_many(StateLayout(db).decisions_path, decisions)


def _redirects(db: Path) -> pl.DataFrame:
    with published(db) as con:
        return con.execute("SELECT from_contact_id, to_contact_id FROM contact_redirects").pl()


def add_task(
    db: Path,
    contact_id: str,
    title: str,
    due: str | None = None,
    assignee: str | None = None,
    who: str | None = None,
) -> str:
    """A task on a contact; it follows the contact through merges and unmerges."""
    from datetime import UTC, datetime

    from dedup.admin.tasks import TASK_ADD, parse_due, task_payload

    title = title.strip()
    if not title or len(title) > 500:
        raise ReviewError("a task needs a title of 1 to 500 characters")
    try:
        due_at = parse_due(due, datetime.now(UTC)) if due else None
    except ValueError as exc:
        raise ReviewError(str(exc)) from None
    with published(db) as con:
        live = live_contact(con, contact_id)
    return append(
        StateLayout(db).decisions_path,
        Decision(
            kind=TASK_ADD,
            contact_id_l=live,
            note=title,
            subject=task_payload(assignee, due_at),
            decided_by=who,
        ),
    )


def tasks(db: Path, contact_id: str | None = None) -> pl.DataFrame:
    """Tasks as of now, straight from the decision log (what the next run will publish)."""
    from datetime import UTC, datetime

    from dedup.admin.tasks import contact_tasks

    frame = contact_tasks(decision_log(db), _redirects(db), datetime.now(UTC))
    if contact_id is not None:
        with published(db) as con:
            live = live_contact(con, contact_id)
        frame = frame.filter(pl.col("contact_id") == live)
    return frame


def complete_task(db: Path, task_id: str, who: str | None = None) -> str:
    from dedup.admin.tasks import TASK_DONE

    found = tasks(db).filter(pl.col("task_id") == task_id)
    if found.height == 0:
        raise ReviewError(f"no task {task_id}")
    if found.item(0, "status") == "done":
        raise ReviewError(f"task {task_id} is already done")
    return append(
        StateLayout(db).decisions_path, Decision(kind=TASK_DONE, subject=task_id, decided_by=who)
    )


PROFILE_FIELDS = (
    "contact_id",
    "name",
    "email",
    "phone",
    "company",
    "channels",
    "audience",
    "identity_verified",
    "user_id",
    "conversation_count",
    "last_conversation_at",
    "tags",
    "first_seen",
    "last_seen",
    "crm_sync_status",
    "attributes",
    "is_lead",
)


def contact_detail(db: Path, contact_id: str, history_limit: int = 500) -> dict:
    """Profile, conversation history (all channels, time order), notes and merge history."""
    with published(db) as con:
        live = live_contact(con, contact_id)
        require_visible(db, live)  # reads the decision log, another file
        profile = _rows(
            con, f"SELECT {', '.join(PROFILE_FIELDS)} FROM contacts WHERE contact_id = ?", [live]
        )[0]
        if isinstance(profile.get("attributes"), str):
            profile["attributes"] = json.loads(profile["attributes"])
        history = _rows(
            con,
            """
            SELECT occurred_at, channel, conversation_id, interaction_id, name, email, phone,
                   conversation_tags, source
            FROM interactions WHERE contact_id = ? ORDER BY occurred_at, interaction_id LIMIT ?
            """,
            [live, history_limit],
        )
        notes = _rows(
            con, "SELECT * FROM contact_notes WHERE contact_id = ? ORDER BY created_at", [live]
        )
        merges = _rows(
            con,
            """
            SELECT * FROM merges WHERE survivor_id = ? OR list_contains(merged_ids, ?)
                OR merge_id IN (SELECT merge_id FROM merge_sides WHERE contact_id = ?)
            ORDER BY decided_at DESC, merge_id
            """,
            [live, live, live],
        )
    now = datetime.now(UTC)
    for m in merges:
        m["undoable"] = (
            m["kind"] != "unmerge"
            and m["undone_at"] is None
            and m["reversible_until"] is not None
            and now <= m["reversible_until"]
        )
    waiting = [
        d
        for d in pending_decisions(db)
        if live in (d["contact_id_l"], d["contact_id_r"], d["survivor_id"])
        or d["merge_id"] in {m["merge_id"] for m in merges}
    ]
    for d in waiting:
        if d["kind"] == NOTE:
            notes.append(
                {
                    "note": d["note"],
                    "author": d["decided_by"],
                    "created_at": d["decided_at"],
                    "pending": True,
                }
            )
    return {
        "requested": contact_id,
        "tasks": tasks(db, live).to_dicts(),
        "contact": profile,
        "history": history,
        "notes": notes,
        "merges": merges,
        "pending": waiting,
    }


def proposal_card(db: Path, proposal_id: str) -> dict:
    """A proposal with both contacts side by side and the fields that differ."""
    fields = (
        "name",
        "email",
        "phone",
        "company",
        "channels",
        "audience",
        "tags",
        "last_seen",
        "conversation_count",
        "identity_verified",
    )
    with published(db) as con:
        proposal = _proposal(con, proposal_id)
    refuse_deleted(db, proposal["contact_id_l"], proposal["contact_id_r"])
    with published(db) as con:
        sides = []
        for cid in (proposal["contact_id_l"], proposal["contact_id_r"]):
            got = _rows(
                con,
                f"SELECT contact_id, {', '.join(fields)} FROM contacts WHERE contact_id = ?",
                [cid],
            )
            sides.append(got[0] if got else {"contact_id": cid})
    explanation = proposal.get("explanation")
    if isinstance(explanation, str):
        explanation = json.loads(explanation)
    waiting = _pending_about(db, "proposal_id", proposal_id)
    return {
        "proposal": proposal,
        "left": sides[0],
        "right": sides[1],
        "fields": fields,
        "differs": {f: sides[0].get(f) != sides[1].get(f) for f in fields},
        "explanation": explanation or [],
        "pending": waiting,
    }


def review_queue(
    db: Path,
    status: str = "pending",
    min_probability: float = 0.0,
    limit: int = 50,
    search: str | None = None,
) -> list[dict]:
    """Proposals with both sides' names and emails, most probable first.

    Pending proposals already decided in the log (applied at the next run) are left out.
    """
    if status not in {"pending", "accepted", "rejected", "superseded", "all"}:
        raise ReviewError(
            f"unknown status '{status}' (pending, accepted, rejected, superseded or all)"
        )
    log = pending_decisions(db)
    waiting = {d["proposal_id"] for d in log if d["proposal_id"]}
    joined = joined_by_pending(log)
    # Pairs that waiting merges make one contact (a group decided at once) leave it too.
    sizes = Counter(joined.values()).values()
    moot_at_most = sum(n * (n - 1) // 2 for n in sizes)
    hidden = sorted(hidden_ids(db))  # deleted contacts leave the queue at once
    # Plain substring (no LIKE wildcards: `%` or `_` matched everyone); text without a letter or
    # digit matches nothing, as in contact search (dedup.service.search.HAS_WORD_SQL).
    if search and not any(ch.isalnum() for ch in search):
        return []
    like = search.lower() if search else None
    with published(db) as con:
        rows = _rows(
            con,
            """
            SELECT p.proposal_id, p.match_probability, p.status, p.created_at,
                   p.contact_id_l, l.name AS name_l, l.email AS email_l, l.channels AS channels_l,
                   l.last_seen AS last_seen_l,
                   p.contact_id_r, r.name AS name_r, r.email AS email_r, r.channels AS channels_r,
                   r.last_seen AS last_seen_r
            FROM merge_proposals p
            LEFT JOIN contacts l ON l.contact_id = p.contact_id_l
            LEFT JOIN contacts r ON r.contact_id = p.contact_id_r
            WHERE (? = 'all' OR p.status = ?) AND coalesce(p.match_probability, 1) >= ?
              AND (?::VARCHAR IS NULL OR contains(lower(concat_ws(' ', l.name, l.email, r.name, r.email)), ?))
              AND NOT list_has_any([p.contact_id_l, p.contact_id_r], ?::VARCHAR[])
            ORDER BY p.match_probability DESC NULLS LAST, p.proposal_id
            LIMIT ?
            """,
            [
                status,
                status,
                min_probability,
                like,
                like,
                hidden,
                limit + len(waiting) + moot_at_most,
            ],
        )
    if status == "pending":
        rows = [
            r
            for r in rows
            if r["proposal_id"] not in waiting
            and not one_after_pending(joined, r["contact_id_l"], r["contact_id_r"])
        ]
    return rows[:limit]


def next_pending(db: Path, after: str | None = None) -> str | None:
    """The proposal to review after `after` in queue order (the first when `after` is None)."""
    queue = [r["proposal_id"] for r in review_queue(db, limit=MAX_BULK)]
    if after in queue:
        rest = queue[queue.index(after) + 1 :]
        return rest[0] if rest else None
    return queue[0] if queue else None


__all__ = [
    "MAX_BULK",
    "ReviewError",
    "accept_all_above",
    "accept_proposal",
    "add_note",
    "contact_detail",
    "merge_contacts",
    "next_pending",
    "pending_decisions",
    "proposal_card",
    "reject_proposal",
    "review_queue",
    "unmerge",
]
