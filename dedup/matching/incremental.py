"""Nightly prediction that rescores only what changed, with the same result as a full predict.

A night's candidate pairs split in two:
- pairs with at least one *changed* contact (id new tonight, or a different fingerprint of the
  fields the matcher reads): blocked and scored by Splink — `predict_between(changed, changed +
  unchanged)`, one orientation of each pair kept, which makes exactly the candidate pairs a
  full `predict` makes that touch a changed contact;
- pairs of two unchanged contacts: the same records under the same blocking rules give the same
  candidate pair and the same comparison levels as last night, so they carry over from last
  night's scored pairs. Only their term-frequency adjustment can move (a name or company became
  more or less common in the whole table), and it is recomputed from tonight's tf tables with
  Splink's formula (`ComparisonLevel._tf_adjustment_sql`: `w * (log2(u_exact) - log2(tf))`).

Term-frequency tables always come from the full table (`frequencies.term_frequencies` over
tonight's records, registered on the linker), so a changed contact's pairs score exactly as in
a full run.

Why a floor: last night's pairs are kept down to `floor_bits` of match weight below the
threshold, because an unchanged pair can only rise through tf shifts, and the rise is bounded:
tonight's largest tf drop per column, summed. The bound is spent from a budget (`headroom_bits`,
`floor_bits` after a full run); when a night would overspend it, the run predicts in full. A pair
not in the store was last scored below the floor, so it cannot reach the threshold while the
budget lasts; proposals equal a full run's.

A full predict also runs when there is no state, when the model, threshold, kept blocking
rules, record columns or library versions changed (a retrain changes the model), or when more
than `max_changed_share` of the contacts changed (a full run is then cheaper).

State (`state_dir`): `state.json` (key, token, headroom, Splink's output columns) written last
and atomically; the token names tonight's Parquet files (pairs ≥ floor without Splink's copies
of record fields, which `with_record_columns` fetches back for the pairs above the threshold;
fingerprints; tf tables), so a killed run leaves last night's consistent state or none. No
Dagster here; the database API is a parameter.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import splink
from splink.internals.misc import prob_to_match_weight

from dedup.layout import WORK_COMPRESSION
from dedup.matching.frequencies import register_term_frequencies, term_frequencies, tf_levels
from dedup.matching.model import (
    TrainedModel,
    _linker,
    contact_ids_of,
    dialect_of,
    explain,
    portable_settings,
    prediction_rules,
    splink_ids,
)
from dedup.matching.prior_fit import (
    blocking_recall,
    fitted_prior,
    prior_shift,
    shift_weights,
    with_probability,
)
from dedup.matching.settings import blocking_keys, property_columns

STATE_FILE = "state.json"
# Splink's predict output as stored: these identify a pair.
ID_L, ID_R = "unique_id_l", "unique_id_r"


@dataclass(frozen=True)
class IncrementalConfig:
    """Knobs of the incremental predict.

    Args:
        floor_bits: pairs are stored down to this many bits of match weight below the threshold
            (10 bits: 0.8 → 0.004). More bits keep more pairs and allow more tf drift between
            full runs.
        max_changed_share: above this share of changed contacts, predict in full.
    """

    floor_bits: float = 10.0
    max_changed_share: float = 0.5


@dataclass
class PredictionRun:
    """What one night's predict did. `scored`: Splink's pairs at or above the threshold, with
    `explanation` (as `model.predict` returns them)."""

    scored: pl.DataFrame
    pairs_per_rule: dict[str, int]
    mode: str  # "full" or "incremental"
    reason: str
    contacts: int
    changed: int = 0
    carried_pairs: int = 0
    stored_pairs: int = 0
    headroom_bits: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)
    prior: dict[str, float] = field(default_factory=dict)  # estimated, fitted, bits (prior_fit)


def fingerprints(records: pl.DataFrame) -> pl.DataFrame:
    """unique_id → a 64-bit hash of every other record column (what the matcher reads).

    A hash-function change between library versions only makes contacts look changed (more
    work, same result); the versions are also part of the state key.
    """
    fields = [c for c in records.columns if c != "unique_id"]
    return records.select("unique_id", pl.struct(fields).hash(seed=0).alias("fingerprint"))


def record_columns_of(
    scored: pl.DataFrame, records: pl.DataFrame, levels: list[dict[str, Any]]
) -> list[str]:
    """Splink's copies of record fields in its output (`<field>_l`, `<field>_r`; its own
    `tf_*` columns are not record fields), except the fields a term-frequency level reads:
    `rescore_carried` looks tonight's tf up by their values."""
    fields = {c for c in records.columns if c != "unique_id"} - {lv["column"] for lv in levels}
    return [c for c in scored.columns if c[:-2] in fields and c[-2:] in ("_l", "_r")]


def with_record_columns(
    pairs: pl.DataFrame, records: pl.DataFrame, columns: list[str], order: list[str]
) -> pl.DataFrame:
    """`pairs` with the record fields `columns` (`record_columns_of`) fetched from `records`
    by id, in Splink's column `order`: what its predict output holds."""
    if not columns:
        return pairs.select(order)
    for side in ("l", "r"):
        wanted = [c[:-2] for c in columns if c.endswith(f"_{side}")]
        lookup = records.select(
            pl.col("unique_id").alias(f"unique_id_{side}"),
            *(pl.col(c).alias(f"{c}_{side}") for c in wanted),
        )
        pairs = pairs.join(lookup, on=f"unique_id_{side}", how="left", maintain_order="left")
    return pairs.select(order)


def _state_key(
    records: pl.DataFrame,
    settings: dict[str, Any],
    threshold: float,
    rules: list,
    floor_bits: float,
) -> str:
    payload = {
        "settings": settings,
        "threshold": threshold,
        "floor_bits": floor_bits,
        "rules": [r if isinstance(r, (str, dict)) else str(r) for r in rules],
        "columns": {c: str(t) for c, t in records.schema.items()},
        "versions": [splink.__version__, pl.__version__],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _to_polars(frame: Any) -> pl.DataFrame:
    # DuckDB hands Arrow over without a copy through pandas; other backends go through pandas.
    if hasattr(frame, "as_duckdbpyrelation"):
        return frame.as_duckdbpyrelation().pl()
    return pl.from_pandas(frame.as_pandas_dataframe())


def _tf_tables(linker: Any, records: pl.DataFrame, levels: list[dict[str, Any]]) -> pl.DataFrame:
    """column, value, tf — from the whole table (`frequencies.term_frequencies`), registered on
    the linker for scoring."""
    tf = term_frequencies(records, levels)
    register_term_frequencies(linker, records, tf)
    return tf


def _tf_rise(old: pl.DataFrame, new: pl.DataFrame, levels: list[dict[str, Any]]) -> float:
    """The most an unchanged pair's match weight can rise tonight through tf shifts: per tf level,
    weight × the largest log2 drop of a value's tf (a value present both nights), summed."""
    joined = old.join(new, on=["column", "value"], suffix="_new")
    rise = 0.0
    for level in levels:
        floor = level["minimum"]
        drop = (
            joined.filter(pl.col("column") == level["column"])
            .select(
                (
                    pl.max_horizontal("tf", pl.lit(floor)).log(2)
                    - pl.max_horizontal("tf_new", pl.lit(floor)).log(2)
                ).max()
            )
            .item()
        )
        rise += level["weight"] * max(drop or 0.0, 0.0)
    return rise


def _pair_tf(left: str, right: str, minimum: float) -> pl.Expr:
    """log2 of Splink's tf of a pair: greatest(coalesce(l, r), coalesce(r, l), minimum)."""
    return pl.max_horizontal(
        pl.coalesce(left, right), pl.coalesce(right, left), pl.lit(minimum)
    ).log(2)


def rescore_carried(
    pairs: pl.DataFrame, tf_now: pl.DataFrame, levels: list[dict[str, Any]]
) -> pl.DataFrame:
    """Last night's scored pairs with tonight's term frequencies.

    Per tf level reached, the adjustment moves by `w * (log2 tf_old - log2 tf_new)` (Splink's
    `w * (log2 u - log2 tf)`, the u term unchanged), with Splink's tf of a pair:
    `greatest(coalesce(tf_l, tf_r), coalesce(tf_r, tf_l), minimum)`. Match weight, probability
    and the tf columns follow.
    """
    if not levels or pairs.is_empty():
        return pairs
    delta_total = pl.lit(0.0)
    updates: dict[str, pl.Expr] = {}
    for column in sorted({lv["column"] for lv in levels}):
        lookup = tf_now.filter(pl.col("column") == column).select("value", "tf")
        for side in ("l", "r"):
            pairs = pairs.join(
                lookup.rename({"value": f"{column}_{side}", "tf": f"_tf_{column}_{side}"}),
                on=f"{column}_{side}",
                how="left",
            )
    for level in levels:
        column, comparison = level["column"], level["comparison"]
        old = _pair_tf(f"tf_{column}_l", f"tf_{column}_r", level["minimum"])
        new = _pair_tf(f"_tf_{column}_l", f"_tf_{column}_r", level["minimum"])
        reached = (pl.col(f"gamma_{comparison}") == level["gamma"]) & pl.coalesce(
            f"tf_{column}_l", f"tf_{column}_r"
        ).is_not_null()
        delta = pl.when(reached).then(level["weight"] * (old - new)).otherwise(0.0)
        adj = f"mw_tf_adj_{comparison}"
        if adj in pairs.columns:
            updates[adj] = updates.get(adj, pl.col(adj)) + delta
        delta_total = delta_total + delta
    weight = pl.col("match_weight") + delta_total
    pairs = pairs.with_columns(**updates, match_weight=weight)
    for comparison in {lv["comparison"] for lv in levels}:
        if f"bf_tf_adj_{comparison}" in pairs.columns:
            pairs = pairs.with_columns(
                pl.lit(2.0).pow(pl.col(f"mw_tf_adj_{comparison}")).alias(f"bf_tf_adj_{comparison}")
            )
    pairs = with_probability(pairs)
    new_tf = {
        f"tf_{c}_{s}": pl.coalesce(f"_tf_{c}_{s}", f"tf_{c}_{s}")
        for c in {lv["column"] for lv in levels}
        for s in ("l", "r")
        if f"tf_{c}_{s}" in pairs.columns
    }
    return pairs.with_columns(**new_tf).drop([c for c in pairs.columns if c.startswith("_tf_")])


def reachable_from(changed: pl.DataFrame, others: pl.DataFrame) -> pl.Series:
    """Which of `others` share a blocking key with some record of `changed` (a boolean per row).

    Every prediction rule joins on equal key values (`settings.blocking_keys`; a rule's other
    conditions only filter its join), so a record sharing no key with any changed record is in
    no candidate pair with one, and Splink need not see it. Both orientations of a rule count
    (the swapped-names rule pairs a first name with a surname). Measured at 1M interactions
    (3,464 of 308,647 contacts changed): 81,860 of the 305,183 unchanged contacts are reached,
    found in 0.14 s.
    """
    rules = blocking_keys(property_columns(changed.columns))
    used = sorted({column for rule in rules for pair in rule for column in pair})
    rows = others.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("_row"), *used)
    hits = []
    for keys in rules:
        for theirs, mine in ((0, 1), (1, 0)):
            own = [pair[mine] for pair in keys]
            probe = (
                changed.select(
                    pl.col(pair[theirs]).alias(column)
                    for pair, column in zip(keys, own, strict=True)
                )
                .drop_nulls()
                .unique()
            )
            hits.append(rows.join(probe, on=own, how="semi").get_column("_row"))
    # `blocking_keys` always holds the release's own rules, so there is at least one hit list.
    reached = pl.concat(hits).unique()
    return rows.select(pl.col("_row").is_in(reached.implode())).to_series()


def _write_state(
    state_dir: Path,
    key: str,
    pairs: pl.DataFrame,
    prints: pl.DataFrame,
    tf: pl.DataFrame,
    headroom: float,
    summary: dict[str, Any],
    columns: tuple[list[str], list[str]],
) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(6)
    # A night writes and the next reads these once (WORK_COMPRESSION): at 1M interactions
    # (166,342 stored pairs) lz4 wrote them in 0.26-0.30 s instead of zstd's 0.44-0.45 s.
    for name, frame in (("pairs", pairs), ("fingerprints", prints), ("tf", tf)):
        frame.write_parquet(state_dir / f"{name}-{token}.parquet", compression=WORK_COMPRESSION)
    tmp = state_dir / (STATE_FILE + ".tmp")
    tmp.write_text(
        json.dumps(
            {
                "key": key,
                "token": token,
                "headroom_bits": headroom,
                "columns": columns[0],
                "record_columns": columns[1],
                "last_run": summary,
            }
        )
    )
    tmp.replace(state_dir / STATE_FILE)  # the switch to tonight's files is this one rename
    for old in state_dir.glob("*.parquet"):
        if token not in old.name:
            old.unlink(missing_ok=True)


def _read_state(state_dir: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((state_dir / STATE_FILE).read_text())
        token = state["token"]
        # A state written before pairs were stored without their record fields has neither
        # list: that night predicts in full and writes a state of this form.
        if not isinstance(state["columns"], list) or not isinstance(state["record_columns"], list):
            return None
        return {
            **state,
            "pairs": pl.read_parquet(state_dir / f"pairs-{token}.parquet"),
            "fingerprints": pl.read_parquet(state_dir / f"fingerprints-{token}.parquet"),
            "tf": pl.read_parquet(state_dir / f"tf-{token}.parquet"),
        }
    except (OSError, ValueError, KeyError, pl.exceptions.PolarsError):
        return None


def _full_run_reason(
    state: dict | None,
    key: str,
    prints: pl.DataFrame,
    tf_now: pl.DataFrame,
    levels: Any,
    contacts: int,
    config: IncrementalConfig,
    run: PredictionRun,
) -> tuple[str, pl.Series | None]:
    """Why tonight must score every pair ("" when last night's state fits), and the changed ids."""
    if state is None:
        return "no saved state", None
    if state["key"] != key:
        return "model, threshold, blocking rules or record columns changed", None
    changed_ids = (
        prints.join(state["fingerprints"], on=["unique_id", "fingerprint"], how="anti")
        .get_column("unique_id")
        .implode()
    )
    rise = _tf_rise(state["tf"], tf_now, levels)
    share = changed_ids.list.len().item() / max(contacts, 1)
    if share > config.max_changed_share:
        return f"{share:.0%} of contacts changed", changed_ids
    if rise > state["headroom_bits"]:
        return (
            f"term frequencies moved {rise:.2f} bits, more than the "
            f"{state['headroom_bits']:.2f} left since the last full run"
        ), changed_ids
    run.headroom_bits = state["headroom_bits"] - rise
    return "", changed_ids


def _score_changed(
    linker: Any, records: pl.DataFrame, is_changed: pl.Series, floor_weight: float, copied: list
) -> pl.DataFrame:
    """Pairs of the changed contacts, with each other and with every contact sharing a key."""
    # The linker's integer ids; Splink copies only the rows it is given, so nothing else
    # here copies a whole (wide) record frame.
    as_splink = splink_ids(records)
    changed = as_splink.filter(is_changed)
    if changed.height == 0:
        return pl.DataFrame()
    # One Splink call for both kinds of pair: the changed contacts against themselves
    # and every contact that shares a blocking key with one. Within the changed side it
    # finds each pair twice (and each record with itself); one orientation is kept, the
    # smaller id on the left, as a dedupe predict orders it. Two calls (`predict_within`
    # beside `predict_between`) cost ~0.3 s more in Splink's own overhead at 1M.
    # The linker's own database API (the one given, or the default DuckDB session), so
    # the registered tables and the full-table tf tables live in one database.
    api = linker._db_api
    partners = as_splink.filter(is_changed | reachable_from(changed, as_splink))
    scored = _to_polars(
        linker.inference.predict_between(
            api.register(changed.to_arrow()),
            api.register(partners.to_arrow()),
            threshold_match_weight=floor_weight,
            warning_mode="never",
        )
    )
    changed_ints = changed.get_column("unique_id").implode()
    scored = scored.filter(~pl.col(ID_R).is_in(changed_ints) | (pl.col(ID_L) < pl.col(ID_R)))
    return contact_ids_of(scored.drop(copied), records)


def _predict_incremental(
    linker: Any,
    records: pl.DataFrame,
    state: dict,
    changed_ids: pl.Series,
    tf_now: pl.DataFrame,
    levels: Any,
    floor_weight: float,
    run: PredictionRun,
    clock: dict[str, float],
) -> pl.DataFrame:
    """Changed contacts scored anew; pairs of unchanged ones carried over and rescored."""
    t = time.perf_counter()
    run.mode, run.reason = "incremental", "last night's state fits"
    is_changed = records.select(pl.col("unique_id").is_in(changed_ids)).to_series()
    run.changed = int(is_changed.sum())
    frames = [_score_changed(linker, records, is_changed, floor_weight, state["record_columns"])]
    clock["predict_changed"] = time.perf_counter() - t
    t = time.perf_counter()
    unchanged_ids = records.get_column("unique_id").filter(~is_changed).implode()
    carried = rescore_carried(
        state["pairs"].filter(
            pl.col(ID_L).is_in(unchanged_ids) & pl.col(ID_R).is_in(unchanged_ids)
        ),
        tf_now,
        levels,
    ).filter(pl.col("match_weight") >= floor_weight)
    run.carried_pairs = carried.height
    clock["carry_over"] = time.perf_counter() - t
    frames.append(carried)
    stored = pl.concat([f for f in frames if f.width], how="diagonal_relaxed")
    # The store and the output have one schema whatever produced the rows.
    return stored.select(state["pairs"].columns) if state["pairs"].width else stored


def refit_prior(
    model: TrainedModel, stored: pl.DataFrame, records: pl.DataFrame, run: PredictionRun
) -> pl.DataFrame:
    """`stored` under the prior its own weights imply (`prior_fit`); the model takes it.

    Raising the prior by b bits raises every pair by b, so a pair left out of the store (below
    the floor before) may now be up to b bits closer to the threshold: the headroom the next
    incremental night may spend on tf shifts shrinks by b (none left: it predicts in full)."""
    prior = float(model.settings["probability_two_random_records_match"])
    recall = blocking_recall(model.settings, records)
    weights = stored.get_column("match_weight").to_numpy()
    fitted = fitted_prior(weights, prior, records.height, recall)
    bits = prior_shift(prior, fitted)
    run.prior = {"estimated": prior, "fitted": fitted, "bits": bits, "blocking_recall": recall}
    if bits <= 0:
        return stored
    model.settings["probability_two_random_records_match"] = fitted
    run.headroom_bits = max(run.headroom_bits - bits, 0.0)
    return shift_weights(stored, bits)


def predict_nightly(
    records: pl.DataFrame,
    model: TrainedModel,
    threshold: float,
    state_dir: Path,
    db_api: Any | None = None,
    max_pairs_per_rule: int = 30_000_000,
    config: IncrementalConfig = IncrementalConfig(),
    force_full: bool = False,
    fit_prior: bool = False,
) -> PredictionRun:
    """Tonight's scored pairs at or above `threshold`, incrementally when last night's state
    allows it (module docstring), and tonight's state for the next night.

    `fit_prior` (a night that trained `model`): score every pair, then raise the model's prior
    to what the scored pairs imply (`prior_fit`), in `model.settings`, for the caller to save."""
    clock: dict[str, float] = {}
    started = time.perf_counter()
    # The saved model's SQL in this backend's dialect (a DuckDB-trained model on Spark).
    model_settings = portable_settings(model.settings, dialect_of(db_api))
    kept, report = prediction_rules(records, model_settings, max_pairs_per_rule)
    run = PredictionRun(pl.DataFrame(), report, "full", "", records.height)
    if not kept:
        run.reason = "no blocking rule within max_pairs_per_rule"
        return run
    key = _state_key(records, model_settings, threshold, kept, config.floor_bits)
    # Splink filters on the weight of the threshold; the same number here.
    threshold_weight = prob_to_match_weight(threshold)
    floor_weight = threshold_weight - config.floor_bits
    levels = tf_levels(model_settings)
    linker = _linker(
        records, {**model_settings, "blocking_rules_to_generate_predictions": kept}, db_api
    )
    tf_now = _tf_tables(linker, records, levels)
    prints = fingerprints(records)
    clock["prepare"] = time.perf_counter() - started

    state = None if force_full else _read_state(state_dir)
    if force_full:
        reason, changed_ids = "forced", None
    else:
        reason, changed_ids = _full_run_reason(
            state, key, prints, tf_now, levels, records.height, config, run
        )
    predict_started = time.perf_counter()
    if reason:
        run.reason = reason
        scored = _to_polars(
            linker.inference.predict(threshold_match_weight=floor_weight, warning_mode="never")
        )
        order, copied = scored.columns, record_columns_of(scored, records, levels)
        stored = contact_ids_of(scored.drop(copied), records)
        run.headroom_bits = config.floor_bits
        if fit_prior:
            stored = refit_prior(model, stored, records, run)
            key = _state_key(
                records,
                portable_settings(model.settings, dialect_of(db_api)),
                threshold,
                kept,
                config.floor_bits,
            )
    else:
        assert state is not None and changed_ids is not None
        # The same model, rules and record columns (the state key): last night's output form.
        order, copied = state["columns"], state["record_columns"]
        stored = _predict_incremental(
            linker, records, state, changed_ids, tf_now, levels, floor_weight, run, clock
        )
    clock["predict"] = time.perf_counter() - predict_started
    t = time.perf_counter()
    run.stored_pairs = stored.height
    summary = {
        k: getattr(run, k)
        for k in ("mode", "reason", "contacts", "changed", "carried_pairs", "stored_pairs")
    }
    _write_state(
        state_dir, key, stored, prints, tf_now, run.headroom_bits, summary, (order, copied)
    )
    above = stored.filter(pl.col("match_weight") >= threshold_weight)
    run.scored = (
        explain(with_record_columns(above, records, copied, order), model.settings)
        if above.height
        else pl.DataFrame()
    )
    clock["store"] = time.perf_counter() - t
    clock["total"] = time.perf_counter() - started
    run.seconds = {k: round(v, 3) for k, v in clock.items()}
    return run
