"""Vectorised fast paths for well-formed export files.

Each returns the file as a frame of canonical fields plus `row`, and a frame of rejected rows
(`row`, `reason`), or None when the file needs the careful per-record reader in `readers.py`
(bad JSON somewhere, ragged CSV, bytes that are not UTF-8, a quoted field spanning lines).
Both paths give the same values and the same reasons; `tests/test_readers.py` runs every
case through both.
"""

from __future__ import annotations

import io

import duckdb
import polars as pl

from dedup.schema import LIST_FIELDS, MAX_RECORD_BYTES, TEXT_FIELDS

_NESTED_NAMES = {"OBJECT": "dict", "ARRAY": "list"}


def _line_count_if_plain(data: bytes) -> int | None:
    """Number of lines when every line is a record (no blank line, none over the size limit)."""
    if not data or data.startswith(b"\n") or b"\n\n" in data or b"\n\r\n" in data:
        return None
    body = data[:-1] if data.endswith(b"\n") else data
    lines = body.split(b"\n")
    if max(map(len, lines)) > MAX_RECORD_BYTES:
        return None
    return len(lines)


def _json_text_sql(f: str) -> tuple[str, str]:
    """(value, reason) SQL for a text field read as JSON: strings as is, scalars as text."""
    t = f"json_type({f})"
    value = (
        f"CASE WHEN {f} IS NULL OR {t} IN ('NULL', 'OBJECT', 'ARRAY') THEN NULL "
        f"WHEN {t} = 'VARCHAR' THEN {f} ->> '$' ELSE {f}::VARCHAR END AS {f}"
    )
    reason = (
        f"CASE WHEN {t} = 'OBJECT' THEN 'field ''{f}'' must be text, got dict' "
        f"WHEN {t} = 'ARRAY' THEN 'field ''{f}'' must be text, got list' END"
    )
    return value, reason


def _json_list_sql(f: str) -> tuple[str, str]:
    """(value, reason) SQL for a tag list: a JSON array of strings or a `;`-separated string."""
    t = f"json_type({f})"
    all_text = (
        f"coalesce(list_bool_and(list_transform(json_type({f}, '$[*]'), x -> x = 'VARCHAR')), true)"
    )
    split = (
        f"list_filter(list_transform(string_split({f} ->> '$', ';'), x -> trim(x)), x -> x <> '')"
    )
    value = (
        f"CASE WHEN {t} = 'ARRAY' AND {all_text} THEN ({f} ->> '$[*]') "
        f"WHEN {t} = 'VARCHAR' THEN {split} END AS {f}"
    )
    reason = (
        f"CASE WHEN {f} IS NOT NULL AND {t} <> 'NULL' AND NOT ({t} = 'VARCHAR' "
        f"OR ({t} = 'ARRAY' AND {all_text})) THEN 'field ''{f}'' must be a list of strings' END"
    )
    return value, reason


def jsonl_fast(data: bytes) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """Read a JSON-lines file's (decompressed) bytes with DuckDB's JSON reader, every field typed
    JSON so that a string, a number and an object stay distinguishable; None if any line is not
    a JSON object.

    DuckDB reads the bytes the caller read and checked, never the file by its name again: a name
    swapped for a symlink meanwhile cannot lead it out of the exports root, and a gzip file is
    inflated once, under the size cap (`readers.max_file_bytes`)."""
    n_lines = _line_count_if_plain(data)
    if n_lines is None:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    fields = [*TEXT_FIELDS, *LIST_FIELDS, "attributes"]
    columns = dict.fromkeys(fields, "JSON")
    selects, reasons = [], []
    for f in TEXT_FIELDS:
        v, r = _json_text_sql(f)
        selects.append(v)
        reasons.append(r)
    for f in LIST_FIELDS:
        v, r = _json_list_sql(f)
        selects.append(v)
        reasons.append(r)
    selects.append(
        "CASE WHEN attributes IS NULL OR json_type(attributes) = 'NULL' THEN NULL "
        "WHEN json_type(attributes) = 'VARCHAR' THEN attributes ->> '$' "
        "ELSE attributes::VARCHAR END AS attributes"
    )
    sql = f"""
        SELECT row_number() OVER () AS row, {", ".join(selects)},
               coalesce({", ".join(reasons)}) AS _reason
        FROM lines
    """
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        lines = con.read_json(
            io.BytesIO(data),
            format="newline_delimited",
            columns=columns,
            maximum_object_size=2 * MAX_RECORD_BYTES,
        )
        frame = lines.query("lines", sql).pl()
    except duckdb.Error:
        return None
    finally:
        con.close()
    if frame.height != n_lines:
        return None
    frame = frame.with_columns(pl.col("row").cast(pl.Int64))
    bad = frame.filter(pl.col("_reason").is_not_null()).select(
        "row", pl.col("_reason").alias("reason")
    )
    return frame.filter(pl.col("_reason").is_null()).drop("_reason"), bad


def _split_tags(expr: pl.Expr) -> pl.Expr:
    return expr.str.split(";").list.eval(
        pl.element().str.strip_chars().filter(pl.element().str.strip_chars() != "")
    )


def csv_fast(data: bytes) -> pl.DataFrame | None:
    """Polars' CSV reader, all columns text; None when row numbers would not be line numbers."""
    try:
        data.decode("utf-8")
        frame = pl.read_csv(data, infer_schema=False, raise_if_empty=False)
    except (UnicodeDecodeError, pl.exceptions.PolarsError):
        return None
    body_lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1) - 1
    if frame.height != body_lines:
        return None
    frame = frame.rename({c: c.strip() for c in frame.columns})
    present = set(frame.columns)
    return frame.select(
        pl.int_range(2, pl.len() + 2, dtype=pl.Int64).alias("row"),
        *[
            (pl.col(f).replace("", None) if f in present else pl.lit(None, pl.String)).alias(f)
            for f in TEXT_FIELDS
        ],
        *[
            (
                _split_tags(pl.col(f).replace("", None))
                if f in present
                else pl.lit(None, pl.List(pl.String))
            ).alias(f)
            for f in LIST_FIELDS
        ],
        (
            pl.col("attributes").replace("", None)
            if "attributes" in present
            else pl.lit(None, pl.String)
        ).alias("attributes"),
    )
