"""The prior refitted from the scored pairs (dedup.matching.prior_fit)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from dedup.matching.prior_fit import blocking_recall, fitted_prior, prior_shift
from dedup.matching.settings import contact_settings


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


def test_matches_blocking_cannot_reach_raise_the_prior() -> None:
    """The full EM update for λ counts, outside the candidate pairs, λ times the share of true
    pairs that falls there: dividing by blocking's recall is that fixed point."""
    contacts = 1_000
    total = contacts * (contacts - 1) / 2
    evidence = np.concatenate([np.full(100, 40.0), np.full(5_000, -40.0)])
    prior = 1e-6
    fitted = fitted_prior(_weights(evidence, prior), prior, contacts, recall=0.5)
    assert fitted == pytest.approx(100 / total / 0.5, rel=1e-3)


def _records(rows: int, **columns: float) -> pl.DataFrame:
    """`rows` records, each column in `columns` filled on that share of them."""
    return pl.DataFrame(
        {
            column: [f"{column}{i}" if i < share * rows else None for i in range(rows)]
            for column, share in columns.items()
        },
        schema={column: pl.String for column in columns},
    )


def test_blocking_recall_reads_the_models_m_and_the_fields_present() -> None:
    settings = contact_settings().create_settings_dict("duckdb")
    # Expert m: full name 0.70, nickname 0.08, swapped 0.02 are reached by name rules alone.
    named = _records(100, first_name=1.0, phone=0.0, email=0.0, company=0.0)
    assert blocking_recall(settings, named) == pytest.approx(0.80)
    # Half the contacts nameless: a pair has both names a quarter of the time.
    half = _records(100, first_name=0.5, phone=0.0, email=0.0, company=0.0)
    assert blocking_recall(settings, half) == pytest.approx(0.25 * 0.80)
    # A company on every contact: a name part (Jaro-Winkler 0.10, first name alone 0.05, surname
    # alone 0.04) with the same company (colleagues 0.01, exact 0.65) is reached by the
    # company rules.
    with_company = _records(100, first_name=1.0, phone=0.0, email=0.0, company=1.0)
    assert blocking_recall(settings, with_company) == pytest.approx(0.80 + 0.19 * 0.66)
    # Phones on every contact: rule `phone_last7` reaches exact, shared, list, typo and
    # last-seven levels (0.01 + 0.45 + 0.05 + 0.10 + 0.05), independently of the name.
    with_phone = _records(100, first_name=1.0, phone=1.0, email=0.0, company=0.0)
    assert blocking_recall(settings, with_phone) == pytest.approx(1 - 0.20 * (1 - 0.66))
