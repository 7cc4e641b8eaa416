"""In-memory DuckDB sessions for heavy steps: bounded memory, spilling to disk."""

from __future__ import annotations

import os
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


def sql_text(value: str) -> str:
    """`value` as a SQL string literal (quotes doubled), for names a workspace chose."""
    return "'" + value.replace("'", "''") + "'"


def _memory_limit_gb() -> int:
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return max(1, int(total * 0.4))
