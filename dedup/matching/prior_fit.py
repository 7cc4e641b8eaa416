"""The prior, refitted from the night a model was trained on: at least as many matches as the
scored pairs themselves say there are.

`model.estimate_prior` counts the pairs that agree on a deterministic rule (a full name and a
company, a phone, two attributes) and divides by an *assumed* recall of those rules. On contacts
after auto-merge that recall is lower than on raw records, because auto-merge has already
joined the duplicates that share an identifier, and the rules' recall among the pairs left is
nothing the workspace can be asked for. Where it is lower than assumed, the prior is too small
and every proposal is scored too low by the same number of bits.

Given the model's m and u, the prior has a maximum-likelihood value of its own: the λ with
`λ = Σ P(match | pair, λ) / (all pairs)`, the M-step of Fellegi–Sunter EM for λ alone. A prior
shifts every pair's match weight by the same amount, so the fixed point needs only the scored
pairs' weights, no second prediction. The sum runs over the candidate pairs the night kept
(those within `floor_bits` of the threshold). Over all pairs, the pairs outside blocking add
λ·P_m(outside) each, so the full fixed point is the sum over N·r, r the share of true pairs
blocking reaches by the model's own m (`blocking_recall`; docs/matching.md). r counts every
level a rule may reach, so it errs high and λ stays a lower bound. The model
keeps the larger of the two estimates, so a workspace whose rules already size the prior
loses nothing, and one whose scored pairs show more matches than the rules found gets the
prior its own scores imply. Nothing here reads a label.

Only on a night that trains the model (every pair is scored then, and the model changes
anyway); the refitted prior is saved with the model, so incremental nights score with it.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from splink.internals.misc import prob_to_match_weight

from dedup.matching.settings import (
    BLOCKED_LEVELS,
    COLLEAGUES,
    NAME_PART_LEVELS,
    PRESENCE_COLUMN,
    property_columns,
)


def fitted_prior(
    weights: np.ndarray,
    prior: float,
    contacts: int,
    recall: float = 1.0,
    iterations: int = 200,
) -> float:
    """The λ at which the scored pairs' expected matches equal λ times the pairs blocking can
    reach, never below `prior` (module docstring). `weights`: the pairs' match weights (bits)
    under `prior`; `recall`: the share of true pairs blocking reaches (`blocking_recall`)."""
    total = contacts * (contacts - 1) / 2 * min(max(recall, 1e-3), 1.0)
    if total <= 0 or weights.size == 0:
        return prior
    evidence = weights.astype(np.float64) - prob_to_match_weight(
        prior
    )  # what the fields say, per pair
    fitted = prior
    for _ in range(iterations):
        # 1 / (1 + 2^-w), written to stay finite for very negative weights.
        expected = float(np.sum(1.0 / (1.0 + np.exp2(-(evidence + prob_to_match_weight(fitted))))))
        update = min(max(expected / total, 1e-12), 0.5)
        if abs(update - fitted) <= 1e-9 * fitted:
            fitted = update
            break
        fitted = update
    return max(prior, fitted)


def with_probability(pairs: pl.DataFrame) -> pl.DataFrame:
    """`match_probability` from `match_weight`, as Splink computes it: 1 / (1 + 2^-w) for
    w >= 0, 2^w / (1 + 2^w) otherwise (no overflow either way)."""
    w = pl.col("match_weight")
    return pairs.with_columns(
        match_probability=pl.when(w >= 0)
        .then(1 / (1 + pl.lit(2.0).pow(-w)))
        .otherwise(pl.lit(2.0).pow(w) / (1 + pl.lit(2.0).pow(w)))
    )


def shift_weights(pairs: pl.DataFrame, bits: float) -> pl.DataFrame:
    """Splink's scored pairs under a prior `bits` larger: match weight and probability."""
    return with_probability(pairs.with_columns(pl.col("match_weight") + bits))


def prior_shift(prior: float, fitted: float) -> float:
    """Bits every pair's match weight moves when the prior goes from `prior` to `fitted`."""
    return prob_to_match_weight(fitted) - prob_to_match_weight(prior)


def blocking_recall(settings: dict, records: pl.DataFrame) -> float:
    """The share of true pairs the blocking rules can reach, by the model's own m
    (`settings.BLOCKED_LEVELS`): 1 − P(no rule reaches a pair | one person).

    Comparisons are independent given a match (Fellegi–Sunter's own assumption), a comparison
    is present on a pair with probability fill², fill being its column's non-null share among
    `records` (missing values no likelier for one person than for two), and a rule on a name
    part and a company or matched property reaches the pair when both levels hold.
    """
    levels = {c["output_column_name"]: c["comparison_levels"] for c in settings["comparisons"]}
    present = {**PRESENCE_COLUMN, **{c: c for c in property_columns(list(levels))}}
    fills = {name: _fill(records, column) for name, column in present.items()}

    def share(name: str, labels: tuple[str, ...]) -> float:
        m = sum(
            float(lv.get("m_probability") or 0.0)
            for lv in levels.get(name, ())
            if lv.get("label_for_charts") in labels and not lv.get("is_null_level")
        )
        return fills.get(name, 0.0) ** 2 * min(m, 1.0)

    missed = 1.0 - share("name", BLOCKED_LEVELS["name"]) - _name_part_reached(levels, share)
    for name in ("phone", "email"):
        missed *= 1.0 - share(name, BLOCKED_LEVELS[name])
    return min(max(1.0 - missed, 0.0), 1.0)


def _name_part_reached(levels: dict, share) -> float:
    """P(a name part agrees and so does the company or a matched property | one person)."""
    exact_on = [
        (name, tuple(lv["label_for_charts"] for lv in levels[name] if _same_value(lv)))
        for name in ("company", *property_columns(list(levels)))
        if name in levels
    ]
    neither = 1.0
    for name, labels in exact_on:
        neither *= 1.0 - share(name, labels)
    return share("name", NAME_PART_LEVELS) * (1.0 - neither)


def _same_value(level: dict) -> bool:
    """A level where both sides hold the same value (what an equality rule reaches)."""
    label = level.get("label_for_charts") or ""
    return label.startswith("Exact match on") or label == COLLEAGUES


def _fill(records: pl.DataFrame, column: str) -> float:
    if column not in records.columns or records.height == 0:
        return 0.0
    return 1.0 - records.get_column(column).null_count() / records.height
