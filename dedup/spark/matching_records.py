"""The matcher's records built on the executors (issue 27): `dedup.matching.records`' own
functions per Arrow batch, one implementation.

A record is made in two parts (`dedup.matching.carried_records` relies on the same split):
`own_records(masked_contacts(...))` reads one contact's row and nothing else, so it runs on each
Arrow batch of the profiles work file (`mapInArrow`), the night's ambiguous keys (hub emails
and phones: one row per key, small) travelling inside the task. `employer` alone reads the
whole workspace: a domain counts as a mail provider by what all its contacts show
(`employer.workspace_providers`). That rule is per domain, so Spark repartitions the own records
by `email_domain` and each partition, whole, goes through the local function; the providers
(one row per provider domain) come back to the driver and travel into the tasks that finish
the records (`finished_records(own, providers)`). Spark writes the records as the work file
`match_records.parquet` (one task, `unique_id` order), which the reports read as on the local
engine. The records never reach the driver.

Every record is built every night: the local engine's kept records (issue 25) are neither read
nor written, as the Spark profiles step keeps no profiles.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from dedup.matching.employer import workspace_providers
from dedup.matching.records import (
    EMPLOYER_INPUTS,
    RECORD_INPUTS,
    finished_records,
    masked_contacts,
    own_records,
)
from dedup.spark.batches import per_batch
from dedup.spark.tonight import write_file

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

# What the step reports as its records path (`RecordsPlan.describe` on the local engine).
SPARK_RECORDS = "spark engine (every record built on the cluster, none kept)"
# The columns `workspace_providers` reads.
PROVIDER_INPUTS = ("email_domain", "surname", *EMPLOYER_INPUTS)


def own_of(
    contacts: pl.DataFrame, ambiguous: pl.DataFrame, properties: Mapping[str, str]
) -> pl.DataFrame:
    """One batch of contacts → their own records (`masked_contacts`, then `own_records`)."""
    return own_records(masked_contacts(contacts, ambiguous), properties)


def _providers_of(batches: Iterator[pa.RecordBatch], target: pa.Schema) -> Iterator[pa.RecordBatch]:
    """`mapInArrow`'s function: a partition's rows, whole (a domain's rows may sit in several
    batches), through `workspace_providers`."""
    import pyarrow as pa

    whole = [b for b in batches if b.num_rows]
    if not whole:
        return
    rows = pl.from_arrow(pa.Table.from_batches(whole))
    found = workspace_providers(rows).to_frame()  # type: ignore[arg-type]
    yield from found.to_arrow().cast(target).to_batches()


def providers_on_spark(own: DataFrame) -> pl.Series:
    """The workspace's provider domains (`workspace_providers` over every own record): rows
    repartitioned by domain, the local rule per partition; the domains are collected."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    schema = StructType([StructField("email_domain", StringType())])
    target = pl.DataFrame(schema={"email_domain": pl.String}).to_arrow().schema
    rows = own.select(*PROVIDER_INPUTS).filter(F.col("email_employer").isNotNull())
    found = rows.repartition("email_domain").mapInArrow(
        lambda it: _providers_of(it, target), schema
    )
    table = found.toArrow()
    return pl.Series("email_domain", table.column("email_domain").to_pylist(), pl.String)


def records_on_spark(
    spark: SparkSession,
    contacts: Path,
    ambiguous: pl.DataFrame,
    properties: Mapping[str, str],
    records: Path,
    scratch: Path,
) -> DataFrame:
    """Tonight's records from the profiles work file `contacts`, written as `records` by Spark
    (module docstring), read back as a Spark frame. `scratch`: a folder for the own records,
    which both the providers and the finished records read (built once), removed after."""
    rows = spark.read.parquet(str(contacts))
    inputs = [c for c in RECORD_INPUTS if c != "phone_shared" and c in rows.columns]
    own = per_batch(
        rows.select(*inputs),
        functools.partial(own_of, ambiguous=ambiguous, properties=dict(properties)),
    )
    shutil.rmtree(scratch, ignore_errors=True)
    own.write.parquet(str(scratch))
    try:
        own = spark.read.parquet(str(scratch))
        providers = providers_on_spark(own)
        finished = per_batch(own, functools.partial(finished_records, providers=providers))
        write_file(finished, records, "unique_id")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return spark.read.parquet(str(records))
