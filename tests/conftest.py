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


# The modules that take longest (measured with --durations under `bin/dev test`), longest first.
# pytest-xdist (`--dist loadfile`) hands each worker a whole module at a time, in collection
# order (`--no-loadscope-reorder` in pyproject); its default order, by number of tests, put
# these few-test, long modules (bootstrap, Spark, Dagster's launcher, the kill test) last, so
# one core worked alone on them at the end. Started first, the many short modules fill in
# behind them. A module not listed runs after these, in file order.
LONGEST_FIRST = (
    "test_bootstrap.py",
    "test_spark.py",
    "test_spark_engine.py",
    "test_spark_job.py",
    "test_spark_ingest.py",
    "test_spark_matching.py",
    "test_dagster_ops.py",
    "test_api_scale.py",
    "test_pipeline.py",
    "test_deletion.py",
    "test_bulk.py",
    "test_erasure_scope.py",
    "test_privacy.py",
    "test_admin_decisions.py",
    "test_kill.py",
    "test_native_pipeline.py",
    "test_review_page.py",
    "test_incremental.py",
    "test_incremental_night.py",
    "test_quality.py",
    "test_safety_engine.py",
    "test_docs.py",
    "test_review_groups.py",
    "test_reports_served.py",
    "test_api_fuzz_roundtrip.py",
    "test_api.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    # sort is stable: tests keep their order within a module, unlisted modules their file order.
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


# Modules that share a process-wide resource run on one worker, as one unit of `--dist
# loadfile`: the Spark tests share one local Spark session (tests/spark_session.py; its JVM
# costs ~20 s of start-up), which two workers would each start.
SAME_WORKER = {
    "tests/test_spark_engine.py": "tests/test_spark.py",
    "tests/test_spark_job.py": "tests/test_spark.py",
    "tests/test_spark_ingest.py": "tests/test_spark.py",
    "tests/test_spark_matching.py": "tests/test_spark.py",
}


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class Scheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return SAME_WORKER.get(scope, scope)

    return Scheduling(config, log)


@pytest.fixture(autouse=True)
def _identity_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASKVAULT_IDENTITY_SECRET", SECRET)
    monkeypatch.delenv("ASKVAULT_IDENTITY_SECRET_PREVIOUS", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)


# What each `night_once` run returned, by its root: a test that checks the night's own summary
# reads it here instead of running the night again.
_NIGHT_SUMMARIES: dict[Path, RunSummary] = {}


def night_once(
    root: Path, write_exports: Callable[[Path], None], dagster_home: bool = False, **overrides
) -> Path:
    """Write `root/exports` with `write_exports` and run the nightly job into `root/out` once,
    for a module fixture; `copy_night` gives each test its own copy, `night_summary` that run's
    summary. Module fixtures are set up before the per-test environment (`_identity_secret`), so
    it is set here for the run. With `dagster_home` the run is recorded in a Dagster instance
    at `root/dagster_home` (a test reads its metadata with DAGSTER_HOME set there), else in an
    ephemeral one, as `run` does."""
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
        if dagster_home:
            (root / "dagster_home").mkdir()
            env.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        _NIGHT_SUMMARIES[root] = run_pipeline(settings)
    return root


def night_summary(root: Path) -> RunSummary:
    """The summary of the run `night_once(root, ...)` made."""
    return _NIGHT_SUMMARIES[root]


def _generated_night(root: Path) -> None:
    generate_exports(root / "exports", GeneratorConfig(persons=300, days=2, seed=11, secret=SECRET))
    (root / "dagster").mkdir()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ASKVAULT_IDENTITY_SECRET", SECRET)
        env.delenv("ASKVAULT_IDENTITY_SECRET_PREVIOUS", raising=False)
        env.setenv("DAGSTER_HOME", str(root / "dagster"))
        env.delenv("CONTACTS_REPORTS_URL", raising=False)
        run_pipeline(
            ContactsSettings(
                exports_dir=str(root / "exports"), db_path=str(root / "out" / "contacts.duckdb")
            )
        )


@pytest.fixture(scope="session")
def generated_night() -> Path:
    """One night on generated exports (300 people, 2 days, seed 11), run once for the whole
    session (`made_once`). READ ONLY: a test copies what it changes (`copy_night`).
    `root/exports`, `root/out/contacts.duckdb`, and the Dagster instance the night was recorded
    in at `root/dagster` (DAGSTER_HOME), with no CONTACTS_REPORTS_URL set."""
    return made_once("generated-night", _generated_night)


# The hand-made records of the review world. tests/test_review_groups.py: one person, three
# contacts no exact key joins: a work address and a phone; the address typed with two letters
# swapped; an SMS from the phone one digit off. The typo and the digit each tie one contact to
# the first (a path, or a triangle should name and company be enough for the third pair): one
# group of three, whatever the model makes of name and company alone.
# tests/test_review_page.py: a visitor who typed a script as their name, and near-twins.
REVIEW_GROUP = ("g1", "g2", "g3")
SCRIPT_NAME = '<script>alert("pwned")</script>'


def _review_world(root: Path) -> None:
    exports = root / "exports"
    generate_exports(exports, GeneratorConfig(persons=300, days=2, seed=11, secret=SECRET))
    person = {"name": "Oluwaseun Abernathy", "company": "Kowalczyk Labs"}
    write_jsonl(
        exports,
        "2026-11-02",
        "zz-group.jsonl",
        [
            rec(
                "g1",
                "2026-11-01T09:00:00Z",
                channel="email",
                email="seun.abernathy@kowalczyk-labs.test",
                phone="+1 617 555 0199",
                **person,
            ),
            rec("g2", "2026-11-02T09:00:00Z", email="seun.abernahty@kowalczyk-labs.test", **person),
            rec("g3", "2026-11-02T11:00:00Z", channel="sms", phone="+1 617 555 0198", **person),
        ],
    )
    write_jsonl(
        exports,
        "2026-11-02",
        "zz-handmade.jsonl",
        [
            rec("x1", "2026-11-02T09:00:00Z", name=SCRIPT_NAME, email="xss@attacker.test"),
            rec(
                "hm1",
                "2026-11-02T09:00:00Z",
                channel="email",
                name="Priyanka Ramaswamy",
                email="priyanka@ramaswamy-consulting.test",
                phone="+1 415 555 0134",
                company="Ramaswamy Consulting",
            ),
            rec(
                "hm2",
                "2026-11-02T10:00:00Z",
                name="Priyanka Ramaswamy",
                email="priyanka.ramaswamy77@gmail.com",
                phone="(415) 555-0134",
            ),
        ],
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ASKVAULT_IDENTITY_SECRET", SECRET)
        env.delenv("ASKVAULT_IDENTITY_SECRET_PREVIOUS", raising=False)
        env.delenv("DAGSTER_HOME", raising=False)
        run_pipeline(
            ContactsSettings(
                exports_dir=str(exports), db_path=str(root / "out" / "contacts.duckdb")
            )
        )


@pytest.fixture(scope="session")
def review_world() -> Path:
    """The published file both review modules read (tests/test_review_groups.py,
    tests/test_review_page.py): generated people (300, 2 days, seed 11) plus each module's
    hand-made records, one night with matching, run once for the whole session (`made_once`;
    it was one such night per module). READ ONLY: a test copies the published file and state
    before it decides anything. `root/exports`, `root/out/contacts.duckdb`."""
    return made_once("review-world", _review_world)


def copy_night(root: Path, exports: Path, db: Path) -> None:
    """A test's `exports` and `db` as the night of `night_once(root, ...)` left them (copy2 keeps
    the export files' times, so the next run finds no changed export day, as after a run of its
    own)."""
    shutil.copytree(root / "exports", exports, dirs_exist_ok=True)
    shutil.copytree(root / "out", db.parent)


# A folder every test process of this session shares (xdist workers' temporary folders are
# under it), for what is made once per session: set by `_shared_folder` before any other fixture.
_SHARED: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def _shared_folder(tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.getbasetemp()
    _SHARED[:] = [base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base]


def made_once(name: str, make: Callable[[Path], None]) -> Path:
    """`make(folder)` once for the whole session, in whichever test process asks first; the
    others wait for it (a file lock) and get the same folder, which they must only read."""
    from filelock import FileLock

    assert _SHARED, "made_once is for fixtures (the session's shared folder is set by then)"
    shared = _SHARED[0]
    folder = shared / name
    with FileLock(str(shared / f"{name}.lock")):
        if not (folder / ".made").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(folder)
            (folder / ".made").touch()
    return folder


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
    matching), then `contact_records` over the published contacts. Made once per session for
    each (persons, seed) (`made_once`, kept as Arrow IPC, which keeps every dtype); `root` is
    where it is made when this process is the first to ask."""

    def make(folder: Path) -> None:
        _generated_records(root, persons, seed).write_ipc(folder / "records.arrow")

    folder = made_once(f"generated-records-{persons}-{seed}", make)
    return pl.read_ipc(folder / "records.arrow")


def _generated_records(root: Path, persons: int, seed: int) -> pl.DataFrame:
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
