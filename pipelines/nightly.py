"""A night's whole work, the same from `contacts run` and from Dagster's schedule.

`run_night` takes the run lock, stages the export days that are new or changed (the ingest job,
one in-process run per batch of consecutive days), drops the staging of days whose folder is
gone, then builds, checks and publishes (the build job). `contacts run` calls it directly; the
`nightly_contacts` job (one op) calls it inside a Dagster run, so the nightly schedule ingests
what landed since the last night before it builds (issue 23: a schedule that only built
published yesterday's data and succeeded).
"""

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from assets.ingest import INGEST_ASSET_BY_SOURCE
from assets.names import CLUSTERS, CONTACT_IDS, INTERACTIONS, PROFILES, PROPOSALS, SNAPSHOT
from assets.partitions import partition_keys
from assets.resources import ContactsSettings, SettingsError
from dedup import run_lock
from dedup.ingest.days import orphaned_staging, stale_days
from pipelines.graph import asset_definitions
from pipelines.jobs import BUILD_JOB, INGEST_JOB
from quality import gx_worker

NIGHTLY_JOB = "nightly_contacts"
# The tag that ties the in-process ingest and build runs to the nightly run that started them.
PARENT_TAG = "contacts/nightly_run"


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
    # Said on every run that has them: stdout of `contacts run`, the nightly op's metadata.
    warnings: list[str] = field(default_factory=list)


# In-process runs log nothing to the console: the CLI prints its own progress and one line on
# failure (a failed step's ERROR event would print its stack trace); the events, with their
# traces, are in the instance when DAGSTER_HOME is set.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def failure_line(result: dg.ExecuteInProcessResult) -> str:
    """One line saying why an in-process run failed: the failed check, else the failed step's
    error, else the run's own error (a resource that could not start)."""
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:  # type: ignore[union-attr]
                return f"check '{evaluation.check_name}' failed: {evaluation.description}"  # type: ignore[union-attr]
    for event in result.all_events:
        if event.is_step_failure or event.event_type_value == "PIPELINE_FAILURE":
            error = getattr(event.event_specific_data, "error", None)
            if error is None:
                continue
            while error.cause is not None:
                error = error.cause
            where = f"step '{event.step_key}' failed: " if event.step_key else ""
            text = error.message.strip().splitlines()
            return f"{where}{text[-1] if text else error.cls_name}"
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


@dataclass
class _Night:
    """What one night needs: the jobs over the settings, where runs are recorded, what to say."""

    settings: ContactsSettings
    instance: dg.DagsterInstance
    progress: Callable[[str], None]
    tags: dict[str, str]

    def __post_init__(self) -> None:
        self.defs = asset_definitions(self.settings)

    def drop_orphans(self) -> None:
        layout = self.settings.layout
        for folder in orphaned_staging(self.settings.exports, layout.staging_root):
            self.progress(
                f"export day {folder.parent.name}/{folder.name} is gone; dropping its staging"
            )
            shutil.rmtree(folder)

    def stale(self) -> dict[str, set[str]]:
        """Export day → sources whose files changed since they were staged (partitions only)."""
        valid = set(partition_keys())
        stale: dict[str, set[str]] = {}
        for source, day in stale_days(self.settings.exports, self.settings.layout.staging_root):
            stale.setdefault(day, set()).add(source)
        for day in sorted(d for d in stale if d not in valid):
            # Not a partition: never read, a quarantine row says so (refused_export_paths).
            self.progress(
                f"export day {day} is outside the partitions (CONTACTS_PARTITIONS_START); not read"
            )
            del stale[day]
        return stale

    def ingest(self, stale: dict[str, set[str]]) -> None:
        job = self.defs.resolve_job_def(INGEST_JOB)
        for batch in ingest_batches(stale, list(partition_keys())):
            span = batch.first if batch.first == batch.last else f"{batch.first} … {batch.last}"
            self.progress(f"ingest {span} ({', '.join(batch.sources)})")
            # Only the sources whose files changed, over consecutive days: one run per batch.
            result = job.execute_in_process(
                instance=self.instance,
                raise_on_error=False,
                run_config=QUIET,
                tags={
                    **self.tags,
                    "dagster/asset_partition_range_start": batch.first,
                    "dagster/asset_partition_range_end": batch.last,
                },
                asset_selection=[INGEST_ASSET_BY_SOURCE[s].key for s in batch.sources],
            )
            if not result.success:
                raise PipelineError(f"ingest of {span}: {failure_line(result)}")

    def build(self, retrain: bool, full: bool) -> None:
        self.progress("build, check and publish contacts" + (" (full rebuild)" if full else ""))
        # `full`: every staged day normalized again, every row auto-merged again, every cluster
        # given its id again, every profile built again, every candidate pair scored again and
        # every published table written whole, instead of only what changed since the last
        # night (issue 25).
        ops = {
            INTERACTIONS: {"config": {"full": full}},
            CLUSTERS: {"config": {"full": full}},
            CONTACT_IDS: {"config": {"full": full}},
            PROFILES: {"config": {"full": full}},
            PROPOSALS: {"config": {"retrain": retrain, "full_predict": full}},
            SNAPSHOT: {"config": {"full": full}},
        }
        config = {**QUIET, "ops": ops}
        result = self.defs.resolve_job_def(BUILD_JOB).execute_in_process(
            instance=self.instance, raise_on_error=False, run_config=config, tags=self.tags
        )
        if not result.success:
            raise PipelineError(f"nothing published; {failure_line(result)}")


def run_night(
    settings: ContactsSettings,
    instance: dg.DagsterInstance,
    progress: Callable[[str], None] = lambda _msg: None,
    retrain: bool = False,
    tags: dict[str, str] | None = None,
    keep_quality_worker: bool = False,
    full: bool = False,
) -> RunSummary:
    """Ingest changed export days, then build, check and publish. Safe to repeat.

    Holds the run lock throughout; a second run refuses with one line (`PipelineError`).
    `full` rebuilds from every staged day instead of carrying over what did not change.
    `keep_quality_worker` leaves the GX worker this night started running for the next night in
    the same process (`contacts demo`); otherwise it is stopped when the night ends.
    """
    started = time.perf_counter()
    try:
        exports, db = settings.exports, settings.db
    except SettingsError as exc:
        raise PipelineError(str(exc)) from None
    if not exports.is_dir():
        raise PipelineError(f"exports folder not found: {exports}")
    summary = RunSummary(db_path=db)
    if warning := settings.verification_warning():
        summary.warnings.append(warning)
    try:
        run_lock.acquire(db)
    except run_lock.RunLockBusy as exc:
        raise PipelineError(str(exc)) from None
    try:
        night = _Night(settings, instance, progress, tags or {})
        # The build's quality checks need GX (~8 s to import): it loads in its worker process on
        # the core that ingest leaves idle (the build job's resource would start it only later).
        owns_worker = gx_worker.warm()
        try:
            night.drop_orphans()
            stale = night.stale()
            night.ingest(stale)
            summary.days_ingested = sorted(stale)
            night.build(retrain, full)
        finally:
            if owns_worker and not keep_quality_worker:
                gx_worker.stop()
    finally:
        run_lock.release(db)
    fill_counts(summary)
    summary.seconds = time.perf_counter() - started
    return summary


def fill_counts(summary: RunSummary) -> None:
    """The published file's headline counts, into `summary`."""
    import duckdb

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


class NightConfig(dg.Config):
    retrain: bool = False  # retrain the Splink model even if the saved one still fits the data
    full: bool = False  # rebuild from every staged day (`contacts run --full`)


@dg.op(
    name="run_the_night",
    description=(
        "What `contacts run` does: stage the new or changed export days (ingest_exports, one "
        "in-process run per batch of days), then build, check and publish (build_contacts)."
    ),
)
def run_the_night(
    context: dg.OpExecutionContext, config: NightConfig, settings: ContactsSettings
) -> None:
    summary = run_night(
        settings,
        context.instance,
        progress=context.log.info,
        retrain=config.retrain,
        tags={PARENT_TAG: context.run_id},
        full=config.full,
    )
    for warning in summary.warnings:
        context.log.warning(warning)
    context.add_output_metadata(
        {
            "published_file": str(summary.db_path),
            "days_ingested": dg.MetadataValue.json(summary.days_ingested),
            "interactions": summary.interactions,
            "contacts": summary.contacts,
            "quarantined": summary.quarantined,
            "merge_proposals_pending": summary.pending_proposals,
            "identity_verification": settings.verification_state(),
        }
    )


@dg.job(
    name=NIGHTLY_JOB,
    description=(
        "The night's whole work, as `contacts run`: ingest the export days that are new or "
        "changed, then build, check and publish contacts."
    ),
    tags={"contacts/kind": "nightly"},
)
def nightly_job() -> None:
    run_the_night()
