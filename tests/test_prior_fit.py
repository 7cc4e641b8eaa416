"""The prior refitted from the scored pairs (dedup.matching.prior_fit)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dedup.matching.prior_fit import fitted_prior, prior_shift


def _weights(evidence: np.ndarray, prior: float) -> np.ndarray:
    return evidence + math.log2(prior / (1 - prior))


def test_the_fitted_prior_counts_the_matches_the_scores_show() -> None:
    contacts = 1_000
    total = contacts * (contacts - 1) / 2
    # 100 pairs with overwhelming evidence for, 5,000 with overwhelming evidence against.
    evidence = np.concatenate([np.full(100, 40.0), np.full(5_000, -40.0)])
    prior = 1e-6
    fitted = fitted_prior(_weights(evidence, prior), prior, contacts)
    assert fitted == pytest.approx(100 / total, rel=1e-3)
    # Shifting every weight by prior_shift is scoring under the fitted prior.
    assert prior_shift(prior, fitted) == pytest.approx(
        math.log2(fitted / (1 - fitted)) - math.log2(prior / (1 - prior))
    )


def test_never_below_the_rules_estimate() -> None:
    evidence = np.concatenate([np.full(10, 40.0), np.full(5_000, -40.0)])
    prior = 1e-3  # more matches than the 10 scored: pairs outside blocking are not seen
    assert fitted_prior(_weights(evidence, prior), prior, 1_000) == prior


def test_weak_pairs_count_by_their_probability() -> None:
    contacts = 2_000
    total = contacts * (contacts - 1) / 2
    prior = 1e-5
    # Evidence that exactly offsets the fitted prior's odds leaves each pair at p = 1/2.
    fitted = fitted_prior(_weights(np.full(40, 40.0), prior), prior, contacts)
    even = -math.log2(fitted / (1 - fitted))
    both = fitted_prior(
        _weights(np.concatenate([np.full(40, 40.0), np.full(20, even)]), prior), prior, contacts
    )
    assert 40 / total < both < 60 / total
    assert fitted_prior(np.array([]), prior, contacts) == prior
