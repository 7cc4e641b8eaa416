"""HubSpot and Salesforce contact exports (CSV) → CRM records (not interactions).

HubSpot's contacts export: `Record ID, First Name, Last Name, Email, Phone Number, Company Name,
Lifecycle Stage, Create Date, Last Activity Date` plus any property the user ticked.
Salesforce Contact or Lead export (report or Data Loader): `Id, FirstName, LastName, Email, Phone,
MobilePhone`, `Account Name` (Contact) or `Company` (Lead), `LeadSource`, plus any field.
Columns are matched by name, case and punctuation ignored (`First Name` = `FirstName` =
`FIRSTNAME`), so report and Data Loader exports both read.

Every column, known or extra, is kept in `attributes` (a JSON object keyed by the normalized
column name) so the CRM audience rules (`dedup.snapshot.crm_links`) can read any field. A row without a record
id, or with the wrong number of fields, is quarantined with its CSV line.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from dedup.ingest.adapters.base import Rejects, dumps, header_key, read_csv_rows
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
    "record_id": ("recordid", "contactid", "hsobjectid", "vid"),
    "first_name": ("firstname",),
    "last_name": ("lastname",),
    "email": ("email",),
    "phone": ("phonenumber", "phone"),
    "mobile_phone": ("mobilephonenumber", "mobilephone"),
    "company": ("companyname", "company"),
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
    try:
        data = path.read_bytes()
    except OSError as exc:
        rejects.add(None, f"cannot read file: {exc.strerror or exc}", None)
        return ReadResult(empty_crm_records(), rejects.frame())
    header, rows = read_csv_rows(data, rejects, origin.file)
    keys = [header_key(h) for h in header]
    index: dict[str, int] = {}
    for k, i in ((k, i) for i, k in enumerate(keys)):
        index.setdefault(k, i)
    pick = {f: next((index[c] for c in names if c in index), None) for f, names in columns.items()}
    if header and pick["record_id"] is None:
        rejects.add(
            None,
            f"not a {system} export: CSV header has no record id column "
            f"(expected one of {', '.join(columns['record_id'])})",
            None,
        )
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
