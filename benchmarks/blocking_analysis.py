"""Candidate pairs per blocking rule (Splink's blocking analysis) and the true pairs each finds.

Runs the nightly job on the generator (or reads a folder `matching_accuracy.py --keep` left),
builds the contact records Splink sees, and prints per prediction blocking rule: the pairs the
rule alone makes, its marginal and cumulative counts in rule order (Splink's
`count_comparisons_from_blocking_rules`, exact: record_sample_proportion=1.0), the engine's own
frequency-based estimate (`model.candidate_pairs`, what the nightly cap uses), and how many of
the contact pairs auto-merge left apart for one person the rules have found so far.

    uv run python benchmarks/blocking_analysis.py --persons 20000 [--seed 11] [--from DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import polars as pl  # noqa: E402
from splink import DuckDBAPI  # noqa: E402
from splink.blocking_analysis import count_comparisons_from_blocking_rules  # noqa: E402

from assets.resources import ContactsSettings  # noqa: E402
from contacts.demo import GeneratorConfig, generate_exports  # noqa: E402
from contacts.runner import run_pipeline  # noqa: E402
from dedup.duck import session  # noqa: E402
from dedup.matching.model import candidate_pairs  # noqa: E402
from dedup.matching.records import contact_records  # noqa: E402
from dedup.matching.settings import BLOCKING_KEYS, BLOCKING_RULES  # noqa: E402


def prepare(persons: int, seed: int, root: Path) -> None:
    config = GeneratorConfig(persons=persons, seed=seed)
    generate_exports(root / "exports", config)
    os.environ["ASKVAULT_IDENTITY_SECRET"] = config.secret
    run_pipeline(
        ContactsSettings(exports_dir=str(root / "exports"), db_path=str(root / "contacts.duckdb"))
    )


def true_contact_pairs(root: Path) -> pl.DataFrame:
    """(contact a, contact b) pairs that hold interactions of one person (ground truth)."""
    con = duckdb.connect(str(root / "contacts.duckdb"), read_only=True)
    try:
        assignment = con.sql("SELECT interaction_id, contact_id FROM interactions").pl()
    finally:
        con.close()
    truth = pl.read_parquet(root / "exports" / "_truth" / "truth.parquet")
    owned = (
        assignment.join(truth.select("interaction_id", "person_id"), on="interaction_id")
        .select("person_id", "contact_id")
        .unique()
    )
    return (
        owned.join(owned, on="person_id", suffix="_b")
        .filter(pl.col("contact_id") < pl.col("contact_id_b"))
        .select("contact_id", "contact_id_b")
    )


def found_by_rule(pairs: pl.DataFrame, records: pl.DataFrame) -> list[pl.Series]:
    """Per rule, which true pairs it makes a candidate (equal keys, in either direction)."""
    both = pairs.join(records, left_on="contact_id", right_on="unique_id").join(
        records, left_on="contact_id_b", right_on="unique_id", suffix="_b"
    )
    hits = []
    for keys in BLOCKING_KEYS:
        one_way = pl.all_horizontal([pl.col(lk) == pl.col(f"{rk}_b") for lk, rk in keys])
        other_way = pl.all_horizontal([pl.col(f"{lk}_b") == pl.col(rk) for lk, rk in keys])
        hits.append(both.select((one_way | other_way).fill_null(False)).to_series())
    return hits


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--from", dest="source", type=Path, help="a folder left by --keep")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.source or Path(tmp)
        if args.source is None:
            prepare(args.persons, args.seed, root)
        work = root / "contacts.duckdb.state" / "work"
        records = contact_records(
            pl.read_parquet(work / "contacts.parquet"),
            pl.read_parquet(work / "ambiguous_keys.parquet"),
        )
        api = DuckDBAPI(session(Path(tmp) / "duckdb"))
        counts = count_comparisons_from_blocking_rules(
            api.register(records.to_arrow()),
            blocking_rules=BLOCKING_RULES,
            link_type="dedupe_only",
            record_sample_proportion=1.0,
        )
        alone = [
            count_comparisons_from_blocking_rules(
                api.register(records.to_arrow()),
                blocking_rules=rule,
                link_type="dedupe_only",
                record_sample_proportion=1.0,
            )[0]["marginal_comparison_count"]
            for rule in BLOCKING_RULES
        ]
        pairs = true_contact_pairs(root)
        hits = found_by_rule(pairs, records)
    n = records.height
    print(
        f"{n:,} contacts after auto-merge ({n * (n - 1) // 2:,} possible pairs); "
        f"{pairs.height:,} contact pairs hold one person\n"
    )
    print(
        "| rule | pairs alone | estimate (frequencies) | marginal | cumulative "
        "| true pairs found (cumulative) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    seen = pl.Series([False] * pairs.height)
    for record, only, estimate, hit in zip(
        counts, alone, candidate_pairs(records), hits, strict=True
    ):
        seen = seen | hit
        print(
            f"| `{record['blocking_rule']}` | {only:,} | {estimate:,} "
            f"| {record['marginal_comparison_count']:,} | {record['cumulative_comparison_count']:,} "
            f"| {int(seen.sum()):,} ({seen.mean():.3f}) |"
        )


if __name__ == "__main__":
    main()
