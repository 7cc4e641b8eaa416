"""The one resource every asset shares: where exports and state live, and engine settings."""

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import dagster as dg

from dedup.admin.privacy import AFTER_ERASURE_POLICIES
from dedup.config import EngineConfig, HubLimits
from dedup.ingest.adapters.base import SourceConfig
from dedup.layout import StateLayout
from dedup.properties import load_schema
from dedup.snapshot.crm_links import DEFAULT_CRM_AUDIENCE_RULES, CrmAudienceRule, CrmConfig
from quality import gx_worker
from quality.gates import GateLimits

T = TypeVar("T")

# Workspace facts for the native adapters and the CRM step, from the environment, for the
# `contacts` CLI and the code location (comma-separated lists). Dagster run config can set the
# same fields on the resource instead.
WORKSPACE_ENV = {
    "staff_domains": "CONTACTS_STAFF_DOMAINS",
    "workspace_emails": "CONTACTS_WORKSPACE_EMAILS",
    "business_phone_numbers": "CONTACTS_BUSINESS_NUMBERS",
    "hubspot_portal_id": "CONTACTS_HUBSPOT_PORTAL_ID",
    "salesforce_instance": "CONTACTS_SALESFORCE_INSTANCE",
    "properties_file": "CONTACTS_PROPERTIES_FILE",
}


def workspace_from_env() -> dict[str, object]:
    """ContactsSettings fields given in the environment (see `WORKSPACE_ENV`)."""
    out: dict[str, object] = {}
    for name, var in WORKSPACE_ENV.items():
        value = os.environ.get(var, "").strip()
        if not value:
            continue
        if name.endswith("_id") or name in ("salesforce_instance", "properties_file"):
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
    # What a new interaction from an erased person does: `suppress` (default) drops it like the
    # old ones; `allow_new` lets it start a new contact (docs/privacy.md).
    after_erasure: str = "suppress"
    # Typed custom properties (dedup.properties): a TOML file declaring attribute types; empty = none.
    properties_file: str = ""
    # Publish gates (quality.gates.GateLimits): how far one night may move the published file.
    gate_max_contact_change: float = 0.5
    gate_max_merge_share: float = 0.05
    gate_max_quarantine_share: float = 0.05
    gate_min_baseline_contacts: int = 1000
    # Rows of interactions / contacts the GX format suites sample (whole-table facts use SQL).
    quality_sample_rows: int = 200_000
    # Splink dashboards (comparison viewer, cluster studio) show at most this many proposals.
    report_max_pairs: int = 2_000
    # Nightly exports, GX data docs and Splink reports; empty means `<db>.state/output`.
    output_dir: str = ""
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
    def matching_state_dir(self) -> Path:
        """Last night's scored pairs, fingerprints and tf tables (incremental predict)."""
        return self.layout.state_dir / "matching"

    @property
    def layout(self) -> StateLayout:
        return StateLayout(Path(self.db_path)).ensure()

    @property
    def output(self) -> Path:
        return Path(self.output_dir) if self.output_dir else self.layout.output_dir

    def gate_limits(self) -> GateLimits:
        return GateLimits(
            max_contact_change=self.gate_max_contact_change,
            max_merge_share=self.gate_max_merge_share,
            max_quarantine_share=self.gate_max_quarantine_share,
            min_baseline_contacts=self.gate_min_baseline_contacts,
        )

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
        current = os.environ.get(self.identity_secret_env, "")
        previous = os.environ.get(f"{self.identity_secret_env}_PREVIOUS", "")
        secrets = (current, previous) if previous else ((current,) if current else ())
        until_text = os.environ.get(f"{self.identity_secret_env}_PREVIOUS_UNTIL", "").strip()
        until = None
        if until_text:
            try:
                until = datetime.fromisoformat(until_text.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(
                    f"{self.identity_secret_env}_PREVIOUS_UNTIL is not an ISO date or time: "
                    f"{until_text!r}"
                ) from None
            if until.tzinfo is None:
                until = until.replace(tzinfo=UTC)
        if self.after_erasure not in AFTER_ERASURE_POLICIES:
            raise ValueError(
                f"after_erasure must be one of {', '.join(AFTER_ERASURE_POLICIES)}, "
                f"not {self.after_erasure!r}"
            )
        return EngineConfig(
            identity_secrets=secrets,
            previous_secret_until=until,
            after_erasure=self.after_erasure,
            properties=load_schema(Path(self.properties_file) if self.properties_file else None),
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


class QualityRunner(dg.ConfigurableResource):
    """Where the Great Expectations suites run (quality.gx_worker).

    Dagster sets resources up when a run starts, so a run with quality checks starts importing GX
    in a worker process right away; the checks at its end find it loaded (about 8 s saved a run).
    """

    separate_process: bool = True

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if self.separate_process:
            gx_worker.warm()

    def run(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)`: a function of quality.gx_suites over frames, in the worker if enabled."""
        return gx_worker.run(fn, *args) if self.separate_process else fn(*args)
