"""Deterministic auto-merge: interactions that share a trustworthy key become one contact.

Keys are `email_norm`, a *verified* user id, `phone_e164` and `session_id`. A key that joins
identities it should not (a household or switchboard phone, `test@test.com`, a kiosk session)
is *ambiguous*: it links nobody, it is reported, and the pairs it would have joined are left to
probabilistic matching. Two phases keep email the strongest key:

1. components over email, verified user id and session (each with its own hub caps);
2. phones join those components, unless a phone touches two or more phase-1 components that each
   carry an email or a verified user id (two people who typed the same number).

A phone seen with a person's work and personal email is therefore ambiguous only when nothing
else (a session, a verified login) already says the two emails are one person.

*Evidence* rows (CRM records: `dedup.identity.crm_evidence`) take part in both phases like
interactions that carry an email and a phone, under the same hub caps, but never become part of
a contact: a HubSpot record holding `ann@x` and `+1 415…` joins Ann's email side and phone side
exactly as a lead form carrying both would. One more cap applies to them: a phone carried by CRM
records of more than `phone_max_identities` different people (records apart by email and by
name: a company switchboard typed on every employee) is ambiguous.

*Held* keys (`held`: identifiers an erased contact shared with others, dedup.admin.privacy) stay
ambiguous whoever still carries them, so an erasure merges nobody it used to keep apart.

Admins' cannot-link decisions (pairs of interaction groups that must stay apart) are honoured by
removing the bridging key's edges; see `apply_cannot_link`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from dedup.config import HubLimits
from dedup.identity.graph import connected_components

KEY_COLUMNS: dict[str, str] = {
    "email": "email_norm",
    "user_id": "verified_user_id",
    "session": "session_id",
    "phone": "phone_e164",
}


@dataclass
class AutoMergeResult:
    clusters: pl.DataFrame  # interaction_id, cluster (smallest interaction_id of its component)
    ambiguous_keys: pl.DataFrame  # key_type, key_value, reason, n_linked, n_interactions


EVIDENCE_SCHEMA: dict[str, pl.DataType] = {
    "evidence_id": pl.String(),  # e.g. `hubspot:51`; never an interaction
    "email_norm": pl.String(),
    "phone_e164": pl.String(),
    "name_norm": pl.String(),  # tells the people behind records without a shared email apart
}

HELD_SCHEMA = {"key_type": pl.String, "key_value": pl.String}
# Whether a node's phase-1 component carries an email or a verified user id (phase 2 counts
# those components per phone).
IDENT1 = "_ident1"
HELD_REASON = "shared with an erased contact; kept ambiguous so the erasure merges nobody"

AMBIGUOUS_SCHEMA = {
    "key_type": pl.String,
    "key_value": pl.String,
    "reason": pl.String,
    "n_linked": pl.UInt32,  # how many distinct identities the key would have joined
    "n_interactions": pl.UInt32,
}


def value_hub_checks(limits: HubLimits) -> list[tuple[str, str, str, int, str]]:
    """The co-occurrence caps on emails and sessions: (key type, key column, other column, limit,
    label of the other). One table for both engines (dedup.spark.automerge reads it too)."""
    return [
        ("email", "email_norm", "phone_e164", limits.email_max_phones, "phones"),
        ("email", "email_norm", "verified_user_id", limits.email_max_user_ids, "verified user ids"),
        ("session", "session_id", "email_norm", limits.session_max_emails, "emails"),
        ("session", "session_id", "phone_e164", limits.session_max_phones, "phones"),
        (
            "session",
            "session_id",
            "verified_user_id",
            limits.session_max_user_ids,
            "verified user ids",
        ),
    ]


def _value_level_hubs(nodes: pl.DataFrame, limits: HubLimits) -> pl.DataFrame:
    """Emails and sessions ambiguous by direct co-occurrence counts."""
    found = []
    for key_type, key_col, other_col, limit, label in value_hub_checks(limits):
        counts = (
            nodes.filter(pl.col(key_col).is_not_null())
            .group_by(key_col)
            .agg(
                pl.col(other_col).drop_nulls().n_unique().alias("n_other"),
                pl.col("n").sum().alias("n_interactions"),
            )
            .filter(pl.col("n_other") > limit)
        )
        found.append(
            counts.select(
                pl.lit(key_type).alias("key_type"),
                pl.col(key_col).alias("key_value"),
                pl.format(
                    f"seen with {{}} distinct {label} (limit {limit})", pl.col("n_other")
                ).alias("reason"),
                pl.col("n_other").cast(pl.UInt32).alias("n_linked"),
                pl.col("n_interactions").cast(pl.UInt32),
            )
        )
    hubs = pl.concat(found) if found else pl.DataFrame(schema=AMBIGUOUS_SCHEMA)
    # One row per key: the first reason is enough to act on.
    return hubs.sort("key_type", "key_value", "reason").unique(
        ["key_type", "key_value"], keep="first"
    )


def _star_edges(
    nodes: pl.DataFrame, key_col: str, excluded: pl.Series, label_col: str
) -> pl.DataFrame:
    """Edges from every node to the smallest label sharing its key: n-1 edges per key, not n²."""
    return (
        nodes.filter(pl.col(key_col).is_not_null() & ~pl.col(key_col).is_in(excluded.implode()))
        .select(key_col, label_col)
        .unique()
        .with_columns(pl.col(label_col).min().over(key_col).alias("_to"))
        .filter(pl.col(label_col) != pl.col("_to"))
        .select(pl.col(label_col).alias("a"), pl.col("_to").alias("b"))
    )


def _crm_phone_hubs(evidence: pl.DataFrame, limits: HubLimits) -> pl.DataFrame:
    """Phones carried by CRM records of more than `phone_max_identities` different people.

    Records carrying one phone are one person when they share an email or a name (one person in
    HubSpot and in Salesforce, or twice in one CRM); the people are the connected groups.
    """
    rows = evidence.filter(pl.col("phone_e164").is_not_null()).with_row_index("node")
    if rows.height == 0:
        return pl.DataFrame(schema={"phone_e164": pl.String, "n_people": pl.UInt32})
    rows = rows.with_columns(pl.col("node").cast(pl.Int64))
    edges = pl.concat(
        [
            rows.filter(pl.col(c).is_not_null())
            .with_columns(pl.col("node").min().over("phone_e164", c).alias("_to"))
            .filter(pl.col("node") != pl.col("_to"))
            .select(pl.col("node").alias("a"), pl.col("_to").alias("b"))
            for c in ("email_norm", "name_norm")
        ]
    )
    comp = connected_components(
        rows.height, edges.get_column("a").to_numpy(), edges.get_column("b").to_numpy()
    )
    return (
        rows.with_columns(pl.Series("_person", comp, dtype=pl.Int64))
        .group_by("phone_e164")
        .agg(pl.col("_person").n_unique().cast(pl.UInt32).alias("n_people"))
        .filter(pl.col("n_people") > limits.phone_max_identities)
    )


def _with_evidence(interactions: pl.DataFrame, evidence: pl.DataFrame | None) -> pl.DataFrame:
    """Interactions' keys with evidence rows appended; `_evidence` tells them apart."""
    keys = list(KEY_COLUMNS.values())
    frame = interactions.select("interaction_id", *keys).with_columns(
        pl.lit(False).alias("_evidence")
    )
    if evidence is None or evidence.height == 0:
        return frame
    rows = evidence.select(
        pl.col("evidence_id").alias("interaction_id"),
        "email_norm",
        pl.lit(None, pl.String).alias("verified_user_id"),
        pl.lit(None, pl.String).alias("session_id"),
        "phone_e164",
        pl.lit(True).alias("_evidence"),
    )
    return pl.concat([frame, rows.cast(dict(frame.schema))])  # type: ignore[arg-type]


def _nodes(with_sig: pl.DataFrame) -> pl.DataFrame:
    """Distinct identity signatures: a person repeating the same identifiers in many
    interactions is one node, which shrinks the graph several-fold before any join."""
    keys = list(KEY_COLUMNS.values())
    return (
        with_sig.filter(pl.col("_sig_hash").is_not_null())
        .group_by(keys)
        .agg(
            (~pl.col("_evidence")).sum().alias("n"),  # interactions, for the reports
            pl.col("interaction_id").min().alias("_first"),
        )
        .sort("_first")
        .with_row_index("node")
        .with_columns(pl.col("node").cast(pl.Int64))
    )


def _phone_hubs(
    nodes: pl.DataFrame, evidence: pl.DataFrame | None, limits: HubLimits
) -> pl.DataFrame:
    """Phase 2's ambiguous phones (`AMBIGUOUS_SCHEMA`-like rows).

    A phone is one person's only if it touches at most `phone_max_identities` phase-1
    components that carry an email or a verified user id, and (CRM evidence) at most that many
    CRM people. `nodes` needs `comp1` and `IDENT1` (whether that component carries an email or
    a verified user id anywhere), so any frame holding every node of the phones counted will do
    (`dedup.identity.identity_index` passes the rows of a few phones).
    """
    phone_counts = (
        nodes.filter(pl.col("phone_e164").is_not_null())
        .group_by("phone_e164")
        .agg(
            pl.col("comp1").filter(pl.col(IDENT1)).n_unique().alias("n_identities"),
            pl.col("n").sum().alias("n_interactions"),
        )
    )
    hubs = phone_counts.filter(pl.col("n_identities") > limits.phone_max_identities).select(
        pl.lit("phone").alias("key_type"),
        pl.col("phone_e164").alias("key_value"),
        pl.format(
            "seen with {} distinct people (emails or verified user ids; limit {})",
            pl.col("n_identities"),
            pl.lit(limits.phone_max_identities),
        ).alias("reason"),
        pl.col("n_identities").cast(pl.UInt32).alias("n_linked"),
        pl.col("n_interactions").cast(pl.UInt32),
    )
    if evidence is None or evidence.height == 0:
        return hubs
    crm_hubs = _crm_phone_hubs(evidence, limits).join(
        phone_counts.select("phone_e164", "n_interactions"), on="phone_e164", how="left"
    )
    crm_only = (
        crm_hubs.join(hubs, left_on="phone_e164", right_on="key_value", how="anti")
        .select(
            pl.lit("phone").alias("key_type"),
            pl.col("phone_e164").alias("key_value"),
            pl.format(
                "in {} CRM records of different people (limit {})",
                pl.col("n_people"),
                pl.lit(limits.phone_max_identities),
            ).alias("reason"),
            pl.col("n_people").alias("n_linked"),
            pl.col("n_interactions").fill_null(0).cast(pl.UInt32),
        )
        .cast(dict(hubs.schema))  # type: ignore[arg-type]
    )
    return pl.concat([hubs, crm_only])


def labelled_rows(with_sig: pl.DataFrame, nodes: pl.DataFrame) -> pl.DataFrame:
    """Every row of `with_sig` with `cluster`, the smallest interaction id of its component
    (null for evidence, which belongs to no contact; keyless rows are their own), and, for the
    identity index, `comp1` and `comp` named by a 64-bit hash of their smallest row id (evidence
    included) and `IDENT1`."""
    keys = list(KEY_COLUMNS.values())
    label = pl.col("_first").hash()
    named = nodes.select(
        *keys,
        "comp",
        label.gather(pl.col("comp1")).alias("comp1"),
        label.gather(pl.col("comp")).alias("_label"),
        IDENT1,
    )
    own = pl.col("interaction_id")
    keyless = pl.col("_sig_hash").is_null()
    return (
        with_sig.join(named, on=keys, how="left", nulls_equal=True, maintain_order="left")
        .with_columns(
            pl.when(pl.col("_evidence"))
            .then(None)
            .when(keyless)
            .then(own)
            .otherwise(own.filter(~pl.col("_evidence")).min().over("comp"))
            .alias("cluster"),
            pl.when(keyless).then(own.hash()).otherwise(pl.col("comp1")).alias("comp1"),
            pl.when(keyless).then(own.hash()).otherwise(pl.col("_label")).alias("_label"),
            pl.col(IDENT1).fill_null(False),
        )
        .drop("comp")
        .rename({"_label": "comp"})
    )


def _clusters(with_sig: pl.DataFrame, nodes: pl.DataFrame) -> pl.DataFrame:
    """interaction_id → cluster, named by the smallest interaction id of its component."""
    return (
        labelled_rows(with_sig, nodes)
        .filter(~pl.col("_evidence"))
        .select("interaction_id", "cluster")
    )


def auto_merge(
    interactions: pl.DataFrame,
    limits: HubLimits = HubLimits(),  # noqa: B008 (frozen)
    evidence: pl.DataFrame | None = None,
    held: pl.DataFrame | None = None,
) -> AutoMergeResult:
    """Cluster interactions by shared unambiguous keys.

    Args:
        interactions: needs `interaction_id` and the columns in `KEY_COLUMNS`.
        limits: hub caps.
        evidence: `EVIDENCE_SCHEMA` rows (CRM records) that link like interactions but belong
            to no contact; None = none.
        held: (key_type, key_value) rows that link nobody (an erasure held them); None = none.

    Returns:
        `clusters` maps every interaction to its component, named by the smallest interaction id
        in it; `ambiguous_keys` lists every key that was not used and why (a key no interaction
        carries is not listed: it would have joined nothing).
    """
    with_sig = with_signature(interactions, evidence)
    held = pl.DataFrame(schema=HELD_SCHEMA) if held is None else held.select(*HELD_SCHEMA)
    parts = components(with_sig, limits, evidence, held)
    ambiguous = ambiguous_report(parts.value_hubs, parts.phone_hubs, held, parts.nodes)
    return AutoMergeResult(clusters=_clusters(with_sig, parts.nodes), ambiguous_keys=ambiguous)


def ambiguous_report(
    value_hubs: pl.DataFrame, phone_hubs: pl.DataFrame, held: pl.DataFrame, nodes: pl.DataFrame
) -> pl.DataFrame:
    """`AMBIGUOUS_SCHEMA` rows of every key that linked nobody and some interaction carries.
    `nodes` (key columns, `comp1`, `n`) must hold every node carrying a held key."""
    natural = pl.concat([value_hubs, phone_hubs.cast(AMBIGUOUS_SCHEMA)])  # type: ignore[arg-type]
    return (
        pl.concat([natural, _held_report(nodes, held, natural)])
        .filter(pl.col("n_interactions") > 0)  # a key only CRM records carry joined nobody
        .sort("key_type", "key_value")
    )


def with_signature(interactions: pl.DataFrame, evidence: pl.DataFrame | None) -> pl.DataFrame:
    """Interactions' keys and evidence rows, each with `_sig_hash` (null: no key at all)."""
    keys = list(KEY_COLUMNS.values())
    has_key = pl.any_horizontal([pl.col(k).is_not_null() for k in keys])
    return _with_evidence(interactions, evidence).with_columns(
        pl.when(has_key).then(pl.struct(keys).hash(7)).otherwise(None).alias("_sig_hash")
    )


@dataclass
class Components:
    """Both phases over some rows: `nodes` with `comp1`, `IDENT1` and `comp` (node numbers: the
    smallest node of the component, nodes numbered by their smallest row id `_first`), and the
    keys that linked nobody."""

    nodes: pl.DataFrame
    value_hubs: pl.DataFrame
    phone_hubs: pl.DataFrame


def components(
    with_sig: pl.DataFrame,
    limits: HubLimits,
    evidence: pl.DataFrame | None,
    held: pl.DataFrame,
) -> Components:
    """Both phases of the auto-merge over `with_sig`'s rows. The full path calls it on every
    row; the identity index on whole components of them, with every key ambiguous over all rows
    in `held` (a key's hub statistics over a subset can only be smaller)."""
    nodes = _nodes(with_sig)
    hubs = _value_level_hubs(nodes, limits)
    apart = pl.concat([hubs.select(*HELD_SCHEMA), held.cast(HELD_SCHEMA)])  # type: ignore[arg-type]
    excluded = {
        t: apart.filter(pl.col("key_type") == t).get_column("key_value") for t in KEY_COLUMNS
    }
    # Phase 1: email, verified user id, session.
    phase1 = pl.concat(
        [
            _star_edges(nodes, "email_norm", excluded["email"], "node"),
            _star_edges(nodes, "verified_user_id", excluded["user_id"], "node"),
            _star_edges(nodes, "session_id", excluded["session"], "node"),
        ]
    )
    comp1 = connected_components(
        nodes.height, phase1.get_column("a").to_numpy(), phase1.get_column("b").to_numpy()
    )
    identity = pl.col("email_norm").is_not_null() | pl.col("verified_user_id").is_not_null()
    nodes = nodes.with_columns(pl.Series("comp1", comp1, dtype=pl.Int64)).with_columns(
        identity.any().over("comp1").alias(IDENT1)
    )
    # Phase 2: phones, except those shared by several people.
    phone_hubs = _phone_hubs(nodes, evidence, limits)
    phase2 = _star_edges(
        nodes,
        "phone_e164",
        pl.concat([phone_hubs.get_column("key_value"), excluded["phone"]]),
        "comp1",
    )
    comp2 = connected_components(
        nodes.height, phase2.get_column("a").to_numpy(), phase2.get_column("b").to_numpy()
    )
    nodes = nodes.with_columns(pl.Series("comp", comp2[comp1], dtype=pl.Int64))
    return Components(nodes, hubs, phone_hubs)


def _held_report(nodes: pl.DataFrame, held: pl.DataFrame, natural: pl.DataFrame) -> pl.DataFrame:
    """`AMBIGUOUS_SCHEMA` rows for held keys some interaction carries and no cap caught."""
    rows = [
        nodes.filter(
            pl.col(column).is_in(held.filter(pl.col("key_type") == kind)["key_value"].implode())
        )
        .group_by(pl.col(column).alias("key_value"))
        .agg(
            pl.col("comp1").n_unique().cast(pl.UInt32).alias("n_linked"),
            pl.col("n").sum().cast(pl.UInt32).alias("n_interactions"),
        )
        .select(
            pl.lit(kind).alias("key_type"),
            "key_value",
            pl.lit(HELD_REASON).alias("reason"),
            "n_linked",
            "n_interactions",
        )
        for kind, column in KEY_COLUMNS.items()
    ]
    return (
        pl.concat(rows)
        .cast(AMBIGUOUS_SCHEMA)  # type: ignore[arg-type]
        .join(natural, on=["key_type", "key_value"], how="anti")
    )


def cluster_sizes(clusters: pl.DataFrame) -> dict[str, int]:
    """Histogram of interactions per contact, in buckets people read at a glance."""
    sizes = clusters.group_by("cluster").len().get_column("len").to_numpy()
    edges = [(1, 1), (2, 2), (3, 5), (6, 10), (11, 50), (51, 10**12)]
    out = {}
    for lo, hi in edges:
        label = str(lo) if lo == hi else (f"{lo}-{hi}" if hi < 10**12 else f"{lo}+")
        out[label] = int(np.count_nonzero((sizes >= lo) & (sizes <= hi)))
    return out
