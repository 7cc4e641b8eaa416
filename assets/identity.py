"""Identity assets: all staged days → interactions → auto-merge clusters → stable contact ids.

Each asset reads its upstream's Parquet from the state work folder and writes its own; the
logic is in `dedup/`, these functions only move files and report.
"""

import json
from datetime import UTC, datetime

import dagster as dg
import polars as pl

from assets.ingest import INTERACTION_INGEST_ASSETS
from assets.names import CLUSTERS, CONTACT_IDS, GROUP_IDENTITY, INTERACTIONS, WRITER_POOL
from assets.reporting import md_table
from assets.resources import ContactsSettings
from dedup.automerge import KEY_COLUMNS, auto_merge, cluster_sizes
from dedup.ingest import read_staged
from dedup.interactions import prepare_interactions
from dedup.snapshot import MERGES_SCHEMA, auto_merge_rows, load_previous_ids, previous_table
from dedup.stable_ids import assign_ids

INTERACTIONS_FILE = "interactions.parquet"
CLUSTERS_FILE = "clusters.parquet"
AMBIGUOUS_FILE = "ambiguous_keys.parquet"
ASSIGNMENT_FILE = "assignment.parquet"
REDIRECTS_FILE = "redirects.parquet"
MERGES_FILE = "merges.parquet"
RUN_FILE = "run.json"
INTERACTION_STATS_FILE = "interactions_stats.json"


@dg.asset(
    name=INTERACTIONS,
    deps=INTERACTION_INGEST_ASSETS,
    group_name=GROUP_IDENTITY,
    pool=WRITER_POOL,
    kinds={"polars"},
    description="One normalized row per interaction id across every staged export day.",
)
def interactions(
    context: dg.AssetExecutionContext, settings: ContactsSettings
) -> dg.MaterializeResult:
    layout = settings.layout
    staged = read_staged(layout.staging_root, "accepted")
    resolved = prepare_interactions(staged, settings.engine_config())
    frame = resolved.interactions
    frame.write_parquet(layout.work_file(INTERACTIONS_FILE))
    layout.work_file(INTERACTION_STATS_FILE).write_text(
        json.dumps(
            {
                "deliveries": resolved.deliveries,
                "updates": resolved.updates,
                "repeats": resolved.repeats,
            }
        )
    )
    if not settings.engine_config().identity_secrets:
        context.log.warning("no identity secret set: no user id counts as verified")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": frame.height,
            "deliveries": resolved.deliveries,
            "updates": resolved.updates,
            "repeated_deliveries": resolved.repeats,
            "verified_interactions": int(frame.get_column("identity_verified").sum()),
            "invalid_emails": int(
                frame.filter(pl.col("email").is_not_null() & pl.col("email_norm").is_null()).height
            ),
            "invalid_phones": int(
                frame.filter(pl.col("phone").is_not_null() & pl.col("phone_e164").is_null()).height
            ),
        }
    )


@dg.asset(
    name=CLUSTERS,
    deps=[INTERACTIONS],
    group_name=GROUP_IDENTITY,
    pool=WRITER_POOL,
    kinds={"polars"},
    description="Deterministic auto-merge: interactions clustered by shared unambiguous keys.",
)
def identity_clusters(
    context: dg.AssetExecutionContext, settings: ContactsSettings
) -> dg.MaterializeResult:
    layout = settings.layout
    frame = pl.read_parquet(
        layout.work_file(INTERACTIONS_FILE), columns=["interaction_id", *KEY_COLUMNS.values()]
    )
    result = auto_merge(frame, settings.engine_config().hub_limits)
    result.clusters.write_parquet(layout.work_file(CLUSTERS_FILE))
    result.ambiguous_keys.write_parquet(layout.work_file(AMBIGUOUS_FILE))
    sizes = cluster_sizes(result.clusters)
    by_type = result.ambiguous_keys.group_by("key_type").len().sort("key_type")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.clusters.height,
            "clusters": int(result.clusters.get_column("cluster").n_unique()),
            "cluster_size_histogram": dg.MetadataValue.md(
                md_table(
                    pl.DataFrame({"interactions": list(sizes), "contacts": list(sizes.values())})
                )
            ),
            "ambiguous_keys": result.ambiguous_keys.height,
            "ambiguous_by_type": dg.MetadataValue.md(md_table(by_type)),
        }
    )


@dg.asset(
    name=CONTACT_IDS,
    deps=[CLUSTERS],
    group_name=GROUP_IDENTITY,
    pool=WRITER_POOL,
    kinds={"polars"},
    description="Stable contact ids: clusters inherit last published ids; merged ids redirect.",
)
def contact_ids(
    context: dg.AssetExecutionContext, settings: ContactsSettings
) -> dg.MaterializeResult:
    layout = settings.layout
    db_path = layout.db_path
    decided_at = datetime.now(UTC).replace(microsecond=0)
    clusters = pl.read_parquet(layout.work_file(CLUSTERS_FILE))
    previous = load_previous_ids(db_path)
    ids = assign_ids(clusters, previous, decided_at)
    assignment = clusters.join(ids.contact_of_cluster, on="cluster").select(
        "interaction_id", "contact_id"
    )
    assignment.write_parquet(layout.work_file(ASSIGNMENT_FILE))
    ids.redirects.write_parquet(layout.work_file(REDIRECTS_FILE))
    merges = pl.concat(
        [
            previous_table(db_path, "merges", MERGES_SCHEMA),
            auto_merge_rows(ids.auto_merges, decided_at),
        ]
    )
    merges.write_parquet(layout.work_file(MERGES_FILE))
    layout.work_file(RUN_FILE).write_text(
        json.dumps(
            {
                "run_id": context.run.run_id,
                "decided_at": decided_at.isoformat(),
                "auto_merges": ids.auto_merges.height,
            }
        )
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": ids.contact_of_cluster.height,
            "new_contacts": ids.contact_of_cluster.join(
                previous.contacts, on="contact_id", how="anti"
            ).height,
            "auto_merges_tonight": ids.auto_merges.height,
            "redirects": ids.redirects.height,
        }
    )
