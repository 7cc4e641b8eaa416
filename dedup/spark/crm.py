"""CRM records as auto-merge evidence, built on the cluster (issue 27).

The local engine reads every staged CRM record on one machine (`dedup.ingest.days
.read_staged_crm`: the latest delivery of each record) and turns each into evidence rows
(`dedup.identity.crm_evidence.crm_evidence`: one per distinct phone). Here Spark reads the same
staged files, keeps the latest delivery of each (system, record id) with a window, and runs the
local `crm_evidence` on each Arrow batch inside `mapInArrow` (`dedup.spark.batches`): one
implementation for both engines. A record is one row, so a batch holds all of it and the
function's per-record `unique` gives the rows the whole frame would; the driver gets none.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from dedup.identity.crm_evidence import crm_evidence
from dedup.ingest.adapters.crm import CRM_RECORD_SCHEMA
from dedup.ingest.days import CRM_SOURCES, staged_accepted_files
from dedup.spark.batches import per_batch
from dedup.spark.normalize import latest_by

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# Which delivery of a CRM record wins, most important first (all descending: the last), as
# `read_staged_crm`'s sort on (export_day, file, row) and keep="last".
CRM_DELIVERY_ORDER = ("export_day", "file", "row")


def staged_crm_files(staging_root: Path) -> list[str]:
    """The committed `accepted.parquet` of every CRM source's staged day (what
    `read_staged_crm` reads)."""
    return staged_accepted_files(staging_root, CRM_SOURCES)


def latest_crm_records(staged: DataFrame) -> DataFrame:
    """One row per (system, record_id): its latest delivery."""
    return latest_by(staged, ("system", "record_id"), CRM_DELIVERY_ORDER)


def crm_evidence_on_spark(spark: SparkSession, staging_root: Path, region: str) -> DataFrame | None:
    """`crm_evidence(read_staged_crm(staging_root), region)` as a Spark frame (rows in no
    particular order); None when no CRM day is staged."""
    files = staged_crm_files(staging_root)
    if not files:
        return None
    staged = spark.read.parquet(*files).select(*CRM_RECORD_SCHEMA)
    return per_batch(latest_crm_records(staged), functools.partial(crm_evidence, region=region))
