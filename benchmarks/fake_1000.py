"""Score the pipeline on Splink's labelled `fake_1000` sample (../shared/data/fake_1000.csv).

Each row becomes one interaction (name = first_name + surname, email, dob and city as
attributes); the nightly job runs on it; contacts (auto-merge, then every proposal at or above
the threshold accepted) are scored against `cluster`, pairwise over records.

    uv run python benchmarks/fake_1000.py [--csv ../shared/data/fake_1000.csv]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from assets.resources import ContactsSettings  # noqa: E402
from contacts.runner import run_pipeline  # noqa: E402
from dedup.identity.graph import connected_components  # noqa: E402
from dedup.matching.evaluation import pairwise_scores  # noqa: E402


def to_interactions(csv: Path) -> pl.DataFrame:
    raw = pl.read_csv(csv, infer_schema=False)
    return raw.select(
        pl.concat_str(pl.lit("fake-"), pl.col("unique_id")).alias("interaction_id"),
        pl.lit("widget").alias("channel"),
        pl.lit("2026-11-01T00:00:00Z").alias("occurred_at"),
        pl.concat_str(
            pl.col("first_name").str.strip_chars(),
            pl.col("surname").str.strip_chars(),
            separator=" ",
            ignore_nulls=True,
        ).alias("name"),
        pl.col("email"),
        pl.struct(pl.col("dob"), pl.col("city")).struct.json_encode().alias("attributes"),
        pl.col("cluster"),
    )


# What a workspace that knows these fields would declare (docs/matching.md, "Custom properties").
PROPERTIES = """
[properties.dob]
type = "date"
match = true
[properties.city]
type = "string"
match = true
"""


def score(rows: pl.DataFrame, declared: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        day = Path(tmp) / "exports" / "askvault" / "2026-11-01"
        day.mkdir(parents=True)
        rows.drop("cluster").write_csv(day / "fake_1000.csv")
        db = Path(tmp) / "contacts.duckdb"
        schema = Path(tmp) / "contact_properties.toml"
        schema.write_text(PROPERTIES)
        settings = ContactsSettings(
            exports_dir=str(Path(tmp) / "exports"),
            db_path=str(db),
            properties_file=str(schema) if declared else "",
        )
        run_pipeline(settings)
        con = duckdb.connect(str(db), read_only=True)
        assignment = con.sql("SELECT interaction_id, contact_id FROM interactions").pl()
        proposals = con.sql(
            "SELECT contact_id_l, contact_id_r, match_probability FROM merge_proposals "
            "WHERE status = 'pending'"
        ).pl()
        con.close()
    truth = rows.select("interaction_id", pl.col("cluster").alias("person_id"))
    how = "dob and city declared `match = true`" if declared else "dob and city as plain attributes"
    print(f"\n{how}: {rows.height} records, {truth.get_column('person_id').n_unique()} people\n")
    print("| stage | precision | recall | F1 |\n| --- | ---: | ---: | ---: |")
    s = pairwise_scores(assignment, truth)
    print(f"| auto-merge only | {s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} |")
    ids = assignment.get_column("contact_id").unique().sort().to_list()
    index = {c: i for i, c in enumerate(ids)}
    for threshold in (settings.proposal_threshold, 0.9):
        accepted = proposals.filter(pl.col("match_probability") >= threshold)
        a = np.array([index[c] for c in accepted.get_column("contact_id_l")], dtype=np.int64)
        b = np.array([index[c] for c in accepted.get_column("contact_id_r")], dtype=np.int64)
        labels = connected_components(len(ids), a, b)
        merged = assignment.join(
            pl.DataFrame({"contact_id": ids, "cluster": labels}), on="contact_id"
        )
        s = pairwise_scores(merged.select("interaction_id", "cluster"), truth)
        print(
            f"| + proposals ≥ {threshold} accepted | {s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} |"
        )
    print("\n" + json.dumps({"proposals": proposals.height}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--csv", type=Path, default=ROOT.parent / "shared" / "data" / "fake_1000.csv"
    )
    args = parser.parse_args()
    rows = to_interactions(args.csv)
    os.environ.setdefault("ASKVAULT_IDENTITY_SECRET", "unused")
    for declared in (False, True):
        score(rows, declared)


if __name__ == "__main__":
    main()
