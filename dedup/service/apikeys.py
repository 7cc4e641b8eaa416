"""API keys for the Contact API: `ak_...` bearer tokens, stored only as SHA-256 hashes.

Kept in `<db>.state/api_keys.json` (durable, outside the snapshot). A key is shown once, when it
is created; the file holds its hash, a short public id for listing and revoking, its scope
(`read` or `write`; write includes read), and when it was created or revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dedup.json_state import locked, read_json, write_json
from dedup.service import read_cache

SCOPES = ("read", "write")
# Only the admin who runs `contacts serve` reads the key hashes (docs/privacy.md).
KEYS_FILE_MODE = 0o600
PREFIX = "ak_"


class ApiKeyError(ValueError):
    """A key operation that cannot be done; one line a person can act on."""


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    scope: str
    name: str
    created_at: str
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _entries(path: Path) -> dict[str, dict]:
    try:
        return read_json(path, "keys")
    except ValueError as exc:
        raise ApiKeyError(str(exc)) from None


def create_key(path: Path, scope: str, name: str = "") -> tuple[str, ApiKey]:
    """A new key (returned once, in clear) and its stored record."""
    if scope not in SCOPES:
        raise ApiKeyError(f"scope must be read or write, not {scope!r}")
    key = PREFIX + secrets.token_urlsafe(32)
    key_id = "key_" + _hash(key)[:10]
    record = {
        "hash": _hash(key),
        "scope": scope,
        "name": name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "revoked_at": None,
    }
    with locked(path):
        entries = _entries(path)
        entries[key_id] = record
        write_json(path, "keys", entries, mode=KEYS_FILE_MODE)
    return key, _record(key_id, record)


def _record(key_id: str, entry: dict) -> ApiKey:
    return ApiKey(
        key_id, entry["scope"], entry.get("name", ""), entry["created_at"], entry["revoked_at"]
    )


def list_keys(path: Path) -> list[ApiKey]:
    return [_record(k, e) for k, e in sorted(_entries(path).items())]


def revoke_key(path: Path, key_id: str) -> ApiKey:
    with locked(path):
        entries = _entries(path)
        if key_id not in entries:
            raise ApiKeyError(f"no API key {key_id}")
        if entries[key_id]["revoked_at"] is None:
            entries[key_id]["revoked_at"] = datetime.now(UTC).isoformat(timespec="seconds")
            write_json(path, "keys", entries, mode=KEYS_FILE_MODE)
        return _record(key_id, entries[key_id])


def _active(path: Path) -> tuple[tuple[str, ApiKey], ...]:
    """(hash, key) of every active key; the file is re-read only when it changed (a create or a
    revoke replaces it with a rename, so its version changes: `read_cache`)."""

    def load() -> tuple[tuple[str, ApiKey], ...]:
        return tuple(
            (entry["hash"], _record(key_id, entry))
            for key_id, entry in _entries(path).items()
            if entry["revoked_at"] is None
        )

    return read_cache.CACHE.get(("api_keys", path), [path], load)


def authenticate(path: Path, key: str) -> ApiKey | None:
    """The active key matching `key`, or None. Compares hashes in constant time."""
    if not key.startswith(PREFIX):
        return None
    given = _hash(key)
    found = None
    for stored, record in _active(path):
        if hmac.compare_digest(stored, given):
            found = record
    return found
