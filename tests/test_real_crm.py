"""CRM exports as they come (issue 21): real and documented export shapes, non-person exports
quarantined, CRM hub keys linking nobody, and a CRM record's email + phone joining one person."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from dedup.identity.automerge import EVIDENCE_SCHEMA, auto_merge
from dedup.identity.crm_evidence import crm_evidence
from dedup.ingest.adapters.crm import CRM_RECORD_SCHEMA, read_hubspot, read_salesforce
from dedup.ingest.readers import FileOrigin, ReadResult
from dedup.snapshot.crm_links import CrmConfig, link_crm
from tests.conftest import query, rec, write_jsonl

REAL = Path(__file__).parent / "data" / "real"
D1 = "2026-11-01"


def read(rel: str) -> ReadResult:
    system = rel.split("/")[0]
    reader = read_hubspot if system == "hubspot" else read_salesforce
    return reader(REAL / rel, FileOrigin(system, D1, rel))


# file, records read, object types, the file-level quarantine reason (None: nothing quarantined)
CORPUS = [
    # Fivetran's HubSpot contact table (property_ prefixes, `id`): read.
    ("hubspot/fivetran-contact_data.csv", 22, {"contact"}, None),
    # Fivetran's HubSpot company table and HubSpot's companies export: not people.
    ("hubspot/fivetran-company_data.csv", 0, set(), "(a companies export)"),
    ("hubspot/constructed-companies-export.csv", 0, set(), "(a companies export)"),
    # Contacts exported with their associated company (`Record ID - Contact`, ...): read.
    ("hubspot/constructed-contacts-with-company.csv", 3, {"contact"}, None),
    ("hubspot/constructed-contacts-associated-ids.csv", 2, {"contact"}, None),
    # Fivetran's Salesforce tables: Contact (003) and Lead (00Q) read; Opportunity and Account
    # (which have an `id` column too) quarantined, the object named from the id prefix.
    ("salesforce/fivetran-sf_contact_data.csv", 4, {"contact"}, None),
    ("salesforce/fivetran-sf_lead_data.csv", 1, {"lead"}, None),
    (
        "salesforce/fivetran-sf_opportunity_data.csv",
        0,
        set(),
        "(an Opportunity export: ids start with 006)",
    ),
    (
        "salesforce/fivetran-sf_account_data.csv",
        0,
        set(),
        "(an Account export: ids start with 001)",
    ),
    (
        "salesforce/constructed-dataloader-opportunity.csv",
        0,
        set(),
        "(an Opportunity export: ids start with 006)",
    ),
]


@pytest.mark.parametrize(("rel", "n", "types", "reason"), CORPUS)
def test_real_crm_exports_read_or_quarantined_with_a_reason(
    rel: str, n: int, types: set[str], reason: str | None
) -> None:
    out = read(rel)
    assert out.records.height == n
    assert set(out.records.get_column("object_type")) == types
    if reason is None:
        assert out.quarantine.height == 0
    else:
        assert out.quarantine.select("row").to_series().to_list() == [None]
        assert reason in out.quarantine.get_column("reason")[0]
        assert "no Email, First Name or Last Name column" in out.quarantine.get_column("reason")[0]


def test_hubspot_association_columns_keep_the_contact_fields_apart() -> None:
    with_company = read("hubspot/constructed-contacts-with-company.csv").records.row(0, named=True)
    # `Phone Number_1` is the company's switchboard; the contact's own number is `Phone Number`.
    assert (with_company["record_id"], with_company["phone"]) == ("701", "+1 212 555 0147")
    assert with_company["company"] == "Northwind Traders"
    assert json.loads(with_company["attributes"])["recordidcompany"] == "9001"
    leila = read("hubspot/constructed-contacts-associated-ids.csv").records.row(0, named=True)
    assert (leila["record_id"], leila["phone"], leila["company"]) == (
        "811",
        "+33 6 98 76 54 32",
        "Atlas Freight",
    )
    assert json.loads(leila["attributes"])["associateddealids"] == "31001;31007"


def test_a_salesforce_row_of_another_object_is_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "Contact.csv"
    path.write_text(
        "Id,FirstName,LastName,Email\n"
        "0035g00000XyZ12AAB,Priya,Sharma,priya@example.in\n"
        "0015g00000XyZ01AAB,,Northwind Traders,\n"
    )
    out = read_salesforce(path, FileOrigin("salesforce", D1, "salesforce/x/Contact.csv"))
    assert out.records.get_column("record_id").to_list() == ["0035g00000XyZ12AAB"]
    assert out.quarantine.select("row", "reason").rows() == [
        (3, "salesforce record 0015g00000XyZ01AAB is a(n) Account, not a Contact or Lead")
    ]


# --- auto-merge with CRM evidence (pure) ----------------------------------------------------


def interactions(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "interaction_id": i,
                "email_norm": e,
                "verified_user_id": None,
                "session_id": s,
                "phone_e164": p,
            }
            for i, e, p, s in rows
        ],  # fmt: skip
        schema={
            c: pl.String
            for c in (
                "interaction_id",
                "email_norm",
                "verified_user_id",
                "session_id",
                "phone_e164",
            )
        },
    )


def evidence(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=EVIDENCE_SCHEMA, orient="row")


def clusters(result) -> dict[str, str]:
    return dict(result.clusters.iter_rows())


def test_a_crm_record_joins_a_persons_email_side_and_phone_side() -> None:
    frame = interactions(
        ("w1", "ann@example.com", None, "s1"),  # widget
        ("e1", "ann@example.com", None, None),  # email
        ("wa1", None, "+14156923810", None),  # WhatsApp
        ("sms1", None, "+14156923810", None),  # SMS
    )
    alone = auto_merge(frame)
    assert len(set(clusters(alone).values())) == 2  # the old behaviour: two contacts
    joined = auto_merge(
        frame, evidence=evidence(("hubspot:51", "ann@example.com", "+14156923810", "ann lee"))
    )
    assert set(clusters(joined)) == {"w1", "e1", "wa1", "sms1"}  # evidence is no contact
    assert set(clusters(joined).values()) == {"e1"}
    assert joined.ambiguous_keys.height == 0


def test_a_switchboard_phone_in_several_crm_records_links_nobody_and_is_reported() -> None:
    frame = interactions(
        ("sms1", None, "+12125550100", None),  # someone texts from the switchboard
        ("w1", "amara@northwind.example.com", None, None),
        ("w2", "tomas@northwind.example.com", None, None),
    )
    people = evidence(
        ("salesforce:003A", "amara@northwind.example.com", "+12125550100", "amara okafor"),
        ("salesforce:003B", "tomas@northwind.example.com", "+12125550100", "tomas ibarra"),
        ("salesforce:003C", "li@northwind.example.com", "+12125550100", "li wei"),
        ("salesforce:003D", "sam@northwind.example.com", "+12125550100", "sam roe"),
    )
    out = auto_merge(frame, evidence=people)
    assert len(set(clusters(out).values())) == 3
    assert out.ambiguous_keys.select("key_type", "key_value", "n_linked").rows() == [
        ("phone", "+12125550100", 4)
    ]
    # Without emails, the names still tell four people apart.
    no_emails = people.with_columns(pl.lit(None, pl.String).alias("email_norm"))
    out = auto_merge(frame, evidence=no_emails)
    assert out.ambiguous_keys.select("key_value", "reason").rows() == [
        ("+12125550100", "in 4 CRM records of different people (limit 1)")
    ]


def test_one_person_in_two_crms_is_not_a_hub() -> None:
    frame = interactions(("sms1", None, "+447911123456", None))
    same = evidence(
        ("hubspot:7", None, "+447911123456", "priya sharma"),
        ("salesforce:003X", "priya@example.in", "+447911123456", "priya sharma"),
    )
    out = auto_merge(frame, evidence=same)
    assert out.ambiguous_keys.height == 0


def test_crm_evidence_uses_both_numbers_normalized_like_interactions() -> None:
    records = pl.DataFrame(
        [
            {
                "system": "salesforce",
                "record_id": "003X",
                "name": "Priya Sharma",
                "email": "Priya.Sharma+crm@Example.in",
                "phone": "(212) 555-0100",
                "mobile_phone": "+44 7911 123456",
            },
            {"system": "hubspot", "record_id": "9", "name": "No Phone", "email": "x@example.com"},
        ],  # fmt: skip
        schema={
            c: CRM_RECORD_SCHEMA[c]
            for c in ("system", "record_id", "name", "email", "phone", "mobile_phone")
        },
    )
    assert crm_evidence(records, "US").rows() == [
        ("salesforce:003X", "priya.sharma@example.in", "+12125550100", "priya sharma"),
        ("salesforce:003X", "priya.sharma@example.in", "+447911123456", "priya sharma"),
    ]


def test_link_crm_never_links_by_an_ambiguous_key() -> None:
    contacts = pl.DataFrame(
        [("c_texter", [], ["+12125550100"], True, "public", None)],
        schema={
            "contact_id": pl.String,
            "emails": pl.List(pl.String),
            "phones": pl.List(pl.String),
            "is_lead": pl.Boolean,
            "audience": pl.String,
            "plan_audience": pl.String,
        },  # fmt: skip
        orient="row",
    )
    base = {c: None for c in CRM_RECORD_SCHEMA}
    records = pl.DataFrame(
        [
            {
                **base,
                "system": "salesforce",
                "record_id": f"003{i}",
                "object_type": "contact",
                "phone": "+1 212 555 0100",
            }
            for i in range(4)
        ],  # fmt: skip
        schema=CRM_RECORD_SCHEMA,
    )
    assert link_crm(contacts, records, CrmConfig()).links.height == 4  # the old behaviour
    hub = pl.DataFrame({"key_type": ["phone"], "key_value": ["+12125550100"]})
    out = link_crm(contacts, records, CrmConfig(), hub)
    assert out.links.height == 0
    assert out.unmatched_records == 4
    assert out.status.get_column("crm_sync_status").to_list() == ["pending"]


# --- end to end ---------------------------------------------------------------------------


def _crm_file(exports: Path, system: str, name: str, text: str) -> None:
    folder = exports / system / D1
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def test_pipeline_joins_email_and_phone_sides_through_hubspot_and_ignores_a_switchboard(
    exports: Path, db: Path, run
) -> None:
    # Ann: widget + email on her address, SMS from her mobile; only HubSpot knows both.
    write_jsonl(
        exports,
        D1,
        "widget.jsonl",
        [
            rec("w1", email="ann.lee@example.com", name="Ann Lee"),
            rec("e1", "2026-11-01T11:00:00Z", channel="email", email="ann.lee@example.com"),
            rec("sms1", "2026-11-01T12:00:00Z", channel="sms", phone="+1 415 692 3810"),
            # Someone texts from Northwind's switchboard, which Salesforce has on 4 people.
            rec("sms2", "2026-11-01T13:00:00Z", channel="sms", phone="+1 212 555 0100"),
        ],
    )
    _crm_file(
        exports,
        "hubspot",
        "hubspot-crm-exports-all-contacts.csv",
        "Record ID - Contact,First Name,Last Name,Email,Phone Number,Associated Company IDs\n"
        "51,Ann,Lee,ann.lee@example.com,+1 (415) 692-3810,9001\n",
    )
    _crm_file(
        exports,
        "salesforce",
        "Contact.csv",
        "Id,FirstName,LastName,Email,Phone\n"
        + "".join(
            f"0035g0000000{i}AAB,{first},Okafor,{first.lower()}@northwind.example.com,"
            "+1 212 555 0100\n"
            for i, first in enumerate(("Amara", "Tomas", "Li", "Sam"))
        ),
    )
    shutil.copy(
        REAL / "salesforce/constructed-dataloader-opportunity.csv",
        exports / "salesforce" / D1 / "Opportunity.csv",
    )
    run()
    owner = dict(query(db, "SELECT interaction_id, contact_id FROM interactions").iter_rows())
    assert owner["w1"] == owner["e1"] == owner["sms1"] != owner["sms2"]
    links = query(db, "SELECT contact_id, system, record_id, matched_on FROM crm_links").rows()
    assert links == [(owner["w1"], "hubspot", "51", "email")]
    hubs = query(db, "SELECT key_type, key_value, n_linked FROM ambiguous_keys").rows()
    assert hubs == [("phone", "+12125550100", 4)]
    texter = query(db, f"SELECT crm_sync_status FROM contacts WHERE contact_id = '{owner['sms2']}'")
    assert texter.item() == "pending"
    quarantined = query(db, "SELECT source, file, reason FROM quarantine").rows()
    assert [(s, f.rsplit("/", 1)[-1]) for s, f, _ in quarantined] == [
        ("salesforce", "Opportunity.csv")
    ]
    assert "Opportunity export" in quarantined[0][2]
