"""Quality gates on the build file (blocking checks) and the nightly CSV exports."""

import shutil
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from assets.names import GROUP_PUBLISH, PUBLISHED, SNAPSHOT, WRITER_POOL
from assets.report_links import report_address, report_link
from assets.resources import ContactsSettings, QualityRunner
from dedup.service.export import ExportResult, export_contacts, export_proposals
from dedup.service.search import ContactFilter
from quality.export_checks import export_problems, read_back
from quality.gates import gate_failures, gate_metrics
from quality.gx_suites import (
    QualityReport,
    SuiteSettings,
    export_file_report,
    validate_snapshot,
)
from quality.gx_worker import Pending

CHECK_PUBLISH_GATES = "publish_gates"
CHECK_QUALITY_SUITES = "gx_quality_suites"
EXPORTS = "nightly_exports"

CONTACTS_EXPORT = "contacts.csv"
PROPOSALS_EXPORT = "merge_proposals.csv"


def _docs_dir(settings: ContactsSettings, name: str) -> Path:
    return settings.output / "quality" / name


@dg.asset_check(
    asset=SNAPSHOT,
    name=CHECK_PUBLISH_GATES,
    blocking=True,
    description=(
        "Tonight's build versus the last published run: contact count, merges and quarantined "
        "records within the configured ratios (quality.gates)."
    ),
)
def publish_gates(settings: ContactsSettings) -> dg.AssetCheckResult:
    limits = settings.gate_limits()
    con = duckdb.connect(str(settings.layout.build_path), read_only=True)
    try:
        metrics = gate_metrics(con)
    finally:
        con.close()
    reasons = gate_failures(metrics, limits)
    return dg.AssetCheckResult(
        passed=not reasons,
        description="; ".join(reasons) if reasons else None,
        metadata={
            "previous_contacts": metrics.previous_contacts or 0,
            "contacts": metrics.contacts,
            "merged_ids": metrics.merged_ids,
            "new_records": metrics.new_records,
            "new_quarantined": metrics.new_quarantined,
            "gates_applied": metrics.applies(limits),
        },
    )


@dg.asset_check(
    asset=SNAPSHOT,
    name=CHECK_QUALITY_SUITES,
    blocking=True,
    description=(
        "Great Expectations suites on the build: interactions, contacts, proposals, counts across "
        "tables and the publish gates; data docs under <output>/quality/snapshot."
    ),
)
def gx_quality_suites(settings: ContactsSettings, quality: QualityRunner) -> dg.AssetCheckResult:
    config = settings.engine_config()
    suite_settings = SuiteSettings(
        audiences=tuple(sorted({*config.audience_by_plan.values(), config.default_audience})),
        sample_rows=settings.quality_sample_rows,
    )
    limits = settings.gate_limits()
    con = duckdb.connect(str(settings.layout.build_path), read_only=True)
    try:
        metrics = gate_metrics(con)
        report = validate_snapshot(
            con,
            suite_settings,
            _docs_dir(settings, "snapshot"),
            (metrics.frame(limits), limits),
            quality.run,
        )
    finally:
        con.close()
    # Gate failures read best in the gate's own words; other failures name suite and column.
    reasons = gate_failures(metrics, limits) or [str(f) for f in report.failures[:3]]
    docs = report_address(settings, report.docs_index) if report.docs_index else ""
    return dg.AssetCheckResult(
        passed=report.success,
        description=None if report.success else f"{'; '.join(reasons)} (data docs: {docs})",
        metadata={
            "failures": len(report.failures),
            "seconds": round(report.seconds, 2),
            "rows_checked": dg.MetadataValue.json(report.rows),
            "data_docs": report_link(settings, report.docs_index)
            if report.docs_index
            else dg.MetadataValue.path(""),
        },
    )


def _gx_export_check(
    settings: ContactsSettings, quality: QualityRunner, key: str, e164: frozenset[str], name: str
):
    docs = _docs_dir(settings, "exports") / name
    # GX writes its data docs beside the last ones, which stay until the export passes both
    # checks (as when GX ran only after the Polars check: a failed export keeps them).
    staged = docs.with_name(f".{name}.next")

    def _check(path: Path, expected: pl.DataFrame) -> list[str]:
        # The worker reads the file back and samples it for GX while this process checks
        # every row in Polars (quality.export_checks, what the CLI's exports run).
        report = quality.submit(
            export_file_report, path, settings.quality_sample_rows, key, e164, name, staged
        )
        try:
            problems = export_problems(read_back(path), expected, key, e164)
        except BaseException:
            _drop(report, staged)
            raise
        if problems:
            _drop(report, staged)
            return problems
        try:
            failures = [str(f) for f in report.result().failures]
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        shutil.rmtree(docs, ignore_errors=True)
        staged.rename(docs)
        return failures

    return _check


def _drop(report: Pending[QualityReport], staged: Path) -> None:
    report.discard()
    shutil.rmtree(staged, ignore_errors=True)


@dg.asset(
    name=EXPORTS,
    deps=[PUBLISHED],
    group_name=GROUP_PUBLISH,
    pool=WRITER_POOL,
    kinds={"csv"},
    description=(
        "Nightly CSV exports of every live contact and of pending merge proposals, checked "
        "(GX export suite, data docs under <output>/quality/exports/) before they replace "
        "last night's."
    ),
)
def nightly_exports(settings: ContactsSettings, quality: QualityRunner) -> dg.MaterializeResult:
    folder = settings.output / "exports"
    con = duckdb.connect(str(settings.layout.db_path), read_only=True)
    try:
        contacts: ExportResult = export_contacts(
            con,
            ContactFilter(),
            folder / CONTACTS_EXPORT,
            _gx_export_check(settings, quality, "contact_id", frozenset({"phone"}), "contacts"),
        )
        proposals = export_proposals(
            con,
            folder / PROPOSALS_EXPORT,
            _gx_export_check(
                settings,
                quality,
                "proposal_id",
                frozenset({"phone_l", "phone_r"}),
                "merge_proposals",
            ),
        )
    finally:
        con.close()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": contacts.rows,
            "contacts_csv": dg.MetadataValue.path(str(contacts.path)),
            "proposals_csv": dg.MetadataValue.path(str(proposals.path)),
            "proposals": proposals.rows,
            "seconds": round(contacts.seconds + proposals.seconds, 2),
            **{
                f"{name}_data_docs": report_link(settings, index)
                for name in ("contacts", "merge_proposals")
                if (index := _docs_dir(settings, "exports") / name / "index.html").exists()
            },
        }
    )


QUALITY_CHECKS = [publish_gates, gx_quality_suites]
EXPORT_ASSETS = [nightly_exports]
