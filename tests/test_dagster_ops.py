"""The nightly job as Dagster's own machinery runs it, beside the CLI (issue 23).

Runs are launched as the scheduler's daemon launches them: `dagster job launch` against a real
instance in a temporary `DAGSTER_HOME` whose run coordinator hands the run straight to the
default run launcher, so the run executes in its own process, a child of the code server (which
`dagster job launch` starts and which waits for its runs). The tests then read the run's status, events and tags from that instance, and the processes from
/proc.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest

from assets.resources import VERIFICATION_TAG, ContactsSettings
from dedup import run_lock
from tests.conftest import query, rec, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NIGHTLY = "nightly_contacts"
# After its run succeeded, the run's process and every worker it started must be gone within
# this (the run process tears its resources down, then exits; an idle GX worker kept it ~10 min).
EXIT_BOUND_SECONDS = 30
BUSY = "another run is already building"


def _dagster_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    # What the daemon does with a queued run: hand it to the instance's run launcher (the
    # default one). Without the daemon running, the default run coordinator does it at once.
    (home / "dagster.yaml").write_text(
        "run_coordinator:\n"
        "  module: dagster._core.run_coordinator\n"
        "  class: DefaultRunCoordinator\n"
        "telemetry:\n"
        "  enabled: false\n"
    )
    return home


def _env(home: Path, exports: Path, db: Path, secret: bool) -> dict[str, str]:
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    env.update(CONTACTS_EXPORTS_DIR=str(exports), CONTACTS_DB=str(db))
    if not secret:
        env.pop("ASKVAULT_IDENTITY_SECRET", None)
    return env


def _launch(env: dict[str, str]) -> tuple[str, subprocess.Popen[bytes]]:
    """Launch the nightly job. `dagster job launch` starts a code server, which starts the run's
    process and waits for it; returns the run id and the launching process."""
    run_id = str(uuid.uuid4())
    launch = subprocess.Popen(
        [str(BIN / "dagster"), "job", "launch", "-m", "pipelines.definitions", "-a", "defs"]
        + ["-j", NIGHTLY, "--run-id", run_id],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return run_id, launch


def _run_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The run's own process, as its engine event names it."""
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        found = re.search(r"Executing steps in process \(pid: (\d+)\)", entry.user_message or "")
        if found:
            return int(found.group(1))
    return None


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _descendants(pid: int) -> set[int]:
    tree, found, todo = _children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _await_run(instance: dg.DagsterInstance, run_id: str, seen: set[int], until) -> dg.DagsterRun:
    """Poll until `until(run)`, recording the run's process and every process under it."""
    deadline = time.monotonic() + 900
    while True:
        if (pid := _run_pid(instance, run_id)) is not None and _alive(pid):
            seen |= {pid} | _descendants(pid)
        run = instance.get_run_by_id(run_id)
        if run is not None and until(run):
            return run
        assert time.monotonic() < deadline, f"run {run_id} never got there: {run and run.status}"
        time.sleep(0.2)


def _finished(run: dg.DagsterRun) -> bool:
    return run.is_finished


def _stop(pids: set[int]) -> None:
    for pid in pids:
        if _alive(pid):
            os.kill(pid, 9)


def _cli_run(exports: Path, db: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cli_env = {k: v for k, v in env.items() if k != "DAGSTER_HOME"}
    return subprocess.run(
        [sys.executable, "-m", "contacts.cli", "run", "--exports", str(exports), "--db", str(db)],
        cwd=ROOT,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_nightly_job_from_the_default_run_launcher_ingests_the_new_day_exits_and_shares_the_lock(
    tmp_path: Path, exports: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new export day, no identity secret, the nightly job launched as the daemon would:
    - the day is in the published file (the job ingests before it builds);
    - a `contacts run` started meanwhile refuses with one line and changes nothing;
    - the run's tags and the op's metadata say identities were not verified;
    - the run's process and every worker under it exit within the bound after success;
    - the next `contacts run` (a second new day) publishes both days and says on stdout that
      nothing was verified."""
    home = _dagster_home(tmp_path)
    env = _env(home, exports, db, secret=False)
    write_jsonl(exports, "2026-11-01", "a.jsonl", [rec("d1-a", email="ann@example.com")])
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = dg.DagsterInstance.get()

    run_id, launch = _launch(env)
    seen: set[int] = set()
    try:
        # The run's one op has started: its settings resource holds the run lock by then.
        def op_started(run: dg.DagsterRun) -> bool:
            starts = instance.get_records_for_run(
                run_id, of_type=dg.DagsterEventType.STEP_START
            ).records
            return bool(starts) or run.is_finished

        _await_run(instance, run_id, seen, op_started)
        refused = _cli_run(exports, db, env)
        run = _await_run(instance, run_id, seen, _finished)
        succeeded_at = time.monotonic()
        assert run.status == dg.DagsterRunStatus.SUCCESS, _failure(instance, run_id)

        # The run's process and every process it started (the GX worker, the resource tracker).
        assert seen, "the run's process was never seen"
        while any(_alive(p) for p in seen):
            left = sorted(p for p in seen if _alive(p))
            assert time.monotonic() - succeeded_at < EXIT_BOUND_SECONDS, (
                f"still running {EXIT_BOUND_SECONDS} s after success: {left}"
            )
            time.sleep(0.2)
        # Then the code server, which waited for its run, and the launch command end too.
        assert launch.wait(timeout=120) == 0
    finally:
        _stop(seen)
        if launch.poll() is None:
            launch.kill()

    assert refused.returncode == 1
    assert refused.stderr.strip().count("\n") == 0 and BUSY in refused.stderr, refused.stderr
    assert query(db, "SELECT interaction_id FROM interactions")["interaction_id"].to_list() == [
        "d1-a"
    ]
    assert run.tags[VERIFICATION_TAG] == "no secret: nothing verified"
    outputs = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_OUTPUT)
    metadata = outputs.records[0].event_log_entry.dagster_event.step_output_data.metadata
    assert "ASKVAULT_IDENTITY_SECRET is not set" in metadata["identity_verification"].value

    write_jsonl(exports, "2026-11-02", "b.jsonl", [rec("d2-a", email="bo@example.com")])
    after = _cli_run(exports, db, env)
    assert after.returncode == 0, after.stderr
    assert "warning: ASKVAULT_IDENTITY_SECRET is not set" in after.stdout
    ids = query(db, "SELECT interaction_id FROM interactions ORDER BY 1")["interaction_id"]
    assert ids.to_list() == ["d1-a", "d2-a"]


def _failure(instance: dg.DagsterInstance, run_id: str) -> str:
    """Every error message (and its causes) the run's events carry."""
    lines = []
    for entry in instance.all_logs(run_id):
        error = getattr(
            entry.dagster_event and entry.dagster_event.event_specific_data, "error", None
        )
        while error is not None:
            lines.append(error.message)
            error = error.cause
    return "\n".join(lines)


def test_a_dagster_run_beside_a_running_cli_run_refuses_and_leaves_the_file_alone(
    tmp_path: Path, exports: Path, db: Path, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other order: a run already holds the lock (as `contacts run` does, from this test's
    process); the launched nightly job fails at once with the CLI's line, publishes nothing and
    leaves no process behind."""
    write_jsonl(exports, "2026-11-01", "a.jsonl", [rec("d1-a", email="ann@example.com")])
    run()
    published = db.read_bytes()
    write_jsonl(exports, "2026-11-02", "b.jsonl", [rec("d2-a", email="bo@example.com")])
    home = _dagster_home(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = dg.DagsterInstance.get()
    seen: set[int] = set()
    with run_lock.run_lock(db):
        run_id, launch = _launch(_env(home, exports, db, secret=True))
        try:
            finished = _await_run(instance, run_id, seen, _finished)
            deadline = time.monotonic() + EXIT_BOUND_SECONDS
            while any(_alive(p) for p in seen):
                assert time.monotonic() < deadline, "the refused run's process did not exit"
                time.sleep(0.2)
            launch.wait(timeout=120)
        finally:
            _stop(seen)
            if launch.poll() is None:
                launch.kill()
    assert finished.status == dg.DagsterRunStatus.FAILURE
    assert BUSY in _failure(instance, run_id)
    assert db.read_bytes() == published


def test_a_launchpad_override_of_one_setting_keeps_the_others_from_the_environment(
    tmp_path: Path, exports: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run config replaces the settings resource's whole config: a run that sets only the region
    must still find the published file in CONTACTS_DB, and one without it must say so."""
    from pipelines.definitions import defs

    db = tmp_path / "c.duckdb"
    monkeypatch.setenv("CONTACTS_EXPORTS_DIR", str(exports))
    monkeypatch.setenv("CONTACTS_DB", str(db))
    override = {"resources": {"settings": {"config": {"default_region": "GB"}}}}
    job = defs.resolve_job_def("purge_state")
    assert job.execute_in_process(run_config=override).success
    assert (tmp_path / "c.duckdb.state" / "run.lock").exists()  # the run took the lock there

    monkeypatch.delenv("CONTACTS_DB")
    result = job.execute_in_process(run_config=override, raise_on_error=False)
    assert not result.success
    from pipelines.nightly import failure_line

    assert "set CONTACTS_DB" in failure_line(result)


def test_identity_verification_can_be_declared_off(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ContactsSettings(exports_dir="e", db_path="d")
    assert settings.verification_warning() is None  # the suite's secret is set
    monkeypatch.delenv("ASKVAULT_IDENTITY_SECRET")
    assert "ASKVAULT_IDENTITY_SECRET is not set" in (settings.verification_warning() or "")
    monkeypatch.setenv("CONTACTS_IDENTITY_VERIFICATION", "off")
    assert settings.verification_warning() is None
    assert settings.verification_state().startswith("off")


def test_partitions_start_at_the_first_export_day(tmp_path: Path, exports: Path) -> None:
    write_jsonl(exports, "2026-10-30", "a.jsonl", [rec("x")], source="sms")
    write_jsonl(exports, "2026-11-01", "a.jsonl", [rec("y")])
    code = "from assets.partitions import export_days as p; print(p.get_first_partition_key())"
    env = {k: v for k, v in os.environ.items() if k != "CONTACTS_PARTITIONS_START"}
    found = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "CONTACTS_EXPORTS_DIR": str(exports)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert found.stdout.strip() == "2026-10-30", found.stderr
    given = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            **env,
            "CONTACTS_EXPORTS_DIR": str(exports),
            "CONTACTS_PARTITIONS_START": "2026-01-01",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert given.stdout.strip() == "2026-01-01", given.stderr


def _hold_and_report(db: str, conn) -> None:
    run_lock.acquire(Path(db))
    conn.send("held")
    conn.recv()


def test_the_run_lock_is_reentrant_here_and_exclusive_across_processes(tmp_path: Path) -> None:
    import multiprocessing

    db = tmp_path / "c.duckdb"
    with run_lock.run_lock(db), run_lock.run_lock(db):  # the nightly job, then its runs
        assert run_lock.held(db)
    assert not run_lock.held(db)
    ours, theirs = multiprocessing.Pipe()
    other = multiprocessing.get_context("spawn").Process(
        target=_hold_and_report, args=(str(db), theirs)
    )
    other.start()
    try:
        assert ours.recv() == "held"
        with pytest.raises(run_lock.RunLockBusy, match=BUSY):
            run_lock.acquire(db)
    finally:
        ours.send("done")
        other.join(30)
    run_lock.acquire(db)  # free again once the other process has gone
    run_lock.release(db)
