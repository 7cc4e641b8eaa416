"""Staged records → normalized interactions, on the executors.

Re-deliveries are resolved by a window over `interaction_id` (the rule of
`dedup.identity.interactions.resolve_redeliveries`: the latest export day, then source, file,
row). Each Arrow batch then goes through `dedup.identity.interactions.normalize_rows`, the local
engine's own function (identity verification, email/phone/name normalization, display text):
it works row by row, so a batch gives the rows the whole frame would. The output schema is that
function's output on an empty frame, so the two engines cannot drift apart column by column.

libphonenumber runs once per distinct phone text of a batch (not of the night, as locally): more
parses in total, spread over every executor core, and no lookup to hold on the driver.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import polars as pl

from dedup.config import EngineConfig
from dedup.identity.interactions import normalize_rows

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

# Which delivery of an interaction id wins, most important first (all descending: the last).
DELIVERY_ORDER = ("export_day", "source", "file", "row")


def latest_deliveries(staged: DataFrame) -> DataFrame:
    """One row per `interaction_id`: its latest delivery."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.partitionBy("interaction_id").orderBy(
        *(F.col(c).desc_nulls_last() for c in DELIVERY_ORDER)
    )
    return (
        staged.withColumn("_delivery", F.row_number().over(order))
        .filter(F.col("_delivery") == 1)
        .drop("_delivery")
    )


def normalized_schema(staged: StructType, config: EngineConfig) -> StructType:
    """The Spark schema of `normalize_rows`'s output for rows of schema `staged`."""
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    empty = pl.from_arrow(to_arrow_schema(staged, timezone="UTC").empty_table())
    out = normalize_rows(empty, config)  # type: ignore[arg-type]
    return from_arrow_schema(out.to_arrow(compat_level=pl.CompatLevel.oldest()).schema)


def _normalize_batches(
    batches: Iterator[pa.RecordBatch], config: EngineConfig, target: pa.Schema
) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        if batch.num_rows == 0:
            continue
        frame = normalize_rows(pl.from_arrow(batch), config)  # type: ignore[arg-type]
        yield from frame.to_arrow().cast(target).to_batches()


def normalized_interactions(staged: DataFrame, config: EngineConfig) -> DataFrame:
    """The local engine's `prepare_interactions(staged).interactions`, computed on the cluster.

    `config` (identity secrets included) travels to the executors inside the task: a cluster's
    RPC and shuffle encryption should be on (docs/scale.md).
    """
    from pyspark.sql.pandas.types import to_arrow_schema

    latest = latest_deliveries(staged)
    schema = normalized_schema(latest.schema, config)
    target = to_arrow_schema(schema, timezone="UTC")
    return latest.mapInArrow(lambda it: _normalize_batches(it, config, target), schema)
