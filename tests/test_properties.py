"""Typed custom properties: declared types checked on ingest and on PATCH, typed analyst view."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from contacts.web import create_app
from dedup.layout import StateLayout
from dedup.properties import PropertySchemaError, load_schema
from dedup.service.apikeys import create_key
from tests.conftest import query, rec, write_jsonl

SCHEMA = """
[properties.seats]
type = "number"
[properties.tier]
type = "enum"
values = ["gold", "silver"]
[properties.renewal]
type = "date"
[properties.billing_email]
type = "email"
"""


def test_schema_file_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text('[properties.x]\ntype = "colour"\n')
    with pytest.raises(PropertySchemaError, match="needs a type"):
        load_schema(bad)
    bad.write_text('[properties.x]\ntype = "enum"\n')
    with pytest.raises(PropertySchemaError, match="needs `values`"):
        load_schema(bad)


def test_declared_types_are_enforced_and_reported(
    exports: Path, db: Path, run, tmp_path: Path
) -> None:
    schema = tmp_path / "contact_properties.toml"
    schema.write_text(SCHEMA)
    write_jsonl(
        exports,
        "2026-11-01",
        "a.jsonl",
        [
            rec("a1", email="ann@x.test", attributes={"seats": 12, "tier": "gold"}),
            rec(
                "b1",
                email="bob@x.test",
                attributes={
                    "seats": "twelve",
                    "tier": "platinum",
                    "renewal": "2027-01-31",
                    "free": "x",
                },
            ),
        ],
    )
    run(min_contacts_to_match=10**9, properties_file=str(schema))
    attrs = dict(query(db, "SELECT email, attributes::VARCHAR FROM contacts").iter_rows())
    assert '"seats":12' in attrs["ann@x.test"].replace(" ", "")
    bob = attrs["bob@x.test"]
    assert "seats" not in bob and "tier" not in bob and "2027-01-31" in bob and '"free"' in bob
    errors = query(db, "SELECT key, value, reason FROM property_errors ORDER BY key").rows()
    assert errors == [
        ("seats", '"twelve"', "seats must be a number"),
        ("tier", '"platinum"', "tier must be one of gold, silver"),
    ]
    typed = query(
        db,
        "SELECT c.email, p.seats, p.renewal FROM contact_properties p JOIN contacts c USING (contact_id) "
        "ORDER BY c.email",
    ).rows()
    assert [(e, s, str(r) if r else None) for e, s, r in typed] == [
        ("ann@x.test", 12.0, None),
        ("bob@x.test", None, "2027-01-31"),
    ]
    # The Contact API checks a PATCH against the same declarations.
    key, _ = create_key(StateLayout(db).api_keys_path, "write")
    client = TestClient(create_app(db, properties_file=schema, allowed_hosts=["testserver"]))
    ann = query(db, "SELECT contact_id FROM contacts WHERE email = 'ann@x.test'").item()
    headers = {"Authorization": f"Bearer {key}"}
    wrong = client.patch(
        f"/v1/contacts/{ann}", headers=headers, json={"attributes": {"tier": "bronze"}}
    )
    assert (
        wrong.status_code == 400
        and wrong.json()["error"] == "tier must be one of gold, silver, not 'bronze'"
    )
    ok = client.patch(
        f"/v1/contacts/{ann}",
        headers=headers,
        json={"attributes": {"tier": "silver", "billing_email": "ap@x.test"}},
    )
    assert ok.status_code == 200 and ok.json()["attributes"]["tier"] == "silver"
