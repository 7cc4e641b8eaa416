"""Splink's labelled `historical_figures_with_errors_50k` as a workspace (issue 24).

Not the project's generator: 50,578 records of 5,156 people (Wikidata's historical figures,
with errors written in by Splink's authors: typos, nicknames, missing fields, moved postcodes),
kept in benchmarks/data/ (origin and licence in benchmarks/data/README.md). Each record becomes
one interaction of channel `api`: name = first name + surname; date of birth, birth place,
postcode, gender and occupation as custom attributes. No e-mail, phone or user id: nothing
auto-merges, every join is a proposal. No property schema. The truth is `cluster`.

    uv run python benchmarks/historical_50k.py [--people N]   # N: a seeded sample of people
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import polars as pl  # noqa: E402
from external import report, run_workspace  # noqa: E402

DATA = ROOT / "benchmarks" / "data" / "historical_figures_with_errors_50k.parquet"
ATTRIBUTES = ("dob", "birth_place", "postcode_fake", "gender", "occupation")


def to_interactions(raw: pl.DataFrame) -> pl.DataFrame:
    clean = {c: pl.col(c).cast(pl.String).str.strip_chars().replace("", None) for c in raw.columns}
    return raw.select(
        pl.col("unique_id").alias("interaction_id"),
        pl.lit("api").alias("channel"),
        pl.lit("2026-11-01T00:00:00Z").alias("occurred_at"),
        pl.concat_str(clean["first_name"], clean["surname"], separator=" ", ignore_nulls=True)
        .replace("", None)
        .alias("name"),
        pl.struct(clean[c].alias(c) for c in ATTRIBUTES).struct.json_encode().alias("attributes"),
        pl.col("cluster").alias("person_id"),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, help="Only a seeded sample of this many people.")
    args = parser.parse_args()
    raw = pl.read_parquet(DATA)
    if args.people:
        people = raw.get_column("cluster").unique().sort().sample(args.people, seed=7)
        raw = raw.filter(pl.col("cluster").is_in(people.implode()))
    report("historical_figures_with_errors_50k", run_workspace(to_interactions(raw)))


if __name__ == "__main__":
    main()
