"""Train, save, reload and apply the Splink model over contact records.

The database API is a parameter: `DuckDBAPI()` by default, `SparkAPI(spark_session=...)` for a
workspace that outgrows one machine; nothing else here depends on the backend.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from splink import DuckDBAPI, Linker

from dedup.duck import private_session
from dedup.matching.frequencies import (
    register_term_frequencies,
    term_frequencies,
    tf_levels,
    u_without_matches,
)
from dedup.matching.labels import LabelledRecords, pairs_agreeing
from dedup.matching.settings import (
    TRAINING_BLOCKS,
    TRAINING_RULES,
    blocking_keys,
    contact_settings,
    deterministic_columns,
    property_columns,
)

# Splink warns on the console for every level a training session did not observe (swapped names
# are rare); the saved model's m/u table, in the asset metadata, shows the same thing. Every
# Linker sets the `splink` logger to the level it is given, so each one here is given this.
SPLINK_LOG_LEVEL = logging.ERROR


@dataclass(frozen=True)
class TrainingConfig:
    """Unsupervised training knobs.

    Args:
        deterministic_recall: assumed recall of `DETERMINISTIC_RULES` when estimating the prior,
            when the workspace has too few labelled pairs (dedup.matching.labels) to measure it.
        min_labelled_pairs: labelled pairs needed before they size the prior or move an m.
        label_weight: how many labelled pairs the expert m of a level counts for when labels
            move it (m = (n·m_labels + w·m_expert) / (n + w)): a level the labels never saw
            keeps a small share of its expert m instead of falling to 0 (−∞ bits).
        u_max_pairs: random pairs sampled to estimate u.
        seed: sampling seed, so a retrain on the same data gives the same model.
        drift_tolerance: retrain when the number of contacts changed by more than this fraction
            since the saved model was trained.
        em_min_contacts: below this many contacts the expert m probabilities in
            `settings.py` are kept and EM is not run (see that module's docstring).
        em_pairs_per_contact, em_min_pairs, em_max_pairs: an EM session whose blocking rule
            makes more candidate pairs than `em_sample_pairs(contacts)` trains on a seeded hash
            sample of about that many (Splink's `max_pairs`). m is a share of the true pairs in
            a block, so a sample of pairs estimates it as well as all of them do, given enough
            true pairs in it. A block's true pairs grow with the contacts and its pairs with
            their square, so a sample in proportion to the contacts holds about the same number
            of true pairs at every size. Measured at 308,647 contacts (docs/matching.md): a 2M
            sample 17.4–17.8 s of training, 1M 14.4–15.5 s, 500k 9.0–12.1 s, 250k 9.3 s (no
            faster: Splink blocks every record first); proposals at 0.8: 5,516, 5,519, 5,517 and
            5,523, 5,515 of them the same each time. The floor keeps smaller workspaces on all
            their pairs; the ceiling is the sample a 10M-interaction workspace (3M contacts,
            359M pairs in the name session) has trained on since that session stopped being
            skipped.
        em_probe_share: share of records Splink blocks on first to size that sample.
        em_term_frequencies: let term-frequency adjustments into the EM iterations. Off: each
            iteration then works on counts of agreement patterns instead of rescanning every
            candidate pair (measured at 1M interactions, 308,647 contacts: the (first name,
            surname) session 22.1 s → 7.3 s, all three 29.9 s → 11.7 s; the proposals at 0.8 were
            the same 4,550 pairs, probabilities within 0.0006). Predictions still apply them.
        u_chunks: Splink splits the u sample into this many chunks after a 1% probe, and stops
            a comparison's sampling early once each level has been seen 100 times; 1 runs each
            comparison once over the whole sample. One pass costs the same on DuckDB (4.3 →
            3.8 s at 308,647 contacts) and every u comes from all `u_max_pairs` pairs instead of
            the probe's 20,000 for most comparisons; on Spark, where each chunk is a job, training
            on the test workspace went from 49 s to 14 s. Chunks only bound memory for samples
            far larger than this one.
    """

    deterministic_recall: float = 0.6
    min_labelled_pairs: int = 20
    label_weight: float = 10.0
    u_max_pairs: float = 2e6
    seed: int = 7
    drift_tolerance: float = 0.25
    em_min_contacts: int = 20_000
    em_pairs_per_contact: float = 1.6
    em_min_pairs: int = 500_000
    em_max_pairs: int = 2_000_000
    em_probe_share: float = 0.01
    em_term_frequencies: bool = False
    u_chunks: int = 1

    def em_sample_pairs(self, contacts: int) -> int:
        """The most candidate pairs an EM session trains on, for a workspace of `contacts`."""
        return int(
            min(self.em_max_pairs, max(self.em_min_pairs, self.em_pairs_per_contact * contacts))
        )


@dataclass
class TrainedModel:
    settings: dict[str, Any]
    trained_on_contacts: int
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "trained_on_contacts": self.trained_on_contacts,
                    "settings": self.settings,
                    "diagnostics": self.diagnostics,
                },
                default=str,
            )
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> TrainedModel | None:
        try:
            data = json.loads(path.read_text())
            return cls(
                settings=data["settings"],
                trained_on_contacts=int(data["trained_on_contacts"]),
                diagnostics=data.get("diagnostics") or {},
            )
        except (OSError, ValueError, KeyError):
            return None

    def retrain_reason(
        self, contacts: int, config: TrainingConfig, properties: tuple[str, ...] = ()
    ) -> str | None:
        """Why this saved model cannot be reused tonight on records with the matched-property
        columns `properties`, or None when it can."""
        prior = self.settings.get("probability_two_random_records_match", 0)
        if self.trained_on_contacts <= 0 or not 0 < prior < 1:
            return "the saved model is incomplete"
        if comparison_levels(self.settings) != comparison_levels(current_settings(properties)):
            # A release that changed the comparisons: the saved SQL may read columns that the
            # records no longer have, and its m/u belong to other levels.
            return "the comparisons changed since it was trained"
        change = abs(contacts - self.trained_on_contacts) / self.trained_on_contacts
        if change > config.drift_tolerance:
            return f"data drift ({change:.0%} more or fewer contacts)"
        return None


def current_settings(properties: tuple[str, ...] = ()) -> dict[str, Any]:
    """This release's comparisons and rules as a Splink settings dict (DuckDB dialect)."""
    return contact_settings(properties=properties).create_settings_dict("duckdb")


def comparison_levels(settings: dict[str, Any]) -> list[tuple[str, list[str | None]]]:
    """Each comparison's name and its levels' labels: what a model's m/u are attached to. Labels,
    not SQL: the same level reads differently in each dialect."""
    return [
        (c["output_column_name"], [lv.get("label_for_charts") for lv in c["comparison_levels"]])
        for c in settings["comparisons"]
    ]


def dialect_of(db_api: Any | None) -> str:
    """Splink's SQL dialect name of a database API (`duckdb` for the default)."""
    return "duckdb" if db_api is None else db_api.sql_dialect.sql_dialect_str


def portable_settings(settings: dict[str, Any], dialect: str) -> dict[str, Any]:
    """A saved model's trained probabilities on this release's SQL, written for `dialect`.

    Splink saves every level's SQL in the dialect it trained on and does not translate a loaded
    model (DuckDB's `"name_l" = "name_r"` reads as two string literals in Spark, so even the exact
    levels that term-frequency adjustments need go missing). The model is rebuilt from this
    project's comparisons for `dialect`, and the trained prior and m/u probabilities are carried
    over level by level; a model trained with other comparisons is refused (retrain it). The
    same holds in the dialect it trained on: what a level means is its label, and how it is
    computed is this release's (a faster but equivalent condition needs no retrain). Blocking
    rules are not trained either: the result always carries this release's.
    """
    properties = property_columns([c["output_column_name"] for c in settings["comparisons"]])
    fresh = contact_settings(
        settings["probability_two_random_records_match"], properties
    ).create_settings_dict(dialect)
    wanted, saved = comparison_levels(fresh), comparison_levels(settings)
    if [name for name, _ in wanted] != [name for name, _ in saved]:
        raise ValueError("the saved model compares other fields; retrain it (`--retrain`)")
    for (name, labels), (_, saved_labels) in zip(wanted, saved, strict=True):
        if labels != saved_labels:
            raise ValueError(f"the saved model's {name} levels differ; retrain it")
    for new, old in zip(fresh["comparisons"], settings["comparisons"], strict=True):
        for new_level, old_level in zip(
            new["comparison_levels"], old["comparison_levels"], strict=True
        ):
            for key in ("m_probability", "u_probability"):
                if key in old_level:
                    new_level[key] = old_level[key]
    return fresh


def splink_ids(records: pl.DataFrame) -> pl.DataFrame:
    """`records` with each contact id replaced by its rank among them, what Splink joins on.

    Every candidate pair fetches both records by id: on integers the full predict at 307,113
    contacts took 8.8-10.6 s instead of 10.5-11.9 s (four runs each, alternating). Ranks keep
    the order of the ids, so a pair's left side is the same contact either way.
    """
    return records.with_columns(pl.col("unique_id").rank("ordinal").cast(pl.Int64) - 1)


def contact_ids_of(frame: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """Splink's output over `splink_ids(records)` with the contact ids back in its id columns."""
    ids = records.get_column("unique_id").sort()
    return frame.with_columns(
        ids.gather(frame.get_column(column)).alias(column)
        for column in ("unique_id_l", "unique_id_r")
        if column in frame.columns
    )


def _linker(records: pl.DataFrame, settings: Any, db_api: Any | None) -> Linker:
    """A linker over `records` with integer ids (`splink_ids`): map its output back with
    `contact_ids_of`."""
    # Default backend: DuckDB in memory, under the same memory limit as the build steps.
    api = db_api if db_api is not None else DuckDBAPI(private_session("splink"))
    # Splink's settings validation only logs warnings, below SPLINK_LOG_LEVEL, about columns the
    # settings read; ours come from this release's code (`portable_settings`) and are checked by
    # the tests. It parsed every level's SQL: ~0.2 s for each linker.
    return Linker(
        api.register(splink_ids(records).to_arrow()),
        settings,
        log_level=SPLINK_LOG_LEVEL,
        validate_settings=False,
    )


def train(
    records: pl.DataFrame,
    config: TrainingConfig = TrainingConfig(),
    db_api: Any | None = None,
    labels: LabelledRecords | None = None,
) -> TrainedModel:
    """Estimate the prior, u (random sampling) and m (labels, then EM over several blockings).

    `labels`: the faces of auto-merged contacts and their pairs (dedup.matching.labels), made
    with the same matched properties as `records`. They give m of the custom attributes and
    matched properties (`m_from_labels`), the starting point EM refines on a large workspace."""
    properties = property_columns(records.columns)
    # Measured on the labels, reported, not used: labelled pairs are the ones auto-merge joined,
    # whose faces rarely both carry a company (a widget face and a mail face), so the share was
    # 0.1 on the test workspace where the assumed 0.6 holds, and the 6x prior it gave proposed
    # a household sharing a phone (tests/test_matching.py).
    recall = deterministic_recall(labels, properties, config)
    settings = contact_settings(estimate_prior(records, config), properties).create_settings_dict(
        dialect_of(db_api)
    )
    label_info = m_from_labels(settings, labels, config, db_api) if labels is not None else {}
    linker = _linker(records, settings, db_api)
    linker.training.estimate_u_using_random_sampling(
        max_pairs=config.u_max_pairs,
        seed=config.seed,
        num_chunks=config.u_chunks,
    )
    sampled = min(config.u_max_pairs, records.height * (records.height - 1) / 2)
    u_report = u_without_matches(linker, settings["probability_two_random_records_match"], sampled)
    sessions: dict[str, str] = {}
    if records.height < config.em_min_contacts:
        settings = linker.misc.save_model_to_json()
        return TrainedModel(
            settings=settings,
            trained_on_contacts=records.height,
            diagnostics={
                "em_sessions": {"all": f"not run below {config.em_min_contacts:,} contacts"},
                "prior_recall_labelled": recall,
                "m_from_labels": label_info,
                "u_without_matches": u_report,
            },
        )
    pair_counts = candidate_pairs(records)
    max_pairs = config.em_sample_pairs(records.height)
    for index, rule in zip(TRAINING_RULES, TRAINING_BLOCKS, strict=True):
        name = rule.get_blocking_rule("duckdb").blocking_rule_sql
        pairs = pair_counts[index]
        sampled = pairs > max_pairs
        # Splink replaces the linker's comparisons with the session's before it checks the new m
        # values, so a session that fails there would leave the model without the comparisons its
        # blocking rule fixed (a failed phone session dropped `phone` from the saved model).
        before = copy.deepcopy(linker._settings_obj.core_model_settings)
        sessions_before = len(linker._em_training_sessions)
        try:
            session = linker.training.estimate_parameters_using_expectation_maximisation(
                rule,
                estimate_without_term_frequencies=not config.em_term_frequencies,
                max_pairs=max_pairs if sampled else None,
                record_sample_proportion=config.em_probe_share,
            )
            # Splink decides from its probe whether it sampled (it does not when the probe
            # finds no pair); report what it did.
            sample = getattr(session, "_sample_info", None) or {}
            sessions[name] = (
                f"converged on a sample of ~{sample['expected_pairs_after_sampling']:,.0f} "
                f"of {pairs:,} pairs"
                if sample.get("sampling_applied")
                else f"converged on {pairs:,} pairs"
            )
        except Exception as exc:  # noqa: BLE001 - Splink raises several types; each session is optional
            # EM can drive a level's m to 0 (Splink refuses it), or a blocking rule can find no
            # pairs on this data; the other sessions, or the expert starting values, remain.
            linker._settings_obj.core_model_settings = before
            del linker._em_training_sessions[sessions_before:]
            sessions[name] = f"skipped: {str(exc).splitlines()[0][:120]}"
    settings = linker.misc.save_model_to_json()
    return TrainedModel(
        settings=settings,
        trained_on_contacts=records.height,
        diagnostics={
            "em_sessions": sessions,
            "prior_recall_labelled": recall,
            "m_from_labels": label_info,
            "u_without_matches": u_report,
        },
    )


# Comparisons whose m the labelled pairs measure, with the column that must be on both sides
# for a pair to count: the custom attributes and the matched properties, whose variation for
# one person (a date of birth typed wrong, a city changed) only the workspace's data can tell.
# Not the identifiers or the name: their expert m describe the duplicates auto-merge *left*,
# and labelled pairs are the ones it joined, a biased sample there. One person's work face
# (formal name, work address) and home face (nickname, personal address) share no key, so a
# nickname is rare among labelled pairs and common among the pairs left to score; labels
# moved the nickname level's m from 0.08 to 0.002 on the test workspace and its nickname
# pairs were no longer proposed. Email and phone are shared by labelled pairs by construction.
LABELLED_COMPARISONS = {"attributes": "attr_values"}


def m_from_labels(
    settings: dict[str, Any],
    labels: LabelledRecords,
    config: TrainingConfig,
    db_api: Any | None = None,
) -> dict[str, int]:
    """Move the m of `LABELLED_COMPARISONS` and the matched properties in `settings` (in
    place) towards what the labelled pairs show, with Splink's
    `estimate_m_from_pairwise_labels`; returns the labelled pairs each comparison used.

    Each m becomes (n·m_labels + w·m_expert) / (n + w) over the n pairs that have the
    comparison's column on both sides (w = `config.label_weight`); a comparison with fewer than
    `config.min_labelled_pairs` keeps its expert m. A fixed m (attributes) is moved as well and
    stays fixed for EM.
    """
    records, pairs = labels.records, labels.pairs
    if records.height == 0 or pairs.height < config.min_labelled_pairs:
        return {}
    wanted = {**LABELLED_COMPARISONS, **{c: c for c in property_columns(records.columns)}}
    counts = _pairs_with(records, pairs, wanted)
    learnt = {name for name, n in counts.items() if n >= config.min_labelled_pairs}
    if not learnt:
        return {}
    # Splink leaves a fixed m alone; the copy it trains on is unfixed.
    scratch = copy.deepcopy(settings)
    for comparison in scratch["comparisons"]:
        for level in comparison["comparison_levels"]:
            level.pop("fix_m_probability", None)
    linker = _linker(records, scratch, db_api)
    ids = records.get_column("unique_id").sort()
    rank = pl.DataFrame({"id": ids, "rank": pl.int_range(ids.len(), eager=True)})
    as_ranks = (
        pairs.join(rank.rename({"id": "unique_id_l", "rank": "l"}), on="unique_id_l")
        .join(rank.rename({"id": "unique_id_r", "rank": "r"}), on="unique_id_r")
        .select(pl.col("l").alias("unique_id_l"), pl.col("r").alias("unique_id_r"))
    )
    table = linker._db_api.register(as_ranks.to_arrow(), table_name="__contacts_labels")
    linker.training.estimate_m_from_pairwise_labels(table)
    observed = _label_m(linker)
    weight = config.label_weight
    for comparison in settings["comparisons"]:
        name = comparison["output_column_name"]
        if name not in learnt:
            continue
        n = counts[name]
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level") or "m_probability" not in level:
                continue
            seen = observed.get((name, level.get("label_for_charts")), 0.0)
            level["m_probability"] = (n * seen + weight * level["m_probability"]) / (n + weight)
    return {name: counts[name] for name in sorted(learnt)}


def _label_m(linker: Linker) -> dict[tuple[str, str], float]:
    """(comparison, level label) → the m the labels gave it; a level no labelled pair reached
    is absent (Splink records it as "level not observed" and keeps the old value)."""
    out = {}
    for comparison in linker._settings_obj.comparisons:
        for level in comparison._comparison_levels_excluding_null:
            trained = level._trained_m_probabilities
            value = trained[-1]["probability"] if trained else None
            if isinstance(value, float | int):
                out[(comparison.output_column_name, level.label_for_charts)] = float(value)
    return out


def _pairs_with(
    records: pl.DataFrame, pairs: pl.DataFrame, columns: dict[str, str]
) -> dict[str, int]:
    """comparison → labelled pairs with its column non-null on both sides."""
    present = records.select(
        "unique_id", *(pl.col(c).is_not_null().alias(name) for name, c in columns.items())
    )
    joined = pairs.join(present, left_on="unique_id_l", right_on="unique_id").join(
        present, left_on="unique_id_r", right_on="unique_id", suffix="_r"
    )
    return {
        name: int(joined.select((pl.col(name) & pl.col(f"{name}_r")).sum()).item())
        for name in columns
    }


def estimate_prior(
    records: pl.DataFrame, config: TrainingConfig, recall: float | None = None
) -> float:
    """Probability that two random contacts are one person.

    Pairs agreeing on any `deterministic_columns` set are counted (a list column agrees only
    with two values or more), divided by the recall of those rules (`recall`, measured on
    labelled pairs, else the assumed `config.deterministic_recall`) and by all pairs.
    A pair agreeing on several sets counts once, as in Splink's estimator, which does the same
    in SQL but fails outright on a workspace with no such pair yet; here the count is floored at
    one pair, so a clean workspace gets a small prior instead of an error.
    """
    n = records.height
    total = n * (n - 1) / 2
    if total <= 0:
        return 1e-4
    rules = deterministic_columns(property_columns(records.columns))
    if len(rules) <= 5:
        # The union by inclusion-exclusion: pairs agreeing on sets A and B are the pairs
        # agreeing on the columns of both, so every term is one group-by and no pair is listed.
        pairs = 0
        for k in range(1, len(rules) + 1):
            for chosen in itertools.combinations(rules, k):
                columns = sorted({c for rule in chosen for c in rule})
                pairs += (-1) ** (k + 1) * _agreeing_pairs(records, columns)
    else:
        # 2^k - 1 group-bys grow too fast with many matched properties (FEBRL's five: 255).
        pairs = _union_by_name(records, rules)
    return min(max(pairs, 1) / (recall or config.deterministic_recall) / total, 0.5)


def _union_by_name(records: pl.DataFrame, rules: list[tuple[str, ...]]) -> int:
    """Pairs agreeing on at least one of `rules`, every one of which holds `full_name`: the
    pairs of one full name are listed and checked. Falls back to the sum over rules (an upper
    bound) when those pairs are too many to list."""
    assert all("full_name" in rule for rule in rules)
    named = records.filter(pl.col("full_name").is_not_null())
    sizes = named.group_by("full_name").len().get_column("len").cast(pl.Int64)
    if int((sizes * (sizes - 1) // 2).sum() or 0) > 5_000_000:
        return sum(_agreeing_pairs(records, sorted(set(rule))) for rule in rules)
    columns = sorted({c for rule in rules for c in rule} - {"full_name"})
    side = named.select("unique_id", "full_name", *columns)
    joined = side.join(side, on="full_name", suffix="_r").filter(
        pl.col("unique_id") < pl.col("unique_id_r")
    )

    def agrees(column: str) -> pl.Expr:
        same = pl.col(column).is_not_null() & (pl.col(column) == pl.col(f"{column}_r"))
        if side.schema[column] == pl.List:
            same = same & (pl.col(column).list.len() >= 2)
        return same.fill_null(False)

    hit = pl.any_horizontal(
        pl.all_horizontal(agrees(c) for c in rule if c != "full_name") for rule in rules
    )
    return int(joined.select(hit.sum()).item())


# The prior's rules on an identifier auto-merge joins on: labelled pairs share one by
# construction, so their agreement there says nothing about the pairs auto-merge left apart.
_MERGE_KEY_COLUMNS = {"phone", "phone_last7", "phones", "email", "email_local", "email_user"}


def deterministic_recall(
    labels: LabelledRecords | None, properties: tuple[str, ...], config: TrainingConfig
) -> float | None:
    """Share of labelled pairs that the prior's rules find (those not on an auto-merge key),
    clipped to [0.1, 0.9]; None when there are fewer than `config.min_labelled_pairs`. A
    diagnostic (`train`'s comment says why the prior does not use it)."""
    if labels is None:
        return None
    rules = [
        rule for rule in deterministic_columns(properties) if not set(rule) & _MERGE_KEY_COLUMNS
    ]
    pairs, found = pairs_agreeing(labels, rules)
    if pairs < config.min_labelled_pairs:
        return None
    return min(max(found / pairs, 0.1), 0.9)


def _agreeing_pairs(records: pl.DataFrame, columns: list[str]) -> int:
    """Pairs of records with equal, non-null values in every one of `columns`."""
    agreeing = records.drop_nulls(columns).filter(
        *(pl.col(c).list.len() >= 2 for c in columns if records.schema[c] == pl.List)
    )
    sizes = agreeing.group_by(columns).len().get_column("len")
    return int((sizes * (sizes - 1) // 2).sum() or 0)


def candidate_pairs(records: pl.DataFrame) -> list[int]:
    """Candidate pairs each prediction blocking rule would generate on `records`, from value
    frequencies alone (no join is run): Σ n·(n-1)/2 per block, or Σ n_l·n_r / 2 for a rule that
    matches different columns on each side (swapped names)."""
    rules = blocking_keys(property_columns(records.columns))
    frame = records.lazy()
    blocks, found_twice = [], []
    for keys in rules:
        left = [lk for lk, _ in keys]
        right = [rk for _, rk in keys]
        # Only the key columns: dropping nulls on the whole frame copied every record column.
        lhs = frame.select(left).drop_nulls().group_by(left).len().rename({"len": "n_l"})
        rhs = frame.select(right).drop_nulls().group_by(right).len().rename({"len": "n_r"})
        rhs = rhs.rename(dict(zip(right, left, strict=True)))
        n_l, n_r = pl.col("n_l").cast(pl.Int64), pl.col("n_r").cast(pl.Int64)
        # A record pairs with the others of its block once per pair; with different columns
        # on each side, each unordered pair is found from both sides.
        pairs = n_l * (n_l - 1) // 2 if left == right else n_l * n_r
        found_twice.append(left != right)
        blocks.append(lhs.join(rhs, on=left, how="inner").select(pairs.sum().alias("pairs")))
    # One query plan for every rule: Polars runs the group-bys side by side (0.33 s → 0.2 s
    # for six rules at 308,647 contacts).
    counts = [int(f.item() or 0) for f in pl.collect_all(blocks)]
    return [n // 2 if twice else n for n, twice in zip(counts, found_twice, strict=True)]


def prediction_rules(
    records: pl.DataFrame, settings: dict[str, Any], max_pairs_per_rule: int
) -> tuple[list[Any], dict[str, int]]:
    """The saved model's blocking rules that stay within `max_pairs_per_rule` candidate pairs on
    `records`, and the candidate-pair count of every rule (what the run reports)."""
    return rules_within(settings, candidate_pairs(records), max_pairs_per_rule)


def rules_within(
    settings: dict[str, Any], counts: list[int], max_pairs_per_rule: int
) -> tuple[list[Any], dict[str, int]]:
    """`prediction_rules` given each rule's candidate-pair count (`candidate_pairs`, or the
    Spark engine's count of the same pairs)."""
    rules = settings["blocking_rules_to_generate_predictions"]
    kept = [rule for rule, n in zip(rules, counts, strict=True) if n <= max_pairs_per_rule]
    report = {
        (rule["blocking_rule"] if isinstance(rule, dict) else str(rule)): n
        for rule, n in zip(rules, counts, strict=True)
    }
    return kept, report


def predict(
    records: pl.DataFrame,
    model: TrainedModel,
    threshold: float,
    db_api: Any | None = None,
    max_pairs_per_rule: int = 30_000_000,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Scored candidate pairs at or above `threshold`, with a per-field explanation.

    A blocking rule that would generate more than `max_pairs_per_rule` candidate pairs on this
    data (a very common name, a huge company) is left out of tonight's prediction instead of
    exhausting memory; the returned counts say which rules ran and how many pairs each made.
    """
    model_settings = portable_settings(model.settings, dialect_of(db_api))
    kept, report = prediction_rules(records, model_settings, max_pairs_per_rule)
    if not kept:
        return pl.DataFrame(), report
    settings = {**model_settings, "blocking_rules_to_generate_predictions": kept}
    linker = _linker(records, settings, db_api)
    # Levels a small workspace never observed (u not sampled) keep Splink's defaults; that is
    # expected here and reported in the model's m/u table, so the console warning is off.
    register_term_frequencies(linker, records, term_frequencies(records, tf_levels(model_settings)))
    scored = linker.inference.predict(threshold_match_probability=threshold, warning_mode="never")
    frame = contact_ids_of(scored.as_duckdbpyrelation().pl(), records)
    return explain(frame, model.settings), report


def _level_labels(settings: dict[str, Any]) -> dict[str, dict[int, str]]:
    """comparison output name → gamma value → label, from the saved model."""
    labels: dict[str, dict[int, str]] = {}
    for comparison in settings["comparisons"]:
        name = comparison["output_column_name"]
        levels = comparison["comparison_levels"]
        non_null = [lv for lv in levels if not lv.get("is_null_level")]
        mapping = {-1: "missing on one side"}
        for i, lv in enumerate(non_null):
            mapping[len(non_null) - 1 - i] = lv.get("label_for_charts") or lv["sql_condition"]
        labels[name] = mapping
    return labels


def explain(frame: pl.DataFrame, settings: dict[str, Any]) -> pl.DataFrame:
    """Add `explanation` (JSON): per field, the level reached and its match weight (Splink's
    `mw_*`, term-frequency adjustment included, and that adjustment alone as `adjustment` for
    the fields that have one) — the data behind Splink's waterfall chart. With the prior's
    odds they add up to the match weight (dedup.matching.groups.describe_proposal)."""
    labels = _level_labels(settings)
    fields = []
    for name, mapping in labels.items():
        gamma = pl.col(f"gamma_{name}")
        weight = pl.col(f"mw_{name}")
        parts = [
            pl.lit(name).alias("field"),
            gamma.replace_strict(mapping, default="?", return_dtype=pl.String).alias("level"),
        ]
        if f"mw_tf_adj_{name}" in frame.columns:
            weight = weight + pl.col(f"mw_tf_adj_{name}")
            # The term-frequency part on its own: a rare value (+) or a common one (-).
            parts.append(pl.col(f"mw_tf_adj_{name}").round(3).alias("adjustment"))
        fields.append(pl.struct(*parts, weight.round(3).alias("weight")))
    as_json = pl.concat_list(fields).list.eval(pl.element().struct.json_encode()).list.join(",")
    return frame.with_columns(pl.concat_str(pl.lit("["), as_json, pl.lit("]")).alias("explanation"))
