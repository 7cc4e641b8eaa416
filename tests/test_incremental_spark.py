"""The incremental predict on Splink's SparkAPI (local mode): the same code path as on DuckDB,
and the same proposals as a full DuckDB predict."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from dedup.matching.incremental import predict_nightly
from dedup.matching.model import TrainingConfig, predict, train
from dedup.matching.proposals import predictions_frame
from tests.test_incremental import _compare
from tests.test_spark import pytestmark, records, spark, spark_api  # noqa: F401 - fixtures


def test_incremental_night_on_spark_equals_full_on_duckdb(
    records: pl.DataFrame,  # noqa: F811 - the fixture imported above
    spark,  # noqa: F811
    tmp_path: Path,
) -> None:
    model = train(records, TrainingConfig())
    night1 = records.filter(pl.int_range(pl.len()) % 10 != 0)
    state = tmp_path / "state"
    first = predict_nightly(night1, model, 0.5, state, db_api=spark_api(spark))
    assert first.mode == "full"
    second = predict_nightly(records, model, 0.5, state, db_api=spark_api(spark))
    assert second.mode == "incremental" and 0 < second.changed < records.height
    full, _ = predict(records, model, 0.5)
    assert full.height > 0
    _compare(predictions_frame(second.scored), predictions_frame(full))
