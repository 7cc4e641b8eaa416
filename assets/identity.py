"""Identity assets: all staged days → interactions → auto-merge clusters → stable contact ids.

Each asset reads its upstream's Parquet from the state work folder and writes its own; the
logic is in `dedup/`, these functions only move files and report.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg
import polars as pl

from assets.ingest import CRM_INGEST_ASSETS, INTERACTION_INGEST_ASSETS
from assets.names import (
    CLUSTERS,
    CONTACT_IDS,
    DECISIONS,
    GROUP_IDENTITY,
    INTERACTIONS,
    WRITER_POOL,
)
from assets.reporting import md_table
from assets.resources import ContactsSettings
from dedup.admin.deletion import (
    TRASH_FILE,
    deletion_status,
    held_ids,
    with_restored,
)
from dedup.admin.privacy import (
    erased_contact_ids,
    held_keys,
    salt,
)
from dedup.admin.tonight import DecisionLog, Tonight, apply_decisions, scrub_erased
from dedup.config import EngineConfig
from dedup.decisions import read_all, read_deletion_members, read_suppression
from dedup.identity.automerge import KEY_COLUMNS, cluster_sizes
from dedup.identity.carried_ids import KeptIds, resolve_carried
from dedup.identity.constraints import (
    MERGE_SIDES_SCHEMA,
)
from dedup.identity.crm_evidence import crm_evidence
from dedup.identity.day_cache import NightPlan, forget
from dedup.identity.identity_index import merge
from dedup.identity.merge_history import (
    MERGES_SCHEMA,
    SIDE_PROFILE_COLUMNS,
    side_profiles,
)
from dedup.identity.normalize import read_phone_lookup, write_phone_lookup
from dedup.identity.resolution import PreviousIds, Resolution
from dedup.identity.resolved_days import drop as drop_resolved
from dedup.identity.resolved_days import resolved_history
from dedup.identity.verify import identity_failures
from dedup.ingest.days import read_staged_crm
from dedup.layout import WORK_COMPRESSION, StateLayout
from dedup.snapshot.files import load_previous_ids, previous_rows, previous_table
from dedup.spark.contact_ids import IdFiles, LastNight
from dedup.spark.night import auto_merge_on_spark, decided_on_spark, ids_on_spark

INTERACTIONS_FILE = "interactions.parquet"
CLUSTERS_FILE = "clusters.parquet"
AMBIGUOUS_FILE = "ambiguous_keys.parquet"
ASSIGNMENT_FILE = "assignment.parquet"
REDIRECTS_FILE = "redirects.parquet"
MERGES_FILE = "merges.parquet"
RUN_FILE = "run.json"
DECISIONS_FILE = "decisions.parquet"
MERGE_SIDES_FILE = "merge_sides.parquet"
SIDE_PROFILES_FILE = "merge_side_profiles.parquet"
BRIDGING_FILE = "bridging_keys.parquet"
SEPARATED_FILE = "separated_pairs.parquet"
OUTCOMES_FILE = "decision_outcomes.parquet"
SUPPRESSION_FILE = "suppression.parquet"
SUPPRESSED_FILE = "suppressed.parquet"
FAILURES_FILE = "identity_failures.parquet"
ERASED_FILE = "erased_contact_ids.parquet"
INTERACTION_STATS_FILE = "interactions_stats.json"
DELETIONS_FILE = "deletions.parquet"
DELETION_MEMBERS_FILE = "deletion_members.parquet"
# Interactions of deleted, still restorable contacts (TRASH_FILE: full rows; this one: their
# contact_id): kept out of the engine, profiled for `deleted_contacts`.
TRASH_ASSIGNMENT_FILE = "deleted_assignment.parquet"
RESTORED_FILE = "restored_interactions.parquet"
# Normalized rows per staged source-day, kept between nights (`dedup.identity.day_cache`).
NORMALIZED_CACHE = "normalized"
# The normalized history with its re-deliveries resolved (`dedup.identity.resolved_days`).
RESOLVED_CACHE = "resolved"
# The identity index kept between nights (`dedup.identity.identity_index`).
IDENTITY_CACHE = "identity"
# The contacts each night assigned, kept for the next night (`dedup.identity.carried_ids`).
IDS_CACHE = "ids"
RUN_IDS_SCHEMA = {"run_number": pl.Int64(), "run_id": pl.String()}
FULL_REQUESTED = "--full requested"


class IdentityConfig(dg.Config):
    """Run config of the `interactions` and `identity_clusters` steps."""

    # Normalize every staged day again instead of reading back the days that did not change;
    # auto-merge every row instead of the clusters the night touched; assign every cluster an
    # id instead of carrying last night's contacts over.
    full: bool = False


@dg.asset(
    name=INTERACTIONS,
    deps=[*INTERACTION_INGEST_ASSETS, DECISIONS],
    group_name=GROUP_IDENTITY,
    pool=WRITER_POOL,
    kinds={"polars"},
    description="One normalized row per interaction id across every staged export day.",
)
def interactions(
    context: dg.AssetExecutionContext, config: IdentityConfig, settings: ContactsSettings
) -> dg.MaterializeResult:
    layout = settings.layout
    engine = settings.engine_config()
    log = DecisionLog(
        decisions=pl.read_parquet(layout.work_file(DECISIONS_FILE)),
        suppression=pl.read_parquet(layout.work_file(SUPPRESSION_FILE)),
        deletion_members=pl.read_parquet(layout.work_file(DELETION_MEMBERS_FILE)),
        deletions=pl.read_parquet(layout.work_file(DELETIONS_FILE)),
        salt_hex=salt(layout.state_dir),
    )
    cache = layout.cache_dir / NORMALIZED_CACHE
    if settings.backend == "spark":  # what runs where: docs/scale.md
        night = decided_on_spark(
            layout.staging_root,
            layout.work_dir,
            engine,
            log,
            (layout.work_file(INTERACTIONS_FILE), layout.work_file(FAILURES_FILE)),
            layout.cache_dir,
        )
        tonight, plan, counts = night.tonight, night.plan, night.counts
    else:
        tonight, plan, counts = _tonight_local(layout, engine, log, config.full)
    context.log.info(f"normalization: {plan.describe()}")
    split = tonight.deletion
    split.trash.drop("contact_id", "identity_failure").write_parquet(
        layout.work_file(TRASH_FILE), compression=WORK_COMPRESSION
    )
    split.trash.select("interaction_id", "contact_id").write_parquet(
        layout.work_file(TRASH_ASSIGNMENT_FILE)
    )
    split.restored.write_parquet(layout.work_file(RESTORED_FILE))
    scrubbed = scrub_erased(layout.staging_root, tonight, log, engine.default_region)
    forget(layout.staging_root, cache, engine, tonight.gone_for_good)
    tonight.suppressed.group_by("decision_id").agg(pl.len().alias("interactions")).write_parquet(
        layout.work_file(SUPPRESSED_FILE)
    )
    stats = {
        "deliveries": tonight.deliveries,
        "updates": tonight.updates,
        "repeats": tonight.repeats,
        "suppressed": tonight.suppressed.height,
    }
    layout.work_file(INTERACTION_STATS_FILE).write_text(json.dumps(stats))
    if not engine.identity_secrets:
        context.log.warning("no identity secret set: no user id counts as verified")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": counts.pop("rows"),
            "engine": settings.backend,
            # Which path the night took and why (issue 25).
            "night_path": plan.describe(),
            "days_normalized": dg.MetadataValue.json(plan.new + plan.changed),
            "deliveries": tonight.deliveries,
            "updates": tonight.updates,
            "repeated_deliveries": tonight.repeats,
            "suppressed_by_erasure": tonight.suppressed.height,
            "held_by_deletion": split.held,
            "staging_rows_scrubbed": scrubbed,
            **counts,
        }
    )


def _tonight_local(
    layout: StateLayout, engine: EngineConfig, log: DecisionLog, full: bool
) -> tuple[Tonight, NightPlan, dict[str, int | str]]:
    """The local engine's normalization and decisions: the live rows and tomorrow's phone
    lookup written here; the rest returned with the step's figures of the live rows."""
    region = engine.default_region
    known_phones = read_phone_lookup(layout.cache_dir, region)
    cache = layout.cache_dir / NORMALIZED_CACHE
    requested = FULL_REQUESTED if full else None
    resolved_root = layout.cache_dir / RESOLVED_CACHE
    resolved, plan, resolution = resolved_history(
        layout.staging_root, cache, resolved_root, engine, known_phones, requested
    )
    tonight = apply_decisions(resolved, engine, log, known_phones)
    del resolved
    if tonight.gone_for_good.len():  # no kept copy of an erased or purged row
        drop_resolved(resolved_root)
    frame = tonight.interactions
    write_phone_lookup(layout.cache_dir, region, tonight.phones)
    identity_failures(frame).write_parquet(layout.work_file(FAILURES_FILE))
    frame.drop("identity_failure").write_parquet(
        layout.work_file(INTERACTIONS_FILE), compression=WORK_COMPRESSION
    )
    # Counted in one pass over the columns, not by filtering every row (a copy of each).
    figures = frame.select(
        pl.col("identity_failure").is_not_null().sum().alias("identity_failures"),
        pl.col("identity_verified").sum().alias("verified_interactions"),
        (pl.col("email").is_not_null() & pl.col("email_norm").is_null())
        .sum()
        .alias("invalid_emails"),
        (pl.col("phone").is_not_null() & pl.col("phone_e164").is_null())
        .sum()
        .alias("invalid_phones"),
    ).row(0, named=True)
    counts = {
        "resolution_path": resolution,
        "rows": frame.height,
        "phone_lookup_loaded": known_phones.height if known_phones is not None else 0,
        "phone_lookup_saved": tonight.phones.height,
        **{name: int(value or 0) for name, value in figures.items()},
    }
    tonight.interactions = frame.clear()  # written: the rows go before the next steps
    return tonight, plan, counts


@dg.asset(
    name=CLUSTERS,
    # CRM records are evidence (an email and a phone in one record are one person), read after
    # `interactions` has scrubbed erased people from their staging.
    deps=[INTERACTIONS, *CRM_INGEST_ASSETS],
    group_name=GROUP_IDENTITY,
    pool=WRITER_POOL,
    kinds={"polars"},
    description=(
        "Deterministic auto-merge: interactions clustered by shared unambiguous keys, CRM "
        "records' email + phone pairs included."
    ),
)
def identity_clusters(
    context: dg.AssetExecutionContext, config: IdentityConfig, settings: ContactsSettings
) -> dg.MaterializeResult:
    layout = settings.layout
    engine = settings.engine_config()
    suppression = pl.read_parquet(layout.work_file(SUPPRESSION_FILE))
    if settings.backend == "spark":  # the CRM evidence is built on Spark too (dedup.spark.crm)
        merged = auto_merge_on_spark(
            layout.work_dir,
            layout.work_file(INTERACTIONS_FILE),
            engine,
            layout.staging_root,
            suppression,
            salt(layout.state_dir),
            layout.work_file(CLUSTERS_FILE),
        )
        ambiguous, sizes, clusters = merged.ambiguous_keys, merged.sizes, merged.clusters
        path, evidence_rows = "full: spark engine", merged.evidence_rows
    else:
        evidence = crm_evidence(read_staged_crm(layout.staging_root), engine.default_region)
        ambiguous, sizes, clusters, path = _auto_merge_local(
            layout, engine, evidence, suppression, config.full
        )
        evidence_rows = evidence.height
    context.log.info(f"auto-merge: {path}")
    ambiguous.write_parquet(layout.work_file(AMBIGUOUS_FILE))
    by_type = ambiguous.group_by("key_type").len().sort("key_type")
    rows = pl.scan_parquet(layout.work_file(CLUSTERS_FILE)).select(pl.len()).collect().item()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "engine": settings.backend,
            # Which path the auto-merge took and why (issue 25).
            "clusters_path": path,
            "clusters": clusters,
            "cluster_size_histogram": dg.MetadataValue.md(
                md_table(
                    pl.DataFrame({"interactions": list(sizes), "contacts": list(sizes.values())})
                )
            ),
            "ambiguous_keys": ambiguous.height,
            "crm_evidence_rows": evidence_rows,
            "ambiguous_by_type": dg.MetadataValue.md(md_table(by_type)),
        }
    )


def _auto_merge_local(
    layout: StateLayout,
    config: EngineConfig,
    evidence: pl.DataFrame,
    suppression: pl.DataFrame,
    full: bool,
) -> tuple[pl.DataFrame, dict[str, int], int, str]:
    """The local engine's auto-merge over the clusters the night touched (the identity index),
    its clusters written here: (ambiguous keys, cluster size histogram, clusters, path)."""
    frame = pl.read_parquet(
        layout.work_file(INTERACTIONS_FILE), columns=["interaction_id", *KEY_COLUMNS.values()]
    )
    # Identifiers an erased contact shared with others keep the others apart (docs/privacy.md).
    held = held_keys(frame, suppression, salt(layout.state_dir))
    root = layout.cache_dir / IDENTITY_CACHE
    result, plan = merge(frame, config, evidence, held, root, FULL_REQUESTED if full else None)
    result.clusters.write_parquet(layout.work_file(CLUSTERS_FILE), compression=WORK_COMPRESSION)
    sizes = cluster_sizes(result.clusters)
    # Every cluster is in one bucket of the histogram: no second pass over the rows to count them.
    return result.ambiguous_keys, sizes, sum(sizes.values()), plan.describe()


@dg.asset(
    name=DECISIONS,
    group_name=GROUP_IDENTITY,
    pool=WRITER_POOL,
    kinds={"duckdb"},
    description=(
        "Admins' decisions (accept, reject, merge, unmerge, notes) as of this run: a snapshot of "
        "the append-only decision log; anything decided later is applied by the next run."
    ),
)
def admin_decisions(
    context: dg.AssetExecutionContext, settings: ContactsSettings
) -> dg.MaterializeResult:
    layout = settings.layout
    log = read_all(layout.decisions_path)
    log.write_parquet(layout.work_file(DECISIONS_FILE))
    read_suppression(layout.decisions_path).write_parquet(layout.work_file(SUPPRESSION_FILE))
    members = read_deletion_members(layout.decisions_path)
    members.write_parquet(layout.work_file(DELETION_MEMBERS_FILE))
    deletions = deletion_status(log, members, datetime.now(UTC))
    deletions.write_parquet(layout.work_file(DELETIONS_FILE))
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": log.height,
            "by_kind": dg.MetadataValue.md(md_table(log.group_by("kind").len().sort("kind"))),
            "deletions": dg.MetadataValue.md(
                md_table(deletions.group_by("status").len().sort("status"))
            ),
            "log": dg.MetadataValue.path(str(layout.decisions_path)),
        }
    )


@dg.asset(
    name=CONTACT_IDS,
    deps=[CLUSTERS, DECISIONS],
    group_name=GROUP_IDENTITY,
    pool=WRITER_POOL,
    kinds={"polars"},
    description=(
        "Stable contact ids: admins' decisions applied to the clusters (joins, separations), "
        "clusters inherit last published ids, merged ids redirect, merges recorded."
    ),
)
def contact_ids(
    context: dg.AssetExecutionContext, config: IdentityConfig, settings: ContactsSettings
) -> dg.MaterializeResult:
    layout = settings.layout
    db_path = layout.db_path
    decided_at = datetime.now(UTC).replace(microsecond=0)
    last = LastNight(
        merges=previous_table(db_path, "merges", MERGES_SCHEMA),
        sides=previous_table(db_path, "merge_sides", MERGE_SIDES_SCHEMA),
        restored=pl.read_parquet(layout.work_file(RESTORED_FILE)),
    )
    decisions = pl.read_parquet(layout.work_file(DECISIONS_FILE))
    held = held_ids(pl.read_parquet(layout.work_file(DELETIONS_FILE)))
    if settings.backend == "spark":
        done, figures, erased = _ids_spark(layout, last, decisions, held, decided_at)
        path = "full: spark engine"
    else:
        tonight = IdsTonight(context.run.run_id, decided_at, config.full)
        done, figures, erased, path = _ids_local(layout, last, decisions, held, tonight)
    context.log.info(f"contact ids: {path}")
    done.history.merges.write_parquet(layout.work_file(MERGES_FILE))
    done.history.sides.write_parquet(layout.work_file(MERGE_SIDES_FILE))
    columns = ", ".join(
        "attributes::VARCHAR AS attributes" if c == "attributes" else c
        for c in SIDE_PROFILE_COLUMNS
    )
    profiles = previous_rows(db_path, "contacts", columns, "contact_id", done.merged_contact_ids())
    side_profiles(profiles, done.history).write_parquet(layout.work_file(SIDE_PROFILES_FILE))
    done.constrained.bridging_keys.write_parquet(layout.work_file(BRIDGING_FILE))
    done.constraints.separated_pairs.write_parquet(layout.work_file(SEPARATED_FILE))
    # Erased ids (and ids that redirected to them), for the assets that must leave them out.
    erased.to_frame("contact_id").write_parquet(layout.work_file(ERASED_FILE))
    done.outcomes.write_parquet(layout.work_file(OUTCOMES_FILE))
    tonight = done.merged_tonight
    run = {
        "run_id": context.run.run_id,
        "decided_at": decided_at.isoformat(),
        "auto_merges": tonight.filter(pl.col("kind") == "auto").height,
    }
    layout.work_file(RUN_FILE).write_text(json.dumps(run))
    not_applied = done.outcomes.filter(pl.col("outcome") == "not applied")
    if not_applied.height:
        context.log.warning(f"{not_applied.height} admin decision(s) could not be applied")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": figures["contacts"],
            "engine": settings.backend,
            # Which path the ids took and why (issue 25).
            "ids_path": path,
            "new_contacts": figures["new_contacts"],
            "merges_tonight": dg.MetadataValue.md(
                md_table(tonight.group_by("kind").len().sort("kind"))
            ),
            "unmerges_tonight": done.constraints.unmerges.height,
            "bridging_keys": done.constrained.bridging_keys.height,
            "decisions_not_applied": dg.MetadataValue.md(md_table(not_applied, 20)),
            "redirects": figures["redirects"],
        }
    )


@dataclass(frozen=True)
class IdsTonight:
    run_id: str  # names the kept ids, which the published file names once this run publishes
    decided_at: datetime
    full: bool


def _ids_local(
    layout: StateLayout,
    last: LastNight,
    decisions: pl.DataFrame,
    held: pl.Series,
    tonight: IdsTonight,
) -> tuple[Resolution, dict[str, int], pl.Series, str]:
    """The local engine's ids, the assignment and redirects written here, the contacts kept
    for the next night: (the resolution, the step's figures, the erased ids, the path)."""
    previous = PreviousIds(
        state=with_restored(load_previous_ids(layout.db_path), last.restored),
        merges=last.merges,
        sides=last.sides,
    )
    interactions = layout.work_file(INTERACTIONS_FILE)

    def load_keys(ids: pl.Series | None) -> pl.DataFrame:
        keys = pl.scan_parquet(interactions).select("interaction_id", *KEY_COLUMNS.values())
        wanted = keys if ids is None else keys.filter(pl.col("interaction_id").is_in(ids.implode()))
        return wanted.collect()

    kept = KeptIds(layout.cache_dir / IDS_CACHE)
    runs = previous_table(layout.db_path, "pipeline_runs", RUN_IDS_SCHEMA)
    published_run = runs.sort("run_number").get_column("run_id").tail(1).to_list()
    carried = resolve_carried(
        pl.read_parquet(layout.work_file(CLUSTERS_FILE)),
        pl.read_parquet(layout.work_file(AMBIGUOUS_FILE)),
        load_keys,
        decisions,
        previous,
        held,
        tonight.decided_at,
        FULL_REQUESTED if tonight.full else kept.read(next(iter(published_run), None)),
    )
    done = carried.resolution
    done.assignment.write_parquet(layout.work_file(ASSIGNMENT_FILE), compression=WORK_COMPRESSION)
    done.ids.redirects.write_parquet(layout.work_file(REDIRECTS_FILE))
    # Last, so a step killed before leaves last night's, which the next night's check refuses
    # unless that night was published.
    kept.write(tonight.run_id, carried.stats, done.ids.contact_of_cluster)
    contacts = done.ids.contact_of_cluster
    figures = {
        "contacts": contacts.height,
        "new_contacts": contacts.join(previous.state.contacts, on="contact_id", how="anti").height,
        "redirects": done.ids.redirects.height,
    }
    erased = erased_contact_ids(decisions, previous.state.redirects)
    return done, figures, erased, carried.plan.describe()


def _ids_spark(
    layout: StateLayout,
    last: LastNight,
    decisions: pl.DataFrame,
    held: pl.Series,
    decided_at: datetime,
) -> tuple[Resolution, dict[str, int], pl.Series]:
    """`_ids_local` on Spark: Spark writes the assignment and redirects (docs/scale.md)."""
    files = IdFiles(
        clusters=layout.work_file(CLUSTERS_FILE),
        interactions=layout.work_file(INTERACTIONS_FILE),
        assignment=layout.work_file(ASSIGNMENT_FILE),
        redirects=layout.work_file(REDIRECTS_FILE),
    )
    ambiguous = pl.read_parquet(layout.work_file(AMBIGUOUS_FILE))
    done = ids_on_spark(
        layout.work_dir, layout.db_path, files, last, ambiguous, decisions, held, decided_at
    )
    figures = {"contacts": done.contacts, "new_contacts": done.new_contacts}
    return done.resolution, {**figures, "redirects": done.redirects}, done.erased
