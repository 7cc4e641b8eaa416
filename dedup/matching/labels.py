"""Labelled pairs for free: the faces of contacts that auto-merge joined.

Auto-merge joins interactions only on exact keys nobody else holds (an email, a phone, a
verified id), so two interactions of one contact are one person. Where they differ in what they
say (a name spelled two ways, a company, a date of birth with a typo, a phone written another
way), that variation is how one person's records vary: labelled data the workspace already has.
The matcher uses it to estimate m (`m_from_labels`), to choose which custom attributes identify
a person (dedup.matching.profile), and to size the prior (`deterministic_recall`).

A *face* is a distinct combination of the fields the matcher reads within one contact (a chat of
40 messages with the same name and email is one face): identical repeats would only say that a
record agrees with itself. Pairs are the faces of one contact, two by two. A contact with many
faces contributes at most `max_faces` of them, and at most `max_contacts` contacts are used
(a seeded hash sample), so the cost does not grow with the workspace.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

# What a face is made of: the interaction columns the contact records are built from.
FACE_COLUMNS = ("name", "email_norm", "phone", "company", "attributes", "tags")


@dataclass(frozen=True)
class Faces:
    """`faces`: one row per face in the contacts-frame shape `records.contact_records` reads
    (contact_id = a face id, name, email_norm, phone, phones, company, attributes, tags);
    `pairs`: face ids two by two within one contact (`unique_id_l` < `unique_id_r`)."""

    faces: pl.DataFrame
    pairs: pl.DataFrame

    @property
    def contacts(self) -> int:
        return self.faces.get_column("owner").n_unique() if self.faces.height else 0


# The interaction columns `interaction_faces` reads.
FACE_SOURCE_COLUMNS = (
    "name_display",
    "name",
    "email_norm",
    "phone_e164",
    "company_display",
    "company",
    "attributes",
    "contact_tags",
)


def interaction_faces(interactions: pl.LazyFrame) -> pl.LazyFrame:
    return interactions.select(
        "contact_id",
        pl.coalesce("name_display", "name").alias("name"),
        "email_norm",
        pl.col("phone_e164").alias("phone"),
        pl.coalesce("company_display", "company").alias("company"),
        pl.col("attributes").cast(pl.String),
        pl.col("contact_tags").alias("tags"),
    )


def _face_rows(interactions: Path | pl.DataFrame, assignment: Path | pl.DataFrame) -> pl.DataFrame:
    """contact_id and the face columns (`FACE_COLUMNS`) of every assigned interaction. The
    night's work files hold the same interaction ids in the same order: then the contact ids
    are set beside the rows instead of joined (the same rows; the join cost ~0.6 CPU s at 1M)."""
    if isinstance(interactions, pl.DataFrame) or isinstance(assignment, pl.DataFrame):
        lazy = interactions.lazy() if isinstance(interactions, pl.DataFrame) else None
        assign = assignment.lazy() if isinstance(assignment, pl.DataFrame) else None
        lazy = lazy if lazy is not None else pl.scan_parquet(interactions)
        assign = assign if assign is not None else pl.scan_parquet(assignment)
        return interaction_faces(lazy.join(assign, on="interaction_id")).collect()
    read = ["interaction_id", *FACE_SOURCE_COLUMNS]
    rows = pl.read_parquet(interactions, columns=read)
    assign = pl.read_parquet(assignment, columns=["interaction_id", "contact_id"])
    ids = rows.get_column("interaction_id")
    if (
        ids.len() == assign.height
        and ids.equals(assign.get_column("interaction_id"))
        and (ids.len() < 2 or bool((ids.slice(1) > ids.slice(0, ids.len() - 1)).all()))
    ):
        joined = rows.with_columns(assign.get_column("contact_id"))  # strictly increasing ids
    else:
        joined = rows.join(assign, on="interaction_id")
    return interaction_faces(joined.lazy()).collect()


def labelled_faces(
    interactions: Path | pl.DataFrame,
    assignment: Path | pl.DataFrame,
    max_contacts: int = 5_000,
    max_faces: int = 4,
    seed: int = 7,
) -> Faces:
    """Faces of a seeded sample of the contacts that hold two faces or more, and their pairs.

    `interactions`: the prepared interactions (dedup.identity: name_display, email_norm,
    phone_e164, company_display, attributes, contact_tags); `assignment`: interaction_id →
    contact_id. Parquet paths are read for these columns only.

    Which contacts hold two faces is counted on hashes (each face's, the one that orders a
    contact's faces, per contact hash, the one the sample is drawn by), not on seven string
    columns: at 1M interactions ≈ 0.5 CPU s instead of ≈ 1.5 for unique rows and a window over
    them. Only the sampled contacts' faces are then made from their columns, as before. Two
    faces of one contact, or two contacts, with the same 64-bit hash would count once (they
    would already tie in the order, or share a place in the sample).
    """
    return faces_of(_face_rows(interactions, assignment), max_contacts, max_faces, seed)


def face_hashes(rows: pl.DataFrame, seed: int = 7) -> pl.DataFrame:
    """`rows` (contact_id and `FACE_COLUMNS`) with the hashes `labelled_faces` samples by: of
    the contact (`_contact_hash`) and of the face (`_face_hash`). Row by row: the Spark engine
    computes them per Arrow batch (`dedup.spark.matching_faces`)."""
    return rows.with_columns(
        pl.col("contact_id").hash(seed=seed).alias("_contact_hash"),
        pl.struct(FACE_COLUMNS).hash(seed=seed).alias("_face_hash"),
    )


def faces_of(
    rows: pl.DataFrame, max_contacts: int = 5_000, max_faces: int = 4, seed: int = 7
) -> Faces:
    """`labelled_faces` from the face rows (contact_id and `FACE_COLUMNS`) of every contact, or
    of only the contacts it would sample (the same faces: a contact's rows are all there)."""
    rows = face_hashes(rows, seed)
    faces_per_contact = rows.group_by("_contact_hash").agg(
        pl.col("_face_hash").n_unique().alias("n")
    )
    eligible = faces_per_contact.filter(pl.col("n") >= 2).get_column("_contact_hash")
    if eligible.len() == 0:
        return Faces(_empty_faces(), _empty_pairs())
    chosen = eligible.sort().head(max_contacts).implode()
    faces = (
        rows.filter(pl.col("_contact_hash").is_in(chosen))
        .drop("_face_hash")
        .unique(maintain_order=False)
        .with_columns(pl.struct(FACE_COLUMNS).hash(seed=seed).alias("_face_hash"))
        .filter(pl.len().over("contact_id") >= 2)
        # At most `max_faces` per contact, the same ones on every run.
        .filter(pl.col("_face_hash").rank("ordinal").over("contact_id") <= max_faces)
        .sort("contact_id", "_face_hash")
        .with_columns(
            pl.col("contact_id").alias("owner"),
            (pl.lit("face-") + pl.int_range(pl.len()).cast(pl.String).str.zfill(9)).alias(
                "face_id"
            ),
        )
    )
    pairs = (
        faces.select("owner", "face_id")
        .join(faces.select("owner", "face_id"), on="owner", suffix="_r")
        .filter(pl.col("face_id") < pl.col("face_id_r"))
        .select(pl.col("face_id").alias("unique_id_l"), pl.col("face_id_r").alias("unique_id_r"))
    )
    out = faces.select(
        pl.col("face_id").alias("contact_id"),
        "owner",
        "name",
        "email_norm",
        "phone",
        pl.when(pl.col("phone").is_not_null()).then(pl.concat_list("phone")).alias("phones"),
        "company",
        "attributes",
        "tags",
    )
    return Faces(out, pairs)


def _empty_faces() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "contact_id": pl.String,
            "owner": pl.String,
            "name": pl.String,
            "email_norm": pl.String,
            "phone": pl.String,
            "phones": pl.List(pl.String),
            "company": pl.String,
            "attributes": pl.String,
            "tags": pl.List(pl.String),
        }
    )


def _empty_pairs() -> pl.DataFrame:
    return pl.DataFrame(schema={"unique_id_l": pl.String, "unique_id_r": pl.String})


@dataclass(frozen=True)
class LabelledRecords:
    """Matcher records of the faces (`records.contact_records` over `Faces.faces`, with the
    workspace's matched properties) and their pairs: the input of `model.train`'s label steps."""

    records: pl.DataFrame
    pairs: pl.DataFrame


def labelled_records(faces: Faces, properties: dict[str, str] | None = None) -> LabelledRecords:
    from dedup.matching.records import contact_records  # records imports this module's users

    if faces.faces.height == 0:
        return LabelledRecords(pl.DataFrame(), faces.pairs)
    return LabelledRecords(contact_records(faces.faces, None, properties), faces.pairs)


def pairs_agreeing(labelled: LabelledRecords, rules: list[tuple[str, ...]]) -> tuple[int, int]:
    """(labelled pairs, those agreeing on every column of at least one of `rules`): a list
    column agrees with two values or more, as in `model.estimate_prior`."""
    if labelled.pairs.height == 0 or labelled.records.height == 0:
        return 0, 0
    columns = sorted({c for rule in rules for c in rule})
    side = labelled.records.select("unique_id", *columns)
    joined = labelled.pairs.join(side, left_on="unique_id_l", right_on="unique_id").join(
        side, left_on="unique_id_r", right_on="unique_id", suffix="_r"
    )

    def agrees(column: str) -> pl.Expr:
        same = pl.col(column).is_not_null() & (pl.col(column) == pl.col(f"{column}_r"))
        if side.schema[column] == pl.List:
            same = same & (pl.col(column).list.len() >= 2)
        return same.fill_null(False)

    hit = pl.any_horizontal(pl.all_horizontal(agrees(c) for c in rule) for rule in rules)
    return joined.height, int(joined.select(hit.sum()).item())
