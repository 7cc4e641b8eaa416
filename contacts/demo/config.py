"""The generator's settings and result, and the names of what it writes.

``GeneratorConfig`` (frozen) goes in, ``GeneratedExports`` comes out; ``CANONICAL_COLUMNS`` is the
engine's canonical record (SPEC) and ``CASES`` every value of the truth ``case`` columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from dedup.schema import CANONICAL_FIELDS


@dataclass(frozen=True)
class GeneratorConfig:
    persons: int = 300  # number of true people
    days: int = 7  # number of export days
    start_day: date = date(2026, 11, 1)
    seed: int = 42
    secret: str = "demo-identity-secret"  # ASKVAULT_IDENTITY_SECRET used to sign user ids
    formats: tuple[str, ...] = ("jsonl", "csv", "parquet")  # rotate formats across days/files
    interactions_per_person: float = 4.0  # mean; actual count per person varies (geometric, 1..40)
    bad_records: bool = True  # add a handful of malformed records in the last days
    gzip_some: bool = True  # write some files gzip-compressed (.jsonl.gz / .csv.gz)
    # Also write native provider exports (WhatsApp, Slack, email, SMS, HubSpot, Salesforce) for a
    # share of the plain persons; off by default so the askvault output stays byte-identical.
    native: bool = False


@dataclass(frozen=True)
class GeneratedExports:
    root: Path  # the EXPORTS folder
    truth_path: Path  # parquet: interaction_id, person_id, plus case flags
    interactions: int  # number of distinct good interaction ids written
    persons: int
    bad_records: int


# The generator writes exactly the canonical record of SPEC; one list, owned by the engine.
CANONICAL_COLUMNS: tuple[str, ...] = CANONICAL_FIELDS

#: every value the truth ``case`` / ``person_case`` columns can take
CASES: tuple[str, ...] = (
    "plain",
    "household",
    "switchboard",
    "throwaway_email",
    "kiosk",
    "forged",
    "second_email",
    "second_email_nokey",
    "typo",
    "nickname",
    "redelivered",
)

#: the file formats a config may rotate through
FORMATS = ("jsonl", "csv", "parquet")
