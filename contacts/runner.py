"""Run the nightly job in process, through the same Dagster jobs the code location serves.

The night itself (lock, ingest of what changed, build) is `pipelines.nightly.run_night`, which
the code location's nightly job runs too; this module picks the Dagster instance the CLI records
its runs in.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import dagster as dg

from assets.resources import ContactsSettings
from pipelines.nightly import IngestBatch, PipelineError, RunSummary, ingest_batches, run_night

__all__ = ["IngestBatch", "PipelineError", "RunSummary", "ingest_batches", "run_pipeline"]


def _instance() -> dg.DagsterInstance:
    # With DAGSTER_HOME set, CLI runs appear in the Dagster UI's run history.
    return (
        dg.DagsterInstance.get()
        if os.environ.get("DAGSTER_HOME")
        else dg.DagsterInstance.ephemeral()
    )


def run_pipeline(
    settings: ContactsSettings,
    progress: Callable[[str], None] = lambda _msg: None,
    retrain: bool = False,
    keep_quality_worker: bool = False,
    full: bool = False,
) -> RunSummary:
    """Ingest changed export days, then build, check and publish. Safe to repeat."""
    return run_night(
        settings,
        _instance(),
        progress=progress,
        retrain=retrain,
        keep_quality_worker=keep_quality_worker,
        full=full,
    )
