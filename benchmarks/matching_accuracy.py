"""Accuracy of auto-merge + Splink proposals on the generator, against its ground truth.

The real nightly job runs on generated exports (ingest → normalize → auto-merge → contact
profiles → contact records → Splink train/predict, `contacts.runner.run_pipeline`), with the
proposal threshold lowered to the smallest one measured so every proposal an admin could see is
kept. Each threshold's figures are then what an admin gets by accepting every pending proposal
at or above it: pairwise precision/recall/F1 over all true pairs of interactions, recall per
planted case, and where the missed pairs are (what evidence the two contacts of one person
share, from the very records Splink compared).

    uv run python benchmarks/matching_accuracy.py --persons 20000 [--seed 11] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from assets.resources import ContactsSettings  # noqa: E402
from benchmarks.night_run import run_night  # noqa: E402
from contacts.demo import GeneratorConfig, generate_exports  # noqa: E402
from dedup.matching.evaluation import (  # noqa: E402
    EVIDENCE_KINDS,
    accept_proposals,
    contact_persons,
    evidence_pairs,
    pairwise_scores,
    recall_by,
    recall_by_evidence,
)
from dedup.matching.records import contact_records  # noqa: E402

THRESHOLDS = (0.5, 0.8, 0.9, 0.99)


def run(persons: int, seed: int, root: Path) -> dict[str, pl.DataFrame]:
    config = GeneratorConfig(persons=persons, seed=seed)
    generated = generate_exports(root / "exports", config)
    os.environ["ASKVAULT_IDENTITY_SECRET"] = config.secret
    night = run_night(root, min(THRESHOLDS))
    settings, assignment, proposals, seconds = (
        night.settings,
        night.assignment,
        night.proposals,
        night.seconds,
    )
    work = settings.layout.work_dir
    records = contact_records(
        pl.read_parquet(work / "contacts.parquet"), pl.read_parquet(work / "ambiguous_keys.parquet")
    )
    print(
        f"{persons:,} people (seed {seed}), {assignment.height:,} interactions, "
        f"{records.height:,} contacts after auto-merge, {proposals.height:,} proposals "
        f"≥ {min(THRESHOLDS)}; pipeline {seconds:.0f} s\n"
    )
    return {
        "assignment": assignment,
        "proposals": proposals,
        "records": records,
        "truth": pl.read_parquet(generated.truth_path),
    }


def missed_pairs(
    clusters: pl.DataFrame,
    assignment: pl.DataFrame,
    records: pl.DataFrame,
    truth: pl.DataFrame,
) -> pl.DataFrame:
    """True pairs of interactions left apart, grouped by what their two contacts share.

    One row per (person, contact a, contact b) in different clusters, weighted by the pairs of
    interactions it stands for; classified by name evidence and custom-attribute agreement.
    """
    per_contact = (
        assignment.join(clusters, on="interaction_id")
        .join(truth.select("interaction_id", "person_id"), on="interaction_id")
        .group_by("person_id", "contact_id", "cluster")
        .len()
    )
    split = per_contact.filter(pl.col("cluster").n_unique().over("person_id") > 1)
    pairs = (
        split.join(split, on="person_id", suffix="_b")
        .filter(
            (pl.col("contact_id") < pl.col("contact_id_b"))
            & (pl.col("cluster") != pl.col("cluster_b"))
        )
        .with_columns(weight=pl.col("len").cast(pl.Int64) * pl.col("len_b"))
    )
    rec = records.select(
        "unique_id", "full_name", "first_name_canonical", "attr_values", "attr_keys"
    )
    pairs = pairs.join(rec, left_on="contact_id", right_on="unique_id").join(
        rec, left_on="contact_id_b", right_on="unique_id", suffix="_b"
    )
    agree = pl.col("attr_values").list.set_intersection("attr_values_b").list.len()
    shared = pl.col("attr_keys").list.set_intersection("attr_keys_b").list.len()
    return pairs.with_columns(
        name=pl.when(pl.col("full_name").is_null() | pl.col("full_name_b").is_null())
        .then(pl.lit("one side has no name"))
        .when(pl.col("full_name") == pl.col("full_name_b"))
        .then(pl.lit("same full name"))
        .when(pl.col("first_name_canonical") == pl.col("first_name_canonical_b"))
        .then(pl.lit("same first name only"))
        .otherwise(pl.lit("different names")),
        attributes=pl.when(pl.col("attr_values").is_null() | pl.col("attr_values_b").is_null())
        .then(pl.lit("none on one side"))
        .when(shared > agree)
        .then(pl.lit("conflict"))
        .when(agree >= 2)
        .then(pl.lit("2+ agree"))
        .when(agree == 1)
        .then(pl.lit("1 agrees"))
        .otherwise(pl.lit("no shared key")),
    )


def wrong_by_case(judged: pl.DataFrame, truth: pl.DataFrame, threshold: float) -> None:
    """Wrong proposals at or above `threshold` (two people joined), by the planted cases of the
    two people: a trap (household, switchboard, kiosk, forged id, throwaway address) must have
    none."""
    cases = truth.select("person_id", "person_case").unique("person_id")
    wrong = (
        judged.filter(
            (pl.col("match_probability") >= threshold)
            & (pl.col("person_id") != pl.col("person_id_r"))
        )
        .join(cases, on="person_id")
        .join(cases.rename({"person_id": "person_id_r", "person_case": "case_r"}), on="person_id_r")
        .with_columns(
            pl.min_horizontal("person_case", "case_r").alias("a"),
            pl.max_horizontal("person_case", "case_r").alias("b"),
        )
        .group_by("a", "b")
        .len()
        .sort("len", descending=True)
    )
    print(f"\nWrong proposals at ≥ {threshold} (two people), by the two people's planted cases:\n")
    print("| case | case | wrong proposals |\n|---|---|---:|")
    for a, b, n in wrong.iter_rows():
        print(f"| {a} | {b} | {n} |")


def print_evidence(per_evidence: dict[float, dict[str, tuple[int, float]]]) -> None:
    """Recall per kind of evidence two contacts of one person carry (dedup.matching.evaluation:
    a name plus one more agreeing field, or an identifier one edit away), per threshold."""
    print(
        "\nRecall per evidence kind (interaction pairs of one person in two contacts after "
        "auto-merge whose two records carry it; a pair can carry several):\n"
    )
    thresholds = list(per_evidence)
    print("| evidence | pairs | " + " | ".join(f"≥ {t}" for t in thresholds) + " |")
    print("| --- | ---: |" + " ---: |" * len(thresholds))
    for kind in [*EVIDENCE_KINDS, "any of these"]:
        pairs = per_evidence[thresholds[0]][kind][0]
        cells = " | ".join(f"{per_evidence[t][kind][1]:.4f}" for t in thresholds)
        print(f"| {kind} | {pairs:,} | {cells} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (else a temp)")
    parser.add_argument(
        "--default-threshold",
        type=float,
        default=ContactsSettings.model_fields["proposal_threshold"].default,
    )
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        data = run(args.persons, args.seed, args.keep)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            data = run(args.persons, args.seed, Path(tmp))
    assignment, proposals, truth = data["assignment"], data["proposals"], data["truth"]
    truth_ids = truth.select("interaction_id", "person_id")
    # Which person each contact mostly holds, to judge proposals one by one.
    owner = contact_persons(assignment, truth_ids).drop("size")
    judged = proposals.join(owner, left_on="contact_id_l", right_on="contact_id").join(
        owner, left_on="contact_id_r", right_on="contact_id", suffix="_r"
    )
    auto = pairwise_scores(assignment, truth_ids)
    print("| accepted | proposals | proposal precision | precision | recall | F1 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(f"| auto-merge only | 0 | – | {auto.precision:.4f} | {auto.recall:.4f} | {auto.f1:.4f} |")
    per_case, per_evidence = {}, {}
    evidence = evidence_pairs(assignment, data["records"], truth)
    for threshold in THRESHOLDS:
        clusters = accept_proposals(assignment, proposals, threshold)
        per_evidence[threshold] = recall_by_evidence(evidence, assignment, clusters)
        s = pairwise_scores(clusters, truth_ids)
        mine = judged.filter(pl.col("match_probability") >= threshold)
        right = mine.filter(pl.col("person_id") == pl.col("person_id_r")).height
        mark = " (default)" if threshold == args.default_threshold else ""
        print(
            f"| + proposals ≥ {threshold}{mark} | {mine.height:,} | "
            f"{right / mine.height if mine.height else 1:.4f} | {s.precision:.4f} | "
            f"{s.recall:.4f} | {s.f1:.4f} |"
        )
        per_case[threshold] = recall_by(clusters, truth, "person_case")
    print("\nRecall per planted case (true pairs of interactions of that case's people):\n")
    table = recall_by(assignment.rename({"contact_id": "cluster"}), truth, "person_case").select(
        "person_case", "true_pairs", pl.col("recall").alias("auto-merge")
    )
    for threshold, frame in per_case.items():
        table = table.join(
            frame.select("person_case", pl.col("recall").alias(f"≥ {threshold}")), on="person_case"
        )
    cols = table.columns
    print("| " + " | ".join(cols) + " |\n|" + " --- |" * len(cols))
    for row in table.filter(pl.col("true_pairs") > 0).iter_rows():
        cells = [
            f"{v:.4f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else v
            for v in row
        ]
        print("| " + " | ".join(cells) + " |")
    print_evidence(per_evidence)
    wrong_by_case(judged, truth, 0.9)
    clusters = accept_proposals(assignment, proposals, args.default_threshold)
    missed = missed_pairs(clusters, assignment, data["records"], truth)
    total = pairwise_scores(clusters, truth_ids).true_pairs
    print(
        f"\nTrue pairs still apart at ≥ {args.default_threshold}, by what the two contacts share "
        "(share of all true pairs):\n"
    )
    summary = (
        missed.group_by("name", "attributes")
        .agg(pl.len().alias("contact pairs"), pl.col("weight").sum().alias("interaction pairs"))
        .with_columns(share=pl.col("interaction pairs") / total)
        .sort("interaction pairs", descending=True)
    )
    print(
        "| name | attributes | contact pairs | interaction pairs | share |\n|---|---|---:|---:|---:|"
    )
    for name, attrs, n, w, share in summary.iter_rows():
        print(f"| {name} | {attrs} | {n:,} | {w:,} | {share:.4f} |")


if __name__ == "__main__":
    main()
