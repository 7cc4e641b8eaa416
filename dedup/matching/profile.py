"""Which custom attributes identify a person, read from the workspace's own data.

A workspace rarely declares a property schema, and should not have to know Splink to get its
date of birth or postcode compared properly. Each attribute key is profiled:

- `fill`: share of contacts that have it;
- `u_exact`: chance that two random contacts having it hold the same value (the sum of squared
  value shares, Splink's u of exact agreement);
- `m_exact`: share of labelled pairs (two faces of one auto-merged contact, dedup.matching.labels)
  that both have it and agree on it: how stable it is for one person;
- `kind`: `date` when nearly every value is a date, else `string`.

A key identifies a person when it is stable and rare at once: exact agreement is worth at least
`min_bits` of evidence (log2 m/u), judged on at least `min_labelled` labelled pairs. Such a key
is then compared like a declared `match = true` property (its own comparison with typo levels,
blocking rules with a first name or a surname). Keys the schema declares are the admin's
choice and never chosen here; yes/no flags and empty values are left out as in
`records.attribute_arrays_of`.

Without labelled pairs (a workspace whose records carry no e-mail, phone or verified id, so
nothing auto-merges) the stability is read from **namesake pairs** instead: contacts with the
same full name, from names held by at most `max_namesakes` contacts. Their agreement share on a
key is a = λ·m + (1 − λ)·u for the unknown share λ of them that are one person; wherever a > u,
m > a, so a key whose a passes both bars (a ≥ 0.5, log2 a/u ≥ 5) has an m that passes them too:
a lower bound, never an over-estimate, whatever λ is. Namesakes stand in only for keys with
fewer than `min_labelled` labelled pairs. A key that merely repeats the name (an initials or a
first-name attribute) passes this test as it passes the labelled one; both would count the name
twice.

Why these bars (not fitted to any benchmark's labels): 5 bits is a Bayes factor of 32. A key
below that (a city among twenty, a signup source, a plan) helps only beside other evidence,
which the generic `key=value` comparison already weighs; above it, one agreeing value turns
even odds into 0.97, which is what a blocking rule on it needs to be worth its candidate pairs
(expected pairs ~ u × pairs sharing a name part, at most 1/32 of them). Twenty labelled pairs
make the stability share good to about ±0.1, enough to tell a stable key (m ≥ 0.5) from a
changing one (a last-seen page).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import polars as pl

from dedup.duck import private_session
from dedup.identity.normalize import name_norm
from dedup.matching.labels import Faces
from dedup.matching.records import matched_properties
from dedup.matching.settings import property_column
from dedup.properties import Property

# A value is a date when it reads as YYYY-MM-DD, YYYYMMDD (1800-2099) or D/M/YYYY.
_DATE = r"^(\d{4}-\d{1,2}-\d{1,2}|(18|19|20)\d{6}|\d{1,2}[/.]\d{1,2}[/.]\d{4})$"


@dataclass(frozen=True)
class ProfileConfig:
    """Bars for choosing identifying attributes (module docstring says why these)."""

    min_bits: float = 5.0
    min_labelled: int = 20
    min_m: float = 0.5
    date_share: float = 0.9
    # A full name held by more contacts is a common name: its pairs are mostly strangers (they
    # would only lower the bound) and their number grows with the square of the group.
    max_namesakes: int = 10
    # Namesake pairs read at most (whole names, in a seeded hash order), so the cost does not
    # grow with the workspace.
    max_namesake_pairs: int = 20_000


def _entries(documents: pl.Series) -> pl.DataFrame:
    """One row per (document, key, value): every comparable value of the JSON objects, as in
    `records.attribute_arrays_of` (keys trimmed and lower-cased, yes/no and nulls left out)."""
    con = private_session("profile")
    try:
        con.register("frame", documents.rename("attributes").to_frame().with_row_index("doc"))
        # json_each, not map_entries(json_transform(...)): 0.04 s instead of 1.0 s for 2,291
        # objects.
        return (
            con.sql(
                """
            SELECT f.doc, lower(trim(j.key)) AS key, j.key AS spelling,
                   nullif(lower(trim(trim(j.value::VARCHAR, '"'))), '') AS value
            FROM frame f, json_each(try_cast(f.attributes AS JSON)) j
            WHERE j.type NOT IN ('BOOLEAN', 'NULL', 'OBJECT', 'ARRAY')
            """
            )
            .pl()
            .drop_nulls("value")
        )
    finally:
        con.close()


def profile_attributes(
    contact_attributes: pl.Series,
    faces: Faces | None = None,
    namesakes: Callable[[], Faces] | None = None,
) -> pl.DataFrame:
    """key, fill, distinct, u_exact, kind, labelled, m_exact, m_from: one row per attribute key
    (`m_from`: `labels`, or `namesakes` where labelled pairs are too few: module docstring).
    `namesakes` is called only when some key has too few labelled pairs (at 1M contacts finding
    and reading the namesakes costs ~7 CPU s, which a workspace whose auto-merge labels every
    key should not pay each night)."""
    total = max(contact_attributes.len(), 1)
    # Each distinct object once (308,647 contacts had 11,233), weighted by its contacts.
    documents = contact_attributes.rename("attributes").to_frame().group_by("attributes").len("w")
    entries = _entries(documents.get_column("attributes")).join(
        documents.with_row_index("doc").select("doc", "w"), on="doc"
    )
    stats = (
        entries.group_by("key", "value")
        .agg(pl.col("w").sum().alias("n"), pl.col("spelling").mode().first())
        .group_by("key")
        .agg(
            pl.col("n").sum().alias("filled"),
            pl.len().alias("distinct"),
            pl.col("spelling").first().alias("spelling"),
            ((pl.col("n") / pl.col("n").sum()) ** 2).sum().alias("u_exact"),
            (pl.col("value").str.contains(_DATE).cast(pl.Float64) * pl.col("n")).sum().alias("_d"),
        )
        .with_columns(
            (pl.col("filled") / total).alias("fill"),
            pl.when(pl.col("_d") / pl.col("filled") >= ProfileConfig.date_share)
            .then(pl.lit("date"))
            .otherwise(pl.lit("string"))
            .alias("kind"),
        )
        .drop("_d")
    )
    labelled = stats.join(_stability(faces), on="key", how="left").with_columns(
        pl.col("labelled").fill_null(0), pl.lit("labels").alias("m_from")
    )
    few = pl.col("labelled") < ProfileConfig.min_labelled
    if namesakes is None or labelled.filter(few).height == 0:
        return labelled
    by_name = _stability(namesakes()).select(
        "key",
        pl.col("labelled").alias("_n"),
        pl.col("m_exact").alias("_m"),
    )
    use_names = few & pl.col("_n").is_not_null() & (pl.col("_n") > pl.col("labelled"))
    return (
        labelled.join(by_name, on="key", how="left")
        .with_columns(
            pl.when(use_names).then(pl.col("_n")).otherwise(pl.col("labelled")).alias("labelled"),
            pl.when(use_names).then(pl.col("_m")).otherwise(pl.col("m_exact")).alias("m_exact"),
            pl.when(use_names).then(pl.lit("namesakes")).otherwise("m_from").alias("m_from"),
        )
        .drop("_n", "_m")
    )


def namesake_pairs(contacts: pl.DataFrame, config: ProfileConfig | None = None) -> Faces:
    """Contacts two by two that hold the same full name in its matching form (`name_norm`, as
    the full-name comparison reads it; two words or more; names held by at most
    `max_namesakes` contacts), at most `max_namesake_pairs` of them: whole names taken in a
    seeded hash order until the pairs would pass the bound, so only their contacts are joined
    (at 1M contacts every namesake pair is ~3M rows)."""
    config = config or ProfileConfig()
    named = contacts.select(
        "contact_id",
        name_norm(pl.col("name").cast(pl.String)).alias("full_name"),
        pl.col("attributes").cast(pl.String),
    ).filter(pl.col("full_name").str.contains(" "))
    shared = named.filter(pl.len().over("full_name").is_between(2, config.max_namesakes))
    names = (
        shared.group_by("full_name")
        .len("k")
        .sort(pl.col("full_name").hash(7), "full_name")
        .filter((pl.col("k") * (pl.col("k") - 1) // 2).cum_sum() <= config.max_namesake_pairs)
    )
    faces = shared.join(names.select("full_name"), on="full_name")
    ids = faces.select("contact_id", "full_name")
    pairs = (
        ids.join(ids, on="full_name", suffix="_r")
        .filter(pl.col("contact_id") < pl.col("contact_id_r"))
        .select(
            pl.col("contact_id").alias("unique_id_l"), pl.col("contact_id_r").alias("unique_id_r")
        )
        .sort("unique_id_l", "unique_id_r")
    )
    return Faces(faces=faces.select("contact_id", "attributes"), pairs=pairs)


def _stability(faces: Faces | None) -> pl.DataFrame:
    """key → labelled pairs that both have it, and the share of them that agree."""
    empty = pl.DataFrame(schema={"key": pl.String, "labelled": pl.UInt32, "m_exact": pl.Float64})
    if faces is None or faces.pairs.height == 0:
        return empty
    values = _entries(faces.faces.get_column("attributes"))
    ids = faces.faces.select(pl.col("contact_id").alias("face")).with_row_index("doc")
    values = values.join(ids, on="doc").select("face", "key", "value")
    joined = (
        faces.pairs.join(values, left_on="unique_id_l", right_on="face")
        .join(values, left_on=["unique_id_r", "key"], right_on=["face", "key"], suffix="_r")
        .unique(["unique_id_l", "unique_id_r", "key"])
    )
    if joined.height == 0:
        return empty
    return joined.group_by("key").agg(
        pl.len().alias("labelled"),
        (pl.col("value") == pl.col("value_r")).mean().alias("m_exact"),
    )


def identifying_attributes(
    profile: pl.DataFrame, declared: set[str] | frozenset[str] = frozenset(), config=None
) -> dict[str, str]:
    """Attribute key (as most contacts spell it) → kind (`date` or `string`) of the keys that
    identify a person."""
    config = config or ProfileConfig()
    chosen = profile.filter(
        (pl.col("labelled") >= config.min_labelled)
        & (pl.col("m_exact") >= config.min_m)
        & ((pl.col("m_exact") / pl.col("u_exact")).log(2) >= config.min_bits)
        & ~pl.col("key").is_in(list({k.strip().lower() for k in declared}))
    )
    return dict(chosen.sort("key").select("spelling", "kind").iter_rows())


def workspace_properties(
    contacts: pl.DataFrame, faces: Faces | None, schema: Mapping[str, Property]
) -> tuple[dict[str, str], dict[str, str]]:
    """(attribute key → record column of every property the matcher compares on its own: the
    schema's `match = true` ones and those the profile finds identifying; the identified ones
    alone, key → kind). A key the schema declares is never chosen here."""
    declared = matched_properties(schema)
    if "attributes" not in contacts.columns or contacts.height == 0:
        return declared, {}
    namesakes = (lambda: namesake_pairs(contacts)) if "name" in contacts.columns else None
    profile = profile_attributes(
        contacts.get_column("attributes").cast(pl.String), faces, namesakes
    )
    identified = identifying_attributes(profile, set(schema))
    taken = set(declared.values())
    auto = {
        key: column
        for key, kind in identified.items()
        if (column := property_column(key, kind)) not in taken
    }
    return {**auto, **declared}, {k: identified[k] for k in auto}
