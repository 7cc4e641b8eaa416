"""Run the nightly job in process, through the same Dagster jobs the code location serves."""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb

from assets.ingest import INGEST_ASSET_BY_SOURCE
from assets.names import PROPOSALS
from assets.partitions import export_days
from assets.resources import ContactsSettings
from dedup.ingest.days import orphaned_staging, stale_days
from dedup.layout import StateLayout
from pipelines.definitions import make_definitions
from pipelines.jobs import BUILD_JOB, INGEST_JOB
from quality import gx_worker


class PipelineError(RuntimeError):
    """A run that could not publish; the message is one line a person can act on."""


@dataclass
class RunSummary:
    db_path: Path
    interactions: int = 0
    contacts: int = 0
    quarantined: int = 0
    merges: int = 0
    redirects: int = 0
    ambiguous_keys: int = 0
    updates: int = 0
    pending_proposals: int = 0
    days_ingested: list[str] = field(default_factory=list)
    seconds: float = 0.0


@contextmanager
def run_lock(layout: StateLayout) -> Iterator[None]:
    """One run per published file at a time; a second one fails fast instead of interleaving."""
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    with open(layout.state_dir / "run.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PipelineError(
                f"another run is already building {layout.db_path}; try again when it finishes"
            ) from None
        fh.write(str(os.getpid()))
        fh.flush()
        yield


# In-process runs log errors only: the CLI shows its own progress; Dagster's debug stream is for the UI.
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def _instance() -> dg.DagsterInstance:
    # With DAGSTER_HOME set, CLI runs appear in the Dagster UI's run history.
    return (
        dg.DagsterInstance.get()
        if os.environ.get("DAGSTER_HOME")
        else dg.DagsterInstance.ephemeral()
    )


def _failure(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:  # type: ignore[union-attr]
                return f"check '{evaluation.check_name}' failed: {evaluation.description}"  # type: ignore[union-attr]
    for event in result.all_events:
        if event.is_step_failure:
            error = event.event_specific_data.error  # type: ignore[union-attr]
            message = (error.cause or error).message if error else "unknown error"
            return f"step '{event.step_key}' failed: {message.strip().splitlines()[-1]}"
    return "run failed"


@dataclass(frozen=True)
class IngestBatch:
    """Consecutive export days whose stale sources are the same: one ingest run."""

    sources: tuple[str, ...]
    first: str
    last: str


def ingest_batches(stale: dict[str, set[str]], partition_keys: list[str]) -> list[IngestBatch]:
    """Group stale (day → sources) into runs over ranges of consecutive partitions."""
    position = {key: i for i, key in enumerate(partition_keys)}
    batches: list[IngestBatch] = []
    for day in sorted(stale, key=position.__getitem__):
        sources = tuple(sorted(stale[day]))
        last = batches[-1] if batches else None
        if last and last.sources == sources and position[last.last] + 1 == position[day]:
            batches[-1] = IngestBatch(sources, last.first, day)
        else:
            batches.append(IngestBatch(sources, day, day))
    return batches


def run_pipeline(
    settings: ContactsSettings,
    progress: Callable[[str], None] = lambda _msg: None,
    retrain: bool = False,
) -> RunSummary:
    """Ingest changed export days, then build, check and publish. Safe to repeat."""
    started = time.perf_counter()
    exports = Path(settings.exports_dir)
    if not exports.is_dir():
        raise PipelineError(f"exports folder not found: {exports}")
    layout = StateLayout(Path(settings.db_path)).ensure()
    defs = make_definitions(settings)
    instance = _instance()
    summary = RunSummary(db_path=layout.db_path)
    partition_keys = export_days.get_partition_keys()
    valid_days = set(partition_keys)
    # The build's quality checks need GX (~8 s to import): it loads in its worker process on the
    # core that ingest leaves idle (the build job's resource would start it only after ingest).
    gx_worker.warm()
    with run_lock(layout):
        for folder in orphaned_staging(exports, layout.staging_root):
            progress(f"export day {folder.parent.name}/{folder.name} is gone; dropping its staging")
            shutil.rmtree(folder)
        stale: dict[str, set[str]] = {}
        for source, day in stale_days(exports, layout.staging_root):
            stale.setdefault(day, set()).add(source)
        for day in sorted(d for d in stale if d not in valid_days):
            # Not a partition: never read, a quarantine row says so (refused_export_paths).
            progress(
                f"export day {day} is outside the partitions (CONTACTS_PARTITIONS_START); not read"
            )
            del stale[day]
        days = sorted(stale)
        ingest = defs.resolve_job_def(INGEST_JOB)
        for batch in ingest_batches(stale, partition_keys):
            span = batch.first if batch.first == batch.last else f"{batch.first} … {batch.last}"
            progress(f"ingest {span} ({', '.join(batch.sources)})")
            # Only the sources whose files changed, over consecutive days: one run per batch.
            result = ingest.execute_in_process(
                instance=instance,
                raise_on_error=False,
                run_config=QUIET,
                tags={
                    "dagster/asset_partition_range_start": batch.first,
                    "dagster/asset_partition_range_end": batch.last,
                },
                asset_selection=[INGEST_ASSET_BY_SOURCE[s].key for s in batch.sources],
            )
            if not result.success:
                raise PipelineError(f"ingest of {span}: {_failure(result)}")
        summary.days_ingested = days
        progress("build, check and publish contacts")
        build_config = {**QUIET, "ops": {PROPOSALS: {"config": {"retrain": retrain}}}}
        result = defs.resolve_job_def(BUILD_JOB).execute_in_process(
            instance=instance, raise_on_error=False, run_config=build_config
        )
        if not result.success:
            raise PipelineError(f"nothing published; {_failure(result)}")
    _fill_counts(summary)
    summary.seconds = time.perf_counter() - started
    return summary


def _fill_counts(summary: RunSummary) -> None:
    con = duckdb.connect(str(summary.db_path), read_only=True)
    try:
        row = con.execute(
            """
            SELECT (SELECT count(*) FROM interactions), (SELECT count(*) FROM contacts),
                   (SELECT count(*) FROM quarantine), (SELECT count(*) FROM merges),
                   (SELECT count(*) FROM contact_redirects), (SELECT count(*) FROM ambiguous_keys),
                   (SELECT updates FROM pipeline_runs ORDER BY run_number DESC LIMIT 1),
                   (SELECT count(*) FROM merge_proposals WHERE status = 'pending')
            """
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    (
        summary.interactions,
        summary.contacts,
        summary.quarantined,
        summary.merges,
        summary.redirects,
        summary.ambiguous_keys,
        summary.updates,
        summary.pending_proposals,
    ) = row
