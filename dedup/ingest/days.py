"""Ingest one source's export day: every file in name order, validated, with its quarantine."""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from dedup.ingest.adapters.base import DEFAULT_CONFIG, SourceConfig
from dedup.ingest.adapters.crm import (
    CRM_RECORD_SCHEMA,
    empty_crm_records,
    read_hubspot,
    read_salesforce,
)
from dedup.ingest.adapters.mail import read_mail
from dedup.ingest.adapters.slack import read_slack
from dedup.ingest.adapters.sms import read_sms
from dedup.ingest.adapters.whatsapp import read_whatsapp
from dedup.ingest.readers import FileOrigin, ReadResult, read_export_file
from dedup.ingest.validate import validate
from dedup.layout import WORK_COMPRESSION
from dedup.schema import QUARANTINE_SCHEMA, RAW_SCHEMA, empty_quarantine, empty_raw


@dataclass(frozen=True)
class SourceSpec:
    """How one source's day folder is read.

    Args:
        read: reader of one file (or one export folder): `(path, origin[, config]) -> ReadResult`.
        kind: `interactions` (canonical records, validated and fed to identity) or `crm`
            (CRM records, staged apart and only linked to contacts by `dedup.snapshot.crm_links`).
        folders: a sub-folder of the day folder is one export, read as a unit (Slack).
        configured: the reader takes `config: SourceConfig` (staff domains, own addresses).
    """

    read: Callable[..., ReadResult]
    kind: str = "interactions"
    folders: bool = False
    configured: bool = False


# Source name → how to read it. Adding a source is one adapter module and one line here; the
# engine after staging never changes for a new source.
SOURCE_SPECS: dict[str, SourceSpec] = {
    "askvault": SourceSpec(read_export_file),
    "whatsapp": SourceSpec(read_whatsapp, configured=True),
    "slack": SourceSpec(read_slack, folders=True, configured=True),
    "email": SourceSpec(read_mail, configured=True),
    "sms": SourceSpec(read_sms, configured=True),
    "hubspot": SourceSpec(read_hubspot, kind="crm"),
    "salesforce": SourceSpec(read_salesforce, kind="crm"),
}
READERS = {name: spec.read for name, spec in SOURCE_SPECS.items()}
SOURCES: tuple[str, ...] = tuple(SOURCE_SPECS)
INTERACTION_SOURCES: tuple[str, ...] = tuple(
    s for s, spec in SOURCE_SPECS.items() if spec.kind == "interactions"
)
CRM_SOURCES: tuple[str, ...] = tuple(s for s, spec in SOURCE_SPECS.items() if spec.kind == "crm")


@dataclass
class DayIngest:
    source: str
    day: str
    files: list[str]
    accepted: pl.DataFrame
    quarantine: pl.DataFrame
    skipped: dict[str, int] = field(default_factory=dict)


def day_files(exports_root: Path, source: str, day: str) -> list[Path]:
    """The day's inputs in name order: files, and for folder sources (Slack) export folders."""
    folder = exports_root / source / day
    if not folder.is_dir():
        return []
    spec = SOURCE_SPECS.get(source)
    folders = spec is not None and spec.folders
    return sorted(
        p
        for p in folder.iterdir()
        if not p.name.startswith(".") and (p.is_file() or (folders and p.is_dir()))
    )


def fingerprint(files: list[Path]) -> str:
    """Changes when a file of the day is added, removed, rewritten or touched.

    An export folder counts with every file inside it: a folder's own mtime does not change
    when a file deep inside it is rewritten.
    """
    h = hashlib.sha256()
    for p in files:
        members = (
            [p]
            if not p.is_dir()
            else sorted(m for m in p.rglob("*") if m.is_file() and not m.name.startswith("."))
        )
        for m in members:
            st = m.stat()
            name = p.name if m == p else f"{p.name}/{m.relative_to(p).as_posix()}"
            h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def export_days(exports_root: Path, source: str) -> list[str]:
    """Day folders (YYYY-MM-DD) present for a source, sorted."""
    folder = exports_root / source
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and _is_day(p.name))


def _is_day(name: str) -> bool:
    from datetime import date

    try:
        date.fromisoformat(name)
    except ValueError:
        return False
    return len(name) == 10


def reader_for(source: str, config: SourceConfig = DEFAULT_CONFIG) -> Callable[..., ReadResult]:
    spec = SOURCE_SPECS[source]
    return functools.partial(spec.read, config=config) if spec.configured else spec.read


def ingest_day(
    exports_root: Path, source: str, day: str, config: SourceConfig = DEFAULT_CONFIG
) -> DayIngest:
    """Read and validate every file of `<exports_root>/<source>/<day>/`.

    Interaction sources yield validated canonical records; CRM sources yield CRM records
    (`dedup.ingest.adapters.crm.CRM_RECORD_SCHEMA`), checked by their adapter.
    """
    read = reader_for(source, config)
    crm = SOURCE_SPECS[source].kind == "crm"
    results: list[ReadResult] = []
    files = day_files(exports_root, source, day)
    for path in files:
        origin = FileOrigin(source=source, export_day=day, file=str(path.relative_to(exports_root)))
        results.append(read(path, origin))
    skipped: Counter[str] = Counter()
    for r in results:
        skipped.update(r.skipped)
    if crm:
        accepted = pl.concat([r.records for r in results]) if results else empty_crm_records()
        rejected = empty_quarantine()
    else:
        raw = pl.concat([r.records for r in results]) if results else empty_raw()
        accepted, rejected = validate(raw)
    quarantine = (
        pl.concat([*(r.quarantine for r in results), rejected], how="vertical")
        if results
        else empty_quarantine()
    )
    return DayIngest(
        source, day, [p.name for p in files], accepted, quarantine, dict(sorted(skipped.items()))
    )


def write_staging(result: DayIngest, folder: Path, print_: str) -> None:
    """Write a day's staging atomically: data first, the manifest (the commit marker) last."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in (("accepted", result.accepted), ("quarantine", result.quarantine)):
        tmp = folder / f".{name}.parquet.tmp"
        frame.write_parquet(tmp, compression=WORK_COMPRESSION)
        tmp.replace(folder / f"{name}.parquet")
    manifest = {
        "fingerprint": print_,
        "files": result.files,
        "accepted": result.accepted.height,
        "quarantined": result.quarantine.height,
        "skipped": result.skipped,
    }
    tmp = folder / ".manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(folder / "manifest.json")


# Export days staged side by side. A day is mostly Polars and DuckDB work, which releases the
# GIL, between stretches of Python (file reads, rejects); one day at a time kept about 1.2 of
# 2 cores busy. Measured on the 1M benchmark's 10 days: 8.7-10.5 s one at a time, 7.1-7.6 s two
# at a time, no faster with three. Memory: two days' records at once.
PARALLEL_DAYS = 2


def stage_days(
    exports_root: Path,
    source: str,
    days: list[str],
    staging_dir: Callable[[str], Path],
    config: SourceConfig = DEFAULT_CONFIG,
    workers: int = PARALLEL_DAYS,
) -> Iterator[DayIngest]:
    """`ingest_day` and `write_staging` for each of `days`, a few at a time; results in `days`
    order. A day is committed (its manifest written) as soon as it is read."""

    def stage(day: str) -> DayIngest:
        # Listed before reading: a file that lands meanwhile changes tomorrow's fingerprint.
        listed = day_files(exports_root, source, day)
        result = ingest_day(exports_root, source, day, config)
        write_staging(result, staging_dir(day), fingerprint(listed))
        return result

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        yield from pool.map(stage, days)


def staged_fingerprint(folder: Path) -> str | None:
    try:
        return json.loads((folder / "manifest.json").read_text())["fingerprint"]
    except (OSError, ValueError, KeyError):
        return None


def read_staged(
    staging_root: Path, kind: str, sources: tuple[str, ...] | None = None
) -> pl.DataFrame:
    """All committed staging files of one kind (`accepted` or `quarantine`) across sources/days.

    `accepted` reads the interaction sources only (CRM records have their own schema: see
    `read_staged_crm`); `quarantine` reads every source unless `sources` narrows it.
    """
    if sources is None:
        sources = INTERACTION_SOURCES if kind == "accepted" else SOURCES
    paths = sorted(
        str(p.parent / f"{kind}.parquet")
        for p in staging_root.glob("*/*/manifest.json")
        if p.parent.parent.name in sources
    )
    schema = RAW_SCHEMA if kind == "accepted" else QUARANTINE_SCHEMA
    if not paths:
        frame = pl.DataFrame(schema=schema)
        if kind == "accepted":
            frame = frame.with_columns(pl.col("occurred_at").cast(pl.Datetime("us", "UTC")))
        return frame
    return pl.read_parquet(paths)


def read_staged_crm(staging_root: Path) -> pl.DataFrame:
    """Every staged CRM record, the latest delivery of each (system, record id) only."""
    paths = sorted(
        str(p.parent / "accepted.parquet")
        for p in staging_root.glob("*/*/manifest.json")
        if p.parent.parent.name in CRM_SOURCES
    )
    if not paths:
        return empty_crm_records()
    frame = pl.read_parquet(paths).cast(CRM_RECORD_SCHEMA)  # type: ignore[arg-type]
    return frame.sort("system", "record_id", "export_day", "file", "row").unique(
        ["system", "record_id"], keep="last", maintain_order=True
    )


def stale_days(exports_root: Path, staging_root: Path) -> list[tuple[str, str]]:
    """(source, day) pairs whose export files changed since they were staged, oldest first."""
    out = []
    for source in SOURCES:
        for day in export_days(exports_root, source):
            current = fingerprint(day_files(exports_root, source, day))
            if staged_fingerprint(staging_root / source / day) != current:
                out.append((source, day))
    return sorted(out, key=lambda sd: (sd[1], sd[0]))


def orphaned_staging(exports_root: Path, staging_root: Path) -> list[Path]:
    """Staged days whose export folder is gone: their records must not live on."""
    out = []
    for manifest in sorted(staging_root.glob("*/*/manifest.json")):
        folder = manifest.parent
        if not (exports_root / folder.parent.name / folder.name).is_dir():
            out.append(folder)
    return out


def _rewrite(path: Path, keep) -> int:
    """Rewrite one staged file through `keep(frame) -> frame` atomically; rows removed."""
    if not path.exists():
        return 0
    frame = pl.read_parquet(path)
    kept = keep(frame)
    if kept.height == frame.height:
        return 0
    tmp = path.with_name(f".{path.name}.tmp")
    kept.write_parquet(tmp)
    tmp.replace(path)
    return frame.height - kept.height


def scrub_staging(staging_root: Path, interaction_ids: pl.Series) -> int:
    """Remove records of these interactions from every staged day (an erasure); rows removed.

    Staging is the pipeline's own copy of the exports: an erased person must not live on in it.
    Each file is rewritten atomically; the manifest stays, so the day is not re-read.
    """
    if interaction_ids.len() == 0:
        return 0
    gone = interaction_ids.implode()

    def keep(frame: pl.DataFrame) -> pl.DataFrame:
        if "interaction_id" not in frame.columns:  # CRM records: `scrub_crm_staging`
            return frame
        return frame.filter(
            pl.col("interaction_id").is_null() | ~pl.col("interaction_id").is_in(gone)
        )

    return sum(
        _rewrite(manifest.parent / f"{name}.parquet", keep)
        for manifest in sorted(staging_root.glob("*/*/manifest.json"))
        for name in ("accepted", "quarantine")
    )


def scrub_crm_staging(staging_root: Path, keep) -> int:
    """Rewrite every staged CRM day through `keep(records) -> records`; rows removed."""
    return sum(
        _rewrite(manifest.parent / "accepted.parquet", keep)
        for manifest in sorted(staging_root.glob("*/*/manifest.json"))
        if manifest.parent.parent.name in CRM_SOURCES
    )
