"""Staged records → normalized interactions, on the executors.

Re-deliveries are resolved by a window over `interaction_id` (the rule of
`dedup.identity.interactions.resolve_redeliveries`: the latest export day, then source, file,
row). Each Arrow batch then goes through `dedup.identity.interactions.normalize_rows`, the local
engine's own function (identity verification, email/phone/name normalization, display text):
it works row by row, so a batch gives the rows the whole frame would (`dedup.spark.batches`).
The output schema is that function's output on an empty frame, so the two engines cannot drift
apart column by column.

libphonenumber runs once per distinct phone text of a batch (not of the night, as locally): more
parses in total, spread over every executor core, and no lookup to hold on the driver.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dedup.config import EngineConfig
from dedup.identity.interactions import normalize_rows
from dedup.spark.batches import per_batch

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

# Which delivery of an interaction id wins, most important first (all descending: the last).
DELIVERY_ORDER = ("export_day", "source", "file", "row")


def latest_by(frame: DataFrame, keys: Sequence[str], order: Sequence[str]) -> DataFrame:
    """One row per `keys`: the last by `order` (each column descending, a null losing),
    as the local engine's sort then `keep="last"`."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    window = Window.partitionBy(*keys).orderBy(*(F.col(c).desc_nulls_last() for c in order))
    return (
        frame.withColumn("_delivery", F.row_number().over(window))
        .filter(F.col("_delivery") == 1)
        .drop("_delivery")
    )


def latest_deliveries(staged: DataFrame) -> DataFrame:
    """One row per `interaction_id`: its latest delivery."""
    return latest_by(staged, ("interaction_id",), DELIVERY_ORDER)


def normalized_interactions(staged: DataFrame, config: EngineConfig) -> DataFrame:
    """The local engine's `prepare_interactions(staged).interactions`, computed on the cluster.

    `config` (identity secrets included) travels to the executors inside the task: a cluster's
    RPC and shuffle encryption should be on (docs/scale.md).
    """
    return per_batch(latest_deliveries(staged), functools.partial(normalize_rows, config=config))
