"""Asset, check and group names, shared by the place they are declared and the places that use them."""

GROUP_INGEST = "ingest"
GROUP_IDENTITY = "identity"
GROUP_PUBLISH = "publish"

ASKVAULT = "askvault_interactions"
GROUP_CRM = "crm"
CRM_LINKS = "crm_links"


def ingest_asset_name(source: str, kind: str = "interactions") -> str:
    """`whatsapp_interactions`, `hubspot_records`: one staging asset per source."""
    return f"{source}_{'records' if kind == 'crm' else 'interactions'}"


INTERACTIONS = "interactions"
CLUSTERS = "identity_clusters"
CONTACT_IDS = "contact_ids"
DECISIONS = "admin_decisions"
SNAPSHOT = "contacts_snapshot"
PUBLISHED = "published_contacts"

CHECK_UNIQUE_IDS = "interaction_ids_unique"
CHECK_ALL_ASSIGNED = "every_interaction_has_live_contact"
CHECK_HUB_LIMIT = "no_contact_over_hub_limit"
CHECK_REDIRECTS_LIVE = "redirects_point_to_live_contacts"

# One DuckDB writer at a time: every asset that writes pipeline state shares this pool.
WRITER_POOL = "contacts_writer"

PROFILES = "contact_profiles"
PROPOSALS = "merge_proposals"
MATCHING_REPORTS = "matching_reports"
GROUP_MATCHING = "matching"
