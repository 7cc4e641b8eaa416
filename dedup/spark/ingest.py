"""Provider files → staged days, read on the executors (issue 27).

The driver lists each export day as the local ingest does (`dedup.ingest.days.day_files`: links,
private names, FIFOs and stray folders are never listed) and fingerprints the listing; only file
names cross to the cluster. A Spark frame holds one row per day (its file names) in one
partition per day, and each task runs, file by file in name order, the local engine's own
per-file function (`read_day_file`: the source's adapter, which opens every path below the
exports root without following a link, `dedup.ingest.readers.open_beneath`) and the local
`validate`, which judges each record alone, so a file validated alone gives the rows the
whole day validated at once gives. One adapter implementation serves both engines.

One output, the kinds told apart by a column (`_kind`: accepted, quarantine, skipped counts),
kept on the executors' disks (`DISK_ONLY`) and written twice, rather than two passes over the
files: reading and parsing the exports is the costly part, and a second pass would also see a
file rewritten in between. Each day's rows are in one task, so Spark writes one file per day and
kind; the driver renames them into the staging folder and writes the manifest last, the local
`write_staging` layout (same files, schema, row order and fingerprint), so every later step,
local or Spark, reads them unchanged. Nothing is shuffled but counts; the driver gets the
counts, the skipped counts and the most frequent quarantine reasons.

Memory: a task holds one file's records at a time (its rows stream to the executor's disk
before the next file is read), so the largest file bounds it, as locally
(`CONTACTS_MAX_FILE_BYTES`, whose value on the driver travels with the task).
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from dedup.ingest.adapters.base import DEFAULT_CONFIG, SourceConfig
from dedup.ingest.adapters.crm import empty_crm_records
from dedup.ingest.days import (
    SHOWN_REASONS,
    SOURCE_SPECS,
    StagedDay,
    day_files,
    empty_accepted,
    fingerprint,
    read_day_file,
    reader_for,
    write_manifest,
)
from dedup.ingest.readers import MAX_FILE_BYTES_ENV, ReadResult, max_file_bytes
from dedup.ingest.validate import validate
from dedup.layout import WORK_COMPRESSION
from dedup.schema import QUARANTINE_SCHEMA, empty_quarantine

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

ACCEPTED, QUARANTINE, SKIPPED = "accepted", "quarantine", "skipped"
# The rows' order in a staged file, as `ingest_day` concatenates them: accepted rows file by
# file; the readers' rejects of every file (phase 0) before the validation's (phase 1).
ORDER = ("staged_day", "_phase", "_file", "_seq")
_SPARK_COMPRESSION = {"lz4": "lz4_raw"}  # Polars' `lz4` is Parquet's LZ4_RAW codec
_BATCH_ROWS = 10_000


def task_schema(crm: bool) -> pl.Schema:
    """A task's rows: the day, the kind, the order, and the row of its kind (others null)."""
    accepted = empty_crm_records().schema if crm else empty_accepted().schema
    return pl.Schema(
        {
            "staged_day": pl.String(),
            "_kind": pl.String(),
            "_phase": pl.Int8(),
            "_file": pl.Int32(),
            "_seq": pl.Int64(),
            ACCEPTED: pl.Struct(accepted),
            QUARANTINE: pl.Struct(QUARANTINE_SCHEMA),
            "skipped_reason": pl.String(),
            "skipped_count": pl.Int64(),
        }
    )


@dataclass(frozen=True)
class _Task:
    """What each task needs, shipped with it: no record, only where and how to read."""

    exports_root: str
    source: str
    config: SourceConfig
    max_file_bytes: int
    schema: pl.Schema

    def file_rows(self, day: str, index: int, name: str) -> pl.DataFrame:
        """One listed file of `day` read and validated: its rows of every kind."""
        if Path(name).name != name or name in ("", ".", ".."):
            raise ValueError(f"not a file name of a day folder: {name!r}")
        root = Path(self.exports_root)
        read = reader_for(self.source, self.config)
        result = read_day_file(root, self.source, day, root / self.source / day / name, read)
        if SOURCE_SPECS[self.source].kind == "crm":
            accepted, rejected = result.records, empty_quarantine()
        else:
            accepted, rejected = validate(result.records)
        parts = [
            self._tagged(accepted, ACCEPTED, day, index, 1),
            self._tagged(result.quarantine, QUARANTINE, day, index, 0),
            self._tagged(rejected, QUARANTINE, day, index, 1),
            self._skipped(result, day, index),
        ]
        return pl.concat([p for p in parts if p.height] or [self.schema.to_frame()])

    def _tagged(
        self, rows: pl.DataFrame, kind: str, day: str, index: int, phase: int
    ) -> pl.DataFrame:
        fields = [f.name for f in self.schema[kind].fields]  # type: ignore[attr-defined]
        return self._rows(rows, kind, day, index, phase, **{kind: pl.struct(fields)})

    def _skipped(self, result: ReadResult, day: str, index: int) -> pl.DataFrame:
        counts = pl.DataFrame(
            {"reason": list(result.skipped), "count": list(result.skipped.values())},
            schema={"reason": pl.String(), "count": pl.Int64()},
        )
        return self._rows(
            counts,
            SKIPPED,
            day,
            index,
            2,
            skipped_reason=pl.col("reason"),
            skipped_count=pl.col("count"),
        )

    def _rows(
        self, frame: pl.DataFrame, kind: str, day: str, index: int, phase: int, **values: pl.Expr
    ) -> pl.DataFrame:
        """`frame`'s rows as task rows: the tags, `values`, every other column null."""
        tags = {
            "staged_day": pl.lit(day),
            "_kind": pl.lit(kind),
            "_phase": pl.lit(phase),
            "_file": pl.lit(index),
            "_seq": pl.int_range(pl.len()),
            **values,
        }
        return frame.select(
            tags.get(name, pl.lit(None)).cast(dtype).alias(name)
            for name, dtype in self.schema.items()
        )

    def run(self, batches: Iterator[pa.RecordBatch], target: pa.Schema) -> Iterator[pa.RecordBatch]:
        # The driver's file-size cap, not the executor's environment's.
        os.environ[MAX_FILE_BYTES_ENV] = str(self.max_file_bytes)
        for batch in batches:
            days = batch.column("export_day").to_pylist()
            for day, names in zip(days, batch.column("files").to_pylist(), strict=True):
                for index, name in enumerate(names):
                    rows = self.file_rows(day, index, name).to_arrow()
                    yield from rows.cast(target).to_batches(max_chunksize=_BATCH_ROWS)


def _day_list(spark: SparkSession, listed: dict[str, list[str]]) -> DataFrame:
    """One row per day (`export_day`, `files`: names in order), one partition per day: a day's
    files are read by one task, so each staged file is written by one task."""
    from pyspark.sql import functions as F

    days = list(listed)
    index = (F.col("id") + 1).cast("int")
    return spark.range(0, len(days), 1, len(days)).select(
        F.element_at(F.lit(days), index).alias("export_day"),
        F.element_at(F.lit([listed[d] for d in days]), index).alias("files"),
    )


def read_on_spark(
    spark: SparkSession,
    exports_root: Path,
    source: str,
    listed: dict[str, list[str]],
    config: SourceConfig = DEFAULT_CONFIG,
) -> DataFrame:
    """Every listed file of every day (`day → file names`, none empty) read on the executors:
    the task rows (`task_schema`), nothing collected."""
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    schema = task_schema(SOURCE_SPECS[source].kind == "crm")
    arrow = schema.to_frame().to_arrow(compat_level=pl.CompatLevel.oldest()).schema
    spark_schema = from_arrow_schema(arrow)
    target = to_arrow_schema(spark_schema, timezone="UTC")
    task = _Task(str(exports_root), source, config, max_file_bytes(), schema)
    return _day_list(spark, listed).mapInArrow(lambda it: task.run(it, target), spark_schema)


def _write_kind(rows: DataFrame, kind: str, folder: Path) -> None:
    """The rows of one kind as one Parquet file per day (`staged_day=<day>/part-….parquet`)."""
    from pyspark.sql import functions as F

    (
        rows.filter(F.col("_kind") == kind)
        .sortWithinPartitions(*ORDER)
        .select("staged_day", f"{kind}.*")
        .write.partitionBy("staged_day")
        .option("compression", _SPARK_COMPRESSION.get(WORK_COMPRESSION, WORK_COMPRESSION))
        .option("maxRecordsPerFile", 0)
        .mode("overwrite")
        .parquet(str(folder))
    )


def _place(written: Path, day: str, target: Path, empty: pl.DataFrame) -> None:
    """Spark's file of `day` (or an empty frame of the staged schema if it wrote none) as
    `target`, replaced in one rename."""
    parts = sorted((written / f"staged_day={day}").glob("part-*.parquet"))
    if len(parts) > 1:
        raise RuntimeError(f"Spark wrote {len(parts)} files for {target}, not one")
    tmp = target.with_name(f".{target.name}.tmp")
    if parts:
        parts[0].replace(tmp)
    else:
        empty.write_parquet(tmp, compression=WORK_COMPRESSION)
    tmp.replace(target)


_NO_REASONS = pl.DataFrame(schema={"reason": pl.String(), "len": pl.Int64()})


@dataclass(frozen=True)
class _Counts:
    rows: dict[tuple[str, str], int]  # (day, kind) → rows
    skipped: dict[str, Counter[str]]  # day → reason → records skipped
    reasons: pl.DataFrame = field(
        default_factory=_NO_REASONS.clear
    )  # the most frequent quarantine reasons, `reason`, `len`


def _counts(rows: DataFrame) -> _Counts:
    """Rows per (day, kind), skipped counts per day and the `SHOWN_REASONS` most frequent
    quarantine reasons: two small aggregations, collected in one job."""
    from pyspark.sql import functions as F

    per_day = rows.groupBy("staged_day", "_kind", F.col("skipped_reason").alias("label")).agg(
        F.count("*").alias("n"), F.sum("skipped_count").alias("skipped")
    )
    top = (
        rows.filter(F.col("_kind") == QUARANTINE)
        .groupBy(F.col("quarantine.reason").alias("label"))
        .agg(F.count("*").alias("n"))
        .orderBy(F.col("n").desc(), "label")
        .limit(SHOWN_REASONS)
        .select(
            F.lit(None).cast("string").alias("staged_day"),
            F.lit("reason").alias("_kind"),
            "label",
            "n",
            F.lit(None).cast("long").alias("skipped"),
        )
    )
    counts: dict[tuple[str, str], int] = Counter()
    skipped: dict[str, Counter[str]] = {}
    reasons = []
    for day, kind, label, n, total in per_day.unionByName(top).collect():
        if kind == "reason":
            reasons.append((label, n))
        elif kind == SKIPPED:
            skipped.setdefault(day, Counter())[label] += total
        else:
            counts[(day, kind)] += n
    found = pl.DataFrame(reasons, schema=_NO_REASONS.schema, orient="row")
    return _Counts(counts, skipped, found)


def _write_on_spark(
    spark: SparkSession,
    exports_root: Path,
    source: str,
    read: dict[str, list[str]],
    config: SourceConfig,
    work: Path,
) -> _Counts:
    """The listed files read on Spark, each kind written under `work/<kind>/<day>`; the
    counts."""
    from pyspark import StorageLevel

    # The staged files hold Parquet's UTC instants in microseconds, as Polars writes them.
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    rows = read_on_spark(spark, exports_root, source, read, config).persist(StorageLevel.DISK_ONLY)
    try:
        for kind in (ACCEPTED, QUARANTINE):  # a kind without rows writes no file
            _write_kind(rows, kind, work / kind)
        return _counts(rows)
    finally:
        rows.unpersist()


def stage_days_on_spark(
    spark: SparkSession,
    exports_root: Path,
    source: str,
    days: list[str],
    staging_dir: Callable[[str], Path],
    config: SourceConfig = DEFAULT_CONFIG,
) -> tuple[list[StagedDay], pl.DataFrame]:
    """`dedup.ingest.days.stage_days` on Spark: each of `days` read on the executors and staged
    (data, then the manifest) as the local engine stages it. Returns what was staged per day and
    the most frequent quarantine reasons, as `staged_days_of` does for the local engine."""
    # Listed before reading: a file that lands meanwhile changes tomorrow's fingerprint.
    listed = {day: day_files(exports_root, source, day) for day in days}
    names = {day: [p.name for p in files] for day, files in listed.items()}
    counts = _Counts({}, {})
    if not days:
        return [], counts.reasons
    work = staging_dir(days[0]).parent / ".spark"  # beside the days: the files are renamed
    shutil.rmtree(work, ignore_errors=True)
    if read := {day: files for day, files in names.items() if files}:
        counts = _write_on_spark(spark, exports_root, source, read, config, work)
    empty = empty_crm_records() if SOURCE_SPECS[source].kind == "crm" else empty_accepted()
    staged = []
    for day in days:
        folder = staging_dir(day)
        folder.mkdir(parents=True, exist_ok=True)
        for kind, frame in ((ACCEPTED, empty), (QUARANTINE, empty_quarantine())):
            _place(work / kind, day, folder / f"{kind}.parquet", frame)
        accepted, quarantined = (counts.rows.get((day, k), 0) for k in (ACCEPTED, QUARANTINE))
        skipped = dict(sorted(counts.skipped.get(day, Counter()).items()))
        write_manifest(folder, fingerprint(listed[day]), names[day], accepted, quarantined, skipped)
        staged.append(StagedDay(day, names[day], accepted, quarantined, skipped))
    shutil.rmtree(work, ignore_errors=True)
    return staged, counts.reasons
