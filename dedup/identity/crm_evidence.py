"""CRM records as identity evidence for auto-merge (docs/decisions.md, "CRM records join").

A HubSpot or Salesforce record that holds an email and a phone says they are one person, as a
lead form carrying both does. Each record becomes one evidence row per distinct phone (`Phone`,
`MobilePhone`), with the record's email and name, normalized exactly as interactions are, so
`dedup.identity.automerge` links them under the same hub caps and never makes them a contact.
A record with an email and no phone joins nothing an email does not already join: left out.
"""

from __future__ import annotations

import polars as pl

from dedup.identity.automerge import EVIDENCE_SCHEMA
from dedup.identity.normalize import email_norm, name_norm, phone_e164


def crm_evidence(records: pl.DataFrame, region: str) -> pl.DataFrame:
    """`EVIDENCE_SCHEMA` rows for staged CRM records (`CRM_RECORD_SCHEMA`).

    Args:
        records: the latest delivery of each (system, record id).
        region: libphonenumber region for numbers without a country code (the engine's).
    """
    if records.height == 0:
        return pl.DataFrame(schema=EVIDENCE_SCHEMA)
    numbers = (
        records.select(
            pl.format("{}:{}", "system", "record_id").alias("evidence_id"),
            email_norm(pl.col("email")).alias("email_norm"),
            name_norm(pl.col("name")).alias("name_norm"),
            pl.concat_list("phone", "mobile_phone").alias("_number"),
        )
        .explode("_number")
        .filter(pl.col("_number").is_not_null())
    )
    return (
        numbers.with_columns(phone_e164(numbers.get_column("_number"), region).alias("phone_e164"))
        .filter(pl.col("phone_e164").is_not_null())
        .unique(["evidence_id", "phone_e164"], maintain_order=True)
        .select(list(EVIDENCE_SCHEMA))
        .cast(EVIDENCE_SCHEMA)  # type: ignore[arg-type]
    )
