"""The one Spark session of a test process, shared by the Spark test modules (tests/test_spark*.py:
a JVM costs ~20-30 s to start on this machine; tests/conftest.py's `SAME_WORKER` runs them all
on one xdist worker)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

# Every Spark test: skipped, saying why, on a machine without Java (bin/dev test installs one).
needs_java = pytest.mark.skipif(
    shutil.which("java") is None, reason="Spark needs a Java runtime (bin/dev test installs one)"
)

# Local mode sized for 2 cores and small frames: two shuffle partitions instead of 200.
TEST_CONF = {
    "spark.master": "local[2]",
    "spark.app.name": "contacts-tests",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.driver.memory": "2g",
    # On test-sized frames compiling each stage's Java costs more than running it: without
    # whole-stage code generation the Spark auto-merge of ~250 interactions took 14-25 s
    # instead of 21-46 s (three runs each in one process, machine at load 5-7).
    "spark.sql.codegen.wholeStage": "false",
    # The test JVM lives for a few minutes of small jobs: its JIT compiling hot code a second
    # time at full optimization (C2), and a parallel collector's threads, cost more CPU than they
    # save: here it compiles with the quick compiler (C1) only, and one collector thread serves
    # a 2 GB heap.
    # Measured CPU of the three Spark modules in one process (cgroup, JVM included; both runs
    # side by side, load 16-22): test_spark 76.2 -> 46.9 s, test_spark_engine 48.1 -> 36.1 s,
    # test_spark_job 90.4 -> 72.9 s (214.7 -> 155.9 s in all); wall the same within noise.
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
}


def local_test_session(checkpoint_dir: Path):
    """The process's session (created on first use, then reused) with `checkpoint_dir` set."""
    from dedup.spark.session import spark_session

    return spark_session(env={}, overrides=TEST_CONF, checkpoint_dir=checkpoint_dir)
