"""Ingest one source's export day: every file in name order, validated, with its quarantine."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import stat
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
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
from dedup.ingest.readers import (
    FileOrigin,
    ReadResult,
    _Rejects,
    kind_of,
    read_export_file,
    unreadable,
)
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


@dataclass(frozen=True)
class StagedDay:
    """What is reported of one staged day: its files and counts, no record (either engine)."""

    day: str
    files: list[str]
    accepted: int
    quarantined: int
    skipped: dict[str, int]


# Quarantine reasons an ingest asset shows, the most frequent first.
SHOWN_REASONS = 20


def staged_days_of(results: Iterable[DayIngest]) -> tuple[list[StagedDay], pl.DataFrame]:
    """The days `stage_days` staged, and their `SHOWN_REASONS` most frequent quarantine reasons
    (`reason`, `len`)."""
    days, reasons = [], []
    for r in results:
        days.append(StagedDay(r.day, r.files, r.accepted.height, r.quarantine.height, r.skipped))
        reasons.append(r.quarantine.select("reason"))
    counted = pl.concat([empty_quarantine().select("reason"), *reasons]).group_by("reason").len()
    return days, counted.sort("len", descending=True).head(SHOWN_REASONS)


# --- what is read, what is refused --------------------------------------------------------------
#
# The exports tree is read as `<source>/<YYYY-MM-DD>/<file>` (and, for Slack, export folders in a
# day). Nothing in it is followed if it is a symlink, and only regular files are opened: a link
# to `/proc/self/environ` or to the state folder's salt must not reach the published
# `quarantine.raw`. Every other entry is reported, never dropped without a word: `refused_paths`
# gives one quarantine row per odd path (row, raw and interaction id null). Names starting with
# `.` are private and left alone without a row (upload temp files, `.DS_Store`), and so are
# names starting with `_` directly in the exports root (the generator's `_truth` answers,
# Spark-style `_SUCCESS` markers): never a source, never records.


def _private(name: str, top: bool = False) -> bool:
    return name.startswith((".", "_") if top else ".")


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except OSError:  # vanished meanwhile, or a path component is not a folder any more
        return None


def _real_dir(path: Path) -> bool:
    """A folder, not a symlink to one."""
    st = _lstat(path)
    return st is not None and stat.S_ISDIR(st.st_mode)


def _refusal(st: os.stat_result, shown: str) -> str | None:
    """Why an entry is never opened (a symlink, a FIFO, a device), or None for a regular file
    or a folder."""
    if stat.S_ISLNK(st.st_mode):
        return f"symlink not followed: {shown}"
    if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        return None
    return f"not a regular file ({kind_of(st.st_mode)}): {shown}"


def _entries(folder: Path, top: bool = False) -> list[tuple[Path, os.stat_result]]:
    """The folder's public entries with their own `lstat`, in name order (none if it is gone);
    `top`: the exports root, where `_` names are private too."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    out = []
    for name in names:
        st = None if _private(name, top) else _lstat(folder / name)
        if st is not None:
            out.append((folder / name, st))
    return out


def day_files(exports_root: Path, source: str, day: str) -> list[Path]:
    """The day's inputs in name order: regular files, and for folder sources (Slack) export
    folders. Symlinks, FIFOs, devices and other sub-folders are never read (`refused_paths`
    reports them)."""
    folder = exports_root / source / day
    if not (_real_dir(exports_root / source) and _real_dir(folder)):
        return []
    spec = SOURCE_SPECS.get(source)
    folders = spec is not None and spec.folders
    return [
        p
        for p, st in _entries(folder)
        if stat.S_ISREG(st.st_mode) or (folders and stat.S_ISDIR(st.st_mode))
    ]


def fingerprint(files: list[Path]) -> str:
    """Changes when a file of the day is added, removed, rewritten or touched.

    An export folder counts with every file inside it: a folder's own mtime does not change
    when a file deep inside it is rewritten. Nothing is followed (`lstat`): a symlink or FIFO
    counts as itself. A listed file gone meanwhile counts as gone, so the day is read again
    next time. (Regular files hash as they always did: an upgrade re-reads no day.)
    """
    h = hashlib.sha256()
    for p in files:
        for m in _folder_members(p) if _real_dir(p) else [p]:
            name = p.name if m == p else f"{p.name}/{m.relative_to(p).as_posix()}"
            st = _lstat(m)
            if st is None:
                state = "gone"
            elif stat.S_ISREG(st.st_mode):
                state = f"{st.st_size}\0{st.st_mtime_ns}"
            else:
                state = f"{kind_of(st.st_mode)}\0{st.st_size}\0{st.st_mtime_ns}"
            h.update(f"{name}\0{state}\n".encode())
    return h.hexdigest()


def _folder_members(folder: Path) -> list[Path]:
    """Every file below an export folder (and every symlink or other non-folder entry, which
    is never followed), hidden names left out."""
    out = []
    for top, dirs, names in os.walk(folder):  # followlinks=False: a linked folder is not entered
        out.extend(Path(top) / n for n in names if not n.startswith("."))
        out.extend(
            Path(top) / d for d in dirs if not d.startswith(".") and not _real_dir(Path(top) / d)
        )
    return sorted(out)


def export_days(exports_root: Path, source: str) -> list[str]:
    """Day folders (YYYY-MM-DD, real folders, not links) present for a source, sorted."""
    folder = exports_root / source
    if not _real_dir(folder):
        return []
    return [p.name for p, st in _entries(folder) if stat.S_ISDIR(st.st_mode) and _is_day(p.name)]


def _is_day(name: str) -> bool:
    from datetime import date

    try:
        date.fromisoformat(name)
    except ValueError:
        return False
    return len(name) == 10


def refused_paths(exports_root: Path, partitions: Collection[str] | None = None) -> pl.DataFrame:
    """One quarantine row per path of the exports tree that is not read, with the reason.

    Unknown source folders and files outside a source folder, files directly under a source
    folder, folders not named `YYYY-MM-DD` (and, given the export-day `partitions`, day folders
    outside them), sub-folders of a day (except Slack export folders), symlinks anywhere and
    non-regular files. Folders that are not read are one row each, not walked. Inside a Slack
    export folder the adapter reports its own (`base.read_export_folder`).
    """
    rows: list[dict[str, object]] = []

    def add(path: Path, reason: str, source: str | None = None, day: str | None = None) -> None:
        rows.append(
            {
                "source": source,
                "export_day": day,
                "file": path.relative_to(exports_root).as_posix(),
                "row": None,
                "reason": reason,
                "raw": None,
                "interaction_id": None,
            }
        )

    for path, st in _entries(exports_root, top=True):
        shown = path.name
        if refusal := _refusal(st, shown):
            add(path, refusal)
        elif not stat.S_ISDIR(st.st_mode):
            add(path, f"ignored path: file outside any source folder: {shown}")
        elif path.name not in SOURCE_SPECS:
            known = ", ".join(SOURCES)
            add(path, f"ignored path: unknown source folder '{shown}' (known: {known})")
        else:
            _refused_in_source(path, partitions, add)
    return pl.DataFrame(rows, schema=QUARANTINE_SCHEMA)


def _refused_in_source(folder: Path, partitions: Collection[str] | None, add) -> None:
    source = folder.name
    first, last = (min(partitions), max(partitions)) if partitions else ("", "")
    for path, st in _entries(folder):
        shown = f"{source}/{path.name}"
        if refusal := _refusal(st, shown):
            add(path, refusal, source)
        elif not stat.S_ISDIR(st.st_mode):
            add(
                path,
                f"ignored path: file directly under the source folder: {shown} "
                f"(export files go in {source}/YYYY-MM-DD/)",
                source,
            )
        elif not _is_day(path.name):
            add(path, f"ignored path: folder not named YYYY-MM-DD: {shown}", source)
        elif partitions is not None and path.name not in partitions:
            add(
                path,
                f"ignored path: export day {path.name} is outside the export-day partitions "
                f"({first} … {last}; CONTACTS_PARTITIONS_START sets the first): not read",
                source,
                path.name,
            )
        else:
            _refused_in_day(path, source, add)


def _refused_in_day(folder: Path, source: str, add) -> None:
    folders = SOURCE_SPECS[source].folders
    for path, st in _entries(folder):
        shown = f"{source}/{folder.name}/{path.name}"
        if refusal := _refusal(st, shown):
            add(path, refusal, source, folder.name)
        elif stat.S_ISDIR(st.st_mode) and not folders:
            add(path, f"ignored path: sub-folder of an export day: {shown}", source, folder.name)


def reader_for(source: str, config: SourceConfig = DEFAULT_CONFIG) -> Callable[..., ReadResult]:
    spec = SOURCE_SPECS[source]
    return functools.partial(spec.read, config=config) if spec.configured else spec.read


def ingest_day(
    exports_root: Path,
    source: str,
    day: str,
    config: SourceConfig = DEFAULT_CONFIG,
    files: list[Path] | None = None,
) -> DayIngest:
    """Read and validate every file of `<exports_root>/<source>/<day>/` (or the `files` listed
    from it earlier).

    Interaction sources yield validated canonical records; CRM sources yield CRM records
    (`dedup.ingest.adapters.crm.CRM_RECORD_SCHEMA`), checked by their adapter.
    """
    read = reader_for(source, config)
    crm = SOURCE_SPECS[source].kind == "crm"
    files = day_files(exports_root, source, day) if files is None else files
    results = [read_day_file(exports_root, source, day, path, read) for path in files]
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


def read_day_file(
    exports_root: Path, source: str, day: str, path: Path, read: Callable[..., ReadResult]
) -> ReadResult:
    """One listed file (or export folder) of a day through its source's reader (`reader_for`):
    what `ingest_day` does per file, and what each Spark task does (`dedup.spark.ingest`)."""
    origin = FileOrigin(source=source, export_day=day, file=str(path.relative_to(exports_root)))
    try:
        return read(path, origin)
    except OSError as exc:
        # The file vanished or broke after the listing (an adapter that reads the path once
        # more, e.g. `mailbox`): that file is quarantined, the day and the run go on.
        return _unreadable(origin, exc, SOURCE_SPECS[source].kind == "crm")


def _unreadable(origin: FileOrigin, exc: OSError, crm: bool) -> ReadResult:
    rejects = _Rejects(origin)
    rejects.add(None, unreadable(exc), None)
    return ReadResult(empty_crm_records() if crm else empty_raw(), rejects.frame())


def write_staging(result: DayIngest, folder: Path, print_: str) -> None:
    """Write a day's staging atomically: data first, the manifest (the commit marker) last."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in (("accepted", result.accepted), ("quarantine", result.quarantine)):
        tmp = folder / f".{name}.parquet.tmp"
        frame.write_parquet(tmp, compression=WORK_COMPRESSION)
        tmp.replace(folder / f"{name}.parquet")
    write_manifest(
        folder,
        print_,
        result.files,
        result.accepted.height,
        result.quarantine.height,
        result.skipped,
    )


def write_manifest(
    folder: Path,
    print_: str,
    files: list[str],
    accepted: int,
    quarantined: int,
    skipped: dict[str, int],
) -> None:
    """A staged day's commit marker, written (atomically) after its data files."""
    manifest = {
        "fingerprint": print_,
        "files": files,
        "accepted": accepted,
        "quarantined": quarantined,
        "skipped": skipped,
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
        result = ingest_day(exports_root, source, day, config, listed)
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
    if not paths:
        return empty_accepted() if kind == "accepted" else empty_quarantine()
    return pl.read_parquet(paths)


def empty_accepted() -> pl.DataFrame:
    """What `read_staged(..., "accepted")` gives when nothing is staged: staging stores
    `occurred_at` parsed, as a UTC timestamp."""
    frame = pl.DataFrame(schema=RAW_SCHEMA)
    return frame.with_columns(pl.col("occurred_at").cast(pl.Datetime("us", "UTC")))


def staged_accepted_files(staging_root: Path, sources: Collection[str]) -> list[str]:
    """The committed (`manifest.json` written last) `accepted.parquet` of every staged day of
    `sources`, sorted."""
    return sorted(
        str(p.parent / "accepted.parquet")
        for p in staging_root.glob("*/*/manifest.json")
        if p.parent.parent.name in sources
    )


def read_staged_crm(staging_root: Path) -> pl.DataFrame:
    """Every staged CRM record, the latest delivery of each (system, record id) only."""
    paths = staged_accepted_files(staging_root, CRM_SOURCES)
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
        source = exports_root / folder.parent.name
        if not (_real_dir(source) and _real_dir(source / folder.name)):
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
