"""Review-page admins: a name and a password or generated token, stored only as a scrypt hash.

Kept in `<db>.state/admins.json` (durable, outside the snapshot, mode 0600). `contacts admin add
NAME` creates one; the review page signs an admin in with `verify`. scrypt (Python's hashlib, no
extra dependency) is a memory-hard KDF: a stolen file costs an attacker 32 MiB and tens of
milliseconds per guess. Its parameters are stored per admin, so they can be raised later without
invalidating existing credentials.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dedup.json_state import locked, read_json, write_json
from dedup.layout import StateLayout

# OWASP's scrypt floor is N=2^17 with r=8, p=1 (128 MiB); 2^15 (32 MiB, ~60 ms here) keeps a
# sign-in cheap on a 2-core server. Online guessing is throttled by the page's sign-in limit;
# these parameters only matter for a stolen file.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
MIN_PASSWORD_CHARS = 12
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
TOKEN_PREFIX = "adm_"


class AdminError(ValueError):
    """An admin operation that cannot be done; one line a person can act on."""


@dataclass(frozen=True)
class Admin:
    name: str
    created_at: str


def admins_path(db: Path) -> Path:
    return StateLayout(db).state_dir / "admins.json"


def _kdf(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        secret.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=256 * 1024 * 1024,
        dklen=32,
    )


def _entries(path: Path) -> dict[str, dict]:
    try:
        return read_json(path, "admins")
    except ValueError as exc:
        raise AdminError(str(exc)) from None


def _write(path: Path, entries: dict[str, dict]) -> None:
    # Hashes only, yet nobody but the admin who runs `contacts serve` needs to read them.
    write_json(path, "admins", entries, mode=0o600)


def add_admin(path: Path, name: str, password: str | None = None) -> str | None:
    """Create admin `name` with `password`, or with a generated token that is returned once."""
    if not NAME.match(name):
        raise AdminError(
            f"admin name {name!r}: 1 to 64 letters, digits, '.', '_', '@' or '-' (no spaces)"
        )
    token = None
    if password is None:
        token = password = TOKEN_PREFIX + secrets.token_urlsafe(24)
    elif len(password) < MIN_PASSWORD_CHARS:
        raise AdminError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    salt = secrets.token_bytes(16)
    record = {
        "kdf": "scrypt",
        "n": SCRYPT_N,
        "r": SCRYPT_R,
        "p": SCRYPT_P,
        "salt": base64.b64encode(salt).decode(),
        "hash": base64.b64encode(_kdf(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)).decode(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with locked(path):
        entries = _entries(path)
        if name in entries:
            raise AdminError(f"admin {name} exists; remove it first to set new credentials")
        entries[name] = record
        _write(path, entries)
    return token


def remove_admin(path: Path, name: str) -> None:
    """Remove an admin; its open sessions end at their next request."""
    with locked(path):
        entries = _entries(path)
        if name not in entries:
            raise AdminError(f"no admin {name}")
        del entries[name]
        _write(path, entries)


def list_admins(path: Path) -> list[Admin]:
    return [Admin(n, e["created_at"]) for n, e in sorted(_entries(path).items())]


def exists(path: Path, name: str) -> bool:
    return name in _entries(path)


def verify(path: Path, name: str, secret: str) -> bool:
    """Whether `secret` is admin `name`'s password or token (constant time for the hash)."""
    entry = _entries(path).get(name)
    if entry is None:
        # Spend the same work for an unknown name, so timing does not tell which names exist.
        _kdf(secret, b"\0" * 16, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        return False
    derived = _kdf(
        secret, base64.b64decode(entry["salt"]), int(entry["n"]), int(entry["r"]), int(entry["p"])
    )
    return hmac.compare_digest(derived, base64.b64decode(entry["hash"]))
