"""Auto-merge accuracy on the seeded generator against its ground truth.

Acceptance of issue "Core identity engine": pairwise precision ≥ 0.999 against all true pairs,
recall ≥ 0.99 of the pairs exact keys can see (keys no second person shares).
"""

from __future__ import annotations

import polars as pl
import pytest

from contacts.demo import GeneratorConfig, generate_exports
from dedup.config import EngineConfig
from dedup.identity.automerge import auto_merge
from dedup.identity.interactions import prepare_interactions
from dedup.ingest.days import export_days, ingest_day
from dedup.matching.evaluation import auto_merge_scores


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory):
    config = GeneratorConfig(persons=2500, seed=11)
    root = tmp_path_factory.mktemp("accuracy")
    out = generate_exports(root, config)
    staged = pl.concat(
        [ingest_day(root, "askvault", d).accepted for d in export_days(root, "askvault")]
    )
    interactions = prepare_interactions(
        staged, EngineConfig(identity_secrets=(config.secret,))
    ).interactions
    return interactions, pl.read_parquet(out.truth_path)


def test_auto_merge_precision_and_recall(generated) -> None:
    interactions, truth = generated
    clusters = auto_merge(interactions).clusters
    overall, visible = auto_merge_scores(clusters, interactions, truth)
    assert overall.predicted_pairs > 10_000, "the sample must contain real duplicates"
    assert overall.precision >= 0.999, overall
    assert visible.recall >= 0.99, visible


def test_planted_hubs_are_reported(generated) -> None:
    interactions, truth = generated
    result = auto_merge(interactions)
    assert set(result.ambiguous_keys.get_column("key_type")) == {"phone", "email", "session"}
    # No contact holds two people who each said who they are (an email or a verified login).
    # Phone-only messages of a shared phone that nobody ever tied to an email stay undetectable.
    joined = result.clusters.join(truth, on="interaction_id").join(
        interactions.select("interaction_id", "email_norm", "verified_user_id"), on="interaction_id"
    )
    identified = joined.filter(
        pl.col("email_norm").is_not_null() | pl.col("verified_user_id").is_not_null()
    )
    mixed = identified.group_by("cluster").agg(pl.col("person_id").n_unique().alias("people"))
    assert mixed.filter(pl.col("people") > 1).height == 0


def test_forged_identities_never_verify(generated) -> None:
    interactions, truth = generated
    forged = interactions.join(truth.filter(pl.col("case") == "forged"), on="interaction_id")
    claims = forged.filter(pl.col("user_id").is_not_null())
    assert claims.height > 0 and not claims.get_column("identity_verified").any()
