"""The run lock: one writer of a published file at a time, whoever starts the run.

DuckDB lets one process write a file, and a night writes the staging folder, the work files and
the published file. `contacts run`, a Dagster run launched from the UI or a schedule, and the
retention purge all take this lock (`<db>.state/run.lock`, an `flock`) before they write; a
second run refuses with `RunLockBusy`'s one line instead of failing later on a DuckDB lock error
half-way through its night.

The lock is re-entrant within one process: the nightly job holds it for the whole night and the
Dagster runs it executes in process (ingest, build) take it again on the way in. An `flock` on a
second open file of the same path would conflict with the first one even in the same process,
so the process keeps one open file per lock path and counts its holders.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from dedup.layout import StateLayout


class RunLockBusy(RuntimeError):
    """Another process holds the run lock; the message is the CLI's one line."""


_guard = threading.Lock()
_held: dict[Path, tuple[IO[str], int]] = {}


def lock_path(db_path: Path) -> Path:
    return StateLayout(db_path).state_dir / "run.lock"


def acquire(db_path: Path, wait: bool = False) -> None:
    """Take the run lock of `db_path` (again, if this process holds it). Without `wait`, a lock
    held by another process raises `RunLockBusy` at once; with it, this blocks until it is free."""
    path = lock_path(db_path).resolve()
    with _guard:
        if path in _held:
            fh, count = _held[path]
            _held[path] = (fh, count + 1)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a+")  # noqa: SIM115 - held until the last release
        try:
            fcntl.flock(fh, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise RunLockBusy(
                f"another run is already building {db_path}; try again when it finishes"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        _held[path] = (fh, 1)


def release(db_path: Path) -> None:
    """Give one hold back; the last one unlocks the file."""
    path = lock_path(db_path).resolve()
    with _guard:
        if path not in _held:
            return
        fh, count = _held[path]
        if count > 1:
            _held[path] = (fh, count - 1)
            return
        del _held[path]
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def held(db_path: Path) -> bool:
    """Whether this process holds the run lock of `db_path`."""
    with _guard:
        return lock_path(db_path).resolve() in _held


@contextmanager
def run_lock(db_path: Path, wait: bool = False) -> Iterator[None]:
    """Hold the run lock of `db_path` while the block runs (see `acquire`)."""
    acquire(db_path, wait)
    try:
        yield
    finally:
        release(db_path)
