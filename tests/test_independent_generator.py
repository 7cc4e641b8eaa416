"""The independent contact generator (benchmarks/independent_contacts.py, issue 24): the same
seed writes the same exports, its truth covers exactly the interactions the product's ingest
accepts, and the only quarantined rows are the four it plants on purpose."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl

from dedup.ingest.days import export_days, ingest_day

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import independent_contacts as gen  # noqa: E402


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_same_exports_other_seed_other(tmp_path):
    gen.generate(tmp_path / "a", people=300, seed=3)
    gen.generate(tmp_path / "b", people=300, seed=3)
    gen.generate(tmp_path / "c", people=300, seed=4)
    a = files(tmp_path / "a")
    assert a == files(tmp_path / "b")
    assert a != files(tmp_path / "c")


def test_truth_is_what_ingest_accepts_and_only_planted_rows_are_quarantined(tmp_path):
    counts = gen.generate(tmp_path, people=400, seed=5)
    exports = tmp_path / "exports"
    days = [ingest_day(exports, "askvault", d) for d in export_days(exports, "askvault")]
    assert len(days) == gen.DAYS
    accepted = pl.concat([d.accepted.select("interaction_id") for d in days]).unique()
    quarantine = pl.concat([d.quarantine.select("file", "row") for d in days])
    truth = pl.read_parquet(tmp_path / "truth" / "interactions.parquet")
    assert truth.height == counts["interactions"] == truth["interaction_id"].n_unique()
    assert sorted(accepted["interaction_id"]) == sorted(truth["interaction_id"])
    planted = json.loads((tmp_path / "truth" / "planted_quarantine.json").read_text())
    assert sorted(quarantine.rows()) == sorted((q["file"], q["row"]) for q in planted)
    persons = pl.read_parquet(tmp_path / "truth" / "persons.parquet")
    assert set(gen.EVIDENCE_KINDS) <= set(persons["kind"])
    assert set(persons["trap"].drop_nulls()) == set(gen.TRAP_KINDS)
    assert persons.height == 400
