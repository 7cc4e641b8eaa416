"""The matching step on Spark (issue 27): the `merge_proposals` asset with `engine = "spark"`.

Records are built on the executors (`dedup.spark.matching_records`) and scored by Splink on its
`SparkAPI` over the Spark frame: the blocking joins, comparisons and scores run on the cluster,
and what reaches the driver is the pairs above the threshold (proportional to the proposals,
not to the contacts), which then go through the local engine's proposal rules
(`dedup.matching.nightly.with_scored_pairs`, `tonight_proposals`). Around Splink, what the local
predict computes over the whole table is computed by Spark and kept there:

- each blocking rule's candidate pairs (`model.candidate_pairs`: Σ n·(n−1)/2 per block, or
  Σ n_l·n_r / 2 for a rule with other columns on each side), so a rule over
  `max_pairs_per_rule` is left out as on the local engine (`model.rules_within`);
- the term-frequency lookups: each value's count by a Spark aggregation, the column's total
  counted once, and the local formula (`frequencies.value_tf`) applied per Arrow batch; they
  are registered on the linker as Spark frames.

Every pair is scored every night (`predict_mode` "full", reason "spark engine"): the local
engine's incremental predict keeps last night's pairs and fingerprints on the driver, which is
what this engine avoids; the proposals are the same as a full predict's, which is what the
incremental one guarantees too. Its kept state is neither read nor written, so a workspace
that goes back to the local engine finds a state consistent in itself (pairs, fingerprints and
term frequencies of one night) and rescoring what changed since.

A night that trains the model (no saved model, data drift, `--retrain`) trains it as the local
engine does, on the driver over the records read from the work file, then refits the prior on
the pairs Spark scored down to the incremental floor (`incremental.refit_prior`): training on
the cluster remains (docs/scale.md). The model is the local engine's file, so either engine
reuses the other's.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from splink.internals.misc import prob_to_match_weight

from dedup.matching.carried_records import RecordsPlan
from dedup.matching.frequencies import column_u, tf_levels, value_tf
from dedup.matching.incremental import IncrementalConfig, PredictionRun, refit_prior
from dedup.matching.labels import Faces
from dedup.matching.model import (
    SPLINK_LOG_LEVEL,
    TrainedModel,
    explain,
    portable_settings,
    rules_within,
)
from dedup.matching.nightly import MatchingNight, MatchingOptions, tonight_model, with_scored_pairs
from dedup.matching.profile import workspace_properties
from dedup.matching.proposals import PREDICTION_SCHEMA
from dedup.matching.settings import blocking_keys, property_columns
from dedup.properties import Property
from dedup.spark.batches import per_batch
from dedup.spark.matching_records import SPARK_RECORDS, records_on_spark
from dedup.spark.similarity import register_duckdb_jaro_winkler, with_duckdb_jaro_winkler

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SPARK_PREDICT = "spark engine (every pair scored on the cluster, no state kept)"


def candidate_pairs_on_spark(records: DataFrame) -> list[int]:
    """`model.candidate_pairs` on a Spark frame: each rule's candidate pairs from the sizes of
    its blocks (Spark aggregations; no pair is made), every rule in one Spark job.
    tests/test_spark_matching.py holds the two to the same counts."""
    from functools import reduce

    from pyspark.sql import functions as F

    totals = []
    for index, keys in enumerate(blocking_keys(property_columns(records.columns))):
        left = [lk for lk, _ in keys]
        lhs = records.select(left).dropna().groupBy(left).agg(F.count("*").alias("n_l"))
        rhs = (
            records.select([F.col(rk).alias(lk) for lk, rk in keys])
            .dropna()
            .groupBy(left)
            .agg(F.count("*").alias("n_r"))
        )
        n_l, n_r = F.col("n_l").cast("long"), F.col("n_r").cast("long")
        # Each unordered pair once; with other columns on each side it is found from both.
        pairs = n_l * (n_l - 1) / 2 if left == [rk for _, rk in keys] else n_l * n_r / 2
        totals.append(
            lhs.join(rhs, on=left)
            .agg(F.sum(pairs).alias("pairs"))
            .select(F.lit(index).alias("rule"), "pairs")
        )
    found = dict(reduce(lambda a, b: a.unionByName(b), totals).collect())
    return [int(found.get(i) or 0) for i in range(len(totals))]


def _tf_batch(frame: pl.DataFrame, column: str, total: int, u: float | None) -> pl.DataFrame:
    return frame.select(
        pl.col(column), value_tf(pl.col("n"), pl.lit(total), u).alias(f"tf_{column}")
    )


def term_frequencies_on_spark(
    records: DataFrame, levels: list[dict[str, Any]]
) -> dict[str, DataFrame]:
    """tf column → its lookup (value in the record column's type, `tf_<column>`), as
    `frequencies.term_frequencies` computes it over the whole table: counts by Spark, the
    formula per Arrow batch."""
    from pyspark.sql import functions as F

    columns = sorted({lv["column"] for lv in levels})
    if not columns:
        return {}
    # Every column's non-null count in one job.
    totals = records.agg(*(F.count(c).alias(c) for c in columns)).first().asDict()
    lookups = {}
    for column in columns:
        counts = (
            records.filter(F.col(column).isNotNull())
            .groupBy(column)
            .agg(F.count("*").cast("long").alias("n"))
        )
        total = int(totals[column] or 0)
        step = functools.partial(_tf_batch, column=column, total=total, u=column_u(levels, column))
        lookups[column] = per_batch(counts, step)
    return lookups


@dataclass(frozen=True)
class SparkPredict:
    """Tonight's predict on Spark: the records frame, the saved model, its threshold."""

    records: DataFrame
    model: TrainedModel
    threshold: float
    max_pairs_per_rule: int


def _linker(spark: SparkSession, records: DataFrame, settings: dict[str, Any]) -> Any:
    from splink import Linker, SparkAPI

    api = SparkAPI(spark_session=spark)
    register_duckdb_jaro_winkler(spark)  # the local engine's Jaro-Winkler (with_duckdb_…)
    # Contact ids as Splink's ids: no rank column to compute over the whole table (the local
    # engine's `splink_ids` saves time on DuckDB's joins); both order pairs the same way.
    linker = Linker(
        api.register(records), settings, log_level=SPLINK_LOG_LEVEL, validate_settings=False
    )
    for column, lookup in term_frequencies_on_spark(records, tf_levels(settings)).items():
        linker.table_management.register_term_frequency_lookup(api.register(lookup), column)
    return linker


def predict_on_spark(
    spark: SparkSession, job: SparkPredict, floor_bits: float | None = None
) -> tuple[pl.DataFrame, PredictionRun]:
    """Splink's pairs scored on Spark at or above the threshold, collected (or down to
    `floor_bits` below it: a night that trained refits its prior on them), and the run."""
    started = time.perf_counter()
    settings = with_duckdb_jaro_winkler(portable_settings(job.model.settings, "spark"))
    kept, report = rules_within(
        settings, candidate_pairs_on_spark(job.records), job.max_pairs_per_rule
    )
    contacts = job.records.count()
    run = PredictionRun(pl.DataFrame(), report, "full", SPARK_PREDICT, contacts)
    if not kept:
        run.reason = "no blocking rule within max_pairs_per_rule"
        return pl.DataFrame(), run
    linker = _linker(
        spark, job.records, {**settings, "blocking_rules_to_generate_predictions": kept}
    )
    weight = prob_to_match_weight(job.threshold) - (floor_bits or 0.0)
    scored = linker.inference.predict(threshold_match_weight=weight, warning_mode="never")
    pairs = pl.from_arrow(scored.as_spark_dataframe().toArrow())
    run.seconds = {"predict": round(time.perf_counter() - started, 3)}
    return pairs, run  # type: ignore[return-value]


def scored_above(pairs: pl.DataFrame, model: TrainedModel, threshold: float) -> pl.DataFrame:
    """The pairs at or above the threshold's weight, explained (`model.explain`)."""
    if not pairs.width:  # no rule ran
        return pl.DataFrame()
    above = pairs.filter(pl.col("match_weight") >= prob_to_match_weight(threshold))
    return explain(above, model.settings) if above.height else pl.DataFrame()


@dataclass(frozen=True)
class SparkMatchFiles:
    contacts: Path  # the profiles work file
    records: Path  # written: the records work file the reports read
    scratch: Path  # a Spark work folder, removed after


def match_on_spark(
    spark: SparkSession,
    files: SparkMatchFiles,
    contacts: pl.DataFrame,
    faces: Faces,
    ambiguous: pl.DataFrame,
    declared: dict[str, Property],
    options: MatchingOptions,
) -> MatchingNight:
    """`nightly.match_tonight` with the records built and scored on Spark (module docstring).

    `contacts`: tonight's contacts' `contact_id`, `name`, `attributes` and `user_id`, what the
    workspace's property profile and the two-accounts rule read (docs/scale.md: what remains)."""
    properties, identified = workspace_properties(contacts, faces, declared)
    records = records_on_spark(
        spark, files.contacts, ambiguous, properties, files.records, files.scratch
    )
    night = MatchingNight(pl.DataFrame(), pl.DataFrame(schema=PREDICTION_SCHEMA), identified)
    night.records_plan = RecordsPlan(full=SPARK_RECORDS)
    height = pl.scan_parquet(files.records).select(pl.len()).collect().item()
    night.records_plan.built = height
    if height < options.min_contacts:
        night.model_status = "not trained (too few contacts)"
        return night
    model, night.model_status, trained = tonight_model(
        height,
        records.columns,
        lambda: pl.read_parquet(files.records),
        faces,
        properties,
        options,
    )
    job = SparkPredict(records, model, options.threshold, options.max_pairs_per_rule)
    floor = IncrementalConfig().floor_bits if trained else None
    pairs, run = predict_on_spark(spark, job, floor)
    if trained and pairs.width:  # as the local engine's training night: the prior its
        # scored pairs imply (no pair scored: no blocking rule within max_pairs_per_rule)
        pairs = refit_prior(model, pairs, pl.read_parquet(files.records), run)
    if trained:
        model.save(options.model_path)
    run.scored = scored_above(pairs, model, options.threshold)
    run.stored_pairs = pairs.height
    return with_scored_pairs(night, model, run, contacts, options)
