"""One night of matching: records from tonight's contacts, the model kept or retrained, pairs
scored (incrementally when last night's state allows), and tonight's `merge_proposals`.

The Dagster asset reads the work files, calls `match_tonight` and `tonight_proposals`, writes
and reports; the decisions (when to retrain, which pairs may be proposed) live here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from dedup.matching.carried_records import RecordsPlan, carried_records
from dedup.matching.incremental import PredictionRun, predict_nightly
from dedup.matching.labels import labelled_records
from dedup.matching.model import TrainedModel, TrainingConfig, train
from dedup.matching.profile import workspace_properties
from dedup.matching.proposals import (
    PREDICTION_SCHEMA,
    predictions_frame,
    update_proposals,
    without_two_accounts,
)
from dedup.matching.records import contact_records
from dedup.matching.settings import property_columns
from dedup.properties import Property


@dataclass(frozen=True)
class MatchingOptions:
    model_path: Path
    state_dir: Path
    threshold: float
    max_pairs_per_rule: int
    min_contacts: int
    retrain: bool = False
    full_predict: bool = False  # also builds every record (`contacts run --full`)
    # Where the records are kept between nights (`carried_records`); None: build every one.
    records_dir: Path | None = None


@dataclass
class MatchingNight:
    records: pl.DataFrame  # one Splink record per live contact
    predictions: pl.DataFrame  # PREDICTION_SCHEMA: pairs above the threshold
    identified: list  # custom attributes compared as properties tonight (found in the data)
    model: TrainedModel | None = None  # None: too few contacts to train
    model_status: str = ""
    run: PredictionRun | None = None
    skipped_rules: list[str] = field(default_factory=list)  # over max_pairs_per_rule tonight
    records_plan: RecordsPlan | None = None  # how the records were made (None: not kept)


def tonight_model(
    contacts: int,
    columns: list[str],
    records: Callable[[], pl.DataFrame],
    faces: pl.DataFrame,
    properties: dict,
    options: MatchingOptions,
) -> tuple[TrainedModel, str, bool]:
    """The saved model, or one trained tonight (and why): (model, status, trained tonight).

    `contacts` and `columns`: tonight's record count and record columns, what decides whether
    the saved model still fits; `records()` gives the records themselves, asked for only when
    the model is trained (the Spark engine then reads them on the driver: docs/scale.md)."""
    training = TrainingConfig()
    model = TrainedModel.load(options.model_path)
    if options.retrain:
        reason = "--retrain"
    elif model is None:
        reason = "no saved model"
    else:
        reason = model.retrain_reason(contacts, training, property_columns(columns))
    if not reason:
        assert model is not None
        return model, f"reused (trained on {model.trained_on_contacts:,} contacts)", False
    # Saved by `match_tonight` once its predict has refitted the prior (prior_fit).
    model = train(records(), training, labels=labelled_records(faces, properties))
    return model, f"trained ({reason})", True


def with_scored_pairs(
    night: MatchingNight,
    model: TrainedModel,
    run: PredictionRun,
    contacts: pl.DataFrame,
    options: MatchingOptions,
) -> MatchingNight:
    """`night` given tonight's model and predict: the pairs above the threshold as predictions
    (two verified accounts never proposed: `contacts` needs contact_id and user_id) and the
    blocking rules skipped tonight."""
    scored = run.scored
    night.model, night.run = model, run
    night.predictions = without_two_accounts(
        predictions_frame(scored) if scored.height else pl.DataFrame(schema=PREDICTION_SCHEMA),
        contacts,
    )
    night.skipped_rules = [
        r for r, n in run.pairs_per_rule.items() if n > options.max_pairs_per_rule
    ]
    return night


def match_tonight(
    contacts: pl.DataFrame,
    faces: pl.DataFrame,
    ambiguous: pl.DataFrame,
    declared: dict[str, Property],
    options: MatchingOptions,
) -> MatchingNight:
    """Score tonight's contacts (module docstring).

    Args:
        contacts: tonight's contact profiles.
        faces: the faces of auto-merged contacts (`labels.labelled_faces`): labelled pairs that
            choose the identifying attributes and train m.
        ambiguous: tonight's ambiguous keys (a hub key says nothing about a pair).
        declared: the workspace's declared properties.
    """
    properties, identified = workspace_properties(contacts, faces, declared)
    plan = None
    if options.records_dir is None:
        records = contact_records(contacts, ambiguous, properties)
    else:
        full = "--full requested" if options.full_predict else None
        records, plan = carried_records(contacts, ambiguous, properties, options.records_dir, full)
    night = MatchingNight(records, pl.DataFrame(schema=PREDICTION_SCHEMA), identified)
    night.records_plan = plan
    if records.height < options.min_contacts:
        night.model_status = "not trained (too few contacts)"
        return night
    model, night.model_status, trained_tonight = tonight_model(
        records.height, records.columns, lambda: records, faces, properties, options
    )
    # Only new or changed contacts are scored when last night's state allows it; a model
    # trained tonight (even on the same data) scores everything.
    run = predict_nightly(
        records,
        model,
        options.threshold,
        options.state_dir,
        max_pairs_per_rule=options.max_pairs_per_rule,
        force_full=options.full_predict or trained_tonight,
        fit_prior=trained_tonight,
    )
    if trained_tonight:
        model.save(options.model_path)  # with the prior its scored pairs imply (prior_fit)
    return with_scored_pairs(night, model, run, contacts, options)


def tonight_proposals(
    predictions: pl.DataFrame,
    previous: pl.DataFrame,
    decisions: pl.DataFrame,
    redirects: pl.DataFrame,
    live_ids: pl.Series,
    now: datetime,
    separated: pl.DataFrame,
    erased_ids: pl.Series,
) -> pl.DataFrame:
    """Tonight's `merge_proposals` (`proposals.update_proposals`); an erased contact leaves no
    proposal behind, pending or decided."""
    proposals = update_proposals(
        predictions, previous, decisions, redirects, live_ids, now, separated=separated
    )
    erased = erased_ids.implode()
    return proposals.filter(
        ~pl.col("contact_id_l").is_in(erased) & ~pl.col("contact_id_r").is_in(erased)
    )
