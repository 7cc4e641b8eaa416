"""Great Expectations suites over a built snapshot and over exports (GX 1.x, called directly).

GX is imported lazily (its import alone takes 8-14 s) and is handed pandas frames, because it
reads neither Polars nor DuckDB. To keep the nightly cost low on large files, each suite sees:
- for `interactions` and `contacts`, a deterministic sample of about `sample_rows` rows of the
  columns it checks (formats, sets, limits), taken by DuckDB;
- for whole-table facts (uniqueness and counts consistent across tables), one row of SQL
  aggregates over the full tables (`snapshot_counts`), which GX checks like any other frame;
- `merge_proposals` and exports in full (they are small).
Every run rewrites GX data docs (HTML) in `docs_dir` (the folder is emptied first, so pages of
old runs do not pile up; the Dagster run history keeps each run's figures), with their CDN
scripts and styles replaced by vendored copies (`quality.data_docs`), so they render offline.
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from jinja2.bccache import Bucket, BytecodeCache

from dedup.schema import CHANNELS, MAX_ATTRIBUTE_KEYS, MAX_TAGS
from quality.data_docs import make_offline
from quality.export_checks import read_back
from quality.gates import GateLimits
from quality.gx_strings import strings_for
from quality.regexes import (
    E164_OR_NEUTRALIZED_REGEX,
    E164_REGEX,
    EMAIL_REGEX,
    FORMULA_START_REGEX,
    ISO_UTC_REGEX,
)

PROPOSAL_STATUSES = ("pending", "accepted", "rejected", "superseded")


@dataclass(frozen=True)
class SuiteSettings:
    """What the suites accept. `audiences` is the set the audience map can produce."""

    audiences: tuple[str, ...]
    sample_rows: int = 200_000


@dataclass(frozen=True)
class Failure:
    suite: str
    expectation: str
    column: str | None
    unexpected: int | None
    examples: list[Any] = field(default_factory=list)

    def __str__(self) -> str:
        where = f" on {self.column}" if self.column else ""
        count = f": {self.unexpected} unexpected" if self.unexpected else ""
        sample = f" e.g. {self.examples[:3]}" if self.examples else ""
        return f"{self.suite}: {self.expectation}{where}{count}{sample}"


@dataclass
class QualityReport:
    failures: list[Failure]
    docs_index: Path | None
    seconds: float
    rows: dict[str, int]

    @property
    def success(self) -> bool:
        return not self.failures


def gx_module():
    # GX phones home unless told not to; the pipeline runs offline.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    with warnings.catch_warnings():
        # GX probes for PySpark; where it is installed (the Spark tests) it warns about pandas 3
        # on every run's console, about a backend GX does not use here.
        warnings.filterwarnings("ignore", category=FutureWarning, module="pyspark.*")
        import great_expectations as gx

    _keep_compiled_templates()
    return gx


def gates_suite(limits: GateLimits) -> list:
    """The same gates as GX expectations over `GateMetrics.frame`, for the data docs."""
    e = gx_module().expectations
    return [
        e.ExpectColumnValuesToBeBetween(
            column="contact_change", max_value=limits.max_contact_change
        ),
        e.ExpectColumnValuesToBeBetween(column="merge_share", max_value=limits.max_merge_share),
        e.ExpectColumnValuesToBeBetween(
            column="quarantine_share", max_value=limits.max_quarantine_share
        ),
    ]


class _CompiledTemplates(BytecodeCache):
    """Jinja bytecode kept in memory for the life of the process (jinja2's BytecodeCache
    protocol; buckets are keyed by the template source's checksum, so a changed template is
    compiled again).

    GX builds a new Jinja environment for every data docs page it renders, so every validation
    compiled GX's ~50 page templates again: 0.35-0.65 s of each `validate` with data docs, three
    times per nightly run (the snapshot and the two exports).
    """

    def __init__(self) -> None:
        self._code: dict[str, Any] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.code = code

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.code

    def clear(self) -> None:
        self._code.clear()


_TEMPLATES = _CompiledTemplates()


def _keep_compiled_templates() -> None:
    from great_expectations.render.view.view import DefaultJinjaView

    original = DefaultJinjaView.__init__
    if getattr(original, "keeps_compiled_templates", False):
        return

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.env.bytecode_cache = _TEMPLATES

    __init__.keeps_compiled_templates = True  # type: ignore[attr-defined]
    DefaultJinjaView.__init__ = __init__  # type: ignore[method-assign]


def _context(docs_dir: Path | None):
    gx = gx_module()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    # No default temporary docs site: GX would leave a folder in /tmp on every run.
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    if docs_dir is not None:
        shutil.rmtree(docs_dir, ignore_errors=True)
        docs_dir.mkdir(parents=True, exist_ok=True)
        context.add_data_docs_site(
            site_name="local",
            site_config={
                "class_name": "SiteBuilder",
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir.resolve()),  # GX refuses a relative one
                },
            },
        )
    return context


def snapshot_suites(settings: SuiteSettings) -> dict[str, list[Any]]:
    """Expectations per frame name (the frames come from `snapshot_frames`)."""
    e = gx_module().expectations
    return {
        "interactions": [
            e.ExpectColumnValuesToNotBeNull(column="interaction_id"),
            e.ExpectColumnValuesToBeUnique(column="interaction_id"),
            e.ExpectColumnValuesToNotBeNull(column="contact_id"),
            e.ExpectColumnValuesToNotBeNull(column="occurred_at"),
            e.ExpectColumnValuesToBeInSet(column="channel", value_set=list(CHANNELS)),
            e.ExpectColumnValuesToMatchRegex(column="phone_e164", regex=E164_REGEX),
            e.ExpectColumnValuesToMatchRegex(column="email_norm", regex=EMAIL_REGEX),
            e.ExpectColumnValuesToBeBetween(
                column="attribute_keys", min_value=0, max_value=MAX_ATTRIBUTE_KEYS
            ),
        ],
        "contacts": [
            e.ExpectColumnValuesToNotBeNull(column="contact_id"),
            e.ExpectColumnValuesToBeUnique(column="contact_id"),
            e.ExpectColumnValuesToMatchRegex(column="phone", regex=E164_REGEX),
            e.ExpectColumnValuesToMatchRegex(column="email_norm", regex=EMAIL_REGEX),
            e.ExpectColumnValuesToBeInSet(column="audience", value_set=list(settings.audiences)),
            e.ExpectColumnValuesToBeBetween(column="tag_count", min_value=0, max_value=MAX_TAGS),
            e.ExpectColumnValuesToBeBetween(
                column="attribute_keys", min_value=0, max_value=MAX_ATTRIBUTE_KEYS
            ),
            e.ExpectColumnValuesToBeBetween(column="interaction_count", min_value=1),
        ],
        "merge_proposals": [
            e.ExpectColumnValuesToNotBeNull(column="proposal_id"),
            e.ExpectColumnValuesToBeUnique(column="proposal_id"),
            e.ExpectColumnValuesToNotBeNull(column="contact_id_l"),
            e.ExpectColumnValuesToNotBeNull(column="contact_id_r"),
            e.ExpectColumnValuesToBeBetween(column="match_probability", min_value=0, max_value=1),
            e.ExpectColumnValuesToBeInSet(column="status", value_set=list(PROPOSAL_STATUSES)),
        ],
        # One row of whole-table aggregates: ids unique and counts consistent across tables.
        "snapshot_counts": [
            e.ExpectColumnPairValuesToBeEqual(
                column_A="interactions", column_B="distinct_interaction_ids"
            ),
            e.ExpectColumnPairValuesToBeEqual(column_A="contacts", column_B="distinct_contact_ids"),
            e.ExpectColumnPairValuesToBeEqual(
                column_A="interactions", column_B="interactions_counted_on_contacts"
            ),
            e.ExpectColumnPairValuesToBeEqual(
                column_A="contacts", column_B="contacts_with_interactions"
            ),
            e.ExpectColumnPairValuesToBeEqual(
                column_A="interactions", column_B="interactions_in_last_run"
            ),
            e.ExpectColumnValuesToBeBetween(column="pending_proposals_on_dead", max_value=0),
        ],
    }


COUNTS_SQL = """
SELECT
  (SELECT count(*) FROM interactions) AS interactions,
  (SELECT count(DISTINCT interaction_id) FROM interactions) AS distinct_interaction_ids,
  (SELECT count(*) FROM contacts) AS contacts,
  (SELECT count(DISTINCT contact_id) FROM contacts) AS distinct_contact_ids,
  (SELECT coalesce(sum(interaction_count), 0) FROM contacts) AS interactions_counted_on_contacts,
  (SELECT count(DISTINCT contact_id) FROM interactions) AS contacts_with_interactions,
  (SELECT interactions FROM pipeline_runs ORDER BY run_number DESC LIMIT 1)
      AS interactions_in_last_run,
  (SELECT count(*) FROM merge_proposals p WHERE status = 'pending' AND (
      p.contact_id_l NOT IN (SELECT contact_id FROM contacts)
      OR p.contact_id_r NOT IN (SELECT contact_id FROM contacts))) AS pending_proposals_on_dead
"""


def _sample(
    con: duckdb.DuckDBPyConnection, table: str, key: str, columns: str, n: int
) -> pl.DataFrame:
    """`columns` of about `n` rows of `table` (all of them up to `n`), chosen by the hash of `key`.

    The same file gives the same sample (repeatable runs), and every row of a duplicated key is
    in it or none is, so a sample still shows the duplicate. DuckDB's fixed-seed reservoir
    sample measured 10x slower at 1M interactions (4.96 s against 0.35 s): it read every column
    of every row, one thread, where this filter reads only `columns` in parallel. (The count is
    a constant in the query: as a subquery it measured 1.68 s.)
    """
    total = max(con.sql(f"SELECT count(*) FROM {table}").fetchone()[0], 1)  # type: ignore[index]
    return con.sql(f"SELECT {columns} FROM {table} WHERE hash({key}) % {total} < {int(n)}").pl()


def snapshot_frames(
    con: duckdb.DuckDBPyConnection, settings: SuiteSettings
) -> dict[str, pl.DataFrame]:
    """The frames the snapshot suites check, read from a built file."""
    n = settings.sample_rows
    attribute_keys = "coalesce(json_array_length(json_keys(attributes)), 0) AS attribute_keys"
    return {
        "interactions": _sample(
            con,
            "interactions",
            "interaction_id",
            "interaction_id, contact_id, occurred_at, channel, phone_e164, email_norm, "
            + attribute_keys,
            n,
        ),
        "contacts": _sample(
            con,
            "contacts",
            "contact_id",
            "contact_id, phone, email_norm, audience, len(tags) AS tag_count, "
            f"{attribute_keys}, interaction_count",
            n,
        ),
        "merge_proposals": con.sql(
            "SELECT proposal_id, contact_id_l, contact_id_r, match_probability, status "
            "FROM merge_proposals"
        ).pl(),
        "snapshot_counts": con.sql(COUNTS_SQL).pl(),
    }


def export_suite(frame: pl.DataFrame, key: str, e164_columns: frozenset[str]) -> list[Any]:
    """Expectations for an export read back as text (every column a string)."""
    e = gx_module().expectations
    out: list[Any] = [
        e.ExpectColumnValuesToNotBeNull(column=key),
        e.ExpectColumnValuesToBeUnique(column=key),
    ]
    for name in frame.columns:
        if name in e164_columns:
            # An E.164 number, or anything else neutralized with a leading quote.
            out.append(
                e.ExpectColumnValuesToMatchRegex(column=name, regex=E164_OR_NEUTRALIZED_REGEX)
            )
        else:
            out.append(e.ExpectColumnValuesToNotMatchRegex(column=name, regex=FORMULA_START_REGEX))
        if name.endswith(("_at", "_seen")):
            out.append(e.ExpectColumnValuesToMatchRegex(column=name, regex=ISO_UTC_REGEX))
    return out


def validate(
    frames: dict[str, pl.DataFrame],
    suites: dict[str, list[Any]],
    docs_dir: Path | None,
    prefix: str = "",
) -> QualityReport:
    """Run each suite on its frame; collect failures; write data docs into `docs_dir`."""
    started = time.perf_counter()
    gx = gx_module()
    context = _context(docs_dir)
    source = context.data_sources.add_pandas("frames")
    failures: list[Failure] = []
    for name, expectations in suites.items():
        suite_name = f"{prefix}{name}"
        batch = source.add_dataframe_asset(suite_name).add_batch_definition_whole_dataframe("all")
        suite = context.suites.add(gx.ExpectationSuite(name=suite_name))
        for expectation in expectations:
            suite.add_expectation(expectation)
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=suite_name, data=batch, suite=suite)
        )
        with strings_for(frames[name], expectations):
            result = definition.run(
                batch_parameters={"dataframe": frames[name].to_pandas()},
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5},
            )
        for r in result.results:
            if r.success:
                continue
            config = r.expectation_config
            details = r.result or {}
            failures.append(
                Failure(
                    suite=suite_name,
                    expectation=config.type,
                    column=config.kwargs.get("column") or config.kwargs.get("column_A"),
                    unexpected=details.get("unexpected_count"),
                    examples=list(details.get("partial_unexpected_list") or []),
                )
            )
    index = None
    if docs_dir is not None:
        context.build_data_docs()
        # GX's pages load their scripts from CDNs: point them at vendored copies.
        left = make_offline(docs_dir)
        if left:
            warnings.warn(
                f"data docs still load from the network: {sorted(set(left))[:3]}", stacklevel=2
            )
        index = docs_dir / "index.html"
    return QualityReport(
        failures,
        index,
        time.perf_counter() - started,
        {name: frame.height for name, frame in frames.items()},
    )


def snapshot_report(
    frames: dict[str, pl.DataFrame],
    settings: SuiteSettings,
    docs_dir: Path | None,
    limits: GateLimits | None = None,
) -> QualityReport:
    """The snapshot suites on `snapshot_frames` (plus the publish gates on `publish_gates`)."""
    suites = snapshot_suites(settings)
    if limits is not None:
        suites["publish_gates"] = gates_suite(limits)
    return validate(frames, suites, docs_dir)


def export_report(
    frame: pl.DataFrame, key: str, e164_columns: frozenset[str], name: str, docs_dir: Path | None
) -> QualityReport:
    """The export suite on one export read back as text."""
    return validate(
        {name: frame}, {name: export_suite(frame, key, e164_columns)}, docs_dir, prefix="export_"
    )


def export_file_report(
    path: Path,
    sample_rows: int,
    key: str,
    e164_columns: frozenset[str],
    name: str,
    docs_dir: Path | None,
) -> QualityReport:
    """The export suite on a written export file, read back here (in the GX worker, while the
    caller checks the same file in Polars), on a sample of `sample_rows` rows of a bigger one.
    """
    written = read_back(path)
    if written.height > sample_rows:
        written = written.sample(sample_rows, seed=42)
    return export_report(written, key, e164_columns, name, docs_dir)


def _inline(fn: Callable[..., QualityReport], *args: Any) -> QualityReport:
    return fn(*args)


def validate_snapshot(
    con: duckdb.DuckDBPyConnection,
    settings: SuiteSettings,
    docs_dir: Path | None,
    gates: tuple[pl.DataFrame, GateLimits] | None = None,
    run: Callable[..., QualityReport] = _inline,
) -> QualityReport:
    """The snapshot suites on a built file, and the publish gates on `gates` (metrics, limits).

    DuckDB reads the frames here; `run` calls `snapshot_report` on them (the quality resource
    passes its GX worker)."""
    frames = snapshot_frames(con, settings)
    limits = None
    if gates is not None:
        frames["publish_gates"], limits = gates
    return run(snapshot_report, frames, settings, docs_dir, limits)
