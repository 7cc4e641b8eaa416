"""Read one canonical export file into a raw frame plus the records it had to reject.

Reading is forgiving about shape and strict about content: every value becomes text (or a list of
text) here, and `validate.py` decides in one vectorised pass what is acceptable. A record that cannot
even be read (bad JSON, wrong field count, bytes that are not UTF-8, a file that is not what its
name says) becomes a quarantine row with the file, the 1-based row and the reason; the rest of the
file is still read.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import stat
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from dedup.ingest.fast_readers import csv_fast, jsonl_fast
from dedup.schema import (
    CANONICAL_FIELDS,
    JSON_FIELDS,
    LIST_FIELDS,
    MAX_RAW_CHARS,
    MAX_RECORD_BYTES,
    QUARANTINE_SCHEMA,
    RAW_SCHEMA,
    REQUIRED_FIELDS,
    TEXT_FIELDS,
    empty_raw,
)

SUPPORTED_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".parquet")


@dataclass(frozen=True)
class FileOrigin:
    """Where a file came from; stamped on every row it yields."""

    source: str
    export_day: str
    file: str  # path relative to the exports root, as shown to people


@dataclass
class ReadResult:
    records: pl.DataFrame
    quarantine: pl.DataFrame
    # Input read and deliberately left out (not an error, so not quarantined), by reason:
    # e.g. WhatsApp status updates, Slack bots, auto-replies. Reported per day in Dagster.
    skipped: dict[str, int] = field(default_factory=dict)


class _Rejects:
    """Collects quarantine rows for one file."""

    def __init__(self, origin: FileOrigin) -> None:
        self.origin = origin
        self.rows: list[dict[str, object]] = []

    def add(
        self,
        row: int | None,
        reason: str,
        raw: str | bytes | None,
        interaction_id: str | None = None,
    ) -> None:
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", errors="backslashreplace")
        self.rows.append(
            {
                "source": self.origin.source,
                "export_day": self.origin.export_day,
                "file": self.origin.file,
                "row": row,
                "reason": reason,
                "raw": None if raw is None else raw[:MAX_RAW_CHARS],
                "interaction_id": interaction_id,
            }
        )

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.rows, schema=QUARANTINE_SCHEMA)


# --- opening export files --------------------------------------------------------------------

# Bytes one export file may yield once decompressed (a gzip file inflated, a Slack export's
# members together); over it the file is quarantined unread. Why 512 MiB: a whole day of the 10M
# benchmark (1M records; JSON lines take ~286 bytes a record, measured on a 20k generated sample)
# is ~290 MB if delivered as one file, and the cap leaves that 1.8x room. Reading a file costs
# several times its size at peak (bytes, split lines, parsed objects; a 1 GiB file took 9.8 GB)
# and two days are read side by side, so the cap is also what bounds ingest memory: a 1 MB gzip
# inflating to 1 GiB stops at 512 MiB after 1.6 s instead of taking 115 s and 9.8 GB. Raise it
# (the variable below) for larger daily files, on a machine with ~10x that memory free.
MAX_FILE_BYTES_ENV = "CONTACTS_MAX_FILE_BYTES"
DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024
_CHUNK = 1024 * 1024


def max_file_bytes() -> int:
    """The decompressed-size cap in force (`CONTACTS_MAX_FILE_BYTES`, else the default)."""
    text = os.environ.get(MAX_FILE_BYTES_ENV, "").strip().replace("_", "")
    try:
        value = int(text) if text else DEFAULT_MAX_FILE_BYTES
    except ValueError:
        raise ValueError(f"{MAX_FILE_BYTES_ENV} must be a number of bytes, not {text!r}") from None
    if value <= 0:
        raise ValueError(f"{MAX_FILE_BYTES_ENV} must be positive, not {value}")
    return value


class RefusedFile(Exception):
    """An export path the readers will not read: a symlink, not a regular file, or over the cap.

    `reason` is the quarantine reason; no byte of the file has been read when it is raised.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def too_large(limit: int, what: str = "file") -> str:
    return f"{what} inflates past {limit:,} bytes ({MAX_FILE_BYTES_ENV}); not read"


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words (`not a regular file: fifo`)."""
    for test, name in (
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISDIR, "folder"),
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return name
    return "special file"


_NOFOLLOW = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)


def open_component(name: str, flags: int, dir_fd: int | None, shown: str) -> int:
    """`os.open` of one path component that refuses to follow it if it is a symlink."""
    try:
        return os.open(name, flags | _NOFOLLOW, dir_fd=dir_fd)
    except OSError as exc:
        # O_NOFOLLOW on a symlink fails with ELOOP (Linux, macOS) or EMLINK (FreeBSD), and with
        # ENOTDIR when a folder was asked for (O_DIRECTORY is checked on the link itself).
        if exc.errno in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR) and _is_link(name, dir_fd):
            raise RefusedFile(f"symlink not followed: {shown}") from None
        raise


def _is_link(name: str, dir_fd: int | None) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def open_regular(name: str, dir_fd: int | None, shown: str) -> int:
    """Open a regular file for reading (no symlink, no FIFO, device or socket).

    Non-blocking, so a FIFO does not hang the run; it is refused after `fstat`, before any
    byte is read. The descriptor is blocking again when returned."""
    fd = open_component(name, os.O_RDONLY | os.O_NONBLOCK, dir_fd, shown)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise RefusedFile(f"not a regular file ({kind_of(mode)}): {shown}")
    os.set_blocking(fd, True)
    return fd


def open_beneath(path: Path, depth: int = 1, directory: bool = False) -> int:
    """Open `path` (a regular file, or a folder when `directory`), following no symlink in its
    last `depth` components: the part below the exports root (the root itself may be a link).

    Each component is opened relative to the one before (`dir_fd`), so a folder swapped for a
    symlink between listing and reading cannot lead out of the root.
    """
    parts = path.parts
    depth = max(1, min(depth, len(parts)))  # all of a relative path under "." (exports = cwd)
    shown = "/".join(parts[-depth:])
    fd = os.open(Path(*parts[:-depth]), _DIRECTORY)
    try:
        for name in parts[-depth:-1]:
            inner = open_component(name, _DIRECTORY, fd, shown)
            os.close(fd)
            fd = inner
        if directory:
            return open_component(parts[-1], _DIRECTORY, fd, shown)
        return open_regular(parts[-1], fd, shown)
    finally:
        os.close(fd)


def read_capped(
    stream, limit: int, what: str = "file", head: bytes = b"", cap: int | None = None
) -> bytes:
    """`head` and then every byte of a binary stream, or `RefusedFile` once they pass `limit`
    (never more than `limit` + one chunk in memory). `cap`: the cap to name in the reason when
    `limit` is what is left of it."""
    chunks = [head]
    total = len(head)
    while chunk := stream.read(min(_CHUNK, limit + 1 - total)):
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise RefusedFile(too_large(limit if cap is None else cap, what))
    return head if len(chunks) == 1 else b"".join(chunks)


def depth_below_root(path: Path, origin: FileOrigin) -> int:
    """How many components of `path` are below the exports root (`origin.file`'s parts), or 1
    when the origin does not name the path (a reader called on its own)."""
    shown = Path(origin.file).parts
    return len(shown) if shown and path.parts[-len(shown) :] == shown else 1


def read_export_bytes(path: Path, origin: FileOrigin, limit: int | None = None) -> bytes:
    """The bytes of one export file, read without following a symlink below the exports root,
    only from a regular file, and at most `limit` (default: the cap in force).

    Raises `RefusedFile` (quarantine with its reason) or `OSError` (vanished, unreadable)."""
    limit = max_file_bytes() if limit is None else limit
    fd = open_beneath(path, depth_below_root(path, origin))
    with os.fdopen(fd, "rb", buffering=0) as fh:
        size = os.fstat(fd).st_size
        if size > limit:
            raise RefusedFile(too_large(limit))
        # One read of the size as listed (one allocation), then whatever the file grew by.
        return read_capped(fh, limit, head=fh.read(size) if size else b"")


def unreadable(exc: OSError) -> str:
    """Quarantine reason for a file that could not be opened or read."""
    if isinstance(exc, FileNotFoundError):
        return "file vanished before it was read"
    return f"cannot read file: {exc.strerror or exc}"


def format_of(path: Path) -> tuple[str, bool]:
    """Return (format, gzipped) from a file name such as `day.csv.gz`."""
    name = path.name.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    for suffix in SUPPORTED_SUFFIXES:
        if name.endswith(suffix):
            return ("jsonl" if suffix in (".ndjson", ".json") else suffix[1:]), gz
    return "", gz


def read_export_file(path: Path, origin: FileOrigin) -> ReadResult:
    """Read one canonical (`askvault`) export file. Never raises on bad content."""
    rejects = _Rejects(origin)
    fmt, gz = format_of(path)
    if not fmt:
        rejects.add(
            None, f"unsupported file type '{path.name}' (expected .jsonl, .csv or .parquet)", None
        )
        return ReadResult(empty_raw(), rejects.frame())
    limit = max_file_bytes()
    try:
        data = read_export_bytes(path, origin, limit)
    except RefusedFile as refused:
        rejects.add(None, refused.reason, None)
        return ReadResult(empty_raw(), rejects.frame())
    except OSError as exc:
        rejects.add(None, unreadable(exc), None)
        return ReadResult(empty_raw(), rejects.frame())
    damaged = False
    if gz:
        try:
            data, damaged = _gunzip(data, rejects, limit)
        except RefusedFile as refused:
            rejects.add(None, refused.reason, None)
            return ReadResult(empty_raw(), rejects.frame())
    if fmt == "jsonl":
        fast = None if damaged else jsonl_fast(data)
        if fast is None:
            frame = _read_jsonl_lines(data, rejects)
        else:
            frame, bad = fast
            if bad.height:
                lines = data.split(b"\n")
                _reject_rows(rejects, bad, lines, range(1, len(lines) + 1))
    elif fmt == "csv":
        frame = _parse_csv(data, rejects)
    else:
        frame = _parse_parquet(data, rejects)
    return ReadResult(_finish(frame, origin), rejects.frame())


def _gunzip(data: bytes, rejects: _Rejects, limit: int) -> tuple[bytes, bool]:
    """Decompressed bytes, and whether the stream was damaged; `RefusedFile` past `limit`.

    Inflated a chunk in, at most a chunk out at a time, so a small file that inflates to
    gigabytes stops at the cap instead of filling memory. Concatenated gzip members are read one
    after another, as `gzip.decompress` does.
    """
    chunks: list[bytes] = []
    total = 0
    view = memoryview(data)
    pos = 0
    try:
        while pos < len(view):
            inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
            while not inflate.eof:
                if pos >= len(view):
                    raise EOFError(
                        "Compressed file ended before the end-of-stream marker was reached"
                    )
                pending: bytes | memoryview = view[pos : pos + _CHUNK]
                pos += len(pending)
                while pending and not inflate.eof:
                    out = inflate.decompress(pending, _CHUNK)
                    pending = inflate.unconsumed_tail
                    total += len(out)
                    if total > limit:
                        raise RefusedFile(too_large(limit))
                    chunks.append(out)
            pos -= len(inflate.unused_data)  # the next member starts right after this one
            if pos < len(view) and view[pos : pos + 2] != b"\x1f\x8b":
                raise zlib.error("bytes after the gzip stream are not gzip")
    except (EOFError, zlib.error) as exc:
        # Keep what a truncated stream still yields: the good records before the cut are not lost.
        partial = b"".join(chunks)
        rejects.add(
            None, f"gzip stream is damaged ({exc}); read {len(partial)} bytes before it", None
        )
        return partial, True
    return b"".join(chunks), False


# --- JSON lines -------------------------------------------------------------------------------


def _read_jsonl_lines(data: bytes, rejects: _Rejects) -> pl.DataFrame:
    """A JSON-lines file the fast path refused as a whole (a truncated last record, a blank
    line, bytes that are not UTF-8): each line that is a JSON object is handed to the fast path,
    the others are rejected here, with the careful reader's reasons.

    The fast path then reads the salvaged lines, so one bad line no longer sends the file
    through per-record Python: on the 1M benchmark's 34,469-line file with one bad record,
    0.98-1.75 s → 0.80-1.17 s (the objects are still parsed once here, to find the bad lines).
    If the fast path still refuses them, the parsed objects go the careful way."""
    lines, objs, rows = _json_objects(data, rejects)
    if not rows:
        return _empty_frame()
    fast = jsonl_fast(b"\n".join(lines[r - 1] for r in rows) + b"\n")
    if fast is None:
        return _frame_from_columns(*_object_columns(objs, rows, rejects))
    frame, bad = fast
    # The fast path numbers the salvaged lines 1..n; the file's own line numbers replace them.
    _reject_rows(rejects, bad, lines, rows)
    line_of = pl.Series("line", rows, dtype=pl.Int64)
    return frame.with_columns(line_of.gather(frame.get_column("row") - 1).alias("row"))


def _reject_rows(
    rejects: _Rejects, bad: pl.DataFrame, lines: list[bytes], line_numbers: Sequence[int]
) -> None:
    """The fast path's rejected rows (`row`, `reason`; row n is the line `line_numbers[n - 1]`
    of the file), each with its line as the file has it."""
    for row, reason in bad.iter_rows():
        number = line_numbers[row - 1]
        line = lines[number - 1]
        rejects.add(number, reason, line, _interaction_id_of(line))


def _json_objects(data: bytes, rejects: _Rejects) -> tuple[list[bytes], list[dict], list[int]]:
    """Every line of a JSON-lines file, and the ones that are JSON objects (parsed, with their
    line numbers); oversized, unparseable and non-object lines are rejected, blank ones skipped."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    objs: list[dict] = []
    rows: list[int] = []
    for lineno, line in enumerate(lines, start=1):
        if len(line) > MAX_RECORD_BYTES:
            rejects.add(
                lineno,
                f"record too large ({len(line):,} bytes; limit {MAX_RECORD_BYTES:,})",
                line[:MAX_RAW_CHARS],
            )
            continue
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            rejects.add(lineno, _json_reason(line, exc), line)
            continue
        if not isinstance(obj, dict):
            rejects.add(lineno, f"record is a JSON {type(obj).__name__}, not an object", line)
            continue
        objs.append(obj)
        rows.append(lineno)
    return lines, objs, rows


def _parse_jsonl(data: bytes, rejects: _Rejects) -> tuple[dict[str, list], list[int]]:
    """The careful reader: per-record Python over every line (`_read_jsonl_lines` tries the
    fast path on the good lines first)."""
    _, objs, rows = _json_objects(data, rejects)
    return _object_columns(objs, rows, rejects)


def _object_columns(
    objs: list[dict], rows: list[int], rejects: _Rejects
) -> tuple[dict[str, list], list[int]]:
    columns = {f: [o.get(f) for o in objs] for f in CANONICAL_FIELDS}
    return _coerce_columns(columns, rows, rejects, lambda i: orjson.dumps(objs[i]).decode())


def _json_reason(line: bytes, exc: Exception) -> str:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return "not valid UTF-8"
    return f"invalid JSON: {str(exc).splitlines()[0][:200]}"


# --- CSV --------------------------------------------------------------------------------------


def _parse_csv(data: bytes, rejects: _Rejects) -> pl.DataFrame:
    fast = csv_fast(data)
    if fast is None:
        return _frame_from_columns(*_parse_csv_slow(data, rejects))
    header = pl.read_csv(data, n_rows=0, infer_schema=False).columns if data else []
    missing = [f for f in REQUIRED_FIELDS if f not in {h.strip() for h in header}]
    if missing:
        rejects.add(None, f"CSV header lacks required column(s): {', '.join(missing)}", None)
        return _empty_frame()
    return fast


def csv_records(
    reader: Iterator[list[str]], reject: Callable[[int, str], None]
) -> Iterator[tuple[int, list[str]]]:
    """(1-based first line, fields) of each record a `csv.reader` yields after its header.

    A malformed record (`csv.Error`) is handed to `reject(line, reason)` and skipped; reading
    goes on with the next line. Used by the canonical reader and the provider adapters alike.
    """
    start = reader.line_num + 1  # type: ignore[attr-defined]
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            reject(start, f"malformed CSV: {exc}")
            start = reader.line_num + 1  # type: ignore[attr-defined]
            continue
        line, start = start, reader.line_num + 1  # type: ignore[attr-defined]
        yield line, record


def _parse_csv_slow(data: bytes, rejects: _Rejects) -> tuple[dict[str, list], list[int]]:
    text = data.decode("utf-8", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        rejects.add(None, "CSV file has no header row", None)
        return {}, []
    header = [h.strip() for h in header]
    missing = [f for f in REQUIRED_FIELDS if f not in header]
    if missing:
        rejects.add(None, f"CSV header lacks required column(s): {', '.join(missing)}", None)
        return {}, []
    index = {name: i for i, name in enumerate(header)}
    columns: dict[str, list] = {f: [] for f in CANONICAL_FIELDS}
    rows: list[int] = []
    for line, record in csv_records(reader, lambda row, why: rejects.add(row, why, None)):
        raw = _csv_line(record)
        if not record:
            continue
        if len(record) != len(header):
            rejects.add(line, f"expected {len(header)} fields, got {len(record)}", raw)
            continue
        if any(_has_surrogates(v) for v in record):
            rejects.add(line, "not valid UTF-8", raw)
            continue
        if sum(len(v) for v in record) > MAX_RECORD_BYTES:
            rejects.add(line, f"record too large (limit {MAX_RECORD_BYTES:,} bytes)", raw)
            continue
        for f in CANONICAL_FIELDS:
            i = index.get(f)
            value = record[i] if i is not None else None
            columns[f].append(value if value != "" else None)
        rows.append(line)
    for f in LIST_FIELDS:
        columns[f] = [_split_tags(v) for v in columns[f]]
    return columns, rows


def _csv_line(record: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(record)
    return (
        buf.getvalue()
        .rstrip("\r\n")
        .encode("utf-8", "surrogateescape")
        .decode("utf-8", "backslashreplace")
    )


def _has_surrogates(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _split_tags(value: object) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [t.strip() for t in value.split(";") if t.strip()]
    return value  # type: ignore[return-value]


# --- Parquet ----------------------------------------------------------------------------------


def _parse_parquet(data: bytes, rejects: _Rejects) -> pl.DataFrame:
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        rejects.add(None, f"not a readable Parquet file: {str(exc).splitlines()[0][:200]}", None)
        return _empty_frame()
    missing = [f for f in REQUIRED_FIELDS if f not in table.column_names]
    if missing:
        rejects.add(None, f"Parquet file lacks required column(s): {', '.join(missing)}", None)
        return _empty_frame()
    source = pl.from_arrow(table.select([f for f in CANONICAL_FIELDS if f in table.column_names]))
    assert isinstance(source, pl.DataFrame)
    exprs: list[pl.Expr] = [pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("row")]
    reasons: list[pl.Expr] = []
    for f in CANONICAL_FIELDS:
        dtype = source.schema.get(f)
        col = pl.col(f)
        if dtype is None:
            exprs.append(pl.lit(None, RAW_SCHEMA[f]).alias(f))
        elif f in LIST_FIELDS:
            if dtype == pl.String:
                exprs.append(
                    col.str.split(";")
                    .list.eval(pl.element().str.strip_chars())
                    .list.eval(pl.element().filter(pl.element() != ""))
                    .alias(f)
                )
            elif isinstance(dtype, pl.List) and not dtype.inner.is_nested():
                exprs.append(col.cast(pl.List(pl.String)).alias(f))
            else:
                exprs.append(pl.lit(None, RAW_SCHEMA[f]).alias(f))
                reasons.append(
                    pl.when(col.is_not_null()).then(
                        pl.lit(f"field '{f}' must be a list of strings")
                    )
                )
        elif f in JSON_FIELDS:
            if dtype == pl.String:
                exprs.append(col.alias(f))
            else:
                # Structs and maps are rare in attributes: serialise them in Python, keys with
                # a null value dropped (a struct column gives every row every key).
                exprs.append(
                    pl.Series(
                        f,
                        [_attributes_text(v) for v in source.get_column(f).to_list()],
                        dtype=pl.String,
                    ).alias(f)
                )
        elif isinstance(dtype, pl.Datetime):
            zoned = col if dtype.time_zone else col.dt.replace_time_zone("UTC")
            exprs.append(zoned.dt.to_string("%Y-%m-%dT%H:%M:%S%.f%:z").alias(f))
        elif dtype.is_nested():
            exprs.append(pl.lit(None, pl.String).alias(f))
            kind = "list" if isinstance(dtype, (pl.List, pl.Array)) else "dict"
            reasons.append(
                pl.when(col.is_not_null()).then(pl.lit(f"field '{f}' must be text, got {kind}"))
            )
        else:
            exprs.append(col.cast(pl.String).alias(f))
    reason = pl.coalesce(reasons) if reasons else pl.lit(None, pl.String)
    frame = source.select(*exprs, reason.alias("_reason"), _row_json().alias("_raw"))
    for row, why, raw, iid in (
        frame.filter(pl.col("_reason").is_not_null())
        .select("row", "_reason", "_raw", "interaction_id")
        .iter_rows()
    ):
        rejects.add(row, why, raw, iid)
    return frame.filter(pl.col("_reason").is_null()).drop("_reason", "_raw")


def _row_json() -> pl.Expr:
    return pl.struct(pl.all()).struct.json_encode()


def _attributes_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):  # map<string, ...> arrives as key/value pairs
        value = {kv["key"]: kv["value"] for kv in value if isinstance(kv, dict) and "key" in kv}
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if v is not None}
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()


# --- shared -----------------------------------------------------------------------------------


def _coerce_columns(
    columns: dict[str, list], rows: list[int], rejects: _Rejects, raw_of
) -> tuple[dict[str, list], list[int]]:
    """Bring JSON-typed values to the raw frame's types; reject what cannot be text.

    Numbers and booleans become text (a phone delivered as a JSON number is still a phone);
    an object or list where text is expected is a schema break and is quarantined.
    """
    if not rows:
        return columns, rows
    bad: dict[int, str] = {}
    for f in TEXT_FIELDS:
        values = columns[f]
        for i, v in enumerate(values):
            if v is None or type(v) is str:
                continue
            if isinstance(v, bool):
                values[i] = "true" if v else "false"
            elif isinstance(v, (int, float)):
                values[i] = repr(v) if isinstance(v, float) else str(v)
            else:
                bad.setdefault(i, f"field '{f}' must be text, got {type(v).__name__}")
    for f in LIST_FIELDS:
        values = columns[f]
        for i, v in enumerate(values):
            if v is None:
                continue
            if isinstance(v, str):
                values[i] = _split_tags(v)
            elif isinstance(v, list) and all(type(t) is str for t in v):
                continue
            else:
                bad.setdefault(i, f"field '{f}' must be a list of strings")
    values = columns["attributes"]
    for i, v in enumerate(values):
        if v is None or type(v) is str:
            continue
        if isinstance(v, list) and v and all(isinstance(kv, tuple) and len(kv) == 2 for kv in v):
            v = dict(v)  # Parquet map<string, ...>
        try:
            values[i] = orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS, default=str).decode()
        except (TypeError, orjson.JSONEncodeError) as exc:
            bad.setdefault(i, f"attributes cannot be read: {exc}")
    if not bad:
        return columns, rows
    keep = [i for i in range(len(rows)) if i not in bad]
    for i in sorted(bad):
        iid = columns["interaction_id"][i]
        rejects.add(rows[i], bad[i], raw_of(i), iid if isinstance(iid, str) else None)
    return {f: [columns[f][i] for i in keep] for f in columns}, [rows[i] for i in keep]


def _interaction_id_of(line: bytes) -> str | None:
    try:
        value = orjson.loads(line).get("interaction_id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _frame_from_columns(columns: dict[str, list], rows: list[int]) -> pl.DataFrame:
    """Frame of the careful readers' column lists (canonical fields + row)."""
    if not rows:
        return _empty_frame()
    data = {
        f: pl.Series(f, columns[f], dtype=RAW_SCHEMA[f], strict=False) for f in CANONICAL_FIELDS
    }
    return pl.DataFrame(data).with_columns(pl.Series("row", rows, dtype=pl.Int64))


def _empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema={**{f: RAW_SCHEMA[f] for f in CANONICAL_FIELDS}, "row": pl.Int64})


def _finish(frame: pl.DataFrame, origin: FileOrigin) -> pl.DataFrame:
    """Stamp provenance and bring the frame to `RAW_SCHEMA`."""
    return frame.with_columns(
        pl.lit(origin.source).alias("source"),
        pl.lit(origin.export_day).alias("export_day"),
        pl.lit(origin.file).alias("file"),
    ).select([pl.col(c).cast(t) for c, t in RAW_SCHEMA.items()])
