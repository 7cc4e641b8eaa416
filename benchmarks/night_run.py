"""The real nightly job on an exports folder, and what the accuracy benchmarks read back from
its published file (`matching_accuracy`, `external`, `independent_contacts`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from assets.resources import ContactsSettings
from contacts.runner import run_pipeline


@dataclass
class Night:
    settings: ContactsSettings
    assignment: pl.DataFrame  # interaction_id → contact_id
    proposals: pl.DataFrame  # pending: contact_id_l, contact_id_r, match_probability
    quarantine: pl.DataFrame  # file, row, reason, interaction_id
    seconds: float


def run_night(root: Path, threshold: float, properties_file: str = "") -> Night:
    """`contacts run` on `root/exports` into `root/contacts.duckdb`, proposals kept from
    `threshold` up (the caller sets ASKVAULT_IDENTITY_SECRET)."""
    settings = ContactsSettings(
        exports_dir=str(root / "exports"),
        db_path=str(root / "contacts.duckdb"),
        properties_file=properties_file,
        proposal_threshold=threshold,
    )
    started = time.perf_counter()
    run_pipeline(settings)
    seconds = time.perf_counter() - started
    con = duckdb.connect(str(settings.layout.db_path), read_only=True)
    try:
        return Night(
            settings=settings,
            assignment=con.sql("SELECT interaction_id, contact_id FROM interactions").pl(),
            proposals=con.sql(
                "SELECT contact_id_l, contact_id_r, match_probability FROM merge_proposals "
                "WHERE status = 'pending'"
            ).pl(),
            quarantine=con.sql("SELECT file, row, reason, interaction_id FROM quarantine").pl(),
            seconds=seconds,
        )
    finally:
        con.close()
