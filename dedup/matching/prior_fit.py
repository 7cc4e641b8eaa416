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
(those within `floor_bits` of the threshold); pairs outside blocking or below the floor are
counted as non-matches, so this λ can only fall short of the full one: a lower bound. The model
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


def fitted_prior(weights: np.ndarray, prior: float, contacts: int, iterations: int = 200) -> float:
    """The λ at which the scored pairs' expected matches over all pairs equal λ, never below
    `prior` (module docstring). `weights`: the pairs' match weights (bits) under `prior`."""
    total = contacts * (contacts - 1) / 2
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
