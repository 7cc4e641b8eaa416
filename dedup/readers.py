"""Read one canonical export file into a raw frame plus the records it had to reject.

Reading is forgiving about shape and strict about content: every value becomes text (or a list of
text) here, and `validate.py` decides in one vectorised pass what is acceptable. A record that cannot
even be read (bad JSON, wrong field count, bytes that are not UTF-8, a file that is not what its
name says) becomes a quarantine row with the file, the 1-based row and the reason; the rest of the
file is still read.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from dataclasses import dataclass
from pathlib import Path

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

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
        return ReadResult(_empty_raw(), rejects.frame())
    try:
        data = path.read_bytes()
    except OSError as exc:
        rejects.add(None, f"cannot read file: {exc.strerror or exc}", None)
        return ReadResult(_empty_raw(), rejects.frame())
    if gz:
        data = _gunzip(data, rejects)
    if fmt == "jsonl":
        columns, rows = _parse_jsonl(data, rejects)
    elif fmt == "csv":
        columns, rows = _parse_csv(data, rejects)
    else:
        columns, rows = _parse_parquet(data, rejects)
    return ReadResult(_to_raw_frame(columns, rows, origin), rejects.frame())


def _gunzip(data: bytes, rejects: _Rejects) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        # Keep what a truncated stream still yields: the good records before the cut are not lost.
        out = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            partial = out.decompress(data)
        except zlib.error:
            partial = b""
        rejects.add(
            None, f"gzip stream is damaged ({exc}); read {len(partial)} bytes before it", None
        )
        return partial


# --- JSON lines -------------------------------------------------------------------------------


def _parse_jsonl(data: bytes, rejects: _Rejects) -> tuple[dict[str, list], list[int]]:
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
    columns = {f: [o.get(f) for o in objs] for f in CANONICAL_FIELDS}
    return _coerce_columns(columns, rows, rejects, lambda i: orjson.dumps(objs[i]).decode())


def _json_reason(line: bytes, exc: Exception) -> str:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return "not valid UTF-8"
    return f"invalid JSON: {str(exc).splitlines()[0][:200]}"


# --- CSV --------------------------------------------------------------------------------------


def _parse_csv(data: bytes, rejects: _Rejects) -> tuple[dict[str, list], list[int]]:
    fast = _parse_csv_fast(data)
    if fast is not None:
        missing = [f for f in REQUIRED_FIELDS if f not in fast.columns]
        if missing:
            rejects.add(None, f"CSV header lacks required column(s): {', '.join(missing)}", None)
            return {}, []
        rows = list(range(2, fast.height + 2))
        columns = {
            f: (fast.get_column(f).to_list() if f in fast.columns else [None] * fast.height)
            for f in CANONICAL_FIELDS
        }
        for f in LIST_FIELDS:
            columns[f] = [_split_tags(v) for v in columns[f]]
        return columns, rows
    return _parse_csv_slow(data, rejects)


def _parse_csv_fast(data: bytes) -> pl.DataFrame | None:
    """Polars fast path; None when the file needs the careful reader.

    The careful reader is needed when bytes are not UTF-8, when rows are ragged, or when a quoted
    field spans lines (then a record's row number is not its index + 2).
    """
    try:
        data.decode("utf-8")
        frame = pl.read_csv(data, infer_schema=False, raise_if_empty=False)
    except (UnicodeDecodeError, pl.exceptions.PolarsError):
        return None
    body_lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1) - 1
    if frame.height != body_lines:
        return None
    return frame.with_columns(pl.all().replace("", None))


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
    start = reader.line_num + 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rejects.add(start, f"malformed CSV: {exc}", None)
            start = reader.line_num + 1
            continue
        line, start = start, reader.line_num + 1
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


def _parse_parquet(data: bytes, rejects: _Rejects) -> tuple[dict[str, list], list[int]]:
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        rejects.add(None, f"not a readable Parquet file: {str(exc).splitlines()[0][:200]}", None)
        return {}, []
    missing = [f for f in REQUIRED_FIELDS if f not in table.column_names]
    if missing:
        rejects.add(None, f"Parquet file lacks required column(s): {', '.join(missing)}", None)
        return {}, []
    columns: dict[str, list] = {}
    for f in CANONICAL_FIELDS:
        if f not in table.column_names:
            columns[f] = [None] * table.num_rows
            continue
        col = table.column(f)
        if pa.types.is_timestamp(col.type):
            series = pl.from_arrow(col)
            if series.dtype.time_zone is None:  # type: ignore[union-attr]
                series = series.dt.replace_time_zone("UTC")
            columns[f] = series.dt.to_string("%Y-%m-%dT%H:%M:%S%.f%:z").to_list()
        elif f in JSON_FIELDS and (pa.types.is_struct(col.type) or pa.types.is_map(col.type)):
            columns[f] = col.to_pylist()  # dicts or key/value pairs; serialised below
        else:
            columns[f] = col.to_pylist()
    rows = list(range(1, table.num_rows + 1))
    return _coerce_columns(columns, rows, rejects, lambda i: _row_text(columns, i))


def _row_text(columns: dict[str, list], i: int) -> str:
    return orjson.dumps(
        {f: columns[f][i] for f in columns}, default=str, option=orjson.OPT_NON_STR_KEYS
    ).decode()


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


def _to_raw_frame(columns: dict[str, list], rows: list[int], origin: FileOrigin) -> pl.DataFrame:
    if not rows:
        return _empty_raw()
    data = {
        f: pl.Series(f, columns[f], dtype=RAW_SCHEMA[f], strict=False) for f in CANONICAL_FIELDS
    }
    n = len(rows)
    return (
        pl.DataFrame(data)
        .with_columns(
            pl.lit(origin.source).alias("source"),
            pl.lit(origin.export_day).alias("export_day"),
            pl.lit(origin.file).alias("file"),
            pl.Series("row", rows, dtype=pl.Int64),
        )
        .select(list(RAW_SCHEMA))
        if n
        else _empty_raw()
    )


def _empty_raw() -> pl.DataFrame:
    return pl.DataFrame(schema=RAW_SCHEMA)
