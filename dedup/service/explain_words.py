"""A proposal's score in words: the starting odds, each field's evidence, and the total.

Splink scores a pair as a sum of match weights in bits (log2 of Bayes factors): the prior's
weight (how often two contacts picked at random are one person) plus one weight per compared
field. A proposal stores the total (`match_weight`) and the per-field part (`explanation`, JSON:
`field`, `level`, `weight`, written by `dedup.matching.model.explain`), so the starting odds are
the total minus the fields' sum: the lines a person reads add up to the total exactly.

Strength buckets (`STRENGTHS`) are Kass & Raftery's scale for Bayes factors ("Bayes Factors",
JASA 1995, §3.2: 1-3 not worth more than a bare mention, 3-20 positive, 20-150 strong, over 150
very strong) converted to bits: log2 3 = 1.58, log2 20 = 4.32, log2 150 = 7.23. A published
scale, not one fitted to our data. "rare"/"frequent" on an exact agreement is its term-frequency
part (the field's weight minus the level's m/u weight in the saved model) when that part moves
the evidence by at least a factor of 2 (1 bit) either way.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

# (lowest bits, word), strongest first; below the last: no evidence (a missing field weighs 0).
STRENGTHS: tuple[tuple[float, str], ...] = (
    (math.log2(150), "very strong"),
    (math.log2(20), "strong"),
    (math.log2(3), "moderate"),
    (0.05, "weak"),
)
RARITY_BITS = 1.0  # a term-frequency part of at least this many bits (a factor of 2) is named
MISSING = "missing on one side"

# What people call each comparison (`output_column_name`); a matched property is its key.
FIELD_NAMES = {
    "name": "name",
    "email": "email address",
    "phone": "phone",
    "company": "company",
    "employer": "employer",
    "attributes": "custom attributes",
    "tags": "tags",
}

# Levels whose label does not read as words, per comparison (labels in dedup.matching.settings).
LEVEL_WORDS = {
    ("name", "Exact match on full_name"): "same name",
    ("name", "nickname of the same first name, same surname"): (
        "a nickname of the same first name, same surname"
    ),
    ("name", "both names similar (Jaro-Winkler >= 0.9)"): "names spelled almost alike",
    ("name", "same surname only"): "same surname, another first name",
    ("name", "All other comparisons"): "different names",
    ("email", "same local part, domain one or two characters apart"): (
        "same address, domain one or two letters apart"
    ),
    ("email", "same domain, two adjacent letters of the local part swapped"): (
        "addresses two swapped letters apart"
    ),
    ("email", "All other comparisons"): "different email addresses",
    ("phone", "Exact match on phone"): "same phone",
    ("phone", "Array intersection size >= 1"): "a phone number in common",
    ("phone", "Damerau-Levenshtein distance of phone <= 1"): "phones one digit apart",
    ("phone", "Exact match on phone_last7"): "same last seven phone digits",
    ("phone", "All other comparisons"): "different phones",
    ("company", "Jaro-Winkler distance of company >= 0.9"): "company names spelled almost alike",
    ("employer", "same employer: company name or work email domain"): (
        "the company one typed is the other's work email domain"
    ),
    ("employer", "All other comparisons"): (
        "the company one typed is not the other's work email domain"
    ),
    ("tags", "Array intersection size >= 2"): "two or more tags in common",
    ("tags", "Array intersection size >= 1"): "a tag in common",
    ("tags", "All other comparisons"): "no tag in common",
    ("attributes", "All other comparisons"): "no attribute in common",
}

# Splink's generic labels, for matched properties (`p_<kind>_<key>`) and anything new.
GENERIC_WORDS = (
    (re.compile(r"^Exact match on (\S+)$"), "same {what}"),
    (re.compile(r"^Damerau-Levenshtein distance of (\S+) <= 1$"), "{what} one character apart"),
    (re.compile(r"^Jaro-Winkler distance of (\S+) >= 0\.9$"), "{what} spelled almost alike"),
    (re.compile(r"^Jaro-Winkler distance of (\S+) >= 0\.8$"), "{what} spelled alike"),
    (re.compile(r"^Abs difference of '(?:transformed )?(\S+) <= 1 year'$"), "{what} within a year"),
)


def field_name(field: str) -> str:
    """The comparison's name for people: `p_date_dob` → `dob`."""
    if field.startswith("p_") and field.count("_") >= 2:
        return field.split("_", 2)[2].replace("_", " ")
    return FIELD_NAMES.get(field, field)


def level_words(field: str, level: str) -> str:
    """One comparison level in words ("phones one digit apart")."""
    what = field_name(field)
    if level == MISSING:
        return f"{what} missing on one side"
    if (field, level) in LEVEL_WORDS:
        return LEVEL_WORDS[field, level]
    if level == "All other comparisons":
        return f"different {what}"
    for pattern, words in GENERIC_WORDS:
        if pattern.match(level):
            return words.format(what=what)
    return level  # the engine's own label already reads as words ("two attributes agree")


def strength(bits: float) -> str:
    """The Kass & Raftery bucket of |bits| ("strong"), or "no evidence"."""
    size = abs(bits)
    return next((word for lowest, word in STRENGTHS if size >= lowest), "no evidence")


def odds(bits: float) -> str:
    """Odds of `bits` as a person reads them: "1 to 414", "12,000 to 1"."""
    ratio = 2.0 ** min(abs(bits), 1000.0)
    shown = f"{ratio:.1f}" if ratio < 10 else f"{ratio:,.0f}" if ratio < 1e7 else f"{ratio:.1e}"
    return f"{shown} to 1" if bits >= 0 else f"1 to {shown}"


def probability(bits: float) -> float:
    return 1.0 / (1.0 + 2.0 ** min(-bits, 1000.0))


def base_weights(settings: dict[str, Any] | None) -> dict[tuple[str, str], float]:
    """(comparison, level label) → log2(m/u) of the levels with a term-frequency adjustment,
    from a saved Splink model; what is left of a field's weight is the value's rarity."""
    found: dict[tuple[str, str], float] = {}
    for comparison in (settings or {}).get("comparisons", []):
        for level in comparison.get("comparison_levels", []):
            m, u = level.get("m_probability"), level.get("u_probability")
            if level.get("tf_adjustment_column") and m and u:
                key = (comparison["output_column_name"], level.get("label_for_charts"))
                found[key] = math.log2(m / u)
    return found


def load_base_weights(model_file: Path) -> dict[tuple[str, str], float]:
    """`base_weights` of the model saved at `model_file`; empty when there is none."""
    try:
        return base_weights(json.loads(model_file.read_text()).get("settings"))
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return {}


def _field_line(item: dict, bases: dict[tuple[str, str], float]) -> dict:
    field, level, bits = item["field"], item["level"], float(item.get("weight") or 0.0)
    words = level_words(field, level)
    base = bases.get((field, level))
    if base is not None and abs(bits - base) >= RARITY_BITS:
        words += ", rare here" if bits > base else ", common here"
    bucket = strength(bits)
    direction = "" if bucket == "no evidence" else " for" if bits > 0 else " against"
    return {
        "field": field,
        "level": level,
        "bits": bits,
        "words": words,
        "strength": bucket,
        "reads": f"{words}: {bucket}{direction}",
    }


def in_words(
    explanation: list[dict] | str | None,
    match_weight: float | None,
    bases: dict[tuple[str, str], float] | None = None,
) -> dict:
    """A proposal's explanation in words.

    Returns `start` (the prior: bits, odds), `lines` (each compared field: `words`, `strength`,
    `reads` like "same name, rare: very strong for", `bits`), `missing` (fields one side lacks,
    0 bits) and `total` (bits, odds, probability). `start.bits` + the lines' bits = `total.bits`.

    Example:
        >>> w = in_words([{"field": "phone", "level": "Damerau-Levenshtein distance of phone <= 1",
        ...                "weight": 9.5}], 0.8)
        >>> w["lines"][0]["reads"], w["start"]["odds"]
        ('phones one digit apart: very strong for', '1 to 416')
    """
    items = json.loads(explanation) if isinstance(explanation, str) else list(explanation or [])
    lines = [_field_line(item, bases or {}) for item in items if item.get("level") != MISSING]
    missing = [field_name(i["field"]) for i in items if i.get("level") == MISSING]
    fields_bits = math.fsum(line["bits"] for line in lines)
    total = float(match_weight) if match_weight is not None else fields_bits
    start = total - fields_bits
    return {
        "start": {"bits": start, "odds": odds(start), "probability": probability(start)},
        "lines": sorted(lines, key=lambda line: -abs(line["bits"])),
        "missing": missing,
        "total": {"bits": total, "odds": odds(total), "probability": probability(total)},
    }
