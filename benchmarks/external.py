"""Run the nightly job on a labelled data set the project did not generate, and score it.

A data set is a frame of canonical interactions (interaction_id, channel, occurred_at, name,
email, phone, company, attributes as JSON text) with a `person_id` column (the truth). The job
runs on it as one workspace; its contacts, then every proposal at or above a threshold
accepted, are scored pairwise over interactions (`dedup.matching.evaluation`). Used by
benchmarks/febrl.py and benchmarks/fake_1000.py.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from benchmarks.night_run import run_night  # noqa: E402
from dedup.matching.evaluation import PairScores, accept_proposals, pairwise_scores  # noqa: E402

CANONICAL = ("interaction_id", "channel", "occurred_at", "name", "email", "phone", "company")


@dataclass
class Outcome:
    assignment: pl.DataFrame  # interaction_id → contact_id after auto-merge
    proposals: pl.DataFrame  # pending proposals: contact_id_l, contact_id_r, match_probability
    truth: pl.DataFrame  # interaction_id → person_id
    seconds: float

    def scores(self, threshold: float | None) -> PairScores:
        """Pairwise scores with every proposal at or above `threshold` accepted (None: none)."""
        if threshold is None:
            clusters = self.assignment
        else:
            clusters = accept_proposals(self.assignment, self.proposals, threshold)
        return pairwise_scores(clusters, self.truth)


def run_workspace(rows: pl.DataFrame, properties_toml: str = "", threshold: float = 0.5) -> Outcome:
    """The nightly job over `rows` (canonical columns + `person_id`), proposals kept from
    `threshold` up, in a temporary folder."""
    os.environ.setdefault("ASKVAULT_IDENTITY_SECRET", "benchmark")
    with tempfile.TemporaryDirectory() as tmp:
        day = Path(tmp) / "exports" / "askvault" / "2026-11-01"
        day.mkdir(parents=True)
        columns = [c for c in (*CANONICAL, "attributes") if c in rows.columns]
        rows.select(columns).write_csv(day / "records.csv")
        schema = Path(tmp) / "contact_properties.toml"
        schema.write_text(properties_toml)
        night = run_night(Path(tmp), threshold, str(schema) if properties_toml else "")
    truth = rows.select("interaction_id", "person_id")
    return Outcome(night.assignment, night.proposals, truth, night.seconds)


def report(title: str, outcome: Outcome, thresholds: tuple[float, ...] = (0.8, 0.9)) -> None:
    """Print a markdown table: auto-merge alone, then each threshold's proposals accepted."""
    people = outcome.truth.get_column("person_id").n_unique()
    print(
        f"\n{title}: {outcome.truth.height:,} records, {people:,} people, "
        f"{outcome.assignment.get_column('contact_id').n_unique():,} contacts after auto-merge, "
        f"{outcome.proposals.height:,} proposals ≥ 0.5; job {outcome.seconds:.0f} s\n"
    )
    print("| stage | proposals | precision | recall | F1 |\n| --- | ---: | ---: | ---: | ---: |")
    s = outcome.scores(None)
    print(f"| auto-merge only | 0 | {s.precision:.4f} | {s.recall:.4f} | {s.f1:.4f} |")
    for threshold in thresholds:
        s = outcome.scores(threshold)
        n = outcome.proposals.filter(pl.col("match_probability") >= threshold).height
        print(
            f"| + proposals ≥ {threshold} accepted | {n:,} | {s.precision:.4f} | "
            f"{s.recall:.4f} | {s.f1:.4f} |"
        )
