"""The daily partitions of export days, shared by ingest assets, jobs, sensors and schedules."""

import os
from pathlib import Path

import dagster as dg
import polars as pl

from dedup.ingest.days import refused_paths

# Exports older than this are not partitions; override for a workspace with older history.
PARTITIONS_START = os.environ.get("CONTACTS_PARTITIONS_START", "2020-01-01")

export_days = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, end_offset=1)


def refused_export_paths(exports: Path) -> pl.DataFrame:
    """Quarantine rows for the paths of the exports tree that are never read
    (`dedup.ingest.days.refused_paths`), day folders outside the partitions among them: whatever
    the partitions' start, such a day is reported, not a failed run."""
    return refused_paths(exports, frozenset(export_days.get_partition_keys()))
