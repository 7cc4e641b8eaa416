"""Checks of a written export file, read back as text before it is renamed into place.

`check_export_file` is plain Polars (milliseconds for a 200-row export, so the CLI stays under a
second); the nightly exports asset also runs the GX export suite (quality.gx_suites.export_suite)
and writes its data docs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from quality.regexes import E164_OR_NEUTRALIZED_REGEX, FORMULA_START_REGEX


def read_back(path: Path) -> pl.DataFrame:
    """An export as a spreadsheet would see it: every cell text, empty cells null."""
    return pl.read_csv(path, infer_schema=False, encoding="utf8")


def export_problems(
    written: pl.DataFrame, expected: pl.DataFrame, key: str, e164_columns: frozenset[str]
) -> list[str]:
    problems: list[str] = []
    if written.columns != expected.columns:
        problems.append(f"header {written.columns} is not {expected.columns}")
        return problems
    if written.height != expected.height:
        problems.append(f"{written.height} rows read back, {expected.height} written")
    keys = written.get_column(key)
    if keys.null_count():
        problems.append(f"{keys.null_count()} row(s) without {key}")
    if keys.n_unique() != keys.len():
        problems.append(f"{keys.len() - keys.n_unique()} duplicate {key}(s)")
    for name in written.columns:
        col = written.get_column(name).drop_nulls()
        if name in e164_columns:
            bad = col.filter(~col.str.contains(E164_OR_NEUTRALIZED_REGEX))
        else:
            bad = col.filter(col.str.contains(FORMULA_START_REGEX))
        if bad.len():
            problems.append(
                f"{bad.len()} cell(s) of {name} would run as a formula, e.g. {bad[0]!r}"
            )
    return problems


def check_export_file(
    key: str = "contact_id", e164_columns: frozenset[str] = frozenset({"phone"})
) -> Callable[[Path, pl.DataFrame], list[str]]:
    """An export check (dedup.service.export.ExportCheck) for files keyed by `key`."""

    def _check(path: Path, expected: pl.DataFrame) -> list[str]:
        return export_problems(read_back(path), expected, key, e164_columns)

    return _check
