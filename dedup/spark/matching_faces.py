"""The labelled faces the matching step learns from (`dedup.matching.labels.labelled_faces`),
sampled on Spark so the driver reads no interaction (issue 27).

`labelled_faces` reads every interaction's face (name, email, phone, company, attributes, tags)
with its contact, and keeps a seeded sample: the contacts with two faces or more, the first
`max_contacts` of them by a hash of the contact id. Everything up to the choice is per row or
per contact: the faces and their hashes (`labels.face_hashes`) run per Arrow batch inside
`mapInArrow`, the faces per contact are a Spark aggregation, and the first `max_contacts`
contact hashes (5,000 integers) reach the driver. Spark then hands over the distinct faces of
only those contacts, and the local `labels.faces_of` makes the same faces and pairs from them as
from every row (a sampled contact's rows are all there).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from dedup.matching.labels import (
    FACE_COLUMNS,
    FACE_SOURCE_COLUMNS,
    Faces,
    face_hashes,
    faces_of,
    interaction_faces,
)
from dedup.spark.batches import per_batch

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# `labelled_faces`' defaults: its sample.
MAX_CONTACTS, SEED = 5_000, 7


def _hashed_faces(rows: pl.DataFrame) -> pl.DataFrame:
    """The faces of a batch with their hashes as signed integers (Spark has no unsigned type):
    the same bits, ordered as unsigned by `_unsigned_order`."""
    faces = face_hashes(interaction_faces(rows.lazy()).collect(), SEED)
    return faces.with_columns(pl.col("_contact_hash", "_face_hash").reinterpret(signed=True))


def _unsigned_order(column: str) -> list:
    """Spark sort keys that order signed 64-bit integers as their unsigned bits: the high bit
    (negative) last, then by value."""
    from pyspark.sql import functions as F

    return [F.col(column) < 0, F.col(column)]


def labelled_faces_on_spark(
    spark: SparkSession, interactions: Path, assignment: Path, max_contacts: int = MAX_CONTACTS
) -> Faces:
    """`labelled_faces(interactions, assignment, max_contacts)` (module docstring)."""
    from pyspark.sql import functions as F

    rows = spark.read.parquet(str(interactions)).select("interaction_id", *FACE_SOURCE_COLUMNS)
    ids = spark.read.parquet(str(assignment)).select("interaction_id", "contact_id")
    faces = per_batch(rows.join(ids, "interaction_id").drop("interaction_id"), _hashed_faces)
    chosen = [
        row[0]
        for row in faces.groupBy("_contact_hash")
        .agg(F.countDistinct("_face_hash").alias("n"))
        .filter(F.col("n") >= 2)
        .orderBy(*_unsigned_order("_contact_hash"))
        .limit(max_contacts)
        .select("_contact_hash")
        .collect()
    ]
    sampled = (
        faces.filter(F.col("_contact_hash").isin(chosen))
        .select("contact_id", *FACE_COLUMNS)
        .dropDuplicates()
    )
    rows = pl.from_arrow(sampled.toArrow())
    return faces_of(rows, max_contacts, seed=SEED)  # type: ignore[arg-type]
