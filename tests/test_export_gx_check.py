"""The nightly exports' check (assets.quality._gx_export_check): Polars over every row in the
run's process while the GX worker reads the same file back and checks a sample.

What it must keep from the sequential check it replaced: a row the Polars check refuses fails
the export, leaves last night's file and data docs as they were and no staged docs behind; a
cell only GX checks (timestamps) fails it with GX's words and tonight's docs; GX sees the
sample of the file as written.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from assets.quality import _gx_export_check
from assets.resources import ContactsSettings, QualityRunner
from dedup.service.export import ExportError, write_checked_csv
from quality.gx_suites import export_file_report

GOOD = pl.DataFrame(
    {
        "contact_id": ["c1", "c2", "c3", "c4", "c5"],
        "name": ["Ann", "'=SUM(1)", None, "Bob", "Cy"],
        "phone": ["+14155552671", None, "'555", "+4930123456", None],
        "last_seen": ["2026-11-01T09:05:00Z"] * 5,
    }
)


def _page(docs: Path) -> str:
    (page,) = (docs / "validations").rglob("*.html")
    return page.read_text()


@pytest.mark.parametrize("separate_process", [True, False], ids=["worker", "inline"])
def test_export_check_fails_on_bad_rows_and_keeps_last_docs(
    tmp_path: Path, separate_process: bool
) -> None:
    settings = ContactsSettings(
        exports_dir=str(tmp_path / "exports"),
        db_path=str(tmp_path / "out" / "contacts.duckdb"),
        quality_sample_rows=3,
    )
    check = _gx_export_check(
        settings,
        QualityRunner(separate_process=separate_process),
        "contact_id",
        frozenset({"phone"}),
        "contacts",
    )
    docs = settings.output / "quality" / "exports" / "contacts"
    out = tmp_path / "contacts.csv"

    assert write_checked_csv(GOOD, out, check).rows == 5
    first = _page(docs)
    assert "export_contacts" in (docs / "index.html").read_text()
    # What the worker checks: a sample of 3 of the 5 rows read back.
    sampled = export_file_report(out, 3, "contact_id", frozenset({"phone"}), "c", None)
    assert sampled.rows == {"c": 3} and not sampled.failures
    written = out.read_bytes()

    formula = GOOD.with_columns(pl.lit("=HYPERLINK(1)").alias("name"))
    with pytest.raises(ExportError, match="would run as a formula"):
        write_checked_csv(formula, out, check)
    assert out.read_bytes() == written and _page(docs) == first
    assert sorted(p.name for p in docs.parent.iterdir()) == ["contacts"]

    not_iso = GOOD.with_columns(pl.lit("2026-11-01").alias("last_seen"))
    with pytest.raises(ExportError, match="expect_column_values_to_match_regex on last_seen"):
        write_checked_csv(not_iso, out, check)
    assert out.read_bytes() == written
    assert _page(docs) != first and "2026-11-01" in _page(docs)
    assert sorted(p.name for p in docs.parent.iterdir()) == ["contacts"]
