"""Schema validation of staged records: one vectorised pass, one reason per rejected record.

Rules live here and nowhere else. A record failing several rules is quarantined with the first,
in the order of `_RULES`, so its reason is stable from run to run.
"""

from __future__ import annotations

import duckdb
import polars as pl

from dedup.schema import (
    CANONICAL_FIELDS,
    CHANNELS,
    MAX_ATTRIBUTE_DEPTH,
    MAX_ATTRIBUTE_KEY_CHARS,
    MAX_ATTRIBUTE_KEYS,
    MAX_ATTRIBUTE_VALUE_BYTES,
    MAX_FIELD_BYTES,
    MAX_RAW_CHARS,
    MAX_RECORD_BYTES,
    QUARANTINE_SCHEMA,
    TEXT_FIELDS,
    attributes_problem,
    empty_quarantine,
)

# Identity and display fields whose size we bound; ids and free text longer than this are not
# something a person typed, and they would bloat every downstream join.
_BOUNDED_FIELDS = tuple(f for f in TEXT_FIELDS if f != "occurred_at")


def parse_occurred_at(expr: pl.Expr) -> pl.Expr:
    """ISO 8601 (offset, `Z` or naive = UTC) or epoch seconds, to a UTC timestamp; null if neither."""
    text = expr.str.strip_chars()
    iso = text.str.replace(r"^(\d{4}-\d{2}-\d{2})[ t](\d)", "${1}T${2}")
    with_zone = iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%#z", strict=False, time_zone="UTC")
    naive = iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False).dt.replace_time_zone("UTC")
    epoch = (
        pl.when(text.str.contains(r"^\d{9,11}(\.\d+)?$"))
        .then((text.cast(pl.Float64, strict=False) * 1_000_000).cast(pl.Int64, strict=False))
        .otherwise(None)
    )
    from_epoch = pl.from_epoch(epoch, time_unit="us").dt.replace_time_zone("UTC")
    return pl.coalesce(with_zone, naive, from_epoch).dt.cast_time_unit("us")


def _attribute_facts(attributes: pl.Series) -> pl.DataFrame:
    """Validity, JSON type and key count of each attributes text, computed by DuckDB's JSON reader."""
    frame = pl.DataFrame({"a": attributes})  # noqa: F841 - read by DuckDB's replacement scan
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        return con.sql(
            """
            SELECT json_valid(a) AS valid,
                   CASE WHEN json_valid(a) THEN json_type(TRY_CAST(a AS JSON)) END AS kind,
                   CASE WHEN json_valid(a) AND json_type(TRY_CAST(a AS JSON)) = 'OBJECT'
                        THEN len(json_keys(TRY_CAST(a AS JSON))) END AS n_keys,
                   CASE WHEN json_valid(a) AND json_type(TRY_CAST(a AS JSON)) = 'OBJECT'
                        THEN list_max(list_transform(json_keys(TRY_CAST(a AS JSON)), k -> length(k)))
                        END AS longest_key
            FROM frame
            """
        ).pl()
    finally:
        con.close()


def _attribute_limits(attributes: pl.Series, longest_key: pl.Series) -> pl.Series:
    """Why each attributes text breaks the depth, value-size or key-name limits (null: fine).

    Only texts that could break them are parsed (`dedup.schema.attributes_problem`, the check
    the Contact API's edits use too): a value over the size limit needs a text over it, a value
    nested too deep needs more opening brackets than the limit. Real attributes are small and
    flat, so almost no row is parsed in Python.
    """
    suspect = (
        (attributes.str.len_bytes() > MAX_ATTRIBUTE_VALUE_BYTES)
        | (attributes.str.count_matches(r"[\[{]") > MAX_ATTRIBUTE_DEPTH)
        | (longest_key > MAX_ATTRIBUTE_KEY_CHARS)
    ).fill_null(False)
    problems: list[str | None] = [None] * attributes.len()
    for i in suspect.arg_true().to_list():
        problems[i] = attributes_problem(attributes[i])
    return pl.Series("_attr_limits", problems, dtype=pl.String)


_CUT = 60  # characters of a bad value quoted in its quarantine reason

# Working columns `_with_facts` adds and `validate` drops from accepted rows.
_FACT_COLUMNS = (
    "_ts",
    "_attr_valid",
    "_attr_kind",
    "_attr_keys",
    "_attr_limits",
    "_bytes",
    "_widest",
)


def _with_facts(raw: pl.DataFrame) -> pl.DataFrame:
    """Trimmed ids and channel, the parsed time, and what the rules need to know per record."""
    facts = _attribute_facts(raw.get_column("attributes"))
    return raw.with_columns(
        pl.col("interaction_id").str.strip_chars().alias("interaction_id"),
        pl.col("channel").str.strip_chars().str.to_lowercase().alias("channel"),
        parse_occurred_at(pl.col("occurred_at")).alias("_ts"),
        facts.get_column("valid").alias("_attr_valid"),
        facts.get_column("kind").alias("_attr_kind"),
        facts.get_column("n_keys").alias("_attr_keys"),
        _attribute_limits(raw.get_column("attributes"), facts.get_column("longest_key")),
        pl.sum_horizontal(
            [pl.col(f).str.len_bytes().fill_null(0) for f in TEXT_FIELDS + ("attributes",)]
        ).alias("_bytes"),
        pl.max_horizontal([pl.col(f).str.len_bytes().fill_null(0) for f in _BOUNDED_FIELDS]).alias(
            "_widest"
        ),
    )


def _rules() -> list[tuple[pl.Expr, pl.Expr]]:
    """(breaks the schema, reason) in order: the first rule a record breaks is its reason."""
    attrs = pl.col("attributes").is_not_null()
    return [
        (
            pl.col("_bytes") > MAX_RECORD_BYTES,
            pl.format(
                "record too large ({} bytes; limit {})", pl.col("_bytes"), pl.lit(MAX_RECORD_BYTES)
            ),
        ),
        (
            pl.col("_widest") > MAX_FIELD_BYTES,
            pl.format(
                "a text field is {} bytes (limit {})", pl.col("_widest"), pl.lit(MAX_FIELD_BYTES)
            ),
        ),
        (
            pl.col("interaction_id").is_null() | (pl.col("interaction_id") == ""),
            pl.lit("missing interaction_id"),
        ),
        (pl.col("channel").is_null(), pl.lit("missing channel")),
        (
            ~pl.col("channel").is_in(CHANNELS),
            pl.format("unknown channel '{}'", pl.col("channel").str.slice(0, _CUT)),
        ),
        (pl.col("occurred_at").is_null(), pl.lit("missing occurred_at")),
        (
            pl.col("_ts").is_null(),
            pl.format("unparseable occurred_at '{}'", pl.col("occurred_at").str.slice(0, _CUT)),
        ),
        (attrs & ~pl.col("_attr_valid"), pl.lit("attributes is not valid JSON")),
        (
            attrs & (pl.col("_attr_kind") != "OBJECT"),
            pl.format(
                "attributes must be a JSON object, got {}", pl.col("_attr_kind").str.to_lowercase()
            ),
        ),
        (
            pl.col("_attr_keys") > MAX_ATTRIBUTE_KEYS,
            pl.format(
                "attributes has {} keys (limit {})",
                pl.col("_attr_keys"),
                pl.lit(MAX_ATTRIBUTE_KEYS),
            ),
        ),
        (pl.col("_attr_limits").is_not_null(), pl.col("_attr_limits")),
    ]


def validate(raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split staged records into accepted (typed) and quarantined rows.

    Args:
        raw: frame in `schema.RAW_SCHEMA`.

    Returns:
        (accepted, quarantine). Accepted rows have `channel` lower-cased, `occurred_at` as UTC
        timestamp, ids trimmed; quarantine rows follow `schema.QUARANTINE_SCHEMA`.
    """
    if raw.height == 0:
        return raw.with_columns(
            pl.col("occurred_at").cast(pl.Datetime("us", "UTC"))
        ), empty_quarantine()
    reason = pl.lit(None, dtype=pl.String)
    for condition, text in reversed(_rules()):
        reason = pl.when(condition.fill_null(False)).then(text).otherwise(reason)
    frame = _with_facts(raw).with_columns(reason.alias("_reason"))
    quarantine = frame.filter(pl.col("_reason").is_not_null()).select(
        "source",
        "export_day",
        "file",
        "row",
        pl.col("_reason").alias("reason"),
        pl.struct(list(CANONICAL_FIELDS))
        .struct.json_encode()
        .str.slice(0, MAX_RAW_CHARS)
        .alias("raw"),
        pl.col("interaction_id").replace("", None),
    )
    accepted = (
        frame.filter(pl.col("_reason").is_null())
        .with_columns(pl.col("_ts").alias("occurred_at"))
        .drop(*_FACT_COLUMNS, "_reason")
    )
    return accepted, quarantine.cast(QUARANTINE_SCHEMA)  # type: ignore[arg-type]
