"""The matching step on Splink's SparkAPI (Spark in local mode): one model, two backends.

Workspaces that outgrow one machine run matching on Spark; these tests hold the settings to
that promise on real data: a model trained on DuckDB scores identically on Spark, a model
trained on Spark scores on DuckDB, and the incremental predict on Spark gives the proposals of a
full DuckDB predict. The tests share one Spark session with tests/test_spark_engine.py (a JVM
costs ~20 s).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from dedup.matching.incremental import predict_nightly
from dedup.matching.model import TrainingConfig, predict, train
from dedup.matching.proposals import predictions_frame
from tests.conftest import generated_records
from tests.spark_session import local_test_session, needs_java
from tests.test_incremental import _compare

pytestmark = needs_java

PAIR = ["unique_id_l", "unique_id_r"]


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    return generated_records(tmp_path_factory.mktemp("spark"))


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory):
    # The process's one session (tests/test_spark_engine.py gets the same): never stopped here,
    # its JVM ends with the test process.
    return local_test_session(tmp_path_factory.mktemp("spark-checkpoints"))


@pytest.fixture(scope="module")
def duckdb_model(records: pl.DataFrame):
    return train(records)


def spark_api(session):
    from splink import SparkAPI

    return SparkAPI(spark_session=session)


def scored(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(*PAIR, "match_probability", "explanation").sort(PAIR)


def test_duckdb_trained_model_scores_identically_on_spark(
    records: pl.DataFrame, spark, duckdb_model
) -> None:
    model = duckdb_model
    on_duckdb, _ = predict(records, model, 0.5)
    on_spark, _ = predict(records, model, 0.5, db_api=spark_api(spark))
    assert on_duckdb.height > 5
    a, b = scored(on_duckdb), scored(on_spark)
    assert a.select(PAIR).equals(b.select(PAIR))
    assert (a["match_probability"] - b["match_probability"]).abs().max() < 1e-9
    assert a["explanation"].to_list() == b["explanation"].to_list()


def test_spark_trained_model_scores_on_duckdb(records: pl.DataFrame, spark) -> None:
    config = TrainingConfig(u_max_pairs=2e5)
    on_spark = train(records, config, db_api=spark_api(spark))
    assert on_spark.settings["sql_dialect"] == "spark"
    on_duckdb = train(records, config)
    # The Spark model runs on DuckDB, and u sampled by another engine changes little.
    spark_pairs = predict(records, on_spark, 0.8)[0].select(PAIR)
    duckdb_pairs = predict(records, on_duckdb, 0.8)[0].select(PAIR)
    assert duckdb_pairs.height > 5
    both = spark_pairs.join(duckdb_pairs, on=PAIR).height
    assert both >= 0.9 * max(spark_pairs.height, duckdb_pairs.height)


def test_incremental_night_on_spark_equals_full_on_duckdb(
    records: pl.DataFrame, spark, duckdb_model, tmp_path: Path
) -> None:
    model = duckdb_model
    night1 = records.filter(pl.int_range(pl.len()) % 10 != 0)
    state = tmp_path / "state"
    first = predict_nightly(night1, model, 0.5, state, db_api=spark_api(spark))
    assert first.mode == "full"
    second = predict_nightly(records, model, 0.5, state, db_api=spark_api(spark))
    assert second.mode == "incremental" and 0 < second.changed < records.height
    full, _ = predict(records, model, 0.5)
    assert full.height > 0
    _compare(predictions_frame(second.scored), predictions_frame(full))
