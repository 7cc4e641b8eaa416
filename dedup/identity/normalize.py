"""Identifier normalization: `email_norm`, `phone_e164`, `name_norm` (SPEC: "Normalization").

Emails and names are pure Polars expressions. Phones need libphonenumber, which is Python, so it
runs once per distinct (value, region) and the result is joined back: a million interactions from
a few hundred thousand people cost a few hundred thousand parses, not a million.
Raw values are never modified; normalized forms sit beside them and are null when invalid.

A phone keeps its E.164 form when it is a *possible* number, assigned range or not (`phone_valid`
says which): a provider-given number is an identity key even when libphonenumber's metadata does
not know its range yet (SPEC "Normalization"). WhatsApp's country quirks are undone here, so a
person's SMS and WhatsApp meet on one key.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import phonenumbers
import polars as pl

from dedup.processes import spawn_pool

# libphonenumber compiles its metadata patterns on every use and leans on the `re` module's small
# cache; with its own cache on (bounded: the patterns come from its fixed metadata) a parse took
# ~20% less CPU on 60,000 of the 1M benchmark's phone keys (2.64-2.94 s against 3.37-3.59 s,
# alternating in one process), with identical results on all 149,184.
phonenumbers.enable_pattern_cache()

GMAIL_DOMAINS = ("gmail.com", "googlemail.com")

# One '@', no whitespace anywhere, a dot inside the domain with something on both sides.
_EMAIL_SHAPE = r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$"


def email_address(expr: pl.Expr) -> pl.Expr:
    """The address as typed, for display: `Name <addr>` → addr, trimmed, lower case; null if invalid."""
    text = expr.str.strip_chars()
    addr = (
        pl.when(text.str.contains(r"<[^<>]*>\s*$"))
        .then(text.str.extract(r"<([^<>]*)>\s*$", 1))
        .otherwise(text)
        .str.strip_chars()
        .str.to_lowercase()
    )
    return pl.when(addr.str.contains(_EMAIL_SHAPE)).then(addr)


def email_norm(expr: pl.Expr) -> pl.Expr:
    """Normalized email per SPEC, null when the value is not an address.

    `Name <addr>` → addr; trim; lowercase; drop `+tag` on every domain; for gmail/googlemail
    drop dots in the local part and use gmail.com.
    """
    return email_norm_of_address(email_address(expr))


def email_norm_of_address(addr: pl.Expr) -> pl.Expr:
    """`email_norm` of an `email_address` (already extracted, trimmed and lower-cased)."""
    valid = addr.is_not_null()
    local = addr.str.extract(r"^([^@]*)@", 1).str.replace(r"\+.*$", "")
    domain = addr.str.extract(r"@(.*)$", 1)
    is_gmail = domain.is_in(GMAIL_DOMAINS)
    local = pl.when(is_gmail).then(local.str.replace_all(".", "", literal=True)).otherwise(local)
    domain = pl.when(is_gmail).then(pl.lit("gmail.com")).otherwise(domain)
    return pl.when(valid & (local.str.len_chars() > 0)).then(
        pl.concat_str(local, pl.lit("@"), domain)
    )


def name_norm(expr: pl.Expr) -> pl.Expr:
    """Matching form of a name: NFKC, accents folded, lower case, single spaces; null when empty.

    Folding accents lets `José` meet `Jose` (typed on a keyboard without them) while the display
    name keeps what the person wrote.
    """
    folded = (
        expr.str.normalize("NFKD")
        .str.replace_all(r"\p{Mn}+", "")
        .str.normalize("NFKC")
        .str.to_lowercase()
        .str.replace_all(r"[^\p{L}\p{N}'\- ]+", " ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )
    return pl.when(folded.str.len_chars() > 0).then(folded)


def display_text(expr: pl.Expr) -> pl.Expr:
    """A value as shown to people: NFC, control characters removed, runs of spaces folded."""
    cleaned = (
        expr.str.normalize("NFC")
        .str.replace_all(r"[\p{Cc}\p{Cf}]+", " ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )
    return pl.when(cleaned.str.len_chars() > 0).then(cleaned)


def phone_candidate(phone: pl.Expr, channel: pl.Expr) -> pl.Expr:
    """The text handed to libphonenumber.

    A WhatsApp id is the number with its country code and no `+` (SPEC), so on the WhatsApp
    channel a bare run of digits gets the `+` back; elsewhere digits mean a national number.
    """
    text = phone.str.strip_chars()
    return (
        pl.when((channel == "whatsapp") & text.str.contains(r"^\d{8,15}$"))
        .then(pl.concat_str(pl.lit("+"), text))
        .otherwise(text)
    )


# (E.164, valid) of a text with no possible number.
NO_PHONE: tuple[str | None, bool | None] = (None, None)

# Brazil's mobile numbers gained a leading 9 (2012-2016, area by area); older WhatsApp accounts
# kept their wa_id: country 55, two-digit area code (no zero digit), eight digits from 6-9.
_BR_OLD_MOBILE = re.compile(r"[1-9]{2}[6-9]\d{7}")
# A North American area code starts with 2-9 (NANP `NXX`): `+1 0xx` and `+1 1xx` can never be
# dialled, whatever libphonenumber's lengths allow, and are what `1234567890` or `0000000000`
# typed into a required phone field gives.
_NANP_AREA = re.compile(r"[2-9]\d{9}")


def classify_phone(value: str | None, region: str) -> tuple[str | None, bool | None]:
    """(E.164, valid) of one phone text; `NO_PHONE` when it holds no possible number.

    A number libphonenumber does not know as assigned (a new range, a reserved test or drama
    range, an old Brazilian wa_id) is still one person's number: it keeps its E.164 form with
    `valid` False. Only a complete number counts: a seven-digit local number
    (`IS_POSSIBLE_LOCAL_ONLY`) lacks the area code that tells two people apart, and a form
    filler (`0000000000`, `1234567890`) is nobody's, so both give `NO_PHONE`.
    """
    if value is None or len(value) > 64:
        return NO_PHONE
    try:
        parsed = _canonical(phonenumbers.parse(value, region))
    except phonenumbers.NumberParseException:
        return NO_PHONE
    valid = phonenumbers.is_valid_number(parsed)
    if not valid and (
        phonenumbers.is_possible_number_with_reason(parsed)
        != phonenumbers.ValidationResult.IS_POSSIBLE
        or _is_filler(parsed)
    ):
        return NO_PHONE
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), valid


def parse_phone(value: str | None, region: str) -> str | None:
    """E.164 form of one phone text (`classify_phone`), or None when it holds no possible number."""
    return classify_phone(value, region)[0]


def _canonical(parsed: phonenumbers.PhoneNumber) -> phonenumbers.PhoneNumber:
    """The number as SMS and the phone network write it, where WhatsApp writes it otherwise.

    Mexico dropped the mobile `1` after the country code in 2019 (`+52 1 55 1234 5678` is now
    `+52 55 1234 5678`); WhatsApp wa_ids still carry it. An old Brazilian wa_id lacks the mobile
    ninth digit: it gets it when the number is not valid without it and is valid with it (so a
    number libphonenumber knows as assigned is never rewritten).
    """
    nsn = str(parsed.national_number)
    if parsed.country_code == 52 and len(nsn) == 11 and nsn.startswith("1"):
        return phonenumbers.PhoneNumber(country_code=52, national_number=int(nsn[1:]))
    if (
        parsed.country_code == 55
        and _BR_OLD_MOBILE.fullmatch(nsn)
        and not phonenumbers.is_valid_number(parsed)
    ):
        ninth = phonenumbers.PhoneNumber(
            country_code=55, national_number=int(f"{nsn[:2]}9{nsn[2:]}")
        )
        if phonenumbers.is_valid_number(ninth):
            return ninth
    return parsed


def _is_filler(parsed: phonenumbers.PhoneNumber) -> bool:
    """A number nobody owns: one digit repeated (`+1 555 555 5555`), or a North American number
    outside the numbering plan. Only numbers libphonenumber does not know as valid get here."""
    nsn = str(parsed.national_number)
    return len(set(nsn)) == 1 or (parsed.country_code == 1 and not _NANP_AREA.fullmatch(nsn))


def _phone_key(expr: pl.Expr) -> pl.Expr:
    """Spacing and punctuation that libphonenumber ignores anyway, removed so that `(415) 555-2671`,
    `415.555.2671` and `415 555 2671` cost one parse. Values with a `(0)` trunk marker keep theirs."""
    text = expr.str.strip_chars()
    return (
        pl.when(text.str.contains("(0)", literal=True))
        .then(text)
        .otherwise(text.str.replace_all(r"[\s\-.()]", ""))
    )


# From this many distinct phone keys, libphonenumber runs on every core: the calling process
# parses one share, spawned workers the others. A worker costs ~0.7-1.4 s to start (Python,
# Polars and phonenumbers imports; it does not re-run the caller's script, dedup.processes) and
# a parse 39-60 µs, so a split pays from ~40k keys. Measured on 115k keys (the 1M benchmark's
# count) on 2 cores: 5.18 s in one process, 3.79 s shared with one worker.
PARALLEL_PHONE_KEYS = 50_000


def _classify_phones(values: list[str], region: str) -> list[tuple[str | None, bool | None]]:
    return [classify_phone(v, region) for v in values]


def classify_phones(
    values: list[str], region: str, parallel_from: int = PARALLEL_PHONE_KEYS
) -> list[tuple[str | None, bool | None]]:
    """`classify_phone` of each value, in order; on every core for a long list (libphonenumber is
    pure Python, so threads would share one)."""
    workers = min(os.cpu_count() or 1, 8)
    if workers < 2 or len(values) < max(parallel_from, 2):
        return _classify_phones(values, region)
    size = -(-len(values) // workers)
    mine, *theirs = [values[i : i + size] for i in range(0, len(values), size)]
    with spawn_pool(len(theirs)) as pool:
        parts = pool.map(_classify_phones, theirs, [region] * len(theirs))
        out = _classify_phones(mine, region)  # while the workers parse theirs
        for part in parts:
            out.extend(part)
        return out


def parse_phones(
    values: list[str], region: str, parallel_from: int = PARALLEL_PHONE_KEYS
) -> list[str | None]:
    """`parse_phone` of each value, in order (`classify_phones` without the validity flag)."""
    return [e164 for e164, _ in classify_phones(values, region, parallel_from)]


# A phone lookup: cleaned text (`_phone_key`) → its E.164 form and validity (both null when no
# possible number), for one region, one libphonenumber version and one revision of the rules in
# `classify_phone` (`phone_lookup_name`). What an earlier run parsed, handed to the next so that
# a night parses only the phone texts it has not seen.
PHONE_LOOKUP_SCHEMA = {
    "phone_key": pl.String(),
    "phone_e164": pl.String(),
    "phone_valid": pl.Boolean(),
}
# Raise when `classify_phone` or `_canonical` changes what a text gives: the saved lookup of the
# old rules is then ignored and removed (2: possible numbers kept, WhatsApp quirks, validity flag).
PHONE_RULES = 2


def phone_lookup_name(region: str) -> str:
    """File name of the lookup for `region`: a new libphonenumber release (its metadata decides
    which numbers are valid) or a new `PHONE_RULES` starts a new one."""
    return f"phone_e164-r{PHONE_RULES}-{region}-{phonenumbers.__version__}.parquet"


def read_phone_lookup(folder: Path, region: str) -> pl.DataFrame | None:
    """The saved lookup for `region` and this libphonenumber, or None (none yet, or unreadable:
    a damaged cache costs the parses again, never the run)."""
    path = folder / phone_lookup_name(region)
    if not path.exists():
        return None
    try:
        return pl.read_parquet(path).select(*PHONE_LOOKUP_SCHEMA).cast(PHONE_LOOKUP_SCHEMA)
    except (pl.exceptions.PolarsError, OSError):
        return None


def write_phone_lookup(folder: Path, region: str, lookup: pl.DataFrame) -> None:
    """Replace the saved lookup atomically; lookups of other regions, library versions or rule
    revisions go."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / phone_lookup_name(region)
    tmp = path.with_name(f".{path.name}.tmp")
    lookup.write_parquet(tmp)
    tmp.replace(path)
    for other in folder.glob("phone_e164-*.parquet"):
        if other != path:
            other.unlink(missing_ok=True)


def phone_keys(
    candidates: pl.Series,
    region: str,
    parallel_from: int = PARALLEL_PHONE_KEYS,
    known: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """`phone_e164` and `phone_valid` for each candidate text, in order; libphonenumber runs once
    per distinct (cleaned) value that `known` (a `PHONE_LOOKUP_SCHEMA` frame for this region)
    does not already give."""
    keys = pl.DataFrame({"_candidate": candidates}).with_columns(
        _phone_key(pl.col("_candidate")).alias("phone_key")
    )
    distinct = keys.get_column("phone_key").drop_nulls().unique()
    reused = (
        known.select(*PHONE_LOOKUP_SCHEMA)
        .cast(PHONE_LOOKUP_SCHEMA)
        .filter(pl.col("phone_key").is_in(distinct.implode()))
        if known is not None
        else pl.DataFrame(schema=PHONE_LOOKUP_SCHEMA)
    )
    todo = distinct.filter(~distinct.is_in(reused.get_column("phone_key").implode()))
    classified = classify_phones(todo.to_list(), region, parallel_from)
    parsed = pl.DataFrame(
        {
            "phone_key": todo,
            "phone_e164": [e164 for e164, _ in classified],
            "phone_valid": [valid for _, valid in classified],
        },
        schema=PHONE_LOOKUP_SCHEMA,
    )
    lookup = pl.concat([reused, parsed])
    return keys.join(lookup, on="phone_key", how="left", maintain_order="left").select(
        "phone_e164", "phone_valid"
    )


def phone_e164(
    candidates: pl.Series,
    region: str,
    parallel_from: int = PARALLEL_PHONE_KEYS,
    known: pl.DataFrame | None = None,
) -> pl.Series:
    """E.164 for each candidate text (`phone_keys` without the validity flag)."""
    return phone_keys(candidates, region, parallel_from, known).get_column("phone_e164")


def phone_lookup(*frames: pl.DataFrame) -> pl.DataFrame:
    """The phone lookup normalized frames hold (`PHONE_LOOKUP_SCHEMA`): only what is still in
    the data, so an erased person's numbers leave it with their interactions."""
    columns = ("phone", "channel", "phone_e164", "phone_valid")
    return (
        pl.concat([frame.select(columns) for frame in frames])
        .drop_nulls("phone")
        .unique()  # the cleaning regex then runs once per distinct text, not per interaction
        .select(
            _phone_key(phone_candidate(pl.col("phone"), pl.col("channel"))).alias("phone_key"),
            "phone_e164",
            "phone_valid",
        )
        .drop_nulls("phone_key")
        .unique("phone_key")
        .sort("phone_key")
    )


def on_distinct(frame: pl.DataFrame, column: str, *steps: dict[str, pl.Expr]) -> pl.DataFrame:
    """Add the columns of `steps` (each may read the ones before) computed once per distinct
    value of `column` (regex work scales with distinct values, not rows: a person repeats the
    same email and name in every interaction)."""
    distinct = frame.select(pl.col(column).unique())
    for outputs in steps:
        distinct = distinct.with_columns(**outputs)
    return frame.join(distinct, on=column, how="left", nulls_equal=True, maintain_order="left")


def normalize_identifiers(
    frame: pl.DataFrame, *, default_region: str = "US", known_phones: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Add `email_address`, `email_norm`, `phone_e164`, `phone_valid` and `name_norm` beside the
    raw columns (`known_phones`: an earlier run's `phone_lookup` for `default_region`)."""
    frame = on_distinct(
        frame,
        "email",
        {"email_address": email_address(pl.col("email"))},
        {"email_norm": email_norm_of_address(pl.col("email_address"))},
    )
    frame = on_distinct(frame, "name", {"name_norm": name_norm(pl.col("name"))})
    candidates = frame.select(phone_candidate(pl.col("phone"), pl.col("channel"))).to_series()
    return frame.with_columns(phone_keys(candidates, default_region, known=known_phones))
