"""In-memory DuckDB sessions for heavy steps: bounded memory, spilling to disk."""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from pathlib import Path

import duckdb


def session(temp_dir: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for one build step: bounded memory, spills to `temp_dir`."""
    temp_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"SET memory_limit = '{_memory_limit_gb()}GB'")
    con.execute(f"SET temp_directory = '{temp_dir}'")
    # Output order is set by ORDER BY where it matters; keeping input order costs memory.
    con.execute("SET preserve_insertion_order = false")
    return con


def private_session(purpose: str) -> duckdb.DuckDBPyConnection:
    """A `session` spilling to a new folder only this user can open (mkdtemp: 0700), removed with
    the connection. For steps outside a state folder (Splink's matching, its charts): their spill
    files hold contacts' names, emails and phones, so never a fixed folder every user can list and
    the next run (or another workspace) shares (docs/privacy.md, "Where personal data lives").
    """
    folder = Path(tempfile.mkdtemp(prefix=f"contacts-{purpose}-"))
    con = session(folder)
    weakref.finalize(con, shutil.rmtree, folder, True)
    return con


def sql_text(value: str) -> str:
    """`value` as a SQL string literal (quotes doubled), for names a workspace chose."""
    return "'" + value.replace("'", "''") + "'"


def _memory_limit_gb() -> int:
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return max(1, int(total * 0.4))
