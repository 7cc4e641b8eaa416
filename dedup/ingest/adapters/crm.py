"""HubSpot and Salesforce contact exports (CSV) → CRM records (not interactions).

HubSpot's contacts export: `Record ID, First Name, Last Name, Email, Phone Number, Company Name,
Lifecycle Stage, Create Date, Last Activity Date` plus any property the user ticked.
Salesforce Contact or Lead export (report or Data Loader): `Id, FirstName, LastName, Email, Phone,
MobilePhone`, `Account Name` (Contact) or `Company` (Lead), `LeadSource`, plus any field.
Columns are matched by name, case and punctuation ignored (`First Name` = `FirstName` =
`FIRSTNAME`), so report and Data Loader exports both read.

HubSpot exports that include associated records name the id `Record ID - Contact` and add
`Associated Company IDs`, `Associated Company`, `Record ID - Company`, ... columns; they read
(the associations stay in `attributes`). Fivetran's HubSpot tables written to CSV prefix every
property with `property_` and call the id `id`; they read too.

Only people are CRM records. A file is a person export when it has an id column and at least one
of `Email`, `First Name`, `Last Name`; anything else (a Companies, Deals or Opportunity export) is
quarantined as a whole, naming the object when its columns or its Salesforce ids say which. In a
Salesforce file the id's key prefix names the object (`003` Contact, `00Q` Lead, `001` Account,
`006` Opportunity, ...): a row of another object is quarantined.

Every column, known or extra, is kept in `attributes` (a JSON object keyed by the normalized
column name) so the CRM audience rules (`dedup.snapshot.crm_links`) can read any field. A row without a record
id, or with the wrong number of fields, is quarantined with its CSV line.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from dedup.ingest.adapters.base import Rejects, dumps, header_key, read_csv_rows, read_file
from dedup.ingest.readers import FileOrigin, ReadResult

CRM_RECORD_SCHEMA: dict[str, pl.DataType] = {
    "system": pl.String(),
    "record_id": pl.String(),
    "object_type": pl.String(),  # contact / lead
    "name": pl.String(),
    "email": pl.String(),
    "phone": pl.String(),
    "mobile_phone": pl.String(),
    "company": pl.String(),
    "attributes": pl.String(),  # every column of the row, keyed by normalized column name
    "source": pl.String(),
    "export_day": pl.String(),
    "file": pl.String(),
    "row": pl.Int64(),
}

# Canonical field → accepted normalized column names, in preference order.
_HUBSPOT = {
    "record_id": ("recordidcontact", "recordid", "contactid", "hsobjectid", "vid"),
    "first_name": ("firstname",),
    "last_name": ("lastname",),
    "email": ("email",),
    "phone": ("phonenumber", "phone"),
    "mobile_phone": ("mobilephonenumber", "mobilephone"),
    "company": ("companyname", "company", "associatedcompany"),
}
_SALESFORCE = {
    "record_id": ("id", "contactid", "leadid"),
    "first_name": ("firstname",),
    "last_name": ("lastname",),
    "email": ("email",),
    "phone": ("phone",),
    "mobile_phone": ("mobilephone", "mobile"),
    "company": ("accountname", "accountaccountname", "company"),
}
# A person export has at least one of these (companies, deals, opportunities have none).
_PERSON_COLUMNS = ("email", "firstname", "lastname")
# Salesforce id key prefixes (the first three characters of every record id).
SALESFORCE_PERSON_PREFIXES = {"003": "Contact", "00Q": "Lead"}
SALESFORCE_OTHER_PREFIXES = {
    "001": "Account",
    "005": "User",
    "006": "Opportunity",
    "00T": "Task",
    "00U": "Event",
    "500": "Case",
    "701": "Campaign",
    "00v": "CampaignMember",
    "800": "Contract",
    "801": "Order",
    "01t": "Product",
}
# Columns that name a non-person object, for the quarantine reason (normalized names).
_OBJECT_COLUMNS = {
    "hubspot": (
        (
            "a companies export",
            ("recordidcompany", "companydomainname", "numberofemployees", "industry"),
        ),
        ("a deals export", ("recordiddeal", "dealname", "dealstage", "pipeline")),
        ("a tickets export", ("recordidticket", "ticketname", "ticketstatus")),
    ),
    "salesforce": (
        (
            "an Opportunity export",
            ("stagename", "opportunityname", "closedate", "forecastcategory"),
        ),
        ("an Account export", ("accountnumber", "billingcity", "numberofemployees", "industry")),
        ("a Case export", ("casenumber",)),
    ),
}


def read_hubspot(path: Path, origin: FileOrigin, config: object = None) -> ReadResult:
    """Read one HubSpot contacts export. Never raises on bad content."""
    return _read_crm(path, origin, "hubspot", _HUBSPOT)


def read_salesforce(path: Path, origin: FileOrigin, config: object = None) -> ReadResult:
    """Read one Salesforce Contact or Lead export. Never raises on bad content."""
    return _read_crm(path, origin, "salesforce", _SALESFORCE)


def empty_crm_records() -> pl.DataFrame:
    return pl.DataFrame(schema=CRM_RECORD_SCHEMA)


def _read_crm(
    path: Path, origin: FileOrigin, system: str, columns: dict[str, tuple[str, ...]]
) -> ReadResult:
    rejects = Rejects(origin)
    if path.suffix.lower() != ".csv":
        rejects.add(None, f"unsupported file type '{path.name}' (expected .csv)", None)
        return ReadResult(empty_crm_records(), rejects.frame())
    data = read_file(path, origin, rejects)
    if data is None:
        return ReadResult(empty_crm_records(), rejects.frame())
    header, rows = read_csv_rows(data, rejects, origin.file)
    keys = _column_keys(header, system)
    index: dict[str, int] = {}
    for k, i in ((k, i) for i, k in enumerate(keys)):
        index.setdefault(k, i)
    if system == "hubspot" and "id" in index and any(h.startswith("property_") for h in header):
        columns = {**columns, "record_id": (*columns["record_id"], "id")}  # Fivetran's table
    pick = {f: next((index[c] for c in names if c in index), None) for f, names in columns.items()}
    problem = _not_a_person_export(system, header, keys, pick, rows)
    if problem:
        rejects.add(None, problem, None)
        return ReadResult(empty_crm_records(), rejects.frame())
    out: dict[str, list] = {c: [] for c in CRM_RECORD_SCHEMA}
    for line, record in rows:

        def get(field: str, record: list[str] = record) -> str | None:
            i = pick[field]
            value = record[i].strip() if i is not None else ""
            return value or None

        record_id = get("record_id")
        if record_id is None:
            rejects.add(line, f"{system} row without a record id", ",".join(record))
            continue
        other = _salesforce_object(record_id) if system == "salesforce" else None
        if other is not None:
            rejects.add(
                line,
                f"salesforce record {record_id} is a(n) {other}, not a Contact or Lead",
                ",".join(record),
            )
            continue
        name = " ".join(v for v in (get("first_name"), get("last_name")) if v) or None
        object_type = "contact"
        if system == "salesforce" and (
            record_id.startswith("00Q")
            or pick["company"] is not None
            and keys[pick["company"]] == "company"
        ):
            object_type = "lead"
        out["system"].append(system)
        out["record_id"].append(record_id)
        out["object_type"].append(object_type)
        out["name"].append(name)
        out["email"].append(get("email"))
        out["phone"].append(get("phone") or get("mobile_phone"))
        out["mobile_phone"].append(get("mobile_phone"))
        out["company"].append(get("company"))
        out["attributes"].append(dumps({k: v for k, v in zip(keys, record, strict=True) if v}))
        out["source"].append(origin.source)
        out["export_day"].append(origin.export_day)
        out["file"].append(origin.file)
        out["row"].append(line)
    return ReadResult(pl.DataFrame(out, schema=CRM_RECORD_SCHEMA), rejects.frame())


def _column_keys(header: list[str], system: str) -> list[str]:
    """Normalized column names; Fivetran's `property_email` is HubSpot's `Email`."""
    keys = [header_key(h) for h in header]
    if system == "hubspot":
        keys = [
            k.removeprefix("property") if h.startswith("property_") else k
            for h, k in zip(header, keys, strict=True)
        ]
    return keys


def _salesforce_object(record_id: str) -> str | None:
    """The object of a Salesforce id that is not a person (Contact, Lead); None otherwise."""
    return SALESFORCE_OTHER_PREFIXES.get(record_id[:3]) if len(record_id) in (15, 18) else None


def _not_a_person_export(
    system: str,
    header: list[str],
    keys: list[str],
    pick: dict[str, int | None],
    rows: list[tuple[int, list[str]]],
) -> str | None:
    """Why this CSV is not an export of people (contacts, leads), or None when it is one."""
    if not header:
        return None
    if pick["record_id"] is not None and any(k in keys for k in _PERSON_COLUMNS):
        return None
    found = [label for label, cols in _OBJECT_COLUMNS[system] if any(c in keys for c in cols)]
    if system == "salesforce" and pick["record_id"] is not None:
        ids = (r[pick["record_id"]] for _, r in rows if pick["record_id"] < len(r))
        by_id = [
            f"an {o} export: ids start with {i.strip()[:3]}"
            if o[0] in "AEIOU"
            else f"a {o} export: ids start with {i.strip()[:3]}"
            for i in ids
            if (o := _salesforce_object(i.strip()))
        ]
        found = by_id[:1] or found
    what = f" ({found[0]})" if found else ""
    missing = (
        f"no record id column (expected one of {', '.join(_expected_ids(system))})"
        if pick["record_id"] is None
        else "no Email, First Name or Last Name column"
    )
    noun = "contacts" if system == "hubspot" else "Contacts or Leads"
    return f"not a {system} export of {noun}{what}: {missing}"


def _expected_ids(system: str) -> tuple[str, ...]:
    return (_HUBSPOT if system == "hubspot" else _SALESFORCE)["record_id"]
