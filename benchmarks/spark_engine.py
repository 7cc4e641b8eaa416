"""Benchmark: the identity stage on Spark (dedup.spark), time and memory, driver apart.

Not a test. Usage (each size in its own process, so peaks do not carry over):

    uv run python benchmarks/spark_engine.py --interactions 100000
    uv run python benchmarks/spark_engine.py --interactions 1000000 --driver-memory 6g

Generates the benchmark exports (contacts.demo.generate_benchmark_exports) and stages them with
the local ingest (not timed: ingest on Spark is not built yet), then runs
`dedup.spark.identity.identity_stage` in Spark local mode, first night, every table written as
Parquet. Prints one Markdown row: seconds per step, and peak resident memory of
- the Python driver (this process: what the orchestration holds; should not grow with data),
- the JVM (in local mode the driver JVM is also the only executor: it holds partitions, up to
  `--driver-memory` of heap),
- the largest PySpark worker, sampled while the stage runs (the `mapInArrow` normalization of
  one Arrow batch at a time).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.procs import children, cpu_seconds, peak_mb  # noqa: E402
from contacts.demo import generate_benchmark_exports  # noqa: E402
from dedup.config import EngineConfig  # noqa: E402
from dedup.ingest.days import (  # noqa: E402
    INTERACTION_SOURCES,
    day_files,
    export_days,
    fingerprint,
    ingest_day,
    write_staging,
)

SECRET = "bench-secret"


def peak_mb_self() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class WorkerPeak(threading.Thread):
    """The largest peak RSS of any PySpark worker (a child of the JVM), sampled every 0.5 s:
    a worker may exit before the stage ends."""

    def __init__(self, jvm: int) -> None:
        super().__init__(daemon=True)
        self.jvm, self.peak, self.done = jvm, 0.0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            try:
                self.peak = max([self.peak, *(peak_mb(p) for p in children(self.jvm))])
            except OSError:  # a process ended while being listed
                continue


def stage_exports(data: Path, staging: Path, interactions: int) -> None:
    if not (data / "askvault").is_dir():
        shutil.rmtree(data, ignore_errors=True)
        generate_benchmark_exports(data, interactions)
    if staging.is_dir():
        return
    for source in INTERACTION_SOURCES:
        for day in export_days(data, source):
            files = day_files(data, source, day)
            result = ingest_day(data, source, day, files=files)
            write_staging(result, staging / source / day, fingerprint(files))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--interactions", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--partitions", default="8")
    parser.add_argument("--stage-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = args.out / f"exports-{args.interactions}"
    staging = args.out / f"staging-{args.interactions}"
    if args.stage_only:
        stage_exports(data, staging, args.interactions)
        return
    t = time.perf_counter()
    # In a child process: the local ingest's frames must not count in this driver's peak.
    subprocess.run([sys.executable, __file__, *sys.argv[1:], "--stage-only"], check=True)
    print(f"exports and staging ready in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    run(args, staging, peak_mb_self())


def run(args: argparse.Namespace, staging: Path, rss_before_spark: float) -> None:
    from dedup.spark.identity import staged_files
    from dedup.spark.session import spark_session

    work = args.out / f"spark-work-{args.interactions}"
    shutil.rmtree(work, ignore_errors=True)
    t = time.perf_counter()
    spark = spark_session(
        env=os.environ,
        overrides={
            "spark.driver.memory": args.driver_memory,
            "spark.sql.shuffle.partitions": args.partitions,
            "spark.ui.enabled": "false",
        },
        checkpoint_dir=work / "checkpoints",
    )
    started = time.perf_counter() - t
    jvm = spark.sparkContext._gateway.proc.pid  # type: ignore[union-attr]
    workers = WorkerPeak(jvm)
    workers.start()
    staged = spark.read.parquet(*staged_files(staging))
    seconds = timed_stage(staged, work)
    workers.done.set()
    workers.join()
    cpu = cpu_seconds([jvm, *children(jvm)]) + resource.getrusage(resource.RUSAGE_SELF).ru_utime
    n = spark.read.parquet(str(work / "clusters")).count()
    contacts = spark.read.parquet(str(work / "contact_of_cluster")).count()
    steps = " | ".join(f"{s:.1f}" for s in seconds.values())
    print(
        f"\n{n:,} interactions, {contacts:,} contacts; JVM start {started:.1f}s; CPU of the JVM, "
        f"its Python workers and the driver (start included): {cpu:,.0f}s"
    )
    print(
        "| interactions | "
        + " | ".join(seconds)
        + " | Python driver peak (MB) | of which before Spark | JVM peak (MB) | largest worker (MB) |"
    )
    print("| ---: " * (len(seconds) + 5) + "|")
    print(
        f"| {n:,} | {steps} | {peak_mb_self():,.0f} | {rss_before_spark:,.0f} | "
        f"{peak_mb(jvm):,.0f} | {workers.peak:,.0f} |"
    )


def timed_stage(staged, work: Path) -> dict[str, float]:
    """The steps of `identity_stage`, each forced to completion (written) and timed."""
    from splink import SparkAPI

    from dedup.spark.automerge import auto_merge
    from dedup.spark.identity import empty_previous, saved
    from dedup.spark.normalize import normalized_interactions
    from dedup.spark.stable_ids import assign_ids

    config = EngineConfig(identity_secrets=(SECRET,))
    spark, out, seconds = staged.sparkSession, str(work), {}
    t = time.perf_counter()
    interactions = saved(normalized_interactions(staged, config), out, "interactions")
    seconds["normalize (s)"] = time.perf_counter() - t
    t = time.perf_counter()
    merged = auto_merge(interactions, SparkAPI(spark_session=spark), config.hub_limits)
    clusters = saved(merged.clusters, out, "clusters")
    saved(merged.ambiguous_keys, out, "ambiguous_keys")
    seconds["auto-merge (s)"] = time.perf_counter() - t
    t = time.perf_counter()
    ids = assign_ids(clusters, empty_previous(spark), datetime.now(UTC))
    saved(ids.contact_of_cluster, out, "contact_of_cluster")
    seconds["stable ids (s)"] = time.perf_counter() - t
    seconds["total (s)"] = sum(seconds.values())
    return seconds


if __name__ == "__main__":
    main()
