"""The Spark session the Spark engine runs in, configured the way Spark itself is configured.

Settings, later ones winning:
1. `DEFAULTS` below: local mode on two cores, UTC session time, small Arrow batches;
2. the file named by `CONTACTS_SPARK_CONF`, in `spark-defaults.conf` format (`key value` per
   line, `#` comments): where a cluster's master, executors and memory are written down
   (docs/scale.md has one per cluster manager);
3. `CONTACTS_SPARK_MASTER` (e.g. `spark://host:7077`, `yarn`, `k8s://https://…`), when set.

`CONTACTS_SPARK_REMOTE` (`sc://host:15002`) connects through Spark Connect instead (Databricks
Connect reads its own profile); Spark's own `SPARK_CONF_DIR/spark-defaults.conf` is still read
by `spark-submit` underneath, so an existing cluster's configuration keeps working.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

CONF_ENV = "CONTACTS_SPARK_CONF"
MASTER_ENV = "CONTACTS_SPARK_MASTER"
REMOTE_ENV = "CONTACTS_SPARK_REMOTE"

DEFAULTS: dict[str, str] = {
    "spark.master": "local[2]",
    "spark.app.name": "contacts",
    # Timestamps cross Arrow batches as UTC instants; the engine's are UTC.
    "spark.sql.session.timeZone": "UTC",
    # A batch is what one `mapInArrow` call normalizes: 10,000 rows keep libphonenumber in the
    # executor's own process (dedup.identity.normalize parallelises from 50,000 distinct keys).
    "spark.sql.execution.arrow.maxRecordsPerBatch": "10000",
    "spark.ui.showConsoleProgress": "false",
}
# Local mode on a laptop or CI box whose host name does not resolve: bind to loopback.
LOCAL_DEFAULTS: dict[str, str] = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}


# Java properties as Spark reads them: the key, then whitespace, `=` or `:`, then the value.
_PROPERTY = re.compile(r"^([^\s=:]+)(?:\s*[=:]\s*|\s+)(.*)$")


def read_spark_defaults(path: Path) -> dict[str, str]:
    """`key value` lines of a `spark-defaults.conf`-style file (blank lines, `#` comments skip)."""
    conf: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if text and not text.startswith("#") and (found := _PROPERTY.match(text)):
            conf[found.group(1)] = found.group(2).strip()
    return conf


def spark_conf(
    env: Mapping[str, str] = os.environ, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The session's settings: defaults, then the file, the master variable, then `overrides`."""
    conf = dict(DEFAULTS)
    if path := env.get(CONF_ENV, "").strip():
        conf.update(read_spark_defaults(Path(path)))
    if master := env.get(MASTER_ENV, "").strip():
        conf["spark.master"] = master
    conf.update(overrides or {})
    if conf["spark.master"].startswith("local"):
        conf = {**LOCAL_DEFAULTS, **conf}
    conf.setdefault("spark.jars", _similarity_jar())
    return conf


def _similarity_jar() -> str:
    """Splink's similarity functions (its SparkAPI registers them): shipped to every executor."""
    from splink.backends.spark import similarity_jar_location

    return similarity_jar_location()


def spark_session(
    env: Mapping[str, str] = os.environ,
    overrides: Mapping[str, str] | None = None,
    checkpoint_dir: Path | str | None = None,
) -> SparkSession:
    """The process's Spark session (an existing one is reused: one JVM per process).

    `checkpoint_dir` is where Splink's clustering and the id pairing rounds cut their lineage; on
    a cluster it must be a shared path (HDFS, S3, DBFS), which `spark.checkpoint.dir` may give.
    """
    from pyspark.sql import SparkSession

    if remote := env.get(REMOTE_ENV, "").strip():
        return SparkSession.builder.remote(remote).getOrCreate()
    conf = spark_conf(env, overrides)
    if conf["spark.master"].startswith("local"):
        # Python workers of local mode run this interpreter (the project and its libraries;
        # PySpark reads only the variable). On a cluster, executors need an environment with
        # the project installed (docs/scale.md).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    directory = checkpoint_dir or session.conf.get("spark.checkpoint.dir", None)
    if directory:
        session.sparkContext.setCheckpointDir(str(directory))
    return session
