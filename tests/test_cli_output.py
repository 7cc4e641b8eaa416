"""What the `contacts` command prints: one line and an exit code on every failure, JSON that
parses with `--json`, and its version (issue 23, item 10).

Failures run the installed entry point's code in a subprocess (`python -m contacts.cli`), as a
person or a cron job would see them; stderr must be exactly one line, no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from dedup import run_lock
from tests.conftest import query, rec, write_jsonl

ROOT = Path(__file__).resolve().parents[1]


def contacts(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONTACTS_")}
    return subprocess.run(
        [sys.executable, "-m", "contacts.cli", *args],
        cwd=ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


def assert_one_line_failure(result: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and text in lines[0], lines[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_version() -> None:
    result = contacts("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"contacts {metadata.version('askvault-contacts')}"


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        # usage errors: click's message only, exit 2
        (("no-such-command",), 2, "No such command 'no-such-command'"),
        (("run",), 2, "Missing option '--exports'"),
        (("proposals", "list", "--limit", "many"), 2, "Invalid value for '--limit'"),
        # bad input: the command's own line, exit 1
        (("run", "--exports", "/nonexistent/exports"), 1, "exports folder not found"),
        (("proposals", "list", "--db", "/nonexistent/c.duckdb"), 1, "no published file"),
        (("search", "acme", "--db", "/nonexistent/c.duckdb", "--json"), 1, "no published file"),
        (("sql", "SELECT 1", "--db", "/nonexistent/c.duckdb"), 1, "no published file"),
    ],
)
def test_failures_are_one_line(args: tuple[str, ...], code: int, text: str) -> None:
    assert_one_line_failure(contacts(*args), code, text)


def test_a_run_beside_another_run_is_one_line(exports: Path, db: Path) -> None:
    write_jsonl(exports, "2026-11-01", "a.jsonl", [rec("x1", email="ann@example.com")])
    with run_lock.run_lock(db):  # another run holds the lock (this process, as a run would)
        result = contacts("run", "--exports", str(exports), "--db", str(db))
    assert_one_line_failure(result, 1, f"another run is already building {db}")
    assert not db.exists()


def test_a_failed_check_is_one_line_and_publishes_nothing(exports: Path, db: Path) -> None:
    """Sessions chained by shared emails (each within its own hub caps) make one cluster with
    more identifiers than a person has: the blocking check stops the publish. The run's Dagster
    events (with their stack traces) stay off the terminal."""
    rows = [
        rec(f"s{i}-{e}", session_id=f"sess{i}", email=f"p{e}@example.com")
        for i in range(16)
        for e in (i, i + 1)
    ]
    write_jsonl(exports, "2026-11-01", "a.jsonl", rows)
    result = contacts("run", "--exports", str(exports), "--db", str(db))
    assert_one_line_failure(result, 1, "check 'no_contact_over_hub_limit' failed")
    assert not db.exists()


def test_json_output_parses(exports: Path, db: Path, run) -> None:
    write_jsonl(
        exports,
        "2026-11-01",
        "a.jsonl",
        [
            rec("a1", email="ann@acme.com", name="Ann Lee", company="Acme"),
            rec("b1", email="bo@example.com", name="Bo", when="2026-11-01T12:00:00Z"),
        ],
    )
    run()
    found = json.loads(contacts("search", "acme", "--db", str(db), "--json").stdout)
    assert [c["email"] for c in found] == ["ann@acme.com"]
    assert found[0]["channels"] == ["widget"] and found[0]["first_seen"].startswith("2026-11-01")

    rows = json.loads(
        contacts(
            "sql", "SELECT email, last_seen FROM contacts ORDER BY email", "--db", str(db), "--json"
        ).stdout
    )
    assert rows == [
        {"email": "ann@acme.com", "last_seen": "2026-11-01T10:00:00+00:00"},
        {"email": "bo@example.com", "last_seen": "2026-11-01T12:00:00+00:00"},
    ]

    proposals = json.loads(
        contacts("proposals", "list", "--status", "all", "--db", str(db), "--json").stdout
    )
    expected = query(db, "SELECT proposal_id FROM merge_proposals")["proposal_id"].to_list()
    assert sorted(p["proposal_id"] for p in proposals) == sorted(expected)

    bad = contacts("sql", "SELECT nope FROM contacts", "--db", str(db), "--json")
    assert_one_line_failure(bad, 1, "nope")
    assert bad.stdout == ""
