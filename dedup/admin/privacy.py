"""GDPR erasure: salted identifier hashes, and dropping what they match from every run's input.

An erasure cannot touch the raw exports (the customer's files; past days still hold the person),
so it is enforced where data enters the engine: every run drops interactions whose normalized
email, E.164 phone, verified user id, session id or interaction id hashes to an entry of the
suppression list (docs/privacy.md). The list holds `sha256(salt || kind || ':' || value)` only; the
salt is a random per-workspace secret beside the decision log, so the list alone cannot be
reversed by hashing a dictionary of addresses.

An erasure takes its subject and nobody else (`erasure_subject`):
- the subject's interactions go by their ids (kind `interaction`), whatever keys they carry;
- an identifier goes on the list only when no other contact's interaction carries it (the
  subject's own address, own phone, own sessions): the list drops every record with it, from
  any export, past or future;
- an identifier other contacts carry too (a household or office phone, a kiosk session) is not
  suppressed: it is *held* (kind `shared_<kind>`). The others keep it, and the auto-merge keeps
  treating it as ambiguous (`held_keys`), as it did while the subject was there, so removing the
  subject merges nobody and moves no one's interactions.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from dedup.decisions import ERASE

# Suppression kind → the interaction column its hash is computed from.
SUPPRESSED_COLUMNS: dict[str, str] = {
    "email": "email_norm",
    "phone": "phone_e164",
    "user_id": "verified_user_id",
    "session": "session_id",
    "interaction": "interaction_id",
}

SUPPRESS = "suppress"  # default: an erased person's identifiers never come back
ALLOW_NEW = "allow_new"  # a new interaction after the erasure starts a new contact
AFTER_ERASURE_POLICIES = (SUPPRESS, ALLOW_NEW)


def salt(state_dir: Path) -> str:
    """The workspace's suppression salt, created (owner-only) on first use."""
    path = state_dir / "suppression.salt"
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
                fh.flush()
                os.fsync(fh.fileno())
    return path.read_text().strip()


def identifier_hash(salt_hex: str, kind: str, value: str) -> str:
    """The suppression hash of one identifier; equals DuckDB's `sha256(salt || kind || ':' || v)`."""
    return hashlib.sha256(f"{salt_hex}{kind}:{value}".encode()).hexdigest()


def suppressed_interactions(
    interactions: pl.DataFrame,
    suppression: pl.DataFrame,
    salt_hex: str,
    policy: str = SUPPRESS,
) -> pl.DataFrame:
    """`interaction_id`s whose identifiers are on the suppression list, with the request's id.

    Args:
        interactions: normalized interactions (the `SUPPRESSED_COLUMNS` and `occurred_at`).
        suppression: `dedup.decisions.SUPPRESSION_SCHEMA` rows.
        salt_hex: from `salt`.
        policy: `suppress` drops every match; `allow_new` keeps interactions that occurred after
            the erasure (the person came back; they become a new contact).
    """
    if policy not in AFTER_ERASURE_POLICIES:
        raise ValueError(f"after-erasure policy must be one of {AFTER_ERASURE_POLICIES}")
    empty = pl.DataFrame(schema={"interaction_id": pl.String, "decision_id": pl.String})
    if suppression.height == 0 or interactions.height == 0:
        return empty
    con = duckdb.connect()
    try:
        con.register(
            "f", interactions.select("occurred_at", *SUPPRESSED_COLUMNS.values()).to_arrow()
        )
        con.register("s", suppression.to_arrow())
        matches = " UNION ALL ".join(
            f"SELECT f.interaction_id, f.occurred_at, s.decision_id, s.added_at FROM f JOIN s "
            f"ON s.identifier_kind = '{kind}' "
            f"AND s.identifier_hash = sha256($salt || '{kind}:' || f.{column})"
            for kind, column in SUPPRESSED_COLUMNS.items()
        )
        keep_new = "WHERE occurred_at <= added_at" if policy == ALLOW_NEW else ""
        return con.execute(
            f"SELECT interaction_id, min(decision_id) AS decision_id FROM ({matches}) {keep_new} "
            "GROUP BY interaction_id ORDER BY interaction_id",
            {"salt": salt_hex},
        ).pl()
    finally:
        con.close()


# Identifiers that several contacts can carry (an interaction id belongs to one contact), and
# the column of the published `interactions` table each is read from.
SHAREABLE: dict[str, str] = {
    "email": "email_norm",
    "phone": "phone_e164",
    "user_id": "user_id",  # verified claims only (`identity_verified`)
    "session": "session_id",
}
SHARED_PREFIX = "shared_"  # suppression kind of a held identifier: `shared_phone`, ...


@dataclass(frozen=True)
class ErasureSubject:
    """What one erasure removes (`own`: suppressed) and keeps for the others (`shared`: held).

    `names` and `own` are read from the published file to clean up saved views; only salted
    hashes of `own` and `shared` are ever stored.
    """

    own: dict[str, list[str]]
    shared: dict[str, list[str]] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)


def erasure_subject(
    con: duckdb.DuckDBPyConnection,
    contact_id: str,
    erased: Collection[str] = (),
    trash: pl.DataFrame | None = None,
) -> ErasureSubject:
    """Split a live contact's identifiers into its own and those other live contacts carry too.

    Args:
        con: the published file.
        contact_id: the contact to erase.
        erased: contacts erased by earlier (or sibling) requests not yet applied by a run: what
            they carry does not make an identifier shared, since they leave too.
        trash: interactions of deleted, still restorable contacts (`KEY_COLUMNS`), which the
            published file no longer holds: a restore must find them whole.
    """
    from dedup.identity.automerge import KEY_COLUMNS

    if trash is None or trash.height == 0:
        trash = pl.DataFrame(schema=dict.fromkeys(KEY_COLUMNS.values(), pl.String))
    con.register("_trash", trash.select(*KEY_COLUMNS.values()).to_arrow())
    skip = [contact_id, *erased]
    own: dict[str, list[str]] = {}
    shared: dict[str, list[str]] = {}
    for kind, column in SHAREABLE.items():
        verified = "AND identity_verified" if kind == "user_id" else ""
        rows = con.execute(
            f"""
            WITH mine AS (
                SELECT DISTINCT {column} AS v FROM interactions
                WHERE contact_id = $id AND {column} IS NOT NULL {verified}
            )
            SELECT v, v IN (
                SELECT {column} FROM interactions
                WHERE contact_id NOT IN (SELECT unnest($skip)) {verified}
                  AND {column} IN (SELECT v FROM mine)
            ) OR v IN (SELECT {KEY_COLUMNS[kind]} FROM _trash) AS shared
            FROM mine ORDER BY v
            """,
            {"id": contact_id, "skip": skip},
        ).fetchall()
        own[kind] = [v for v, is_shared in rows if not is_shared]
        shared[kind] = [v for v, is_shared in rows if is_shared]
    own["interaction"] = [
        r[0]
        for r in con.execute(
            "SELECT interaction_id FROM interactions WHERE contact_id = ? ORDER BY 1", [contact_id]
        ).fetchall()
    ]
    names = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT name FROM interactions WHERE contact_id = ? AND name IS NOT NULL "
            "UNION SELECT name FROM contacts WHERE contact_id = ? AND name IS NOT NULL",
            [contact_id, contact_id],
        ).fetchall()
    ]
    con.unregister("_trash")
    return ErasureSubject(own=own, shared=shared, names=sorted(names))


def erasure_rows(
    salt_hex: str,
    identifiers: dict[str, list[str]],
    decision_id: str,
    at: datetime,
    shared: dict[str, list[str]] | None = None,
) -> list[tuple[str, str, str, datetime]]:
    """Suppression rows (decision_id, kind, hash, added_at) for one erased person.

    `identifiers` are suppressed; `shared` ones (carried by other contacts too) are held under
    `shared_<kind>`: never suppressed, kept ambiguous by the auto-merge.
    """
    kinds = [(kind, values) for kind, values in identifiers.items()]
    kinds += [(SHARED_PREFIX + kind, values) for kind, values in (shared or {}).items()]
    return [
        (decision_id, kind, identifier_hash(salt_hex, kind, value), at)
        for kind, values in sorted(kinds)
        for value in sorted(set(values))
        if value
    ]


def held_keys(keys: pl.DataFrame, suppression: pl.DataFrame, salt_hex: str) -> pl.DataFrame:
    """(key_type, key_value) of the auto-merge keys an erasure held as shared.

    Args:
        keys: interactions with `dedup.identity.automerge.KEY_COLUMNS` (kind → column; the
            user id column holds verified ids only).
        suppression: `dedup.decisions.SUPPRESSION_SCHEMA` rows.
        salt_hex: from `salt`.
    """
    from dedup.identity.automerge import KEY_COLUMNS

    empty = pl.DataFrame(schema={"key_type": pl.String, "key_value": pl.String})
    held = suppression.filter(pl.col("identifier_kind").str.starts_with(SHARED_PREFIX))
    if held.height == 0 or keys.height == 0:
        return empty
    tokens = pl.concat(
        [
            keys.select(pl.lit(kind).alias("key_type"), pl.col(column).alias("key_value"))
            .drop_nulls()
            .unique()
            for kind, column in KEY_COLUMNS.items()
        ]
    )
    con = duckdb.connect()
    try:
        con.register("t", tokens.to_arrow())
        con.register("s", held.to_arrow())
        return con.execute(
            "SELECT DISTINCT t.key_type, t.key_value FROM t JOIN s "
            f"ON s.identifier_kind = '{SHARED_PREFIX}' || t.key_type "
            f"AND s.identifier_hash = sha256($salt || '{SHARED_PREFIX}' || t.key_type || ':' "
            "|| t.key_value) ORDER BY ALL",
            {"salt": salt_hex},
        ).pl()
    finally:
        con.close()


def erased_contact_ids(decisions: pl.DataFrame, redirects: pl.DataFrame) -> pl.Series:
    """Ids erased by decisions, and every id that redirected to one of them."""
    erased = decisions.filter(pl.col("kind") == ERASE).get_column("contact_id_l").drop_nulls()
    via = redirects.filter(pl.col("to_contact_id").is_in(erased.implode())).get_column(
        "from_contact_id"
    )
    return pl.concat([erased, via]).unique().sort()


ERASURES_SCHEMA: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "requested_at": pl.Datetime("us", "UTC"),
    "requested_by": pl.String(),
    "applied_at": pl.Datetime("us", "UTC"),
    "interactions_removed": pl.Int64(),
    "identifiers_suppressed": pl.Int64(),
}


def erasure_audit(
    decisions: pl.DataFrame,
    suppression: pl.DataFrame,
    removed_tonight: pl.DataFrame,
    previous: pl.DataFrame,
    now: datetime,
) -> pl.DataFrame:
    """One row per erasure request, without personal data: who asked, when, what it removed.

    The first run that applies a request records its counts; later runs carry them forward.
    """
    requests = decisions.filter(pl.col("kind") == ERASE).select(
        pl.col("decision_id").alias("request_id"),
        pl.col("decided_at").alias("requested_at"),
        pl.col("decided_by").alias("requested_by"),
    )
    # Held (shared) identifiers are not suppressed: they are not counted.
    identifiers = (
        suppression.filter(pl.col("identifier_kind").is_in(list(SUPPRESSED_COLUMNS)))
        .group_by(pl.col("decision_id").alias("request_id"))
        .agg(pl.len().cast(pl.Int64).alias("identifiers_suppressed"))
    )
    tonight = (
        requests.join(identifiers, on="request_id", how="left")
        .join(
            removed_tonight.select(
                pl.col("decision_id").alias("request_id"),
                pl.col("interactions").cast(pl.Int64).alias("interactions_removed"),
            ),
            on="request_id",
            how="left",
        )
        .with_columns(
            pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("applied_at"),
            pl.col("interactions_removed").fill_null(0),
            pl.col("identifiers_suppressed").fill_null(0),
        )
        .select(list(ERASURES_SCHEMA))
        .cast(ERASURES_SCHEMA)  # type: ignore[arg-type]
    )
    carried = previous.select(list(ERASURES_SCHEMA)).cast(ERASURES_SCHEMA)  # type: ignore[arg-type]
    return pl.concat(
        [carried, tonight.join(carried.select("request_id"), on="request_id", how="anti")]
    ).sort("requested_at", "request_id")


EMAIL_TOKEN = r"[a-z0-9._%+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)+"


def quarantine_without_erased(
    quarantine: pl.DataFrame, suppression: pl.DataFrame, salt_hex: str
) -> pl.DataFrame:
    """Quarantine rows minus those that mention an erased person.

    A quarantined record is raw text: it is matched by its interaction id and by every email
    address written anywhere in it (normalized like `email_norm`, then hashed).
    """
    from dedup.identity.normalize import email_norm

    if suppression.height == 0 or quarantine.height == 0:
        return quarantine
    indexed = quarantine.with_row_index("_row")
    tokens = pl.concat(
        [
            indexed.select(
                "_row",
                pl.lit("email").alias("kind"),
                pl.col("raw").str.to_lowercase().str.extract_all(EMAIL_TOKEN).alias("value"),
            )
            .explode("value")
            .with_columns(email_norm(pl.col("value")).alias("value")),
            indexed.select(
                "_row", pl.lit("interaction").alias("kind"), pl.col("interaction_id").alias("value")
            ),
        ]
    ).filter(pl.col("value").is_not_null())
    return indexed.join(_hits(tokens, suppression, salt_hex), on="_row", how="anti").drop("_row")


def _hits(tokens: pl.DataFrame, suppression: pl.DataFrame, salt_hex: str) -> pl.DataFrame:
    """`_row`s whose (kind, value) tokens hash into the suppression list."""
    con = duckdb.connect()
    try:
        con.register("t", tokens.to_arrow())
        con.register("s", suppression.to_arrow())
        return con.execute(
            "SELECT DISTINCT t._row FROM t JOIN s ON s.identifier_kind = t.kind "
            "AND s.identifier_hash = sha256($salt || t.kind || ':' || t.value)",
            {"salt": salt_hex},
        ).pl()
    finally:
        con.close()


def crm_records_without_erased(
    records: pl.DataFrame, suppression: pl.DataFrame, salt_hex: str, region: str
) -> pl.DataFrame:
    """CRM records minus those whose email or phone belongs to an erased person."""
    from dedup.identity.normalize import email_norm, phone_e164

    if suppression.height == 0 or records.height == 0:
        return records
    indexed = records.with_row_index("_row")
    phones = [
        indexed.select(
            "_row",
            pl.lit("phone").alias("kind"),
            phone_e164(indexed.get_column(column), region).alias("value"),
        )
        for column in ("phone", "mobile_phone")
        if column in indexed.columns
    ]
    tokens = pl.concat(
        [
            indexed.select(
                "_row", pl.lit("email").alias("kind"), email_norm(pl.col("email")).alias("value")
            ),
            *phones,
        ]
    ).filter(pl.col("value").is_not_null())
    return indexed.join(_hits(tokens, suppression, salt_hex), on="_row", how="anti").drop("_row")
