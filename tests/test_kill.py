"""A run killed mid-build (SIGKILL, no clean-up) leaves the published file intact and readable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import query, rec, write_jsonl


def test_killed_run_leaves_published_file_intact(exports: Path, db: Path, run) -> None:
    write_jsonl(exports, "2026-11-01", "a.jsonl", [rec("x1", email="a@x.test")])
    run()
    published = db.read_bytes()
    big = [
        rec(f"big{i}", email=f"p{i}@x.test", phone=None, name=f"Person {i}") for i in range(50_000)
    ]
    write_jsonl(exports, "2026-11-02", "a.jsonl", big)
    build = db.with_name(db.name + ".state") / "work" / "snapshot.building.duckdb"

    proc = subprocess.Popen(
        [sys.executable, "-m", "contacts.cli", "run", "--exports", str(exports), "--db", str(db)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )
    deadline = time.monotonic() + 120
    while not build.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed mid-build"
    time.sleep(0.2)
    workers = _children(proc.pid)
    assert workers, "the run has no worker process (the GX worker starts before ingest)"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # Its workers notice the parent is gone and exit instead of idling forever.
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)], "a killed run left worker processes"

    assert db.read_bytes() == published
    assert query(db, "SELECT count(*) FROM contacts").item() == 1
    # The next run cleans up after the killed one and publishes.
    assert run().interactions == 50_001


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    """Running, not a zombie (a zombie is reaped by init, not by this test)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"
