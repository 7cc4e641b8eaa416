"""Splink's Jaro-Winkler on Spark, computed by DuckDB, so both engines score a pair alike.

Splink's Spark backend registers `jaro_winkler` from its similarity jar (Apache Commons Text);
the local engine's comparisons run DuckDB's `jaro_winkler_similarity`. The two count
transpositions differently: on Splink's `fake_1000` 10 of 1,451 proposed pairs (misspelt cities
such as `bimingram` / `birmingham`) fell in another Jaro-Winkler level on Spark, and at 1M
interactions 4 of 8,774 proposals differed (docs/scale.md). Replacing the jar's function with
DuckDB's own, per Arrow batch on the executors (an in-memory DuckDB in the Python worker, as the
profiles step runs its SQL), gives the local engine's value by construction, not by a port.

Registered on the session after Splink's `SparkAPI` has registered the jar's functions (a later
registration of a name wins). Nulls stay null (DuckDB's own rule): a comparison `>= 0.9` on a
null is false on both engines.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

# At run time, not only for type checkers: PySpark reads `duckdb_jaro_winkler`'s type hints
# (array in, array out) to know it is a scalar Arrow function.
import pyarrow as pa

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# The name Splink's Spark dialect writes for Jaro-Winkler (`jaro_winkler_function_name`).
SPARK_NAME = "jaro_winkler"

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
    """Make `jaro_winkler` in the session's SQL DuckDB's (module docstring)."""
    from pyspark.sql.functions import arrow_udf

    spark.udf.register(SPARK_NAME, arrow_udf(duckdb_jaro_winkler, "double"))
