"""Ingest one source's export day: every file in name order, validated, with its quarantine."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from dedup.readers import FileOrigin, ReadResult, read_export_file
from dedup.schema import QUARANTINE_SCHEMA, RAW_SCHEMA, empty_quarantine, empty_raw
from dedup.validate import validate

# Source name → reader of one file. Issue "native exports" adds an adapter per source here;
# the engine after staging never changes for a new source.
READERS = {"askvault": read_export_file}
SOURCES: tuple[str, ...] = tuple(READERS)


@dataclass
class DayIngest:
    source: str
    day: str
    files: list[str]
    accepted: pl.DataFrame
    quarantine: pl.DataFrame


def day_files(exports_root: Path, source: str, day: str) -> list[Path]:
    folder = exports_root / source / day
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file())


def fingerprint(files: list[Path]) -> str:
    """Changes when a file of the day is added, removed, rewritten or touched."""
    h = hashlib.sha256()
    for p in files:
        st = p.stat()
        h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
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


def ingest_day(exports_root: Path, source: str, day: str) -> DayIngest:
    """Read and validate every file of `<exports_root>/<source>/<day>/`."""
    read = READERS[source]
    results: list[ReadResult] = []
    files = day_files(exports_root, source, day)
    for path in files:
        origin = FileOrigin(source=source, export_day=day, file=str(path.relative_to(exports_root)))
        results.append(read(path, origin))
    raw = pl.concat([r.records for r in results]) if results else empty_raw()
    accepted, rejected = validate(raw)
    quarantine = (
        pl.concat([*(r.quarantine for r in results), rejected], how="vertical")
        if results
        else empty_quarantine()
    )
    return DayIngest(source, day, [p.name for p in files], accepted, quarantine)


def write_staging(result: DayIngest, folder: Path, print_: str) -> None:
    """Write a day's staging atomically: data first, the manifest (the commit marker) last."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in (("accepted", result.accepted), ("quarantine", result.quarantine)):
        tmp = folder / f".{name}.parquet.tmp"
        frame.write_parquet(tmp)
        tmp.replace(folder / f"{name}.parquet")
    manifest = {
        "fingerprint": print_,
        "files": result.files,
        "accepted": result.accepted.height,
        "quarantined": result.quarantine.height,
    }
    tmp = folder / ".manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(folder / "manifest.json")


def staged_fingerprint(folder: Path) -> str | None:
    try:
        return json.loads((folder / "manifest.json").read_text())["fingerprint"]
    except (OSError, ValueError, KeyError):
        return None


def read_staged(staging_root: Path, kind: str) -> pl.DataFrame:
    """All committed staging files of one kind (`accepted` or `quarantine`) across sources/days."""
    paths = sorted(
        str(p.parent / f"{kind}.parquet") for p in staging_root.glob("*/*/manifest.json")
    )
    schema = RAW_SCHEMA if kind == "accepted" else QUARANTINE_SCHEMA
    if not paths:
        frame = pl.DataFrame(schema=schema)
        if kind == "accepted":
            frame = frame.with_columns(pl.col("occurred_at").cast(pl.Datetime("us", "UTC")))
        return frame
    return pl.read_parquet(paths)


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


def scrub_staging(staging_root: Path, interaction_ids: pl.Series) -> int:
    """Remove records of these interactions from every staged day (an erasure); rows removed.

    Staging is the pipeline's own copy of the exports: an erased person must not live on in it.
    Each file is rewritten atomically; the manifest stays, so the day is not re-read.
    """
    if interaction_ids.len() == 0:
        return 0
    gone = interaction_ids.implode()
    removed = 0
    for manifest in sorted(staging_root.glob("*/*/manifest.json")):
        for name in ("accepted", "quarantine"):
            path = manifest.parent / f"{name}.parquet"
            if not path.exists():
                continue
            frame = pl.read_parquet(path)
            kept = frame.filter(
                pl.col("interaction_id").is_null() | ~pl.col("interaction_id").is_in(gone)
            )
            if kept.height == frame.height:
                continue
            removed += frame.height - kept.height
            tmp = path.with_name(f".{path.name}.tmp")
            kept.write_parquet(tmp)
            tmp.replace(path)
    return removed
