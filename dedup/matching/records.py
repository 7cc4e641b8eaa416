"""The record Splink compares: one row per live contact.

Why per contact, not per interaction: most interactions carry one identifier, so raw rows share
too little for a pairwise model (the issue measured pairwise recall 0.30 on raw rows). After
auto-merge a contact holds every name, email and phone its interactions gave; Splink sees the
survivorship-chosen name, email, phone and company as scalars (for fuzzy levels and term
frequencies) and all its phones as an array (so "shares any phone" is one level: a phone
two identities typed stays visible, an email they share would have merged them).

Beyond identifiers, a contact carries what the workspace knows *about* the person: its custom
attributes (city, signup source, seats, a date of birth...) and its contact tags. Two channel
faces of one person that share no identifier (a widget visitor who left an email, the same
person writing on WhatsApp with a phone) are often told apart from a same-name stranger only by
those: the same city and signup source, or a *different* city. They reach Splink as arrays of
`key=value` strings and of keys, so agreement and conflict are array intersections any backend
evaluates, and no attribute name is hard-coded.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl
from cleanco import basename as cleanco_basename

from dedup.duck import private_session, sql_text
from dedup.identity.normalize import name_norm, on_distinct
from dedup.matching.employer import (
    company_employer,
    domain_employer,
    employer_key,
    workspace_providers,
)
from dedup.matching.nicknames import canonical_first_name, first_name_forms
from dedup.matching.settings import property_column, property_columns
from dedup.properties import Property

RECORD_COLUMNS = (
    "unique_id",
    "full_name",
    "first_name",
    "first_name_canonical",
    "first_name_forms",
    "surname",
    "email",
    "email_local",
    "email_user",
    "email_domain",
    "phone",
    "phone_shared",
    "phone_last7",
    "phones",
    "company",
    "employer",
    "attr_values",
    "attr_keys",
    "tags",
)


def company_norm(expr: pl.Expr) -> pl.Expr:
    """Matching form of a company: legal form removed (`cleanco`), then folded as a name.

    `cleanco` knows the legal forms of many countries in their written variants (`S.A.`,
    `G.m.b.H.`, `L.L.C.`, `GmbH & Co. KG`) and removes them only where a legal form stands, at
    the end. A hand-written list missed every dotted form (`Acme Studio S.A.` against `Acme
    Studio` fell to the Jaro-Winkler level, 5 bits under an exact match: measured on the
    generator, 13 of one person's pairs under 0.3) and removed words anywhere (`AS Roma`,
    `AB InBev`). A name that is only a legal form (`Inc`) names no company (null). Python per
    value, so callers run it once per distinct company (`on_distinct`): ~50 µs each."""
    folded = (
        name_norm(expr.map_elements(_without_legal_forms, return_dtype=pl.String))
        .str.replace_all(r"[^\p{L}\p{N} ]+", " ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )
    return pl.when(folded.str.len_chars() > 0).then(folded)


def _without_legal_forms(company: str) -> str:
    # cleanco removes one legal form per call: `Foo Co., Ltd.` holds two.
    before = None
    while company != before:
        before, company = company, cleanco_basename(company)
    return company


# A phone shared by more identities than this is a hub (a switchboard): no evidence that two
# contacts are one person, so the matcher does not see it. A phone shared by exactly two stays
# visible: one person with a work and a personal email looks like that, and the names then
# decide (a household's members differ in first name). An ambiguous *email* is never personal
# (test@test.com, a shared inbox behind two verified accounts) and is always hidden.
MAX_SHARED_IDENTITIES = 2


def hub_values(ambiguous_keys: pl.DataFrame, key_type: str) -> pl.Series:
    limit = MAX_SHARED_IDENTITIES if key_type == "phone" else 0
    return ambiguous_keys.filter(
        (pl.col("key_type") == key_type) & (pl.col("n_linked") > limit)
    ).get_column("key_value")


def shared_phones(ambiguous_keys: pl.DataFrame | None) -> pl.Series:
    """Phones auto-merge saw with two identities and the matcher still sees (not hubs): one
    person's two addresses, or a household. Only names tell the two apart (settings.PHONE)."""
    if ambiguous_keys is None or ambiguous_keys.height == 0:
        return pl.Series("key_value", [], pl.String)
    return ambiguous_keys.filter(
        (pl.col("key_type") == "phone") & (pl.col("n_linked") <= MAX_SHARED_IDENTITIES)
    ).get_column("key_value")


def _without(column: str, values: pl.Series) -> pl.Expr:
    # when/then + drop_nulls, not `list.eval(filter(...))`: same lists, but the filter took 31 s
    # for 308k contacts and 3,321 hub phones (1M interactions), this 0.12 s.
    hidden = pl.element().is_in(values.implode())
    kept = pl.col(column).list.eval(pl.when(~hidden).then(pl.element())).list.drop_nulls()
    return pl.when(kept.list.len() > 0).then(kept)


def matched_properties(schema: Mapping[str, Property]) -> dict[str, str]:
    """Attribute key → record column of each property the schema marks `match = true`."""
    kinds = {"date": "date", "string": "string"}
    out = {
        name: property_column(name, kinds.get(p.type, "exact"))
        for name, p in schema.items()
        if p.match
    }
    if len(set(out.values())) < len(out):
        raise ValueError(
            "two matched properties differ only in case or punctuation: " + ", ".join(sorted(out))
        )
    return out


def _property_value(key: str, column: str) -> str:
    """SQL: a matched property's value as text. A date written YYYYMMDD is given its dashes, so
    the date levels (a year apart) can read it; a declared date is already ISO (validated)."""
    value = f"nullif(lower(trim(try_cast(attributes AS JSON) ->> {key})), '')"
    if not column.startswith("p_date_"):
        return value
    return (
        f"CASE WHEN regexp_full_match({value}, '(18|19|20)[0-9]{{6}}') THEN "
        f"substr({value}, 1, 4) || '-' || substr({value}, 5, 2) || '-' || substr({value}, 7, 2) "
        f"ELSE {value} END"
    )


def attribute_arrays_of(
    documents: pl.Series, properties: Mapping[str, str] | None = None
) -> pl.DataFrame:
    """`attributes` (JSON text, each distinct one once) → `attr_values` (sorted, distinct
    `key=value` strings) and `attr_keys` of the object (`"City"` and `"city"` are one key), and one column per matched property
    (`matched_properties`: key → column) with its value as text.

    Values keep their JSON spelling (a string quoted, a number bare), lower-cased and trimmed, so
    `"Berlin"` and `"berlin "` agree. Booleans and nulls are left out: a yes/no flag such as a
    newsletter opt-in is shared by half of all strangers and says nothing about who someone is.
    A matched property is left out of the arrays too: its own comparison weighs it, once.
    An object with no comparable value gives nulls (Splink's null level: no evidence either way).
    DuckDB reads the JSON as a map of any keys; Polars can only decode a fixed struct.
    """
    properties = dict(properties or {})
    frame = documents.rename("attributes").to_frame()
    own = ", ".join(sql_text(key) for key in properties)
    not_own = f" AND e.key NOT IN ({own})" if own else ""
    columns = "".join(
        f", {_property_value(sql_text(key), column)} AS {column}"
        for key, column in properties.items()
    )
    con = private_session("records")
    try:
        con.register("frame", frame)
        return con.sql(
            f"""
            WITH entries AS (
                SELECT attributes, list_filter(
                    map_entries(
                        json_transform(try_cast(attributes AS JSON), '"MAP(VARCHAR, JSON)"')
                    ),
                    e -> json_type(e.value) NOT IN ('BOOLEAN', 'NULL'){not_own}
                ) AS e
                FROM frame
            )
            SELECT
                attributes,
                CASE WHEN len(e) > 0 THEN list_sort(list_distinct(list_transform(
                    e, x -> lower(trim(x.key)) || '=' || lower(trim(x.value::VARCHAR))
                ))) END AS attr_values,
                CASE WHEN len(e) > 0 THEN list_sort(list_distinct(
                    list_transform(e, x -> lower(trim(x.key)))
                )) END AS attr_keys
                {columns}
            FROM entries
            """
        ).pl()
    finally:
        con.close()


def name_fields(name: pl.Expr) -> list[dict[str, pl.Expr]]:
    """`full_name`, `first_name`, `surname` (first and last word of the matching form),
    `first_name_canonical` and `first_name_forms` (dedup.matching.nicknames), as `normalize.on_distinct` steps over the `name` column."""
    tokens = pl.col("full_name").str.split(" ")
    return [
        {"full_name": name_norm(name)},
        {
            "first_name": tokens.list.first(),
            "surname": pl.when(tokens.list.len() > 1).then(tokens.list.last()),
        },
        {
            "first_name_canonical": canonical_first_name(pl.col("first_name")),
            "first_name_forms": first_name_forms(pl.col("first_name")),
        },
    ]


def contact_records(
    contacts: pl.DataFrame,
    ambiguous_keys: pl.DataFrame | None = None,
    properties: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """Splink input from the contacts frame (contact_id, name, email_norm, phone, phones,
    company, attributes, tags), without hub emails and phones, with a column per matched
    property (`matched_properties`)."""
    masked = masked_contacts(contacts, ambiguous_keys)
    return finished_records(own_records(masked, properties))


# What one contact's record is made of (`masked_contacts`' columns): every column of the record
# is a function of these and, for `employer` alone, of the workspace's providers
# (`finished_records`). `dedup.matching.carried_records` relies on that split.
RECORD_INPUTS = (
    "contact_id",
    "name",
    "company",
    "email_norm",
    "phone",
    "phone_shared",
    "phones",
    "tags",
    "attributes",
)
# Columns of `own_records` beyond the record's: what `finished_records` reads the employer from.
EMPLOYER_INPUTS = ("company_employer", "email_employer")


def masked_contacts(
    contacts: pl.DataFrame, ambiguous_keys: pl.DataFrame | None = None
) -> pl.DataFrame:
    """`RECORD_INPUTS` of each contact: hub emails and phones hidden, `phone_shared` marked,
    `tags` and `attributes` null when the frame lacks them."""
    if ambiguous_keys is not None and ambiguous_keys.height:
        hub_emails, hub_phones = (
            hub_values(ambiguous_keys, "email"),
            hub_values(ambiguous_keys, "phone"),
        )
        contacts = contacts.with_columns(
            pl.when(~pl.col("email_norm").is_in(hub_emails.implode()))
            .then(pl.col("email_norm"))
            .alias("email_norm"),
            pl.when(~pl.col("phone").is_in(hub_phones.implode()))
            .then(pl.col("phone"))
            .alias("phone"),
            _without("phones", hub_phones).alias("phones"),
        )
    return contacts.select(
        "contact_id",
        "name",
        "company",
        "email_norm",
        "phone",
        pl.col("phone").is_in(shared_phones(ambiguous_keys).implode()).alias("phone_shared"),
        "phones",
        (pl.col("tags") if "tags" in contacts.columns else pl.lit(None, pl.List(pl.String))).alias(
            "tags"
        ),
        (
            pl.col("attributes").cast(pl.String)
            if "attributes" in contacts.columns
            else pl.lit(None, pl.String)
        ).alias("attributes"),
    )


def own_records(masked: pl.DataFrame, properties: Mapping[str, str] | None = None) -> pl.DataFrame:
    """The record of each row of `masked_contacts`, from that row alone: every record column
    but `employer`, and `EMPLOYER_INPUTS`."""
    email = pl.col("email_norm")
    tags = pl.col("tags").list.eval(pl.element().str.to_lowercase().str.strip_chars()).list.unique()
    records = masked.select(
        pl.col("contact_id").alias("unique_id"),
        "name",
        pl.col("company").alias("company_raw"),
        email.alias("email"),
        email.str.extract(r"^([^@]+)@", 1).alias("email_local"),
        # The local part without dots, for the domain-typo level and its blocking rule only:
        # normalization drops a Gmail address's dots (Gmail ignores them) but cannot know that
        # `gmial.com` is Gmail mistyped, so the two faces of one address keep different local
        # parts (tests/test_matching_generalizes.py, the email-typo pair). Everywhere else dots
        # count: `michael.smith@` and `michaelsmith@` are two mailboxes at most providers.
        email.str.extract(r"^([^@]+)@", 1)
        .str.replace_all(".", "", literal=True)
        .alias("email_user"),
        email.str.extract(r"@(.+)$", 1).alias("email_domain"),
        pl.col("phone").alias("phone"),
        "phone_shared",
        pl.col("phone").str.slice(-7).alias("phone_last7"),
        pl.when(pl.col("phones").list.len() > 0).then(pl.col("phones")).alias("phones"),
        pl.when(tags.list.len() > 0).then(tags.list.sort()).alias("tags"),
        "attributes",
    )
    # Names, companies and attribute objects repeat across contacts (308,647 contacts had
    # 18,642 names, 2,939 companies and 11,233 attribute objects): each is derived once.
    records = on_distinct(records, "name", *name_fields(pl.col("name")))
    records = on_distinct(
        records,
        "company_raw",
        {"company": company_norm(pl.col("company_raw"))},
        {"company_employer": company_employer(pl.col("company"))},
    )
    records = on_distinct(
        records, "email_domain", {"email_employer": domain_employer(pl.col("email_domain"))}
    )
    records = records.join(
        attribute_arrays_of(records.get_column("attributes").unique(), properties),
        on="attributes",
        how="left",
        nulls_equal=True,
        maintain_order="left",
    )
    own = [c for c in RECORD_COLUMNS if c != "employer"]
    return records.select(*own, *EMPLOYER_INPUTS, *property_columns(records.columns))


def finished_records(own: pl.DataFrame, providers: pl.Series | None = None) -> pl.DataFrame:
    """`own_records` of every contact → the records: `employer` read against the providers of
    the whole workspace (`workspace_providers(own)`, or `providers` when the caller computed
    them over the whole workspace: the Spark engine finishes one batch at a time), in
    `RECORD_COLUMNS` order."""
    if providers is None:
        providers = workspace_providers(own)
    records = own.with_columns(
        employer=employer_key(
            pl.col("company_employer"),
            pl.when(~pl.col("email_domain").is_in(providers.implode())).then(
                pl.col("email_employer")
            ),
        )
    )
    return records.select(*RECORD_COLUMNS, *property_columns(records.columns))
