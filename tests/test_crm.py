"""The CRM step as a pure function on inline frames: linking order, sync states, audience rules."""

from __future__ import annotations

import polars as pl
import pytest

from dedup.ingest.adapters.crm import CRM_RECORD_SCHEMA
from dedup.snapshot.crm_links import CrmAudienceRule, CrmConfig, link_crm, with_crm_columns

CONTACT_SCHEMA = {
    "contact_id": pl.String,
    "emails": pl.List(pl.String),
    "phones": pl.List(pl.String),
    "is_lead": pl.Boolean,
    "audience": pl.String,
    "plan_audience": pl.String,
}


def contacts(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=CONTACT_SCHEMA, orient="row")


def records(*rows: dict) -> pl.DataFrame:
    base = {c: None for c in CRM_RECORD_SCHEMA}
    full = [
        {**base, "object_type": "contact", "source": r.get("system"), "row": i + 2, **r}
        for i, r in enumerate(rows)
    ]
    return pl.DataFrame(full, schema=CRM_RECORD_SCHEMA)


def test_email_link_wins_over_phone_and_a_record_never_creates_a_contact() -> None:
    c = contacts(
        ("c_a", ["ann@example.com"], [], True, "public", None),
        ("c_b", [], ["+14156923810"], True, "public", None),
    )
    r = records(
        {"system": "hubspot", "record_id": "1", "email": "Ann@Example.com", "phone": "4156923810"},
        {"system": "hubspot", "record_id": "2", "email": "nobody@example.com"},
    )
    out = link_crm(c, r, CrmConfig())
    assert out.links.select("contact_id", "record_id", "matched_on").rows() == [
        ("c_a", "1", "email")
    ]
    assert out.unmatched_records == 1
    assert dict(out.status.select("contact_id", "crm_sync_status").iter_rows()) == {
        "c_a": "synced",
        "c_b": "pending",
    }


@pytest.mark.parametrize(
    ("record_email", "status", "error"),
    [
        # Linked by phone, but the CRM holds another person's email: not safe to sync.
        (
            "someone.else@example.com",
            "error",
            "conflicting emails: salesforce record 003X has someone.else@example.com, "
            "the contact has ann@example.com",
        ),
        ("ann at example", "error", "invalid email in salesforce record 003X: 'ann at example'"),
        # No email in the CRM record: the phone link is fine.
        (None, "synced", None),
    ],
)
def test_phone_links_with_invalid_or_conflicting_email_are_errors(
    record_email: str | None, status: str, error: str | None
) -> None:
    c = contacts(("c_a", ["ann@example.com"], ["+14156923810"], True, "public", None))
    r = records(
        {
            "system": "salesforce",
            "record_id": "003X",
            "email": record_email,
            "phone": "+1 415 692 3810",
        }
    )
    out = link_crm(c, r, CrmConfig())
    assert out.status.select("crm_sync_status", "crm_sync_error").rows() == [(status, error)]


def test_anonymous_contacts_are_not_synced() -> None:
    out = link_crm(contacts(("c_x", [], [], False, "public", None)), records(), CrmConfig())
    assert out.status.get_column("crm_sync_status").to_list() == ["not_synced"]
    assert out.links.height == 0 and out.tier_mismatches.height == 0


def test_audience_rules_plan_wins_and_mismatch_is_reported() -> None:
    c = contacts(
        ("c_plan", ["p@example.com"], [], True, "enterprise", "enterprise"),
        ("c_none", ["n@example.com"], [], True, "public", None),
        ("c_same", ["s@example.com"], [], True, "paid_users", "paid_users"),
    )
    stage = '{{"lifecyclestage":"{}"}}'
    r = records(
        {"system": "hubspot", "record_id": "1", "email": "p@example.com",
         "attributes": stage.format("Customer")},
        {"system": "hubspot", "record_id": "2", "email": "n@example.com",
         "attributes": stage.format("customer")},
        {"system": "hubspot", "record_id": "3", "email": "s@example.com",
         "attributes": stage.format("Customer")},
    )  # fmt: skip
    out = link_crm(c, r, CrmConfig())
    assert dict(out.status.select("contact_id", "audience").iter_rows()) == {
        "c_plan": "enterprise",  # identify()'s plan wins...
        "c_none": "paid_users",  # ...and the CRM fills in where there is no plan
        "c_same": "paid_users",
    }
    assert out.tier_mismatches.select("contact_id", "plan_audience", "crm_audience").rows() == [
        ("c_plan", "enterprise", "paid_users")
    ]
    # A workspace's own table replaces the defaults.
    custom = CrmConfig(
        audience_rules=(CrmAudienceRule("hubspot", "Lifecycle Stage", "customer", "enterprise"),)
    )
    assert link_crm(c, r, custom).tier_mismatches.get_column("contact_id").to_list() == ["c_same"]


def test_with_crm_columns_replaces_status_and_audience_in_place() -> None:
    built = pl.DataFrame(
        {"contact_id": ["c1"], "audience": ["public"], "crm_sync_status": [None]},
        schema={"contact_id": pl.String, "audience": pl.String, "crm_sync_status": pl.String},
    )
    status = pl.DataFrame(
        {
            "contact_id": ["c1"],
            "crm_sync_status": ["synced"],
            "crm_sync_error": [None],
            "crm_audience": ["growth"],
            "audience": ["growth"],
        },
        schema={k: pl.String for k in ("contact_id", "crm_sync_status", "crm_sync_error",
                                      "crm_audience", "audience")},
    )  # fmt: skip
    out = with_crm_columns(built, status)
    assert out.columns == [
        "contact_id",
        "audience",
        "crm_sync_status",
        "crm_sync_error",
        "crm_audience",
    ]
    assert out.row(0) == ("c1", "growth", "synced", None, "growth")


def test_settings_build_typed_crm_and_source_configs() -> None:
    from assets.resources import ContactsSettings, CrmAudienceRuleConfig

    settings = ContactsSettings(
        exports_dir="x",
        staff_domains=["acme.io"],
        hubspot_portal_id="42",
        crm_audience_rules=[
            CrmAudienceRuleConfig(
                system="hubspot", field="Lifecycle Stage", value="opportunity", audience="growth"
            )
        ],
    )
    crm = settings.crm_config()
    assert crm.audience_rules == (
        CrmAudienceRule("hubspot", "Lifecycle Stage", "opportunity", "growth"),
    )
    assert crm.hubspot_portal_id == "42"
    assert settings.source_config().is_staff_email("Ingrid@ACME.io")
    assert not settings.source_config().is_staff_email("ingrid@acme.io.example.com")
    # No rules given: the documented defaults.
    assert ContactsSettings(exports_dir="x").crm_config().audience_rules[0].value == "customer"


def test_admin_edits_win_over_the_crm_step() -> None:
    schema = {
        "contact_id": pl.String,
        "audience": pl.String,
        "plan_audience": pl.String,
        "crm_sync_status": pl.String,
    }
    built = pl.DataFrame(
        [
            ("c_edit", "growth", None, None),  # an admin set the audience: not the plan's
            ("c_plan", "public", None, None),  # no plan, no edit: the CRM's audience applies
            ("c_resync", "public", None, "pending"),  # an admin forced a CRM re-sync
        ],
        schema=schema,
        orient="row",
    )
    status = pl.DataFrame(
        [(c, "synced", None, "paid_users", "paid_users") for c in ("c_edit", "c_plan", "c_resync")],
        schema={k: pl.String for k in ("contact_id", "crm_sync_status", "crm_sync_error",
                                      "crm_audience", "audience")},
        orient="row",
    )  # fmt: skip
    out = with_crm_columns(built, status, "public")
    assert out.select("contact_id", "audience", "crm_sync_status").rows() == [
        ("c_edit", "growth", "synced"),
        ("c_plan", "paid_users", "synced"),
        ("c_resync", "paid_users", "pending"),
    ]
