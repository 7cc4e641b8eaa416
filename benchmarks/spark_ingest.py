"""Benchmark: ingest (provider files → staged days) on Spark against the local ingest.

Not a test. Usage:

    uv run python benchmarks/spark_ingest.py --interactions 100000

Generates the benchmark exports once (contacts.demo.generate_benchmark_exports: `askvault`
files in three formats over 10 days, bad records included), then stages every day of them in
two child processes, one per engine, so neither's memory counts in the other's peak:
- local: `dedup.ingest.days.stage_days` (two days side by side, as the ingest asset does);
- spark: `dedup.spark.ingest.stage_days_on_spark` in Spark local mode (`local[2]`,
  `--driver-memory`), one task per day.
Each prints seconds, staged rows and peak resident memory: the process itself (for Spark the
Python driver: it gets counts only, so it should not grow with the data), and for Spark the JVM
(in local mode also the only executor) and the largest PySpark worker (sampled every 0.5 s).
Then the two staging folders are compared file by file (every row and column).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.procs import children, cpu_seconds, peak_mb  # noqa: E402

SOURCE = "askvault"  # what the benchmark generator writes


def peak_mb_self() -> float:
    # VmHWM, not `ru_maxrss`: Linux carries a parent's peak across `exec` into the latter.
    return peak_mb(os.getpid())


class WorkerPeak(threading.Thread):
    """The largest peak RSS of any PySpark worker (a Python descendant of the JVM), sampled
    every 0.5 s. Python only: the JVM now and then has a `java` child of its own (through
    `jspawnhelper`; 1.3 GB once here) that is no worker of ours (docs/scale.md, footnote 1)."""

    def __init__(self, jvm: int) -> None:
        super().__init__(daemon=True)
        self.jvm, self.peak, self.done = jvm, 0.0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            for pid in children(self.jvm):
                try:
                    python = b"pyspark" in Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:  # a process ended while being listed
                    continue
                if python:
                    self.peak = max(self.peak, peak_mb(pid))


def stage_local(data: Path, staging: Path) -> dict[str, float]:
    from dedup.ingest.days import export_days, stage_days, staged_days_of

    before = peak_mb_self()
    t = time.perf_counter()
    days, _ = staged_days_of(stage_days(data, SOURCE, export_days(data, SOURCE), staging.joinpath))
    seconds = time.perf_counter() - t
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "seconds": seconds,
        "rows": sum(d.accepted for d in days),
        "quarantined": sum(d.quarantined for d in days),
        "peak_mb": peak_mb_self(),
        "before_mb": before,
        "cpu_s": cpu.ru_utime + cpu.ru_stime,
    }


def stage_spark(data: Path, staging: Path, driver_memory: str) -> dict[str, float]:
    from dedup.ingest.days import export_days
    from dedup.spark.ingest import stage_days_on_spark
    from dedup.spark.session import spark_session

    before = peak_mb_self()
    t = time.perf_counter()
    overrides = {"spark.driver.memory": driver_memory, "spark.ui.enabled": "false"}
    spark = spark_session(env=os.environ, overrides=overrides)
    started = time.perf_counter() - t
    jvm = spark.sparkContext._gateway.proc.pid  # type: ignore[union-attr]
    workers = WorkerPeak(jvm)
    workers.start()
    t = time.perf_counter()
    days, _ = stage_days_on_spark(spark, data, SOURCE, export_days(data, SOURCE), staging.joinpath)
    seconds = time.perf_counter() - t
    workers.done.set()
    workers.join()
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "seconds": seconds,
        "jvm_start_s": started,
        "rows": sum(d.accepted for d in days),
        "quarantined": sum(d.quarantined for d in days),
        "peak_mb": peak_mb_self(),
        "before_mb": before,
        "jvm_mb": peak_mb(jvm),
        "worker_mb": workers.peak,
        "cpu_s": cpu_seconds([jvm, *children(jvm)]) + own.ru_utime + own.ru_stime,
    }


def same_staging(a: Path, b: Path) -> bool:
    import polars as pl

    for manifest in sorted(a.glob("*/manifest.json")):
        other = b / manifest.parent.name
        if json.loads(manifest.read_text()) != json.loads((other / "manifest.json").read_text()):
            return False
        for name in ("accepted", "quarantine"):
            left = pl.read_parquet(manifest.parent / f"{name}.parquet")
            if not left.equals(pl.read_parquet(other / f"{name}.parquet")):
                return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--interactions", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--engine", choices=("local", "spark"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = args.out / f"exports-{args.interactions}"
    staging = {e: args.out / f"ingest-{e}-{args.interactions}" for e in ("local", "spark")}
    if args.engine:  # a child: one engine, its figures as JSON on the last line
        shutil.rmtree(staging[args.engine], ignore_errors=True)
        if args.engine == "local":
            figures = stage_local(data, staging["local"])
        else:
            figures = stage_spark(data, staging["spark"], args.driver_memory)
        print(json.dumps(figures))
        return
    if not (data / SOURCE).is_dir():
        from contacts.demo import generate_benchmark_exports

        generate_benchmark_exports(data, args.interactions)
    results = {}
    for engine in ("local", "spark"):
        out = subprocess.run(
            [sys.executable, __file__, *sys.argv[1:], "--engine", engine],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results[engine] = json.loads(out.strip().splitlines()[-1])
    print(f"load average: {os.getloadavg()}")
    print(json.dumps(results, indent=1))
    print(f"same staged files: {same_staging(staging['local'], staging['spark'])}")


if __name__ == "__main__":
    main()
