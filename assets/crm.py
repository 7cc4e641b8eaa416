"""CRM asset: link live contacts to HubSpot / Salesforce records; sync state and tier mismatches."""

import dagster as dg
import polars as pl

from assets.identity import AMBIGUOUS_FILE
from assets.ingest import CRM_INGEST_ASSETS
from assets.matching import CONTACTS_FILE
from assets.names import CRM_LINKS, GROUP_CRM, PROFILES, WRITER_POOL
from assets.reporting import md_table
from assets.resources import ContactsSettings
from dedup.ingest.days import read_staged_crm
from dedup.snapshot.crm_links import link_crm

CRM_LINKS_FILE = "crm_links.parquet"
CRM_STATUS_FILE = "crm_status.parquet"
TIER_MISMATCHES_FILE = "tier_mismatches.parquet"


@dg.asset(
    name=CRM_LINKS,
    deps=[PROFILES, *CRM_INGEST_ASSETS],
    group_name=GROUP_CRM,
    pool=WRITER_POOL,
    kinds={"polars"},
    description=(
        "Contacts linked to CRM records by email, then phone (never by an ambiguous key); each "
        "contact's crm_sync_status and CRM audience; plan vs CRM tier mismatches."
    ),
)
def crm_links(
    context: dg.AssetExecutionContext, settings: ContactsSettings
) -> dg.MaterializeResult:
    layout = settings.layout
    contacts = pl.read_parquet(
        layout.work_file(CONTACTS_FILE),
        columns=["contact_id", "emails", "phones", "is_lead", "audience", "plan_audience"],
    )
    records = read_staged_crm(layout.staging_root)
    # A key auto-merge would not use (a switchboard phone) links no CRM record either.
    ambiguous = pl.read_parquet(layout.work_file(AMBIGUOUS_FILE), columns=["key_type", "key_value"])
    result = link_crm(contacts, records, settings.crm_config(), ambiguous)
    result.links.write_parquet(layout.work_file(CRM_LINKS_FILE))
    result.status.write_parquet(layout.work_file(CRM_STATUS_FILE))
    result.tier_mismatches.write_parquet(layout.work_file(TIER_MISMATCHES_FILE))
    by_status = result.status.group_by("crm_sync_status").len().sort("crm_sync_status")
    if result.tier_mismatches.height:
        context.log.warning(
            f"{result.tier_mismatches.height} contact(s) whose plan and CRM audience disagree"
        )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.links.height,
            "crm_records": records.height,
            "unmatched_crm_records": result.unmatched_records,
            "tier_mismatches": result.tier_mismatches.height,
            "sync_errors": int((result.status.get_column("crm_sync_status") == "error").sum()),
            "sync_status": dg.MetadataValue.md(md_table(by_status)),
        }
    )
