"""Typed custom properties: a project schema file declares attribute names and types.

```toml
# contact_properties.toml
[properties.seats]
type = "number"
[properties.tier]
type = "enum"
values = ["gold", "silver"]
[properties.dob]
type = "date"
match = true   # the matcher compares it on its own (dedup.matching.settings)
```

Types: string, number, boolean, date, enum (with `values`), email, phone (E.164). One rule per
type, in two forms kept side by side here: a Python check (PATCH, bulk) and a DuckDB SQL
condition (every interaction's attributes, in the contacts build). A value that breaks its rule
is not stored: it is reported in `property_errors` with the contact, the key and the reason;
undeclared keys stay free-form.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from dedup.duck import sql_text

TYPES = ("string", "number", "boolean", "date", "enum", "email", "phone")
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
E164 = r"^\+[1-9][0-9]{6,14}$"
SQL_TYPES = {
    "string": "VARCHAR",
    "number": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "enum": "VARCHAR",
    "email": "VARCHAR",
    "phone": "VARCHAR",
}


class PropertySchemaError(ValueError):
    """The schema file is wrong; one line saying where."""


@dataclass(frozen=True)
class Property:
    name: str
    type: str
    values: tuple[str, ...] = ()
    # Compared on its own by the matcher (dedup.matching.settings.property_comparison).
    match: bool = False

    def problem(self, value: Any) -> str | None:
        """Why `value` is not a valid value of this property (None when it is)."""
        if value is None:
            return None
        t = self.type
        if t == "number":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif t == "boolean":
            ok = isinstance(value, bool)
        elif t == "date":
            ok = isinstance(value, str) and _is_date(value)
        elif t == "enum":
            ok = isinstance(value, str) and value in self.values
        elif t == "email":
            ok = isinstance(value, str) and re.match(EMAIL, value) is not None
        elif t == "phone":
            ok = isinstance(value, str) and re.match(E164, value) is not None
        else:
            ok = isinstance(value, str)
        if ok:
            return None
        expected = f"one of {', '.join(self.values)}" if t == "enum" else f"a {t}"
        return f"{self.name} must be {expected}, not {value!r}"

    def sql_valid(self, json_value: str) -> str:
        """A DuckDB condition: the JSON `json_value` is valid for this property."""
        text = f"({json_value} ->> '$')"
        kind = f"json_type({json_value})"
        t = self.type
        if t == "number":
            return f"{kind} IN ('BIGINT', 'UBIGINT', 'DOUBLE')"
        if t == "boolean":
            return f"{kind} = 'BOOLEAN'"
        if t == "date":
            return f"{kind} = 'VARCHAR' AND TRY_CAST({text} AS DATE) IS NOT NULL"
        if t == "enum":
            values = ", ".join(sql_text(v) for v in self.values)
            return f"{kind} = 'VARCHAR' AND {text} IN ({values})"
        if t == "email":
            return f"{kind} = 'VARCHAR' AND regexp_matches({text}, '{EMAIL}')"
        if t == "phone":
            return f"{kind} = 'VARCHAR' AND regexp_matches({text}, '{E164}')"
        return f"{kind} = 'VARCHAR'"


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def load_schema(path: Path | None) -> dict[str, Property]:
    """The declared properties (empty without a file)."""
    if path is None or not str(path):
        return {}
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PropertySchemaError(f"cannot read the property schema {path}: {exc}") from None
    out: dict[str, Property] = {}
    for name, spec in (data.get("properties") or {}).items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind not in TYPES:
            raise PropertySchemaError(
                f"{path}: property {name!r} needs a type ({', '.join(TYPES)})"
            )
        values = tuple(spec.get("values") or ())
        if kind == "enum" and not values:
            raise PropertySchemaError(f"{path}: enum property {name!r} needs `values`")
        match = spec.get("match", False)
        if not isinstance(match, bool):
            raise PropertySchemaError(f"{path}: `match` of property {name!r} is true or false")
        if match and kind in ("number", "boolean"):
            raise PropertySchemaError(
                f"{path}: property {name!r} is a {kind}; only string, date, enum, email and "
                "phone properties can be matched"
            )
        out[name] = Property(name, kind, values, match)
    return out


def validate(schema: dict[str, Property], attributes: dict[str, Any]) -> list[str]:
    """Problems of an attributes patch against the schema (empty when it is valid)."""
    return [p for k, v in attributes.items() if k in schema and (p := schema[k].problem(v))]


def typed_view_sql(schema: dict[str, Property]) -> str:
    """`contact_properties`: one typed column per declared property."""
    columns = [
        f'TRY_CAST(attributes ->> {sql_text(name)} AS {SQL_TYPES[p.type]}) AS "{name}"'
        for name, p in schema.items()
    ]
    return "SELECT contact_id" + "".join(f", {c}" for c in columns) + " FROM contacts"


def invalid_sql(schema: dict[str, Property], key: str = "j.key", value: str = "j.value") -> str:
    """A DuckDB condition: attribute (`key`, `value`) breaks its declared property."""
    if not schema:
        return "false"
    return " OR ".join(
        f"({key} = {sql_text(name)} AND NOT coalesce({p.sql_valid(value)}, false))"
        for name, p in schema.items()
    )


def property_errors_sql(schema: dict[str, Property], source: str) -> str:
    """Every declared attribute value in `source` interactions that breaks its rule, and why."""
    if not schema:
        return (
            "SELECT NULL::VARCHAR AS contact_id, NULL::VARCHAR AS interaction_id, "
            "NULL::VARCHAR AS key, NULL::VARCHAR AS value, NULL::VARCHAR AS reason WHERE false"
        )
    reasons = " ".join(
        f"WHEN {sql_text(name)} THEN "
        + sql_text(
            f"{name} must be "
            + (f"one of {', '.join(p.values)}" if p.type == "enum" else f"a {p.type}")
        )
        for name, p in schema.items()
    )
    return f"""
        SELECT i.contact_id, i.interaction_id, j.key, j.value::VARCHAR AS value,
               CASE j.key {reasons} END AS reason
        FROM {source} i, json_each(i.attributes::JSON) j
        WHERE i.attributes IS NOT NULL AND ({invalid_sql(schema)})
        ORDER BY i.contact_id, j.key, i.interaction_id
    """
