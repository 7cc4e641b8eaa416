"""Shared fixtures: tiny exports folders written inline, and an in-process pipeline runner."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import duckdb
import polars as pl
import pytest

from assets.resources import ContactsSettings
from contacts.demo import GeneratorConfig, generate_exports
from contacts.runner import RunSummary, run_pipeline
from dedup.identity.verify import expected_hash
from dedup.matching.records import contact_records
from quality import gx_worker

SECRET = "test-identity-secret"
T = TypeVar("T")


@pytest.fixture(autouse=True)
def _identity_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASKVAULT_IDENTITY_SECRET", SECRET)
    monkeypatch.delenv("ASKVAULT_IDENTITY_SECRET_PREVIOUS", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)


def night_once(root: Path, write_exports: Callable[[Path], None], **overrides) -> Path:
    """Write `root/exports` with `write_exports` and run the nightly job into `root/out` once,
    for a module fixture; `copy_night` gives each test its own copy. Module fixtures are set up
    before the per-test environment (`_identity_secret`), so it is set here for the run."""
    write_exports(root / "exports")
    settings = ContactsSettings(
        exports_dir=str(root / "exports"),
        db_path=str(root / "out" / "contacts.duckdb"),
        **overrides,
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ASKVAULT_IDENTITY_SECRET", SECRET)
        env.delenv("ASKVAULT_IDENTITY_SECRET_PREVIOUS", raising=False)
        env.delenv("DAGSTER_HOME", raising=False)
        run_pipeline(settings)
    return root


def copy_night(root: Path, exports: Path, db: Path) -> None:
    """A test's `exports` and `db` as the night of `night_once(root, ...)` left them (copy2 keeps
    the export files' times, so the next run finds no changed export day, as after a run of its
    own)."""
    shutil.copytree(root / "exports", exports, dirs_exist_ok=True)
    shutil.copytree(root / "out", db.parent)


@pytest.fixture(scope="session", autouse=True)
def _warm_quality_worker():
    """One GX worker for the whole test process, warmed once (its import costs ~8 s of a core).

    A run stops only a worker it started itself (`gx_worker.warm()` returns False when one is
    running), so every in-process run of the suite checks in this warm worker instead of
    importing GX again: the same checks in the same kind of process, as `contacts demo` keeps
    it between nights. Runs in subprocesses (the CLI, Dagster's launcher) still start and stop
    their own; test_dagster_ops checks that they exit."""
    gx_worker.warm()
    yield
    gx_worker.stop()


def signed(user_id: str) -> str:
    return expected_hash(user_id, SECRET)


def write_jsonl(
    exports: Path, day: str, name: str, records: list[dict], source: str = "askvault"
) -> Path:
    folder = exports / source / day
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def rec(iid: str, when: str = "2026-11-01T10:00:00Z", channel: str = "widget", **fields) -> dict:
    """A canonical record with defaults for the required fields."""
    return {"interaction_id": iid, "channel": channel, "occurred_at": when, **fields}


@pytest.fixture
def exports(tmp_path: Path) -> Path:
    path = tmp_path / "exports"
    path.mkdir()
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "out" / "contacts.duckdb"


@pytest.fixture
def run(exports: Path, db: Path) -> Callable[..., RunSummary]:
    """Run the real pipeline (Dagster in process) on `exports` into `db`."""

    def _run(**overrides) -> RunSummary:
        settings = ContactsSettings(exports_dir=str(exports), db_path=str(db), **overrides)
        return run_pipeline(settings)

    return _run


def query(db: Path, sql: str) -> pl.DataFrame:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.sql(sql).pl()
    finally:
        con.close()


def contact_of(db: Path) -> dict[str, str]:
    return dict(query(db, "SELECT interaction_id, contact_id FROM interactions").iter_rows())


def during_a_run(exports: Path, db: Path, decide: Callable[[], T]) -> T:
    """Run `contacts run` in a second process; call `decide()` in this one while it builds.

    `decide` runs right after that run took its snapshot of the decision log (the work file's
    mtime changes), so the run cannot see it. Returns what `decide` returned, once the run
    has finished successfully.
    """
    import os
    import subprocess
    import sys
    import time

    from dedup.layout import StateLayout

    snapshot = StateLayout(db).work_file("decisions.parquet")
    seen = snapshot.stat().st_mtime_ns
    job = subprocess.Popen(
        [sys.executable, "-m", "contacts.cli", "run", "--exports", str(exports), "--db", str(db)],
        env={**os.environ, "ASKVAULT_IDENTITY_SECRET": SECRET},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    while snapshot.stat().st_mtime_ns == seen and job.poll() is None:
        assert time.monotonic() < deadline, "the run never snapshotted the decision log"
        time.sleep(0.02)
    result = decide()
    output, _ = job.communicate(timeout=300)
    assert job.returncode == 0, output
    return result


def generated_records(root: Path, persons: int = 300, seed: int = 9) -> pl.DataFrame:
    """Matcher records of a small generated workspace: the nightly job up to the contacts (no
    matching), then `contact_records` over the published contacts."""
    generate_exports(
        root / "exports", GeneratorConfig(persons=persons, days=2, seed=seed, secret=SECRET)
    )
    os.environ.setdefault("ASKVAULT_IDENTITY_SECRET", SECRET)
    db = root / "c.duckdb"
    run_pipeline(
        ContactsSettings(
            exports_dir=str(root / "exports"), db_path=str(db), min_contacts_to_match=10**9
        )
    )
    contacts = query(db, "SELECT * REPLACE (attributes::VARCHAR AS attributes) FROM contacts")
    return contact_records(contacts, query(db, "SELECT * FROM ambiguous_keys"))
