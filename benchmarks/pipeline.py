"""Benchmark: ingest → normalize → auto-merge → stable ids → publish, on generated exports.

Not a test. Usage:

    uv run python benchmarks/pipeline.py --interactions 1000000

Prints one Markdown table: per-stage seconds and the process's peak RSS after each stage (the
engine functions called directly, one process), then the end-to-end `contacts run` (through
Dagster, fresh process, fresh database) with its wall time and peak RSS.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from contacts.demo import generate_benchmark_exports  # noqa: E402
from dedup.config import EngineConfig  # noqa: E402
from dedup.identity.automerge import auto_merge  # noqa: E402
from dedup.identity.interactions import prepare_interactions  # noqa: E402
from dedup.identity.merge_history import MERGES_SCHEMA  # noqa: E402
from dedup.identity.stable_ids import PreviousState, assign_ids  # noqa: E402
from dedup.ingest.days import SOURCES, export_days, ingest_day  # noqa: E402
from dedup.matching.proposals import PROPOSALS_SCHEMA  # noqa: E402
from dedup.schema import QUARANTINE_SCHEMA  # noqa: E402
from dedup.snapshot.build import (  # noqa: E402
    SnapshotInputs,
    build_contacts_frame,
    build_snapshot,
    interactions_sql,
)
from dedup.snapshot.files import RUNS_SCHEMA, publish  # noqa: E402

SECRET = "bench-secret"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--skip-end-to-end", action="store_true")
    parser.add_argument(
        "--only-end-to-end",
        action="store_true",
        help="skip the in-process stage timings (they hold every stage's data at once)",
    )
    args = parser.parse_args()

    data = args.out / f"exports-{args.interactions}"
    if not (data / "askvault").is_dir():
        shutil.rmtree(data, ignore_errors=True)
        t = time.perf_counter()
        generate_benchmark_exports(data, args.interactions)
        print(
            f"generated {args.interactions:,} interactions in {time.perf_counter() - t:.1f}s",
            file=sys.stderr,
        )
    os.environ["ASKVAULT_IDENTITY_SECRET"] = SECRET
    config = EngineConfig(identity_secrets=(SECRET,))
    rows: list[tuple[str, int, float, float]] = []

    def stage(name: str, n: int, started: float) -> None:
        rows.append((name, n, time.perf_counter() - started, peak_mb()))
        print(
            f"{name}: {rows[-1][2]:.1f}s, peak {rows[-1][3]:,.0f} MB", file=sys.stderr, flush=True
        )

    if args.only_end_to_end:
        end_to_end(data, args.out)
        return
    t = time.perf_counter()
    accepted, quarantined = [], 0
    for source in SOURCES:
        for day in export_days(data, source):
            result = ingest_day(data, source, day)
            accepted.append(result.accepted)
            quarantined += result.quarantine.height
    staged = pl.concat(accepted)
    stage("ingest (read + validate)", staged.height, t)

    t = time.perf_counter()
    prepared = prepare_interactions(staged, config).interactions
    del staged, accepted  # the real job frees them too: each asset is its own step
    stage("normalize (+ redeliveries, HMAC)", prepared.height, t)

    t = time.perf_counter()
    merged = auto_merge(prepared)
    stage("auto-merge", merged.clusters.height, t)

    t = time.perf_counter()
    ids = assign_ids(merged.clusters, PreviousState.empty(), datetime.now(UTC))
    assignment = merged.clusters.join(ids.contact_of_cluster, on="cluster").select(
        "interaction_id", "contact_id"
    )
    stage("stable ids", ids.contact_of_cluster.height, t)

    t = time.perf_counter()
    db = args.out / "bench.duckdb"
    build = args.out / "bench.building.duckdb"
    work = args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    prepared.write_parquet(work / "interactions.parquet")
    assignment.write_parquet(work / "assignment.parquet")
    source = interactions_sql(work / "interactions.parquet", work / "assignment.parquet")
    build_snapshot(
        build,
        SnapshotInputs(
            interactions=source,
            contacts=build_contacts_frame(source, config, work / "duckdb_tmp"),
            proposals=pl.DataFrame(schema=PROPOSALS_SCHEMA),
            redirects=ids.redirects,
            merges=pl.DataFrame(schema=MERGES_SCHEMA),
            quarantine=pl.DataFrame(schema=QUARANTINE_SCHEMA),
            ambiguous_keys=merged.ambiguous_keys,
            runs=pl.DataFrame(schema=RUNS_SCHEMA),
        ),
        config,
    )
    publish(build, db)
    stage("build contacts + publish", ids.contact_of_cluster.height, t)

    print(
        f"\nMachine: {machine()}; {args.interactions:,} interactions requested, {quarantined} quarantined\n"
    )
    print("| stage | rows | seconds | peak RSS (MB) |\n| --- | ---: | ---: | ---: |")
    for name, n, secs, mb in rows:
        print(f"| {name} | {n:,} | {secs:.1f} | {mb:,.0f} |")
    print(f"| **sum of stages** | | **{sum(r[2] for r in rows):.1f}** | {peak_mb():,.0f} |")

    if not args.skip_end_to_end:
        end_to_end(data, args.out)


def end_to_end(data: Path, out: Path) -> None:
    """A fresh `contacts run` (Dagster, every asset incl. matching) in its own process.

    Two figures: when the published file appears (the atomic rename that ends the build; what
    the core issue times, "ingest to published file") and when the command returns (after the
    steps that read the published file: CSV exports and Splink dashboards).
    """
    e2e_db = out / "e2e" / "contacts.duckdb"
    shutil.rmtree(e2e_db.parent, ignore_errors=True)
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "contacts.cli", "run", "--exports", str(data), "--db", str(e2e_db)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    published = None
    while proc.poll() is None:
        if published is None and e2e_db.exists():
            published = time.perf_counter() - t
        time.sleep(0.05)
    if proc.returncode:
        raise SystemExit(f"contacts run failed with exit code {proc.returncode}")
    secs = time.perf_counter() - t
    if published is None:  # the command ended between two looks
        published = secs
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"| **end to end: `contacts run` to published file** | | **{published:.1f}** | |")
    print(
        f"| **end to end: `contacts run` returns (+ CSV exports, dashboards)** | | **{secs:.1f}** "
        f"| {child:,.0f} |"
    )


if __name__ == "__main__":
    main()
