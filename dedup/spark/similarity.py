"""Jaro-Winkler on Spark computed by DuckDB, so both engines score a pair alike.

The local engine's comparisons run DuckDB's `jaro_winkler_similarity`. On Spark the same SQL
would run one of two other implementations: Splink's `JaroWinklerLevel` calls `jaro_winkler`,
the jar Splink registers (Apache Commons Text), and this project's custom levels call
`jaro_winkler_similarity`, which Spark 4 has built in. Neither counts transpositions as DuckDB
does (`bimingram` / `birmingham`: DuckDB 0.914, Spark's built-in 0.899, across the 0.9 level):
on Splink's `fake_1000` 10 of 1,451 proposed pairs fell in another level with the jar, and at
1M interactions 4 of 8,774 proposals differed with the built-in (docs/scale.md).

So the Spark path registers `duckdb_jaro_winkler`, DuckDB's own function run per Arrow batch on
the executors (an in-memory DuckDB in each Python worker, as the profiles step runs its SQL):
the local engine's value by construction, not a port. `with_duckdb_jaro_winkler` points every
comparison level's SQL at it (a built-in name cannot be registered over). Nulls stay null
(DuckDB's rule): a comparison `>= 0.9` on a null is false on both engines.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any

# At run time, not only for type checkers: PySpark reads `duckdb_jaro_winkler`'s type hints
# (array in, array out) to know it is a scalar Arrow function.
import pyarrow as pa

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SPARK_NAME = "duckdb_jaro_winkler"
# Splink's jar function and Spark's built-in, as a level's SQL calls them.
_OTHER_NAMES = re.compile(r"\b(?:jaro_winkler_similarity|jaro_winkler)\s*\(", re.IGNORECASE)

_local = threading.local()


def duckdb_jaro_winkler(left: pa.Array, right: pa.Array) -> pa.Array:
    """DuckDB's `jaro_winkler_similarity` of each pair of `left` and `right` (float64)."""
    import duckdb

    con = getattr(_local, "con", None)
    if con is None:  # one in-memory database per Python worker thread, reused batch after batch
        con = _local.con = duckdb.connect()
    con.register("pairs", pa.table({"l": left.cast(pa.string()), "r": right.cast(pa.string())}))
    try:
        out = con.execute("SELECT jaro_winkler_similarity(l, r)::DOUBLE AS s FROM pairs")
        return out.fetch_arrow_table().column("s").combine_chunks()
    finally:
        con.unregister("pairs")


def register_duckdb_jaro_winkler(spark: SparkSession) -> None:
    """Make `duckdb_jaro_winkler` callable in the session's SQL (module docstring)."""
    from pyspark.sql.functions import arrow_udf

    spark.udf.register(SPARK_NAME, arrow_udf(duckdb_jaro_winkler, "double"))


def with_duckdb_jaro_winkler(settings: dict[str, Any]) -> dict[str, Any]:
    """Splink `settings` (Spark dialect) whose comparison levels call `duckdb_jaro_winkler`
    wherever they called Splink's or Spark's Jaro-Winkler."""
    comparisons = [
        {
            **comparison,
            "comparison_levels": [
                {
                    **level,
                    "sql_condition": _OTHER_NAMES.sub(f"{SPARK_NAME}(", level["sql_condition"]),
                }
                for level in comparison["comparison_levels"]
            ],
        }
        for comparison in settings["comparisons"]
    ]
    return {**settings, "comparisons": comparisons}
