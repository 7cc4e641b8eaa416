"""The one resource every asset shares: where exports and state live, and engine settings."""

import os
from pathlib import Path

import dagster as dg

from dedup.adapters.base import SourceConfig
from dedup.automerge import HubLimits
from dedup.config import EngineConfig
from dedup.crm import DEFAULT_CRM_AUDIENCE_RULES, CrmAudienceRule, CrmConfig
from dedup.snapshot import StateLayout

# Workspace facts for the native adapters and the CRM step, from the environment, for the
# `contacts` CLI and the code location (comma-separated lists). Dagster run config can set the
# same fields on the resource instead.
WORKSPACE_ENV = {
    "staff_domains": "CONTACTS_STAFF_DOMAINS",
    "workspace_emails": "CONTACTS_WORKSPACE_EMAILS",
    "business_phone_numbers": "CONTACTS_BUSINESS_NUMBERS",
    "hubspot_portal_id": "CONTACTS_HUBSPOT_PORTAL_ID",
    "salesforce_instance": "CONTACTS_SALESFORCE_INSTANCE",
}


def workspace_from_env() -> dict[str, object]:
    """ContactsSettings fields given in the environment (see `WORKSPACE_ENV`)."""
    out: dict[str, object] = {}
    for name, var in WORKSPACE_ENV.items():
        value = os.environ.get(var, "").strip()
        if not value:
            continue
        if name.endswith("_id") or name == "salesforce_instance":
            out[name] = value
        else:
            out[name] = [v.strip() for v in value.split(",") if v.strip()]
    return out


class CrmAudienceRuleConfig(dg.Config):
    """One row of the CRM audience table (docs/sources.md): `system`'s column `field` having
    `value` means audience `audience`."""

    system: str
    field: str
    value: str
    audience: str


class ContactsSettings(dg.ConfigurableResource):
    """Settings of one workspace's pipeline.

    The identity secrets are read from the environment at run time (never stored in run config
    or logs): `ASKVAULT_IDENTITY_SECRET`, and during a rotation `ASKVAULT_IDENTITY_SECRET_PREVIOUS`.
    """

    exports_dir: str
    db_path: str = "contacts.duckdb"
    default_region: str = "US"
    identity_secret_env: str = "ASKVAULT_IDENTITY_SECRET"
    phone_max_identities: int = 1
    email_max_phones: int = 3
    email_max_user_ids: int = 1
    session_max_emails: int = 2
    session_max_phones: int = 2
    session_max_user_ids: int = 1
    proposal_threshold: float = 0.8  # measured: docs/matching.md
    min_contacts_to_match: int = 50
    # A blocking rule that would make more candidate pairs is skipped for the night (reported),
    # instead of exhausting memory: at 10M interactions (name, surname) alone made 360M pairs.
    max_pairs_per_rule: int = 30_000_000
    # Native exports (docs/sources.md): the workspace's own people, addresses and numbers are
    # never contacts. Changing them applies to export days ingested afterwards.
    staff_domains: list[str] = []
    workspace_emails: list[str] = []
    business_phone_numbers: list[str] = []
    # CRM: deep links and the audience table; no rules given = the documented defaults.
    hubspot_portal_id: str = ""
    salesforce_instance: str = ""
    crm_audience_rules: list[CrmAudienceRuleConfig] | None = None

    @property
    def exports(self) -> Path:
        return Path(self.exports_dir)

    @property
    def model_path(self) -> Path:
        return self.layout.state_dir / "model" / "splink_model.json"

    @property
    def layout(self) -> StateLayout:
        return StateLayout(Path(self.db_path)).ensure()

    def source_config(self) -> SourceConfig:
        return SourceConfig(
            staff_domains=tuple(self.staff_domains),
            workspace_emails=tuple(self.workspace_emails),
            business_phone_numbers=tuple(self.business_phone_numbers),
        )

    def crm_config(self) -> CrmConfig:
        rules = (
            DEFAULT_CRM_AUDIENCE_RULES
            if self.crm_audience_rules is None
            else tuple(
                CrmAudienceRule(r.system, r.field, r.value, r.audience)
                for r in self.crm_audience_rules
            )
        )
        return CrmConfig(
            hubspot_portal_id=self.hubspot_portal_id,
            salesforce_instance=self.salesforce_instance,
            audience_rules=rules,
            default_region=self.default_region,
        )

    def engine_config(self) -> EngineConfig:
        secrets = tuple(
            s
            for s in (
                os.environ.get(self.identity_secret_env, ""),
                os.environ.get(f"{self.identity_secret_env}_PREVIOUS", ""),
            )
            if s
        )
        return EngineConfig(
            identity_secrets=secrets,
            default_region=self.default_region,
            hub_limits=HubLimits(
                phone_max_identities=self.phone_max_identities,
                email_max_phones=self.email_max_phones,
                email_max_user_ids=self.email_max_user_ids,
                session_max_emails=self.session_max_emails,
                session_max_phones=self.session_max_phones,
                session_max_user_ids=self.session_max_user_ids,
            ),
        )
