"""Compare DuckDB lines on this project's hot SQL (the contacts build) and its offline needs.

Run under each version without touching the project environment, e.g.:

    uv run python benchmarks/duckdb_versions.py
    uv run --isolated --with duckdb==2.0.1 --with polars --with pyarrow --with numpy \
        python benchmarks/duckdb_versions.py

Needs the work files of a benchmark run (benchmarks/pipeline.py --interactions 1000000).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import polars as pl  # noqa: E402

from dedup.config import EngineConfig  # noqa: E402
from dedup.snapshot.profiles import build_contacts  # noqa: E402

WORK = ROOT / "benchmarks" / "out" / "e2e" / "contacts.duckdb.state" / "work"


def main() -> None:
    print(f"duckdb {duckdb.__version__}")
    con = duckdb.connect()
    try:
        con.execute("INSTALL fts")
        con.execute("LOAD fts")
        print("fts: INSTALL fts worked")
    except duckdb.Error as exc:
        print(f"fts: INSTALL fts failed offline: {str(exc).splitlines()[0][:120]}")
        try:
            import duckdb_extension_fts  # type: ignore[import-not-found]

            path = Path(duckdb_extension_fts.__file__).parent / "extensions"
            ext = next(path.glob(f"v{duckdb.__version__}/fts.duckdb_extension"))
            con.execute(f"INSTALL '{ext}'")
            con.execute("LOAD fts")
            print(f"fts: loaded from the pip package duckdb-extension-fts ({ext.parent.name})")
        except (ImportError, StopIteration, duckdb.Error) as exc2:
            print(f"fts: no offline package for this version ({type(exc2).__name__})")
    print(f"connection has .pl(): {hasattr(con, 'pl')}")
    frame = pl.read_parquet(WORK / "interactions.parquet").join(
        pl.read_parquet(WORK / "assignment.parquet"), on="interaction_id"
    )
    con.register("_interactions_full", frame.to_arrow())
    for attempt in range(2):
        t = time.perf_counter()
        build_contacts(con, EngineConfig(), source="_interactions_full")
        n = con.sql("SELECT count(*) FROM contacts").fetchall()[0][0]
        print(
            f"contacts build #{attempt + 1}: {n:,} contacts from {frame.height:,} interactions "
            f"in {time.perf_counter() - t:.1f}s"
        )


if __name__ == "__main__":
    main()
