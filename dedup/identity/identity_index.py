"""The identity index kept from night to night: auto-merge over the affected clusters only
(issue 25).

Kept in `<cache>/identity/`: `rows-<gen>.parquet` (every interaction and CRM evidence row as
auto-merge read it: its keys, a hash of its id and keys, `comp1` and `comp` (its phase-1 and
final component, each named by a 64-bit hash of its smallest row id), whether `comp1` carries
an email or a verified user id, and its `cluster`), `hubs-<gen>.parquet` (every key the caps
made ambiguous, with the statistics and reason of `dedup.identity.automerge`, also those only
CRM records carry) and `held-<gen>.parquet` (the keys an erasure held), then `state.json`
naming the generation and the token, written last; older files deleted after. Rows and
components are told apart by 64-bit hashes, as the kept profiles' rows are: two different
rows or component names with one hash are assumed not to occur (about 2^-64 per pair).

Why a subset gives the same components as all rows (tonight's rows *added* = new or changed
hash, *gone* = a kept hash not there tonight):

- A key's hub statistics are over the rows carrying it, so only keys on added or gone rows (and
  keys held or released tonight) can change status; they are counted again over every row
  carrying them, with the same functions (`_value_level_hubs`, `_phone_hubs`).
- Phase 1 depends on the email, user id and session statuses only. Its affected components:
  those holding a gone row, sharing a phase-1 key with an added row or all its keys (rows with
  the same keys are one node, linked whatever their statuses), or holding a key whose status
  flipped. Every other component keeps its rows and its keys' statuses, so it is a
  component again; the affected ones are closed (an edge out of them would be a flipped key or
  an added row's key). Phase 1 runs over the affected rows.
- A phone's count of phase-1 components is then known exactly: kept components outside, new
  ones inside. Phones on changed rows or affected components are counted again; components
  holding a phone whose status flipped, or sharing an unambiguous phone with an added row, join
  the affected set; both phases run over it with every key ambiguous tonight held.
- A key's statistics over a subset holding whole components are never larger than over all
  rows, and for an unambiguous key they are the same (all its rows are in one component), so
  holding tonight's ambiguous keys gives exactly tonight's statuses.

Components are named by their smallest interaction id on both paths, so the clusters are equal
label for label. Anything else runs the full path and says why (`IndexPlan.full`): another
token (hub caps, the auto-merge or normalization code and its settings, Polars), no or a damaged
index, `--full`, or more than `MAX_AFFECTED_SHARE` of the rows affected.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from dedup.code_token import code_token
from dedup.config import EngineConfig
from dedup.generations import kept_state, write_generation
from dedup.identity import automerge
from dedup.identity.automerge import (
    AMBIGUOUS_SCHEMA,
    HELD_SCHEMA,
    IDENT1,
    KEY_COLUMNS,
    AutoMergeResult,
    Components,
    _phone_hubs,
    _value_level_hubs,
    ambiguous_report,
    components,
    labelled_rows,
    with_signature,
)
from dedup.identity.day_cache import normalization_token

# Above this share of rows to recompute, one full pass is cheaper than the index's joins.
MAX_AFFECTED_SHARE = 0.5
ROW_HASH = "_h"
KEYS = list(KEY_COLUMNS.values())
SIG = "_sig_hash"
# Not the interaction id: tonight's rows are found by their hash, which covers it.
ROW_COLUMNS = [
    *KEYS,
    "_evidence",
    ROW_HASH,
    SIG,
    "comp1",
    "comp",
    IDENT1,
    "cluster",
]


def index_token(config: EngineConfig) -> str:
    """What tonight's components depend on besides the rows: the caps, the code that merges and
    the normalization that made the keys (its token: secrets, region, code), Polars' hashes."""
    described = [repr(config.hub_limits), normalization_token(config), pl.__version__]
    return code_token(described, (automerge, sys.modules[__name__]))


@dataclass
class IndexPlan:
    """How tonight's clusters were made; `full` says why all rows were merged."""

    full: str | None = None
    recomputed: int = 0  # rows merged again
    carried: int = 0  # rows whose components were carried over
    clusters_affected: int = 0

    def describe(self) -> str:
        if self.full:
            return f"full: {self.full}"
        return (
            f"incremental: {self.recomputed:,} rows of {self.clusters_affected:,} affected "
            f"clusters merged again, {self.carried:,} rows carried over"
        )


@dataclass
class Kept:
    rows: pl.DataFrame
    hubs: pl.DataFrame  # AMBIGUOUS_SCHEMA + kind ("value" or "phone")
    held: pl.DataFrame


class IdentityIndex:
    """The kept index under `root` for one token."""

    def __init__(self, root: Path, token: str) -> None:
        self.root = root
        self.token = token

    def read(self) -> Kept | str:
        """The kept index under this token, or why there is none to use."""
        state = kept_state(self.root)
        if state is None:
            return "no identity index kept yet"
        if state.get("token") != self.token:
            return "hub caps, auto-merge or normalization code or settings changed"
        gen = state.get("gen")
        try:
            return Kept(
                *(
                    pl.read_parquet(self.root / f"{n}-{gen}.parquet")
                    for n in ("rows", "hubs", "held")
                )
            )
        except (OSError, pl.exceptions.PolarsError):
            return "identity index unreadable"

    def write(self, kept: Kept) -> None:
        write_generation(
            self.root, self.token, {"rows": kept.rows, "hubs": kept.hubs, "held": kept.held}
        )


def _hashed(with_sig: pl.DataFrame) -> pl.DataFrame:
    return with_sig.with_columns(
        pl.struct("interaction_id", *KEYS, "_evidence").hash(11).alias(ROW_HASH),
        (~pl.col("_evidence")).cast(pl.UInt32).alias("n"),  # interactions, for the reports
    )


def _hubs_table(parts: Components) -> pl.DataFrame:
    return pl.concat(
        [
            parts.value_hubs.cast(AMBIGUOUS_SCHEMA).with_columns(kind=pl.lit("value")),  # type: ignore[arg-type]
            parts.phone_hubs.cast(AMBIGUOUS_SCHEMA).with_columns(kind=pl.lit("phone")),  # type: ignore[arg-type]
        ]
    )


def _result(tonight: pl.DataFrame, kept: Kept, ordered: bool) -> AutoMergeResult:
    """The clusters in tonight's row order (the full path's), and the ambiguous keys."""
    value = kept.hubs.filter(pl.col("kind") == "value").drop("kind")
    phone = kept.hubs.filter(pl.col("kind") == "phone").drop("kind")
    rows = kept.rows.filter(~pl.col("_evidence"))
    if ordered:
        clusters = rows.select("interaction_id", "cluster")
    else:
        clusters = (
            tonight.filter(~pl.col("_evidence"))
            .select(ROW_HASH, "interaction_id")
            .join(rows.select(ROW_HASH, "cluster"), on=ROW_HASH, maintain_order="left")
            .drop(ROW_HASH)
        )
    return AutoMergeResult(clusters, ambiguous_report(value, phone, kept.held, kept.rows))


def merge(
    interactions: pl.DataFrame,
    config: EngineConfig,
    evidence: pl.DataFrame | None,
    held: pl.DataFrame,
    root: Path,
    full: str | None = None,
    max_share: float | None = None,
) -> tuple[AutoMergeResult, IndexPlan]:
    """`automerge.auto_merge`'s result, over the affected clusters only where the index kept
    under `root` allows (and they hold at most `max_share` of the rows, `MAX_AFFECTED_SHARE`
    unless given); the index is written again for tomorrow."""
    share = MAX_AFFECTED_SHARE if max_share is None else max_share
    index = IdentityIndex(root, index_token(config))
    held = held.select(*HELD_SCHEMA).cast(HELD_SCHEMA)  # type: ignore[arg-type]
    tonight = _hashed(with_signature(interactions, evidence))
    kept = index.read() if full is None else full
    plan = IndexPlan(full=kept if isinstance(kept, str) else None)
    out = None
    if isinstance(kept, Kept):
        try:
            out = _incremental(tonight, kept, config, (evidence, held), plan, share)
        except (pl.exceptions.PolarsError, KeyError) as e:  # a damaged kept file
            plan.full = f"identity index unreadable ({type(e).__name__})"
    ordered = out is None  # the full path's rows are tonight's, in order
    if out is None:
        parts = components(tonight, config.hub_limits, evidence, held)
        out = Kept(labelled_rows(tonight, parts.nodes), _hubs_table(parts), held)
        plan.recomputed = tonight.height
    index.write(Kept(out.rows.select(ROW_COLUMNS), out.hubs, held))
    return _result(tonight, out, ordered), plan


PHASE1_TYPES = ("email", "user_id", "session")


def _keys_of(rows: pl.DataFrame, types: tuple[str, ...] = tuple(KEY_COLUMNS)) -> pl.DataFrame:
    """(key_type, key_value) of every key the rows carry, once each."""
    return pl.concat(
        [
            rows.select(pl.lit(t).alias("key_type"), pl.col(KEY_COLUMNS[t]).alias("key_value"))
            .drop_nulls()
            .unique()
            for t in types
        ]
    )


def _of_type(keys: pl.DataFrame, kind: str) -> pl.Series:
    return keys.filter(pl.col("key_type") == kind).get_column("key_value")


def _holding(rows: pl.DataFrame, keys: pl.DataFrame) -> pl.Series:
    """`comp` of the rows carrying any of `keys`."""
    wanted = {c: _of_type(keys, kind) for kind, c in KEY_COLUMNS.items()}
    hits = [pl.col(c).is_in(values.implode()) for c, values in wanted.items() if values.len()]
    if not hits:
        return rows.get_column("comp").clear()
    return rows.filter(pl.any_horizontal(hits)).get_column("comp").unique()


def _flipped(before: pl.DataFrame, after: pl.DataFrame) -> pl.DataFrame:
    """Keys in one set of (key_type, key_value) and not the other."""
    pair = ["key_type", "key_value"]
    return pl.concat(
        [before.join(after, on=pair, how="anti"), after.join(before, on=pair, how="anti")]
    ).unique()


def _apart(hubs: pl.DataFrame, held: pl.DataFrame, types: tuple[str, ...]) -> pl.DataFrame:
    keys = pl.concat([hubs.select(*HELD_SCHEMA), held]).unique()
    return keys.filter(pl.col("key_type").is_in(types))


def _recounted(
    hubs: pl.DataFrame, touched: pl.DataFrame, fresh: pl.DataFrame, kind: str
) -> pl.DataFrame:
    """Kept hubs of `kind` with the touched keys' rows replaced by `fresh` (theirs recounted)."""
    pair = ["key_type", "key_value"]
    fresh = fresh.cast(AMBIGUOUS_SCHEMA).join(touched, on=pair, how="semi")  # type: ignore[arg-type]
    return pl.concat(
        [
            hubs.filter(pl.col("kind") == kind).drop("kind").join(touched, on=pair, how="anti"),
            fresh,
        ]
    ).with_columns(kind=pl.lit(kind))


def _value_hubs(
    tonight: pl.DataFrame, kept: pl.DataFrame, touched: pl.DataFrame, config: EngineConfig
) -> pl.DataFrame:
    """Tonight's email and session hubs: the touched ones counted over every row carrying them."""
    carrying = pl.col("email_norm").is_in(_of_type(touched, "email").implode()) | pl.col(
        "session_id"
    ).is_in(_of_type(touched, "session").implode())
    fresh = _value_level_hubs(tonight.filter(carrying), config.hub_limits)
    return _recounted(kept, touched, fresh, "value")


def _phone_statuses(
    rows: pl.DataFrame,
    kept: pl.DataFrame,
    phones: pl.Series,
    evidence: pl.DataFrame | None,
    config: EngineConfig,
) -> pl.DataFrame:
    """Tonight's phone hubs: `phones` counted over every row carrying them (`rows` has
    tonight's `comp1` and `IDENT1` for every row)."""
    wanted = pl.col("phone_e164").is_in(phones.implode())
    crm = None if evidence is None else evidence.filter(wanted)
    fresh = _phone_hubs(rows.filter(wanted), crm, config.hub_limits)
    touched = phones.to_frame("key_value").select(pl.lit("phone").alias("key_type"), "key_value")
    return _recounted(kept, touched, fresh, "phone")


def _incremental(
    tonight: pl.DataFrame,
    kept: Kept,
    config: EngineConfig,
    inputs: tuple[pl.DataFrame | None, pl.DataFrame],
    plan: IndexPlan,
    max_share: float,
) -> Kept | None:
    """Tonight's labelled rows and hubs from the kept ones (module docstring), or None with
    `plan.full` saying why not. `inputs`: CRM evidence and held keys."""
    evidence, held = inputs
    # A row's hash covers its id and keys: a changed row is a gone row and an added one.
    known = pl.col(ROW_HASH).is_in(kept.rows.get_column(ROW_HASH).implode())
    still = pl.col(ROW_HASH).is_in(tonight.get_column(ROW_HASH).implode())
    added = tonight.filter(~known)
    old = kept.rows.filter(still).with_columns((~pl.col("_evidence")).cast(pl.UInt32).alias("n"))
    gone = kept.rows.filter(~still)
    touched = pl.concat(
        [_keys_of(pl.concat([added.select(KEYS), gone.select(KEYS)])), _flipped(kept.held, held)]
    ).unique()
    # Phase 1: statuses of email, user id and session keys, then its affected components.
    value = _value_hubs(tonight, kept.hubs, touched, config)
    apart1 = _apart(value, held, PHASE1_TYPES)
    flipped1 = _flipped(_apart(kept.hubs, kept.held, PHASE1_TYPES), apart1)
    linking = _keys_of(added, PHASE1_TYPES).join(apart1, on=["key_type", "key_value"], how="anti")
    # Rows with the same keys are one node whatever the keys' statuses (`automerge._nodes`).
    same = old.filter(pl.col(SIG).is_in(added.get_column(SIG).drop_nulls().implode()))
    affected = pl.concat(
        [gone.get_column("comp"), same.get_column("comp"), _holding(old, linking.vstack(flipped1))]
    ).unique()
    first = _subset(tonight, old, added, affected)
    phase1 = labelled_rows(first, components(first, config.hub_limits, None, apart1).nodes)
    # Phase 2: every phone whose rows or components may have changed is counted again.
    carried1 = old.filter(~pl.col("comp").is_in(affected.implode()))
    columns = ["phone_e164", "comp1", IDENT1, "n"]
    comp1 = pl.concat([carried1.select(columns), phase1.select(columns)])
    phones = pl.concat(
        [_of_type(touched, "phone"), first.get_column("phone_e164").drop_nulls()]
    ).unique()
    phone = _phone_statuses(comp1, kept.hubs, phones, evidence, config)
    apart2 = _apart(phone, held, ("phone",))
    flipped2 = _flipped(_apart(kept.hubs, kept.held, ("phone",)), apart2)
    linking2 = _keys_of(added, ("phone",)).join(apart2, on=["key_type", "key_value"], how="anti")
    affected = pl.concat([affected, _holding(old, flipped2.vstack(linking2))]).unique()
    both = _subset(tonight, old, added, affected)
    if both.height > max_share * tonight.height:
        plan.full = f"{both.height:,} of {tonight.height:,} rows affected"
        return None
    apart = pl.concat([apart1, apart2])
    merged = labelled_rows(both, components(both, config.hub_limits, None, apart).nodes)
    rest = old.filter(~pl.col("comp").is_in(affected.implode()))
    rows = pl.concat([rest.select(*ROW_COLUMNS, "n"), merged.select(*ROW_COLUMNS, "n")])
    plan.recomputed, plan.carried, plan.clusters_affected = both.height, rest.height, affected.len()
    return Kept(rows, pl.concat([value, phone]), held)


def _subset(
    tonight: pl.DataFrame, old: pl.DataFrame, added: pl.DataFrame, comps: pl.Series
) -> pl.DataFrame:
    """Tonight's rows of the kept components `comps` and the added rows."""
    hashes = pl.concat(
        [
            old.filter(pl.col("comp").is_in(comps.implode())).get_column(ROW_HASH),
            added.get_column(ROW_HASH),
        ]
    )
    return tonight.filter(pl.col(ROW_HASH).is_in(hashes.implode()))
