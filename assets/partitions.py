"""The daily partitions of export days, shared by ingest assets, jobs, sensors and schedules."""

import os

import dagster as dg

# Exports older than this are not partitions; override for a workspace with older history.
PARTITIONS_START = os.environ.get("CONTACTS_PARTITIONS_START", "2020-01-01")

export_days = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, end_offset=1)
