"""The one resource every asset shares: where exports and state live, and engine settings."""

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeVar

import dagster as dg
from pydantic import PrivateAttr

from dedup import run_lock
from dedup.admin.privacy import AFTER_ERASURE_POLICIES
from dedup.config import EngineConfig, HubLimits
from dedup.ingest.adapters.base import SourceConfig
from dedup.layout import StateLayout
from dedup.properties import load_schema
from dedup.snapshot.crm_links import DEFAULT_CRM_AUDIENCE_RULES, CrmAudienceRule, CrmConfig
from quality import gx_worker
from quality.gates import GateLimits

T = TypeVar("T")

# Every setting a workspace may give in its environment, under the same name for both entry
# points (the `contacts` CLI and the code location). A `ContactsSettings` field left empty reads
# its variable when the run starts (`ContactsSettings.setting`): a Dagster run whose launchpad
# overrides one field of the resource (run config replaces the resource's whole config) still
# gets the others from the environment, and nothing falls back to a default path silently.
# Lists are comma-separated.
SETTINGS_ENV = {
    "exports_dir": "CONTACTS_EXPORTS_DIR",
    "db_path": "CONTACTS_DB",
    "default_region": "CONTACTS_DEFAULT_REGION",
    # Workspace facts for the native adapters and the CRM step.
    "staff_domains": "CONTACTS_STAFF_DOMAINS",
    "workspace_emails": "CONTACTS_WORKSPACE_EMAILS",
    "business_phone_numbers": "CONTACTS_BUSINESS_NUMBERS",
    "hubspot_portal_id": "CONTACTS_HUBSPOT_PORTAL_ID",
    "salesforce_instance": "CONTACTS_SALESFORCE_INSTANCE",
    "properties_file": "CONTACTS_PROPERTIES_FILE",
    "engine": "CONTACTS_ENGINE",
}
LIST_SETTINGS = frozenset({"staff_domains", "workspace_emails", "business_phone_numbers"})
DEFAULT_REGION = "US"

# A workspace whose product never calls `identify()` with a hash sets this to `off`: then a
# missing identity secret is expected and no run warns about it (docs/operations.md).
VERIFICATION_ENV = "CONTACTS_IDENTITY_VERIFICATION"


# The run tag a Dagster run carries when it ran without the identity secret (the runs list shows it).
VERIFICATION_TAG = "contacts/identity_verification"


class SettingsError(ValueError):
    """A setting that is missing or wrong; the message says which variable or field to set."""


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
    Fields named in `SETTINGS_ENV` read their variable when left empty.

    In a Dagster run the resource holds the run lock (dedup.run_lock) from the run's start to its
    end, as `contacts run` does, and warns when identities cannot be verified.
    """

    # Empty: CONTACTS_EXPORTS_DIR, CONTACTS_DB, CONTACTS_DEFAULT_REGION (then US).
    exports_dir: str = ""
    db_path: str = ""
    default_region: str = ""
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
    # Where the heavy stages run: `local` (this process) or `spark` (dedup.spark, the session
    # from CONTACTS_SPARK_CONF / CONTACTS_SPARK_MASTER; docs/scale.md). Empty: CONTACTS_ENGINE,
    # then local.
    engine: Literal["", "local", "spark"] = ""
    _held: bool = PrivateAttr(default=False)

    def setting(self, name: str) -> str | list[str]:
        """A field's value, or when empty its variable in `SETTINGS_ENV` (lists comma-separated)."""
        given = getattr(self, name)
        if given:
            return given
        raw = os.environ.get(SETTINGS_ENV[name], "").strip()
        if name in LIST_SETTINGS:
            return [v.strip() for v in raw.split(",") if v.strip()]
        return raw

    def _required(self, name: str, what: str) -> str:
        value = self.setting(name)
        if not value:
            raise SettingsError(
                f"no {what}: set {SETTINGS_ENV[name]} or the settings resource's {name}"
            )
        return str(value)

    @property
    def exports(self) -> Path:
        return Path(self._required("exports_dir", "exports folder"))

    @property
    def db(self) -> Path:
        """The published file (never a silent `./contacts.duckdb`)."""
        return Path(self._required("db_path", "published file"))

    @property
    def backend(self) -> Literal["local", "spark"]:
        """`engine`, or CONTACTS_ENGINE when empty; `local` when neither says."""
        value = str(self.setting("engine") or "local").strip().lower()
        if value not in ("local", "spark"):
            raise SettingsError(f"CONTACTS_ENGINE must be local or spark, not {value!r}")
        return value  # type: ignore[return-value]

    @property
    def region(self) -> str:
        return str(self.setting("default_region") or DEFAULT_REGION)

    def verification_state(self) -> str:
        """`on`, `off` (said so by the workspace) or the warning: for run metadata."""
        if os.environ.get(self.identity_secret_env, ""):
            return "on"
        return self.verification_warning() or f"off ({VERIFICATION_ENV}=off)"

    def verification_warning(self) -> str | None:
        """The line every run prints when no identity can be verified, unless the workspace
        said it has no verification (`CONTACTS_IDENTITY_VERIFICATION=off`)."""
        if os.environ.get(self.identity_secret_env, ""):
            return None
        if os.environ.get(VERIFICATION_ENV, "").strip().lower() == "off":
            return None
        return (
            f"{self.identity_secret_env} is not set: no user id is verified tonight, and "
            "contacts that only a verified id joins stay apart (set the secret, or "
            f"{VERIFICATION_ENV}=off if this workspace does not verify identities)"
        )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if context.run is None:  # a sensor or schedule evaluating: no run, no lock
            return
        run_lock.acquire(self.db)
        self._held = True
        warning = self.verification_warning()
        if warning:
            if context.log is not None:
                context.log.warning(warning)
            if context.instance is not None:
                context.instance.add_run_tags(
                    context.run.run_id, {VERIFICATION_TAG: "no secret: nothing verified"}
                )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._held:
            self._held = False
            run_lock.release(self.db)

    @property
    def model_path(self) -> Path:
        return self.layout.state_dir / "model" / "splink_model.json"

    @property
    def matching_state_dir(self) -> Path:
        """Last night's scored pairs, fingerprints and tf tables (incremental predict)."""
        return self.layout.state_dir / "matching"

    @property
    def layout(self) -> StateLayout:
        return StateLayout(self.db).ensure()

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
            staff_domains=tuple(self.setting("staff_domains")),
            workspace_emails=tuple(self.setting("workspace_emails")),
            business_phone_numbers=tuple(self.setting("business_phone_numbers")),
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
            hubspot_portal_id=str(self.setting("hubspot_portal_id")),
            salesforce_instance=str(self.setting("salesforce_instance")),
            audience_rules=rules,
            default_region=self.region,
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
        properties = str(self.setting("properties_file"))
        return EngineConfig(
            identity_secrets=secrets,
            previous_secret_until=until,
            after_erasure=self.after_erasure,
            properties=load_schema(Path(properties) if properties else None),
            default_region=self.region,
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
    The run's end stops the worker it started.
    """

    separate_process: bool = True
    _started: bool = PrivateAttr(default=False)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if self.separate_process:
            self._started = gx_worker.warm()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        # The worker this run started ends with it: an idle one kept a run launched from the
        # Dagster UI alive for good (quality.gx_worker). One started by the nightly job (before
        # its ingest) is the nightly job's to stop.
        if self._started:
            self._started = False
            gx_worker.stop()

    def run(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)`: a function of quality.gx_suites over frames, in the worker if enabled."""
        return gx_worker.run(fn, *args) if self.separate_process else fn(*args)

    def submit(self, fn: Callable[..., T], *args: object) -> gx_worker.Pending[T]:
        """`fn(*args)` started in the worker if enabled (else run inline when its result is
        asked for); the caller works on meanwhile."""
        if self.separate_process:
            return gx_worker.submit(fn, *args)
        return gx_worker.Pending.inline(fn, *args)
