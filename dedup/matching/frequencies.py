"""How often strangers agree: u without the workspace's own duplicates, and term frequencies
that do not count the pair being scored.

Both answer the question u asks — how likely is this agreement between two *different*
people — where the workspace's own duplicates make the plain estimates answer another one.

**u from random pairs** (Splink's `estimate_u_using_random_sampling`) counts every sampled pair
as two strangers. Among random pairs a share λ (the prior) are one person, and they agree on a
level with probability m, so what the sample measures is `λ·m + (1 − λ)·u`, not u. Where
duplicates are rare next to chance agreement (a large workspace, a common field) the
difference is noise; where they are not, it is most of the estimate: on FEBRL1 after
auto-merge (560 contacts) the sample's full-name agreement was 0.00018 and λ·m 0.000176, so
nearly every random pair agreeing on a full name *was* one person, and the name counted 12 bits
where strangers sharing it are rarer than one pair in the sample. `u_without_matches` solves the
mixture for u, `(u_sample − λ·m) / (1 − λ)`, and floors it at one pair of the sample: when
nothing beyond the duplicates agrees, the sample says strangers agree less often than once in
its pairs, not never (an observed zero is not a probability; one pseudo-pair is the usual
minimal smoothing). The m are the model's starting m (expert values, or moved by labels); EM
later refines m with u held, as Splink always does.

**Term frequencies.** Splink replaces u of an exact-match level by the value's share `k/N` of
the records. For the pair being scored that share counts the pair itself: a name only these two
contacts hold is `2/N`, which in a workspace of 560 contacts is 0.0036, twenty times the name's
average u: the rarest possible name was scored as a common one (−2.2 bits at weight 0.5). Here a
value's frequency among the *other* records, `k − 2` of `N − 2` (the level is reached only when
both sides hold the value), is shrunk towards the level's u, the frequency of the value a random
record holds (Σ share², which is what u of an exact level is), with the weight of one record:
`(k − 2 + 1) / (N − 2 + 1/u)`. A value seen only in the pair then scores the level's u (no
adjustment) in a workspace too small to say more, and rarer than u (more evidence) in one large
enough to: at a million contacts a unique name gets ~1e-6, as Splink's `2/N` would. A common
value is scored by its count, as before. One pseudo-record is the weakest prior that keeps the
estimate off zero; it was not tuned.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

TF_SCHEMA = {"column": pl.String, "value": pl.String, "tf": pl.Float64}


def _sampled_u(level: Any) -> float | None:
    """The level's u as random sampling left it: None where the sample never reached the level
    (Splink then leaves it unset, which scores it with a made-up default, or marks it not
    observed)."""
    u = level._u_probability
    return float(u) if isinstance(u, (int, float)) else None


def u_without_matches(linker: Any, prior: float, sampled_pairs: float) -> dict[str, list]:
    """Correct the linker's u (just estimated by random sampling) for the duplicates among the
    sampled pairs (module docstring), in place. A level the sample never reached gets the
    floor: the sample says strangers reach it less often than once in its pairs (Splink would
    score it with a default u, ~1e-3 for an email one edit away, where none of 2M random pairs
    had one). Returns comparison → [u before, u after] per non-null level, for the model's
    diagnostics (None: not reached by the sample)."""
    floor = 1.0 / max(sampled_pairs, 1.0)
    report: dict[str, list] = {}
    for comparison in linker._settings_obj.comparisons:
        levels = [lv for lv in comparison.comparison_levels if not lv.is_null_level]
        if any(lv._fix_u_probability for lv in levels):
            continue  # a fixed u (the shared-phone level) is a decision, not an estimate
        sampled = [_sampled_u(lv) for lv in levels]
        if all(u is None for u in sampled):
            continue  # the comparison was not sampled at all: nothing to correct
        corrected = [
            max(((u or 0.0) - prior * (lv.m_probability or 0.0)) / (1.0 - prior), floor)
            for u, lv in zip(sampled, levels, strict=True)
        ]
        total = math.fsum(corrected)
        for level, u in zip(levels, corrected, strict=True):
            level.u_probability = u / total
        report[comparison.output_column_name] = [
            [None if u is None else round(u, 10), round(lv.u_probability, 10)]
            for u, lv in zip(sampled, levels, strict=True)
        ]
    return report


def tf_levels(settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Levels with a term-frequency adjustment: comparison, gamma value, column, weight,
    minimum and the level's u (the shrinkage target of `term_frequencies`)."""
    levels = []
    for comparison in settings["comparisons"]:
        non_null = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        for i, level in enumerate(non_null):
            column = level.get("tf_adjustment_column")
            weight = float(level.get("tf_adjustment_weight", 1.0))
            if column and weight:
                levels.append(
                    {
                        "comparison": comparison["output_column_name"],
                        "gamma": len(non_null) - 1 - i,  # Splink numbers levels bottom-up
                        "column": column,
                        "weight": weight,
                        "minimum": float(level.get("tf_minimum_u_value", 0.0)),
                        "u": level.get("u_probability"),
                    }
                )
    return levels


def column_u(levels: list[dict[str, Any]], column: str) -> float | None:
    """The u `value_tf` shrinks a column's frequencies towards: the smallest of its tf levels'
    (None: no level of it was observed)."""
    us = [lv["u"] for lv in levels if lv["column"] == column and lv["u"]]
    return min(us) if us else None


def value_tf(count: pl.Expr, total: pl.Expr, u: float | None) -> pl.Expr:
    """A value's term frequency from its `count` among the `total` non-null records of its
    column (module docstring); the Spark engine gives `total` as a literal, counted once."""
    k = count.cast(pl.Float64)  # unsigned: k - 2 would wrap below zero
    n = total.cast(pl.Float64)
    if u:
        return ((k - 2).clip(lower_bound=0) + 1) / (n - 2 + 1 / u)
    return k / n  # no u to shrink towards (a level never observed): Splink's own share


def term_frequencies(records: pl.DataFrame, levels: list[dict[str, Any]]) -> pl.DataFrame:
    """column, value, tf: each tf column's values with their frequency among the other records,
    shrunk towards the level's u (module docstring)."""
    frames = []
    for column in sorted({lv["column"] for lv in levels}):
        counts = records.lazy().filter(pl.col(column).is_not_null()).group_by(column).len()
        frames.append(
            counts.select(
                pl.lit(column).alias("column"),
                pl.col(column).cast(pl.String).alias("value"),
                value_tf(pl.col("len"), pl.col("len").sum(), column_u(levels, column)).alias("tf"),
            )
        )
    if not frames:
        return pl.DataFrame(schema=TF_SCHEMA)
    return pl.concat(pl.collect_all(frames))


def register_term_frequencies(linker: Any, records: pl.DataFrame, tf: pl.DataFrame) -> None:
    """Hand `tf` to the linker as its term-frequency lookups, in place of the `k/N` tables it
    would compute itself, with each value in its record column's type."""
    api = linker._db_api
    for column in tf.get_column("column").unique().to_list():
        lookup = tf.filter(pl.col("column") == column).select(
            pl.col("value").cast(records.schema[column]).alias(column),
            pl.col("tf").alias(f"tf_{column}"),
        )
        linker.table_management.register_term_frequency_lookup(
            api.register(lookup.to_arrow()), column
        )
