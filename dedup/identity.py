"""Identity verification: is a `user_id` vouched for by a valid `user_hash`?

SPEC: a `user_id` counts as verified only when `user_hash` is the hex HMAC-SHA256 of it under the
workspace identity secret. Checked once per distinct (user_id, user_hash) pair, in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

import polars as pl


def expected_hash(user_id: str, secret: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def is_valid_hash(user_id: str, user_hash: str, secrets: Sequence[str]) -> bool:
    """True when `user_hash` matches under any accepted secret (current first, then rotated-out)."""
    given = user_hash.strip().lower().encode()
    ok = False
    for secret in secrets:
        # No early exit: the time taken must not tell which secret, if any, matched.
        ok |= hmac.compare_digest(expected_hash(user_id, secret).encode(), given)
    return ok


def verified_user_ids(frame: pl.DataFrame, secrets: Sequence[str]) -> pl.DataFrame:
    """Add `identity_verified` (bool) and `verified_user_id` (user_id when verified, else null).

    Without a configured secret nothing is verified: an unverifiable claim must never merge.
    """
    pairs = (
        frame.select("user_id", "user_hash")
        .filter(pl.col("user_id").is_not_null() & pl.col("user_hash").is_not_null())
        .unique()
    )
    verdicts = [
        bool(secrets) and is_valid_hash(u, h, secrets)
        for u, h in zip(
            pairs.get_column("user_id").to_list(),
            pairs.get_column("user_hash").to_list(),
            strict=True,
        )
    ]
    lookup = pairs.with_columns(pl.Series("identity_verified", verdicts, dtype=pl.Boolean))
    out = frame.join(
        lookup, on=["user_id", "user_hash"], how="left", nulls_equal=False, maintain_order="left"
    )
    return out.with_columns(
        pl.col("identity_verified").fill_null(False),
    ).with_columns(
        pl.when(pl.col("identity_verified")).then(pl.col("user_id")).alias("verified_user_id")
    )
