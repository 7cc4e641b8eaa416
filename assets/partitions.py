"""The daily partitions of export days, shared by ingest assets, jobs, sensors and schedules.

They start at the first export day: `CONTACTS_PARTITIONS_START` when set, else the earliest day
folder under `CONTACTS_EXPORTS_DIR` when the definitions load (a code location, or a Dagster run's
own process, which loads them again and so sees a day added since), else `FALLBACK_START`. A
start in 2020 showed a workspace with a week of exports 2,526 "missing" days in the UI (issue
23). A day folder before the start is never read: the publish step reports it in `quarantine`
(`refused_export_paths`), whatever the start.
"""

import os
from datetime import UTC, date, datetime, time
from functools import lru_cache
from pathlib import Path

import dagster as dg
import polars as pl

from dedup.ingest.days import SOURCES, refused_paths
from dedup.ingest.days import export_days as days_of

START_ENV = "CONTACTS_PARTITIONS_START"
# Nothing to discover (no exports folder named; a fresh checkout's `dg check defs`, or the
# `contacts` CLI, which names its folder per run): every day since then is a partition.
FALLBACK_START = "2020-01-01"


def first_export_day(exports: Path) -> str | None:
    """The earliest `YYYY-MM-DD` day folder of any source, or None."""
    days = [day for source in SOURCES for day in days_of(exports, source)]
    return min(days) if days else None


def partitions_start() -> str:
    given = os.environ.get(START_ENV, "").strip()
    if given:
        return given
    exports = os.environ.get("CONTACTS_EXPORTS_DIR", "").strip()
    return (first_export_day(Path(exports)) if exports else None) or FALLBACK_START


PARTITIONS_START = partitions_start()

export_days = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, end_offset=1)


def partition_keys() -> tuple[str, ...]:
    """Every export-day partition key now (today's included: `end_offset=1`).

    Dagster walks the cron schedule a day at a time to list them (about 0.04 CPU s for the
    2,533 days since `FALLBACK_START`), and one night asked four times; the list changes only when
    the UTC day does, so it is made once per day.
    """
    return _keys_on(datetime.now(UTC).date())


@lru_cache(maxsize=2)
def _keys_on(day: date) -> tuple[str, ...]:
    # Any moment of a UTC day lists the same daily partitions; noon is that day's.
    return tuple(export_days.get_partition_keys(current_time=datetime.combine(day, time(12), UTC)))


def refused_export_paths(exports: Path) -> pl.DataFrame:
    """Quarantine rows for the paths of the exports tree that are never read
    (`dedup.ingest.days.refused_paths`), day folders outside the partitions among them: whatever
    the partitions' start, such a day is reported, not a failed run."""
    return refused_paths(exports, frozenset(partition_keys()))
