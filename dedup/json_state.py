"""Small durable JSON state files (saved views, API keys): atomic writes under a lock file."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def read_json(path: Path, key: str) -> dict[str, dict]:
    """`data[key]` of a state file; {} when the file does not exist. ValueError when corrupt."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); fix or remove it") from None
    return data.get(key, {})


def write_json(path: Path, key: str, entries: dict[str, dict], mode: int = 0o640) -> None:
    """Replace the file whole: temp file, fsync, rename (readers see old or new, never half).

    `mode`: the file's permissions, whatever the umask; never world-readable (docs/privacy.md).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(
        os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w", encoding="utf-8"
    ) as fh:
        os.fchmod(fh.fileno(), mode)  # O_CREAT's mode is cut by the umask, and ignored if it exists
        json.dump({"version": 1, key: entries}, fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Serialize read-modify-write cycles on `path` across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield
