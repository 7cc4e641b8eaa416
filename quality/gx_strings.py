"""Arrow-backed pandas strings for a GX suite, when they provably give the same verdicts.

GX 1.x checks pandas frames. A Polars frame becomes pandas with object strings, and GX's regex
expectations then run Python's `re` cell by cell (`Series.str.contains` after `astype(str)`):
2.2 of the 4.3 CPU s of the nightly contacts export's suite (200,000 rows sampled, 14 columns).
With pandas' Arrow strings (`future.infer_string`, which also keeps GX's `astype(str)` on Arrow)
the same expectations run in pyarrow.compute, vectorized; that suite took 2.0 CPU s
(docs/performance.md, issue 25, session 17).

pyarrow's regex engine is RE2, not Python's `re`, so a suite gets Arrow strings only where no
difference between the two can change a verdict:

- every expectation is of a kind whose pandas computation is a null test, exact equality
  (unique, in set, pair equal) or a comparison of non-string columns (between), or is a regex
  expectation on a string column with a regex of `ENGINE_NEUTRAL_REGEXES`;
- those regexes use only literals, ASCII ranges, negated classes, `.`, `\\s`, repeats,
  alternation, `^` and `$` (tests/test_quality.py parses each). On such a regex the engines
  differ in two places only: Python's `$` also matches before a final newline, and Python's
  `\\s` is Unicode whitespace (`str.isspace`) where RE2's is `[\\t\\n\\f\\r ]`. (`.` stops at a
  newline in both; ranges and negations compare code points in both.)
- so no checked value may hold a newline or a whitespace character outside `[\\t\\f\\r ]`
  (`_ENGINE_SENSITIVE`), checked here in Polars before the conversion.

Anything else (another expectation kind, another regex, a newline in a checked cell) is checked
with object strings, as before. The pandas option is process-wide while it is set: GX runs in
its own worker process (quality.gx_worker), or inline in a caller that runs one step at a time.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import polars as pl

from quality.regexes import (
    E164_OR_NEUTRALIZED_REGEX,
    E164_REGEX,
    EMAIL_REGEX,
    FORMULA_START_REGEX,
    ISO_UTC_REGEX,
)

ENGINE_NEUTRAL_REGEXES = frozenset(
    {E164_REGEX, E164_OR_NEUTRALIZED_REGEX, EMAIL_REGEX, FORMULA_START_REGEX, ISO_UTC_REGEX}
)
# Computed by pandas alike on object and Arrow strings (see the module docstring).
_EXACT = frozenset(
    {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_unique",
        "expect_column_values_to_be_in_set",
        "expect_column_pair_values_to_be_equal",
    }
)
_REGEX = frozenset(
    {"expect_column_values_to_match_regex", "expect_column_values_to_not_match_regex"}
)
_ON_NUMBERS = frozenset({"expect_column_values_to_be_between"})


@functools.cache
def _engine_sensitive() -> str:
    """A Polars (Rust regex) class of every character on which the engines may disagree for an
    ENGINE_NEUTRAL regex: the newline, and Python's whitespace that RE2's `\\s` lacks."""
    python_only = [
        c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace() and c not in " \t\f\r"
    ]
    return "[" + "".join(f"\\x{{{ord(c):X}}}" for c in python_only) + "]"


def _regex_columns(frame: pl.DataFrame, expectations: Sequence[Any]) -> list[str] | None:
    """The columns whose values decide whether Arrow strings are safe; None: never safe."""
    columns: list[str] = []
    for expectation in expectations:
        kind, kwargs = expectation.expectation_type, expectation.configuration.kwargs
        column = kwargs.get("column")
        if kind in _REGEX:
            if kwargs.get("regex") not in ENGINE_NEUTRAL_REGEXES:
                return None
            if frame.schema.get(column) != pl.String:
                return None
            columns.append(column)
        elif kind in _ON_NUMBERS:
            if frame.schema.get(column) == pl.String:
                return None
        elif kind not in _EXACT:
            return None
    return columns


def same_verdicts_on_arrow(frame: pl.DataFrame, expectations: Sequence[Any]) -> bool:
    """True when GX gives `expectations` on `frame` the same verdicts with Arrow strings."""
    columns = _regex_columns(frame, expectations)
    if columns is None:
        return False
    if not columns:
        return True
    sensitive = _engine_sensitive()
    found = frame.select(
        pl.any_horizontal(pl.col(c).str.contains(sensitive).any() for c in set(columns))
    ).item()
    return not found


@contextmanager
def strings_for(frame: pl.DataFrame, expectations: Sequence[Any]) -> Iterator[None]:
    """Convert `frame` to pandas and run GX on it inside this block: Arrow strings when that
    gives the same verdicts (`same_verdicts_on_arrow`), object strings otherwise."""
    import pandas as pd  # only where GX runs (it imports pandas anyway)

    with pd.option_context("future.infer_string", same_verdicts_on_arrow(frame, expectations)):
        yield
