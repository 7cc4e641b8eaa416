"""`contacts import FILE.csv`: a contact list from a spreadsheet, as canonical interactions.

The file's columns are mapped to canonical fields by their header (common spellings detected,
any overridable); each row becomes one interaction of channel `api` with id
`import:<file hash>:<row>`, written as a canonical CSV into the exports folder's `askvault`
source for today. From there it goes through the same validation, quarantine, normalization and
auto-merge as every other record. The written file is named after the content hash of the
import, so importing the same file again writes nothing (and the run reads nothing new).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from dedup.schema import CANONICAL_FIELDS

# Canonical field → header spellings seen in CRM and spreadsheet exports (compared lower-case,
# without spaces, dashes or underscores).
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "email": ("email", "emailaddress", "e-mail", "mail", "workemail", "primaryemail"),
    "phone": ("phone", "phonenumber", "mobile", "mobilephone", "cell", "telephone", "tel"),
    "name": ("name", "fullname", "contactname", "displayname"),
    "first_name": ("firstname", "givenname", "first"),
    "last_name": ("lastname", "surname", "familyname", "last"),
    "company": ("company", "companyname", "organization", "organisation", "account", "accountname"),
    "contact_tags": ("tags", "labels", "tag"),
    "occurred_at": ("createdat", "createdate", "created", "date", "signupdate"),
    "user_id": ("userid", "externalid", "customerid"),
    "plan": ("plan", "tier"),
}
MAPPABLE = tuple(HEADER_ALIASES)


class ImportError_(ValueError):
    """A file or mapping that cannot be imported; one line saying why."""


@dataclass(frozen=True)
class ImportPlan:
    mapping: dict[str, str]  # canonical field → the file's header
    rows: int
    target: Path
    already_imported: bool


def _key(header: str) -> str:
    return re.sub(r"[\s_\-]+", "", header.strip().lower())


def detect_mapping(headers: list[str], overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Canonical field → header, from the aliases, then the caller's overrides."""
    by_key = {_key(h): h for h in headers}
    mapping = {
        field: next(by_key[a.replace("-", "")] for a in aliases if a.replace("-", "") in by_key)
        for field, aliases in HEADER_ALIASES.items()
        if any(a.replace("-", "") in by_key for a in aliases)
    }
    for field, header in (overrides or {}).items():
        if field not in HEADER_ALIASES:
            raise ImportError_(f"cannot map to {field!r} (one of {', '.join(MAPPABLE)})")
        if header not in headers:
            raise ImportError_(f"the file has no column {header!r} (it has {', '.join(headers)})")
        mapping[field] = header
    if not {"email", "phone", "name", "first_name", "user_id"} & set(mapping):
        raise ImportError_(
            "no column looks like an email, phone, name or user id; map one with --map FIELD=COLUMN"
        )
    return mapping


def plan_import(
    source: Path,
    exports: Path,
    overrides: dict[str, str] | None = None,
    now: datetime | None = None,
) -> tuple[ImportPlan, pl.DataFrame]:
    """Read `source`, map it, and say where its canonical form goes (nothing written yet)."""
    try:
        data = source.read_bytes()
        raw = pl.read_csv(data, infer_schema=False, encoding="utf8-lossy")
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ImportError_(f"cannot read {source} as CSV: {str(exc).splitlines()[0]}") from None
    mapping = detect_mapping(raw.columns, overrides)
    digest = hashlib.sha256(data).hexdigest()[:16]
    now = now or datetime.now(UTC)
    exists = sorted((exports / "askvault").glob(f"*/import-{digest}.csv"))
    target = (
        exists[0]
        if exists
        else exports / "askvault" / now.date().isoformat() / f"import-{digest}.csv"
    )

    def col(field: str) -> pl.Expr:
        return pl.col(mapping[field]) if field in mapping else pl.lit(None, dtype=pl.String)

    name = col("name")
    if "name" not in mapping and ("first_name" in mapping or "last_name" in mapping):
        name = pl.concat_str(
            [col("first_name"), col("last_name")], separator=" ", ignore_nulls=True
        )
    canonical = raw.with_row_index("_row", offset=2).select(
        pl.format("import:{}:{}", pl.lit(digest), pl.col("_row")).alias("interaction_id"),
        pl.lit("api").alias("channel"),
        pl.coalesce(col("occurred_at"), pl.lit(now.isoformat(timespec="seconds"))).alias(
            "occurred_at"
        ),
        col("email").alias("email"),
        col("phone").alias("phone"),
        name.alias("name"),
        col("company").alias("company"),
        col("user_id").alias("user_id"),
        col("plan").alias("plan"),
        # Spreadsheet tags are often comma-separated; the canonical CSV uses ';'.
        col("contact_tags").str.replace_all(r"\s*[,;]\s*", ";").alias("contact_tags"),
    )
    canonical = canonical.select([c for c in CANONICAL_FIELDS if c in canonical.columns])
    return ImportPlan(mapping, raw.height, target, bool(exists)), canonical


def write_import(plan: ImportPlan, canonical: pl.DataFrame) -> None:
    """Write the canonical CSV (temp name, then rename); nothing when already imported."""
    if plan.already_imported:
        return
    plan.target.parent.mkdir(parents=True, exist_ok=True)
    tmp = plan.target.with_name(f".{plan.target.name}.tmp")
    canonical.write_csv(tmp)
    tmp.replace(plan.target)
