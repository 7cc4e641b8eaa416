"""Link contacts to CRM records; decide each contact's CRM sync state and CRM audience.

A pure step over two frames (the built contacts and the staged CRM records), run after contacts
are built and before the snapshot is written. CRM records never create interactions or contacts:

- a record links the contact whose emails include the record's normalized email; a record whose
  email matches no contact links by its phones (E.164, `Phone` and `MobilePhone`) instead;
- a key auto-merge found ambiguous (`ambiguous_keys`: a switchboard phone several CRM people or
  several contacts share, `test@test.com`) links nobody, as it joins nobody;
- `crm_sync_status`: `error` when a linked record is invalid for the contact (its email is not an
  address, or it was linked by phone and carries an email the contact never used: conflicting
  emails), `synced` when linked, `pending` for a lead (email or phone) not in the CRM yet,
  `not_synced` for an anonymous contact;
- audience: a record's field values map to audience tags through `CrmConfig.audience_rules`
  (first matching rule wins); the contact's audience stays the one of its `identify()` plan when it
  has one, else takes the CRM's. Where both exist and differ, a `tier_mismatches` row says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from dedup.identity.normalize import email_address, email_norm, phone_e164
from dedup.ingest.adapters.base import header_key


@dataclass(frozen=True)
class CrmAudienceRule:
    """`system`'s column `field` (any spelling: `Lifecycle Stage` = `lifecyclestage`) having
    `value` (case and punctuation ignored) means audience `audience`."""

    system: str
    field: str
    value: str
    audience: str


DEFAULT_CRM_AUDIENCE_RULES: tuple[CrmAudienceRule, ...] = (
    CrmAudienceRule("hubspot", "Lifecycle Stage", "customer", "paid_users"),
    CrmAudienceRule("hubspot", "Lifecycle Stage", "evangelist", "paid_users"),
    CrmAudienceRule("salesforce", "Plan__c", "enterprise", "enterprise"),
    CrmAudienceRule("salesforce", "Plan__c", "growth", "growth"),
    CrmAudienceRule("salesforce", "Plan__c", "paid", "paid_users"),
    CrmAudienceRule("salesforce", "Plan__c", "free", "public"),
    CrmAudienceRule("salesforce", "Type", "Customer - Direct", "paid_users"),
    CrmAudienceRule("salesforce", "Type", "Customer - Channel", "paid_users"),
)


@dataclass(frozen=True)
class CrmConfig:
    """Args:
    hubspot_portal_id: HubSpot account (portal) id for record links; empty = no URL.
    salesforce_instance: Salesforce My Domain name (`acme` for acme.lightning.force.com).
    audience_rules: CRM field values → audience tags, first match wins.
    default_region: libphonenumber region for CRM phones without a country code.
    """

    hubspot_portal_id: str = ""
    salesforce_instance: str = ""
    audience_rules: tuple[CrmAudienceRule, ...] = field(
        default_factory=lambda: DEFAULT_CRM_AUDIENCE_RULES
    )
    default_region: str = "US"


CRM_LINKS_SCHEMA: dict[str, pl.DataType] = {
    "contact_id": pl.String(),
    "system": pl.String(),
    "record_id": pl.String(),
    "object_type": pl.String(),
    "url": pl.String(),
    "matched_on": pl.String(),  # email / phone
    "crm_email": pl.String(),
    "crm_phone": pl.String(),
    "crm_audience": pl.String(),
    "issue": pl.String(),  # why the record is invalid for the contact; null when fine
}
CRM_STATUS_SCHEMA: dict[str, pl.DataType] = {
    "contact_id": pl.String(),
    "crm_sync_status": pl.String(),
    "crm_sync_error": pl.String(),
    "crm_audience": pl.String(),
    "audience": pl.String(),
}
TIER_MISMATCH_SCHEMA: dict[str, pl.DataType] = {
    "contact_id": pl.String(),
    "plan_audience": pl.String(),
    "crm_audience": pl.String(),
    "system": pl.String(),
    "record_id": pl.String(),
}


@dataclass
class CrmResult:
    links: pl.DataFrame  # CRM_LINKS_SCHEMA, published as `crm_links`
    status: pl.DataFrame  # CRM_STATUS_SCHEMA, one row per contact
    tier_mismatches: pl.DataFrame  # TIER_MISMATCH_SCHEMA
    unmatched_records: int  # CRM records that match no contact


def _norm_value(expr: pl.Expr) -> pl.Expr:
    return expr.str.to_lowercase().str.replace_all(r"[^\p{L}\p{N}]", "")


def record_url(config: CrmConfig) -> pl.Expr:
    hubspot = pl.format(
        "https://app.hubspot.com/contacts/{}/record/0-1/{}",
        pl.lit(config.hubspot_portal_id),
        pl.col("record_id"),
    )
    salesforce = pl.format(
        "https://{}.lightning.force.com/lightning/r/{}/{}/view",
        pl.lit(config.salesforce_instance),
        pl.when(pl.col("object_type") == "lead").then(pl.lit("Lead")).otherwise(pl.lit("Contact")),
        pl.col("record_id"),
    )
    return (
        pl.when((pl.col("system") == "hubspot") & pl.lit(bool(config.hubspot_portal_id)))
        .then(hubspot)
        .when((pl.col("system") == "salesforce") & pl.lit(bool(config.salesforce_instance)))
        .then(salesforce)
        .otherwise(pl.lit(None, pl.String))
    )


def crm_audience(rules: tuple[CrmAudienceRule, ...]) -> pl.Expr:
    """Audience of a CRM record from its `attributes` (keyed by normalized column name)."""
    out = pl.lit(None, pl.String)
    for rule in reversed(rules):
        value = pl.col("attributes").str.json_path_match(f"$.{header_key(rule.field)}")
        hit = (pl.col("system") == rule.system) & (
            _norm_value(value) == _norm_value(pl.lit(rule.value))
        )
        out = pl.when(hit.fill_null(False)).then(pl.lit(rule.audience)).otherwise(out)
    return out


def _hub_values(ambiguous: pl.DataFrame | None, key_type: str) -> pl.Series:
    if ambiguous is None or ambiguous.height == 0:
        return pl.Series([], dtype=pl.String)
    return ambiguous.filter(pl.col("key_type") == key_type).get_column("key_value")


def _record_phones(recs: pl.DataFrame, region: str) -> pl.DataFrame:
    """(system, record_id, phone_e164) for each of a record's numbers, `Phone` first."""
    numbers = (
        recs.select("system", "record_id", pl.concat_list("phone", "mobile_phone").alias("_n"))
        .explode("_n")
        .filter(pl.col("_n").is_not_null())
    )
    return (
        numbers.with_columns(phone_e164(numbers.get_column("_n"), region).alias("phone_e164"))
        .drop("_n")
        .filter(pl.col("phone_e164").is_not_null())
        .unique(maintain_order=True)
    )


def _matches(
    contacts: pl.DataFrame, recs: pl.DataFrame, config: CrmConfig, ambiguous: pl.DataFrame | None
) -> pl.DataFrame:
    """Record → contact matches: by email first, by phone for records no email matched.

    An ambiguous key (a switchboard, a shared inbox) links nobody, as in auto-merge.
    """
    by_email = contacts.select("contact_id", pl.col("emails").alias("email_norm")).explode(
        "email_norm"
    )
    by_phone = contacts.select("contact_id", pl.col("phones").alias("phone_e164")).explode(
        "phone_e164"
    )
    email_links = recs.filter(
        pl.col("email_norm").is_not_null()
        & ~pl.col("email_norm").is_in(_hub_values(ambiguous, "email").implode())
    ).join(by_email, on="email_norm", how="inner")
    numbers = _record_phones(recs, config.default_region)
    phone_links = (
        recs.join(email_links.select("system", "record_id"), on=["system", "record_id"], how="anti")
        .join(
            numbers.filter(~pl.col("phone_e164").is_in(_hub_values(ambiguous, "phone").implode())),
            on=["system", "record_id"],
        )
        .join(by_phone, on="phone_e164", how="inner")
        .unique(["system", "record_id", "contact_id"], keep="first", maintain_order=True)
    )
    # An email link shows the record's first number.
    email_links = email_links.join(
        numbers.unique(["system", "record_id"], keep="first", maintain_order=True),
        on=["system", "record_id"],
        how="left",
    )
    return pl.concat(
        [
            email_links.with_columns(pl.lit("email").alias("matched_on")),
            phone_links.with_columns(pl.lit("phone").alias("matched_on")),
        ],
        how="diagonal",
    )


def _link_issue() -> pl.Expr:
    """Why a link needs a person's eye (null: none): a broken email, or two emails that differ."""
    invalid_email = pl.col("email").is_not_null() & pl.col("_addr").is_null()
    conflicting = (
        (pl.col("matched_on") == "phone")
        & pl.col("email_norm").is_not_null()
        & (pl.col("_contact_emails").list.len() > 0)
        & ~pl.col("_contact_emails").list.contains(pl.col("email_norm"))
    )
    return (
        pl.when(invalid_email)
        .then(pl.format("invalid email in {} record {}: '{}'", "system", "record_id", "email"))
        .when(conflicting)
        .then(
            pl.format(
                "conflicting emails: {} record {} has {}, the contact has {}",
                "system",
                "record_id",
                "email_norm",
                pl.col("_contact_emails").list.join(", "),
            )
        )
        .otherwise(pl.lit(None, pl.String))
    )


def _sync_status(contacts: pl.DataFrame, links: pl.DataFrame, config: CrmConfig) -> pl.DataFrame:
    """Per contact: sync status and error, and the audience (plan first, then CRM, then own)."""
    rule_rank = {
        a: i for i, a in reversed(list(enumerate(r.audience for r in config.audience_rules)))
    }
    per_contact = links.group_by("contact_id").agg(
        pl.col("issue").drop_nulls().sort().str.join("; ").alias("_errors"),
        pl.col("crm_audience")
        .drop_nulls()
        .sort_by(
            pl.col("crm_audience").drop_nulls().replace_strict(rule_rank, default=len(rule_rank))
        )
        .first()
        .alias("crm_audience"),
    )
    return (
        contacts.select("contact_id", "is_lead", "audience", "plan_audience")
        .join(per_contact, on="contact_id", how="left")
        .with_columns(
            pl.when(pl.col("_errors").is_not_null() & (pl.col("_errors") != ""))
            .then(pl.lit("error"))
            .when(pl.col("_errors").is_not_null())
            .then(pl.lit("synced"))
            .when(pl.col("is_lead"))
            .then(pl.lit("pending"))
            .otherwise(pl.lit("not_synced"))
            .alias("crm_sync_status"),
            pl.col("_errors").replace("", None).alias("crm_sync_error"),
            pl.coalesce("plan_audience", "crm_audience", "audience").alias("audience"),
        )
        .select(list(CRM_STATUS_SCHEMA))
        .cast(CRM_STATUS_SCHEMA)  # type: ignore[arg-type]
    )


def link_crm(
    contacts: pl.DataFrame,
    records: pl.DataFrame,
    config: CrmConfig,
    ambiguous: pl.DataFrame | None = None,
) -> CrmResult:
    """CRM links, per-contact sync status and audience, and plan/CRM tier mismatches.

    Args:
        contacts: needs `contact_id`, `emails`, `phones` (normalized lists), `is_lead`,
            `audience` and `plan_audience` (audience from the `identify()` plan, null if none).
        records: staged CRM records (`dedup.ingest.adapters.crm.CRM_RECORD_SCHEMA`), one per record id.
        ambiguous: tonight's `ambiguous_keys` (key_type, key_value): keys that link nobody.
    """
    recs = records.with_columns(
        email_address(pl.col("email")).alias("_addr"),
        email_norm(pl.col("email")).alias("email_norm"),
        crm_audience(config.audience_rules).alias("crm_audience"),
        record_url(config).alias("url"),
    )
    contact_emails = contacts.select("contact_id", pl.col("emails").alias("_contact_emails"))
    links = (
        _matches(contacts, recs, config, ambiguous)
        .join(contact_emails, on="contact_id", how="left")
        .with_columns(_link_issue().alias("issue"))
        .select(
            "contact_id",
            "system",
            "record_id",
            "object_type",
            "url",
            "matched_on",
            pl.col("email").alias("crm_email"),
            pl.col("phone_e164").alias("crm_phone"),
            "crm_audience",
            "issue",
        )
        .cast(CRM_LINKS_SCHEMA)  # type: ignore[arg-type]
        .sort("contact_id", "system", "record_id")
    )
    mismatches = (
        links.filter(pl.col("crm_audience").is_not_null())
        .join(contacts.select("contact_id", "plan_audience"), on="contact_id")
        .filter(
            pl.col("plan_audience").is_not_null()
            & (pl.col("plan_audience") != pl.col("crm_audience"))
        )
        .select(list(TIER_MISMATCH_SCHEMA))
        .cast(TIER_MISMATCH_SCHEMA)  # type: ignore[arg-type]
        .sort("contact_id", "system", "record_id")
    )
    linked = links.select("system", "record_id").unique()
    return CrmResult(
        links=links,
        status=_sync_status(contacts, links, config),
        tier_mismatches=mismatches,
        unmatched_records=records.join(linked, on=["system", "record_id"], how="anti").height,
    )


def with_crm_columns(
    contacts: pl.DataFrame, status: pl.DataFrame, default_audience: str = "public"
) -> pl.DataFrame:
    """Contacts with `crm_sync_status` and `audience` from the CRM step, plus *extra*
    `crm_sync_error` and `crm_audience`.

    Admins' edits already laid over `contacts` win: a status set before this step (a forced CRM
    re-sync marks `pending`) is kept, and an audience that differs from what the plan alone gives
    was set by an admin and is kept too.
    """
    joined = contacts.drop("crm_sync_error", "crm_audience", strict=False).join(
        status.select(
            "contact_id",
            pl.col("crm_sync_status").alias("_status"),
            pl.col("audience").alias("_audience"),
            "crm_sync_error",
            "crm_audience",
        ),
        on="contact_id",
        how="left",
        maintain_order="left",
    )
    if "plan_audience" in joined.columns:
        from_plan = pl.coalesce("plan_audience", pl.lit(default_audience))
        edited = pl.col("audience") != from_plan
    else:
        edited = pl.lit(False)
    return joined.with_columns(
        pl.coalesce("crm_sync_status", "_status").alias("crm_sync_status"),
        pl.when(edited.fill_null(False))
        .then(pl.col("audience"))
        .otherwise(pl.coalesce("_audience", "audience"))
        .alias("audience"),
    ).drop("_status", "_audience")
