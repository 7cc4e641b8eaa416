"""A local Polars function of rows, run on each Arrow batch of a Spark frame on the executors.

One implementation serves both engines: normalization, tonight's decisions and the phone lookup
are the local engine's own functions (`dedup.identity`, `dedup.admin`), applied batch by batch
inside `mapInArrow`. They work row by row, so a batch gives the rows the whole frame would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame


def _batches(
    batches: Iterator[pa.RecordBatch],
    step: Callable[[pl.DataFrame], pl.DataFrame],
    target: pa.Schema,
) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        if batch.num_rows:
            out = step(pl.from_arrow(batch))  # type: ignore[arg-type]
            yield from out.to_arrow().cast(target).to_batches()


def per_batch(frame: DataFrame, step: Callable[[pl.DataFrame], pl.DataFrame]) -> DataFrame:
    """`step`, a local Polars function of rows, on each Arrow batch of `frame` on the executors
    (`mapInArrow`); the output schema is `step`'s output for an empty frame."""
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    empty = pl.from_arrow(to_arrow_schema(frame.schema, timezone="UTC").empty_table())
    out = step(empty)  # type: ignore[arg-type]
    schema = from_arrow_schema(out.to_arrow(compat_level=pl.CompatLevel.oldest()).schema)
    target = to_arrow_schema(schema, timezone="UTC")
    return frame.mapInArrow(lambda it: _batches(it, step, target), schema)
