"""Matching assets: contact profiles, then Splink merge proposals with their lifecycle."""

import json
from datetime import datetime
from pathlib import Path

import dagster as dg
import polars as pl

from assets.identity import (
    AMBIGUOUS_FILE,
    ASSIGNMENT_FILE,
    DECISIONS_FILE,
    ERASED_FILE,
    INTERACTIONS_FILE,
    REDIRECTS_FILE,
    RUN_FILE,
    SEPARATED_FILE,
)
from assets.names import (
    CONTACT_IDS,
    GROUP_MATCHING,
    MATCHING_REPORTS,
    PROFILES,
    PROPOSALS,
    PUBLISHED,
    WRITER_POOL,
)
from assets.report_links import report_link
from assets.reporting import md_table
from assets.resources import ContactsSettings
from dedup.admin.contact_edits import apply_contact_edits
from dedup.layout import WORK_COMPRESSION
from dedup.matching.carried_records import link_records
from dedup.matching.labels import labelled_faces
from dedup.matching.model import TrainedModel
from dedup.matching.nightly import MatchingNight, MatchingOptions, match_tonight, tonight_proposals
from dedup.matching.proposals import (
    PROPOSALS_SCHEMA,
)
from dedup.matching.reports import write_reports
from dedup.snapshot.files import previous_table
from dedup.snapshot.profile_cache import contacts_frame
from dedup.spark.matching import SparkMatchFiles, match_on_spark
from dedup.spark.matching_faces import labelled_faces_on_spark
from dedup.spark.night import night_session, spark_work
from dedup.spark.profiles import SPARK_PROFILES, ProfileFiles, contact_edits, profiles_on_spark

CONTACTS_FILE = "contacts.parquet"
# Profiles kept from night to night (`dedup.snapshot.profile_cache`, docs/state.md).
PROFILE_CACHE = "profiles"
PROPOSALS_FILE = "proposals.parquet"
# Splink's scored pairs at or above the threshold (every column), for the reports after publish.
SCORES_FILE = "proposal_scores.parquet"
# Tonight's matcher records, so the reports do not rebuild them.
RECORDS_FILE = "match_records.parquet"
# Matcher records kept from night to night (`dedup.matching.carried_records`, docs/state.md).
RECORDS_CACHE = "records"


class MatchingConfig(dg.Config):
    """Run config of the matching step."""

    retrain: bool = False  # retrain the Splink model even if the saved one still fits the data
    # Score every candidate pair tonight instead of only those of new or changed contacts, and
    # build every matcher record instead of carrying the unchanged ones (`contacts run --full`).
    full_predict: bool = False


class ProfilesConfig(dg.Config):
    """Run config of the profiles step."""

    # Build every contact's profile instead of only those whose interactions changed.
    full: bool = False


@dg.asset(
    name=PROFILES,
    deps=[CONTACT_IDS],
    group_name=GROUP_MATCHING,
    pool=WRITER_POOL,
    kinds={"duckdb", "polars"},
    description="One profile per live contact (survivorship), the source of `contacts`.",
)
def contact_profiles(
    context: dg.AssetExecutionContext, config: ProfilesConfig, settings: ContactsSettings
) -> dg.MaterializeResult:
    layout = settings.layout
    decisions = pl.read_parquet(layout.work_file(DECISIONS_FILE))
    applied_before = previous_table(
        layout.db_path, "admin_decisions", {"decision_id": pl.String()}
    ).get_column("decision_id")
    if settings.backend == "spark":  # what runs where: docs/scale.md
        counts, path = _profiles_spark(settings, decisions, applied_before)
    else:
        counts, path = _profiles_local(context, config, settings, decisions, applied_before)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": counts["contacts"],
            "engine": settings.backend,
            # Which path the profiles took and why (issue 25).
            "profiles_path": path,
            "verified": counts["verified"],
            "leads": counts["leads"],
        }
    )


def _profiles_local(
    context: dg.AssetExecutionContext,
    config: ProfilesConfig,
    settings: ContactsSettings,
    decisions: pl.DataFrame,
    applied_before: pl.Series,
) -> tuple[dict[str, int], str]:
    """The local engine: kept profiles carried over, the touched ones built (issue 25)."""
    layout = settings.layout
    contacts, plan = contacts_frame(
        layout.work_file(INTERACTIONS_FILE),
        layout.work_file(ASSIGNMENT_FILE),
        settings.engine_config(),
        layout.work_dir,
        layout.cache_dir / PROFILE_CACHE,
        "--full requested" if config.full else None,
    )
    context.log.info(f"profiles: {plan.describe()}")
    contacts = apply_contact_edits(
        contacts,
        decisions,
        pl.read_parquet(layout.work_file(REDIRECTS_FILE)),
        decisions.filter(~pl.col("decision_id").is_in(applied_before.implode())).get_column(
            "decision_id"
        ),
    )
    contacts.write_parquet(layout.work_file(CONTACTS_FILE), compression=WORK_COMPRESSION)
    counts = {
        "contacts": contacts.height,
        "verified": int(contacts.get_column("identity_verified").sum()),
        "leads": int(contacts.get_column("is_lead").sum()),
    }
    return counts, plan.describe()


def _profiles_spark(
    settings: ContactsSettings, decisions: pl.DataFrame, applied_before: pl.Series
) -> tuple[dict[str, int], str]:
    """The Spark engine: every profile built on the cluster, written by Spark
    (`dedup.spark.profiles`); the driver reads neither the interactions nor the assignment."""
    layout = settings.layout
    spark = night_session(layout.work_dir)
    files = ProfileFiles(
        interactions=layout.work_file(INTERACTIONS_FILE),
        assignment=layout.work_file(ASSIGNMENT_FILE),
        redirects=layout.work_file(REDIRECTS_FILE),
        contacts=layout.work_file(CONTACTS_FILE),
    )
    edits = contact_edits(spark, decisions, files.redirects, applied_before)
    counts = profiles_on_spark(spark, files, settings.engine_config(), edits)
    return counts, SPARK_PROFILES


# What the Spark path reads of the profiles on the driver (`dedup.spark.matching`).
SPARK_CONTACT_COLUMNS = ("contact_id", "name", "attributes", "user_id")


def _match_local(
    settings: ContactsSettings, options: MatchingOptions, contacts: pl.DataFrame
) -> MatchingNight:
    """The local engine: records carried over or built, pairs scored incrementally (issue 25);
    tonight's records written as the work file the reports read."""
    work = settings.layout.work_file
    night = match_tonight(
        contacts,
        labelled_faces(work(INTERACTIONS_FILE), work(ASSIGNMENT_FILE)),
        pl.read_parquet(work(AMBIGUOUS_FILE)),
        settings.engine_config().properties,
        options,
    )
    if night.model is None:
        return night
    if night.records_plan is None:
        night.records.write_parquet(work(RECORDS_FILE))
    else:  # the kept file itself, written once
        link_records(night.records_plan, work(RECORDS_FILE), night.records)
    return night


def _match_spark(
    settings: ContactsSettings, options: MatchingOptions, contacts: pl.DataFrame
) -> MatchingNight:
    """The Spark engine: records built and written by Spark, pairs scored by Splink on it
    (`dedup.spark.matching`); the driver gets the pairs above the threshold."""
    layout = settings.layout
    work = layout.work_file
    files = SparkMatchFiles(
        contacts=work(CONTACTS_FILE),
        records=work(RECORDS_FILE),
        scratch=Path(spark_work(layout.work_dir)) / "match_own",
    )
    spark = night_session(layout.work_dir)
    return match_on_spark(
        spark,
        files,
        contacts,
        labelled_faces_on_spark(spark, work(INTERACTIONS_FILE), work(ASSIGNMENT_FILE)),
        pl.read_parquet(work(AMBIGUOUS_FILE)),
        settings.engine_config().properties,
        options,
    )


def _matching_metadata(night: MatchingNight, settings: ContactsSettings) -> dict[str, object]:
    metadata: dict[str, object] = {
        "identified_attributes": dg.MetadataValue.json(night.identified),
        "model": night.model_status,
    }
    if night.records_plan is not None:  # which path the records took and why (issue 25)
        metadata["records_path"] = night.records_plan.describe()
    run = night.run
    if run is None or night.model is None:
        return metadata
    return {
        **metadata,
        "predict_mode": run.mode,
        "predict_reason": run.reason,
        "changed_contacts": run.changed,
        "carried_pairs": run.carried_pairs,
        "stored_pairs": run.stored_pairs,
        "tf_headroom_bits": round(run.headroom_bits, 3),
        "prior": night.model.settings["probability_two_random_records_match"],
        # On a night that trained: the rules' estimate and what the scored pairs implied.
        "prior_fit": dg.MetadataValue.json(run.prior),
        "predict_seconds": dg.MetadataValue.json(run.seconds),
        "candidate_pairs_per_rule": dg.MetadataValue.json(run.pairs_per_rule),
        "model_path": dg.MetadataValue.path(str(settings.model_path)),
        "m_u_parameters": dg.MetadataValue.md(md_table(_m_u_table(night.model.settings), 60)),
    }


@dg.asset(
    name=PROPOSALS,
    deps=[PROFILES],
    group_name=GROUP_MATCHING,
    pool=WRITER_POOL,
    kinds={"splink", "duckdb"},
    description="Splink merge proposals between live contacts, with admins' decisions applied.",
)
def merge_proposals(
    context: dg.AssetExecutionContext, config: MatchingConfig, settings: ContactsSettings
) -> dg.MaterializeResult:
    layout = settings.layout
    work = layout.work_file
    for stale in (SCORES_FILE, RECORDS_FILE):  # never last night's
        work(stale).unlink(missing_ok=True)
    options = MatchingOptions(
        model_path=settings.model_path,
        state_dir=settings.matching_state_dir,
        threshold=settings.proposal_threshold,
        max_pairs_per_rule=settings.max_pairs_per_rule,
        min_contacts=settings.min_contacts_to_match,
        retrain=config.retrain,
        full_predict=config.full_predict,
        records_dir=layout.cache_dir / RECORDS_CACHE,
    )
    if settings.backend == "spark":  # what runs where: docs/scale.md
        contacts = pl.read_parquet(work(CONTACTS_FILE), columns=list(SPARK_CONTACT_COLUMNS))
        night = _match_spark(settings, options, contacts)
    else:
        contacts = pl.read_parquet(work(CONTACTS_FILE))
        night = _match_local(settings, options, contacts)
    if night.model is None:
        context.log.info(f"{contacts.height} contacts: too few to train a matching model")
    else:
        assert night.run is not None
        night.run.scored.write_parquet(work(SCORES_FILE))
    if night.skipped_rules:
        context.log.warning(
            f"blocking rules over {settings.max_pairs_per_rule:,} candidate pairs skipped "
            f"tonight: {night.skipped_rules}"
        )
    proposals = tonight_proposals(
        night.predictions,
        previous_table(layout.db_path, "merge_proposals", PROPOSALS_SCHEMA),
        pl.read_parquet(work(DECISIONS_FILE)),
        pl.read_parquet(work(REDIRECTS_FILE)),
        contacts.get_column("contact_id"),
        datetime.fromisoformat(json.loads(work(RUN_FILE).read_text())["decided_at"]),
        pl.read_parquet(work(SEPARATED_FILE)),
        pl.read_parquet(work(ERASED_FILE)).get_column("contact_id"),
    )
    proposals.write_parquet(work(PROPOSALS_FILE))
    pending = proposals.filter(pl.col("status") == "pending").sort(
        "match_probability", descending=True
    )
    return dg.MaterializeResult(
        metadata={
            **_matching_metadata(night, settings),
            "dagster/row_count": proposals.height,
            "engine": settings.backend,
            "threshold": settings.proposal_threshold,
            "by_status": dg.MetadataValue.md(
                md_table(proposals.group_by("status").len().sort("status"))
            ),
            "top_pending": dg.MetadataValue.md(
                md_table(
                    pending.select(
                        "proposal_id", "contact_id_l", "contact_id_r", "match_probability"
                    ),
                    10,
                )
            ),
        }
    )


@dg.asset(
    name=MATCHING_REPORTS,
    deps=[PUBLISHED],
    group_name=GROUP_MATCHING,
    pool=WRITER_POOL,
    kinds={"splink", "html"},
    description=(
        "Splink's comparison viewer and cluster studio over the published pending proposals, "
        "and the model's match-weight and m/u charts: standalone HTML under "
        "<output>/matching/, replaced as a whole after each publish."
    ),
)
def matching_reports(
    context: dg.AssetExecutionContext, settings: ContactsSettings
) -> dg.MaterializeResult:
    layout = settings.layout
    model = TrainedModel.load(settings.model_path)
    scores = layout.work_file(SCORES_FILE)
    if model is None or not scores.exists() or not layout.work_file(RECORDS_FILE).exists():
        return dg.MaterializeResult(metadata={"reports": "none (no model scored tonight)"})
    pending = previous_table(layout.db_path, "merge_proposals", PROPOSALS_SCHEMA).filter(
        pl.col("status") == "pending"
    )
    # The proposals admins see now: tonight's scored pairs that were published as pending.
    scored = pl.read_parquet(scores)
    scored = (
        scored.with_columns(
            pl.min_horizontal("unique_id_l", "unique_id_r").alias("_low"),
            pl.max_horizontal("unique_id_l", "unique_id_r").alias("_high"),
        )
        .join(
            pending.select(
                pl.col("contact_id_l").alias("_low"), pl.col("contact_id_r").alias("_high")
            ),
            on=["_low", "_high"],
            how="semi",
        )
        .drop("_low", "_high")
        if "unique_id_l" in scored.columns  # no pair scored tonight: an empty frame
        else scored
    )
    report = write_reports(
        pl.read_parquet(layout.work_file(RECORDS_FILE)),
        model.settings,
        scored,
        settings.output / "matching",
        settings.proposal_threshold,
        max_pairs=settings.report_max_pairs,
    )
    context.log.info(f"Splink reports for {report.pairs_shown:,} proposals in {report.folder}")
    return dg.MaterializeResult(
        metadata={
            "folder": dg.MetadataValue.path(str(report.folder)),
            **{
                name.removesuffix(".html"): report_link(settings, path)
                for name, path in report.files.items()
            },
            "pending_proposals": report.pairs_total,
            "proposals_shown": report.pairs_shown,
        }
    )


def _m_u_table(settings: dict) -> pl.DataFrame:
    rows = []
    for comparison in settings["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            rows.append(
                {
                    "comparison": comparison["output_column_name"],
                    "level": level.get("label_for_charts") or level.get("sql_condition"),
                    "m": level.get("m_probability"),
                    "u": level.get("u_probability"),
                }
            )
    return pl.DataFrame(
        rows, schema={"comparison": pl.String, "level": pl.String, "m": pl.Float64, "u": pl.Float64}
    )


MATCHING_ASSETS = [contact_profiles, merge_proposals, matching_reports]
