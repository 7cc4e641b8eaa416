"""Review by person, not by pair: pending proposals grouped, and each explained in words.

- `proposal_groups`: the pending proposals as a graph of contacts, clustered into connected
  components (what Splink's `cluster_pairwise_predictions_at_threshold` computes, here with the
  engine's own `connected_components` so no linker is needed). One group is one decision: the
  admin who accepts it merges every contact in it; a contact in three proposals shows up once.
- `describe_proposal`: a proposal's explanation (`model.explain`'s JSON) in words, starting from
  the prior's odds, so the parts add up to the total match weight shown with the proposal
  ("starting odds 1 in 9,000: −13.1 bits; same full name, rare: strong, +14.2 bits; ...").

No Dagster and no Splink here; the review page (contacts/web) reads these.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from dedup.identity.graph import connected_components

# Field → what the field is called in a sentence.
_FIELD_WORDS = {
    "name": "name",
    "email": "email",
    "phone": "phone",
    "company": "company",
    "employer": "employer",
    "attributes": "custom attributes",
    "tags": "tags",
}

# Level label (settings.py, Splink's library labels) → words. Labels not listed read as the label.
_LEVEL_WORDS = {
    "missing on one side": "missing on one side",
    "Exact match on full_name": "same full name",
    "nickname of the same first name, same surname": "nickname of the same first name, same surname",
    "first name and surname swapped": "first name and surname swapped",
    "both names similar (Jaro-Winkler >= 0.9)": "names spelled almost the same",
    "same first name, one side gave no surname": "same first name, one side gave no surname",
    "same surname only": "same surname, other first name",
    "same local part, domain one or two characters apart": "same address, domain mistyped",
    "same domain, two adjacent letters of the local part swapped": "two letters swapped",
    "Exact match on phone": "same phone",
    "Array intersection size >= 1": "shares a phone",
    "Damerau-Levenshtein distance of phone <= 1": "phones one digit apart",
    "Exact match on phone_last7": "same last 7 digits",
    "Exact match on company": "same company",
    "same employer: company name or work email domain": "company typed on one side is the other's work domain",
    "an attribute both have differs": "an attribute both have differs",
    "three or more attributes agree": "three or more attributes agree",
    "two attributes agree": "two attributes agree",
    "one attribute agrees": "one attribute agrees",
    "All other comparisons": "different",
}


def proposal_groups(proposals: pl.DataFrame, status: str | None = "pending") -> pl.DataFrame:
    """One row per proposal (`proposals`: proposal_id, contact_id_l, contact_id_r, and `status`
    when `status` is given), with `group_id` (the smallest contact id of its connected
    component), `group_size` (contacts in it) and `group_proposals` (proposals in it)."""
    if status is not None and "status" in proposals.columns:
        proposals = proposals.filter(pl.col("status") == status)
    if proposals.height == 0:
        return proposals.with_columns(
            pl.lit(None, pl.String).alias("group_id"),
            pl.lit(None, pl.UInt32).alias("group_size"),
            pl.lit(None, pl.UInt32).alias("group_proposals"),
        )
    ids = pl.concat([proposals.get_column("contact_id_l"), proposals.get_column("contact_id_r")])
    nodes = ids.unique().sort()
    index = pl.DataFrame({"contact": nodes, "node": np.arange(nodes.len(), dtype=np.int64)})
    a = proposals.join(index, left_on="contact_id_l", right_on="contact", how="left")
    b = proposals.join(index, left_on="contact_id_r", right_on="contact", how="left")
    labels = connected_components(
        nodes.len(), a.get_column("node").to_numpy(), b.get_column("node").to_numpy()
    )
    # Labels are the smallest node of each component, and nodes are sorted ids: the label's id
    # is the group's smallest contact id, stable while the group's members are.
    groups = pl.DataFrame({"contact": nodes, "group_id": nodes.gather(labels)})
    out = proposals.join(groups, left_on="contact_id_l", right_on="contact", how="left")
    sizes = groups.group_by("group_id").len("group_size")
    return out.join(sizes, on="group_id", how="left").with_columns(
        pl.len().over("group_id").cast(pl.UInt32).alias("group_proposals")
    )


@dataclass(frozen=True)
class Part:
    field: str  # "prior" for the starting odds
    words: str
    strength: str
    bits: float


def strength(bits: float) -> str:
    """How strong a part is: ±10 bits move odds a thousandfold, ±5 thirty-twofold, ±2 fourfold."""
    size = abs(bits)
    word = (
        "very strong"
        if size >= 10
        else "strong"
        if size >= 5
        else "moderate"
        if size >= 2
        else "weak"
        if size >= 0.5
        else "neutral"
    )
    if word == "neutral":
        return word
    return word if bits > 0 else f"{word} against"


def _odds_words(prior: float) -> str:
    if prior <= 0 or prior >= 1:
        return "starting odds unknown"
    return f"starting odds 1 in {round((1 - prior) / prior):,} that two contacts are one person"


def describe_proposal(explanation: str | list, prior: float) -> list[Part]:
    """The parts of a proposal's match weight in words: the prior's odds first, then each field
    that moved it (fields with no information, weight 0, are left out). Their bits add up to
    the proposal's match weight (up to the explanation's rounding to 0.001 bit)."""
    fields = json.loads(explanation) if isinstance(explanation, str) else explanation
    prior_bits = math.log2(prior / (1 - prior)) if 0 < prior < 1 else 0.0
    parts = [Part("prior", _odds_words(prior), "starting point", round(prior_bits, 3))]
    for item in fields:
        bits = float(item.get("weight") or 0.0)
        if bits == 0:
            continue
        level = str(item.get("level", ""))
        words = _LEVEL_WORDS.get(level, level)
        field = str(item.get("field", ""))
        if field == "name" and level == "Exact match on full_name":
            adjustment = float(item.get("adjustment") or 0.0)
            words += ", rare" if adjustment > 0.5 else ", common" if adjustment < -0.5 else ""
        label = _FIELD_WORDS.get(field, field.removeprefix("p_").split("_", 1)[-1])
        parts.append(Part(field, f"{label}: {words}", strength(bits), round(bits, 3)))
    return parts


def describe_in_words(explanation: str | list, prior: float) -> str:
    """One line per part, e.g. "name: same full name, rare — strong (+14.2 bits)"."""
    return "\n".join(
        f"{p.words} — {p.strength} ({p.bits:+.1f} bits)"
        for p in describe_proposal(explanation, prior)
    )
