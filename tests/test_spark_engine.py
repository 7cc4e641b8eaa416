"""The Spark engine (dedup.spark, issue 27): its settings, and the identity stage in Spark local
mode giving the local engine's clusters, ambiguous keys and contact ids on the same input.

The JVM tests share the process's one Spark session with tests/test_spark.py
(tests/spark_session.py) and are skipped without a Java runtime.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assets.resources import ContactsSettings, SettingsError
from dedup.spark.session import CONF_ENV, MASTER_ENV, read_spark_defaults, spark_conf

needs_java = pytest.mark.skipif(
    shutil.which("java") is None, reason="Spark needs a Java runtime (bin/dev test installs one)"
)


def test_engine_setting_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONTACTS_ENGINE", raising=False)
    assert ContactsSettings().backend == "local"
    monkeypatch.setenv("CONTACTS_ENGINE", "Spark")
    assert ContactsSettings().backend == "spark"
    assert ContactsSettings(engine="local").backend == "local"  # the field wins
    monkeypatch.setenv("CONTACTS_ENGINE", "dask")
    with pytest.raises(SettingsError, match="CONTACTS_ENGINE"):
        ContactsSettings().backend  # noqa: B018
    with pytest.raises(ValueError, match="engine"):
        ContactsSettings(engine="dask")  # type: ignore[arg-type]


def test_spark_defaults_file_then_master_variable(tmp_path: Path) -> None:
    conf_file = tmp_path / "spark-defaults.conf"
    conf_file.write_text(
        "# a YARN cluster\n"
        "spark.master                 yarn\n"
        "spark.executor.memory=8g\n"
        "spark.executor.instances: 20\n"
        "\n"
        "spark.kubernetes.container.image  registry/contacts:1 \n"
    )
    assert read_spark_defaults(conf_file) == {
        "spark.master": "yarn",
        "spark.executor.memory": "8g",
        "spark.executor.instances": "20",
        "spark.kubernetes.container.image": "registry/contacts:1",
    }
    conf = spark_conf({CONF_ENV: str(conf_file)})
    assert conf["spark.master"] == "yarn" and conf["spark.executor.memory"] == "8g"
    assert "spark.driver.bindAddress" not in conf  # loopback binding is for local mode only
    assert conf["spark.sql.session.timeZone"] == "UTC"  # a default the file did not override
    master = spark_conf({CONF_ENV: str(conf_file), MASTER_ENV: "spark://head:7077"})
    assert master["spark.master"] == "spark://head:7077"
    local = spark_conf({})
    assert local["spark.master"] == "local[2]"
    assert local["spark.driver.bindAddress"] == "127.0.0.1"
    assert local["spark.jars"].endswith(".jar")  # Splink's similarity functions
