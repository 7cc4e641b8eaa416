"""Measure auto-merge rule variants against the generator's ground truth (docs/identity.md).

uv run python benchmarks/automerge_rules.py [--persons 20000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from contacts.demo import GeneratorConfig, generate_exports  # noqa: E402
from dedup.config import EngineConfig, HubLimits  # noqa: E402
from dedup.identity.automerge import auto_merge  # noqa: E402
from dedup.identity.interactions import prepare_interactions  # noqa: E402
from dedup.ingest.days import export_days, ingest_day  # noqa: E402
from dedup.matching.evaluation import auto_merge_scores  # noqa: E402

OFF = 10**9
VARIANTS = {
    "default caps": HubLimits(),
    "no caps at all": HubLimits(OFF, OFF, OFF, OFF, OFF, OFF),
    "no phone cap": HubLimits(phone_max_identities=OFF),
    "no email caps": HubLimits(email_max_phones=OFF, email_max_user_ids=OFF),
    "no session caps": HubLimits(
        session_max_emails=OFF, session_max_phones=OFF, session_max_user_ids=OFF
    ),
    "email cap 1 phone": HubLimits(email_max_phones=1),
    "session cap 1 email": HubLimits(session_max_emails=1),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    config = GeneratorConfig(persons=args.persons, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        out = generate_exports(root, config)
        staged = pl.concat(
            [ingest_day(root, "askvault", d).accepted for d in export_days(root, "askvault")]
        )
        truth = pl.read_parquet(out.truth_path)
    interactions = prepare_interactions(
        staged, EngineConfig(identity_secrets=(config.secret,))
    ).interactions
    print(f"{args.persons:,} people, {interactions.height:,} interactions (seed {args.seed})\n")
    print(
        "| rules | precision (all true pairs) | recall (key-visible pairs) | recall (all pairs) | ambiguous keys |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, limits in VARIANTS.items():
        result = auto_merge(interactions, limits)
        overall, visible = auto_merge_scores(result.clusters, interactions, truth)
        print(
            f"| {name} | {overall.precision:.4f} | {visible.recall:.4f} | {overall.recall:.4f} "
            f"| {result.ambiguous_keys.height:,} |"
        )


if __name__ == "__main__":
    main()
