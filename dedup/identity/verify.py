"""Identity verification: is a `user_id` vouched for by a valid `user_hash`?

SPEC: a `user_id` counts as verified only when `user_hash` is the hex HMAC-SHA256 of it under the
workspace identity secret. Checked once per distinct (user_id, user_hash) pair, in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime

import polars as pl

from dedup.decisions import REVOKE_VERIFICATION


def expected_hash(user_id: str, secret: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def hash_matches(user_id: str, user_hash: str, secret: str) -> bool:
    """Constant-time comparison of `user_hash` with the HMAC of `user_id` under `secret`."""
    given = user_hash.strip().lower().encode()
    return hmac.compare_digest(expected_hash(user_id, secret).encode(), given)


def is_valid_hash(user_id: str, user_hash: str, secrets: Sequence[str]) -> bool:
    """True when `user_hash` matches under any accepted secret (current first, then rotated-out)."""
    ok = False
    for secret in secrets:
        # No early exit: the time taken must not tell which secret, if any, matched.
        ok |= hash_matches(user_id, user_hash, secret)
    return ok


# Why an identity claim did not verify (published per session in `identity_failures`).
FORGED = "forged"  # the hash matches no secret
STALE = "stale"  # it matches the rotated-out secret, but the record is after its grace period
REVOKED = "revoked"  # an admin revoked this user id's verification (`contacts verify revoke`)
NO_SECRET = "no secret configured"


def verified_user_ids(
    frame: pl.DataFrame,
    secrets: Sequence[str],
    previous_until: datetime | None = None,
) -> pl.DataFrame:
    """Add `identity_verified`, `verified_user_id` and `identity_failure` (reason or null).

    Args:
        frame: needs `user_id`, `user_hash`, `occurred_at`.
        secrets: the current secret first, then the rotated-out one (if any).
        previous_until: the rotated-out secret verifies records that occurred up to this time
            (the rotation's grace period); None accepts it without limit.

    Without a configured secret nothing is verified: an unverifiable claim must never merge.
    Each distinct (user_id, user_hash) pair is checked once.
    """
    pairs = (
        frame.select("user_id", "user_hash")
        .filter(pl.col("user_id").is_not_null() & pl.col("user_hash").is_not_null())
        .unique()
    )
    current = secrets[0] if secrets else None
    previous = secrets[1] if len(secrets) > 1 else None
    users = pairs.get_column("user_id").to_list()
    hashes = pairs.get_column("user_hash").to_list()
    lookup = pairs.with_columns(
        pl.Series(
            "_current",
            [
                bool(current) and hash_matches(u, h, current)
                for u, h in zip(users, hashes, strict=True)
            ],
            dtype=pl.Boolean,
        ),
        pl.Series(
            "_previous",
            [
                bool(previous) and hash_matches(u, h, previous)
                for u, h in zip(users, hashes, strict=True)
            ],
            dtype=pl.Boolean,
        ),
    )
    in_grace = (
        pl.lit(True)
        if previous_until is None
        else pl.col("occurred_at") <= pl.lit(previous_until).cast(pl.Datetime("us", "UTC"))
    )
    out = frame.join(
        lookup, on=["user_id", "user_hash"], how="left", nulls_equal=False, maintain_order="left"
    )
    claimed = pl.col("_current").is_not_null()
    verified = pl.col("_current").fill_null(False) | (
        pl.col("_previous").fill_null(False) & in_grace
    )
    return (
        out.with_columns(
            verified.alias("identity_verified"),
            pl.when(~claimed | verified)
            .then(None)
            .when(pl.lit(not secrets))
            .then(pl.lit(NO_SECRET))
            .when(pl.col("_previous"))
            .then(pl.lit(STALE))
            .otherwise(pl.lit(FORGED))
            .alias("identity_failure"),
        )
        .with_columns(
            pl.when(pl.col("identity_verified")).then(pl.col("user_id")).alias("verified_user_id")
        )
        .drop("_current", "_previous")
    )


def revoke(frame: pl.DataFrame, revocations: pl.DataFrame) -> pl.DataFrame:
    """Distrust verified claims of revoked user ids made up to the revocation.

    Args:
        frame: output of `verified_user_ids`.
        revocations: `user_id`, `revoked_at` (one row per revoked user id, the latest decision).
    """
    if revocations.height == 0:
        return frame
    hit = frame.join(revocations, on="user_id", how="left", maintain_order="left").with_columns(
        (
            pl.col("identity_verified")
            & pl.col("revoked_at").is_not_null()
            & (pl.col("occurred_at") <= pl.col("revoked_at"))
        ).alias("_revoked")
    )
    return hit.with_columns(
        (pl.col("identity_verified") & ~pl.col("_revoked")).alias("identity_verified"),
        pl.when(pl.col("_revoked"))
        .then(None)
        .otherwise(pl.col("verified_user_id"))
        .alias("verified_user_id"),
        pl.when(pl.col("_revoked"))
        .then(pl.lit(REVOKED))
        .otherwise(pl.col("identity_failure"))
        .alias("identity_failure"),
    ).drop("revoked_at", "_revoked")


def revocations(decisions: pl.DataFrame) -> pl.DataFrame:
    """`user_id`, `revoked_at` from `revoke_verification` decisions (the latest per user id)."""
    return (
        decisions.filter((pl.col("kind") == REVOKE_VERIFICATION) & pl.col("subject").is_not_null())
        .group_by("subject")
        .agg(pl.col("decided_at").max().alias("revoked_at"))
        .rename({"subject": "user_id"})
        .sort("user_id")
    )


FAILURES_SCHEMA: dict[str, pl.DataType] = {
    "session_id": pl.String(),
    "reason": pl.String(),
    "failures": pl.Int64(),
    "first_at": pl.Datetime("us", "UTC"),
    "last_at": pl.Datetime("us", "UTC"),
}


def identity_failures(frame: pl.DataFrame) -> pl.DataFrame:
    """Unverified identity claims per session and reason; no user ids, hashes or secrets."""
    return (
        frame.filter(pl.col("identity_failure").is_not_null())
        .group_by("session_id", pl.col("identity_failure").alias("reason"))
        .agg(
            pl.len().cast(pl.Int64).alias("failures"),
            pl.col("occurred_at").min().alias("first_at"),
            pl.col("occurred_at").max().alias("last_at"),
        )
        .cast(FAILURES_SCHEMA)  # type: ignore[arg-type]
        .sort("session_id", "reason", nulls_last=True)
    )
