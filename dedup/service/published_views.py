"""Saved Contact Views copied into the published file: `saved_views` and `saved_view_members`.

Analysts query the published file, not `<db>.state/views.json`; so each run writes the views as
they stand (name, filter JSON, the filter in words, when and by whom saved) and their members,
computed inside the build file with `dedup.service.search.search_sql`, the SQL the CLI, the web page
and exports run: one meaning of a filter everywhere. A view saved after a run's build appears in
the file from the next run; the CLI and the API read views.json at once (docs/schema.md).

Relative filters ("first seen within 7 days") are evaluated at the build's instant, written as
`members_as_of`. A damaged view, or a views file that cannot be read, never costs the night:
the view (or the file) is reported in `problem` / the returned summary and the run publishes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from dedup.json_state import read_json
from dedup.service.search import ContactFilter, FilterError, has_postings, search_sql
from dedup.snapshot.analyst import load_fts

SAVED_VIEWS_SCHEMA: dict[str, pl.DataType] = {
    "name": pl.String(),
    "filter": pl.String(),
    "description": pl.String(),
    "created_at": pl.Datetime("us", "UTC"),
    "updated_at": pl.Datetime("us", "UTC"),
    "created_by": pl.String(),
    "members_as_of": pl.Datetime("us", "UTC"),
    "members": pl.Int64(),
    "problem": pl.String(),
}


@dataclass(frozen=True)
class PublishedViews:
    """What `publish_saved_views` wrote: view count, member rows, and problems in words."""

    views: int
    members: int
    problems: tuple[str, ...]


def describe(flt: ContactFilter) -> str:
    """The filter in words, e.g. `text "acme"; tags include vip; never used email`."""
    parts: list[str] = []
    if flt.text:
        parts.append(f"text {json.dumps(flt.text, ensure_ascii=False)}")
    for label, values in (
        ("tags include", flt.has_tags),
        ("tags exclude", flt.not_tags),
        ("used", flt.engaged),
        ("never used", flt.not_engaged),
    ):
        if values:
            parts.append(f"{label} {', '.join(values)}")
    if flt.created_within_days is not None:
        parts.append(f"first seen within {flt.created_within_days} days")
    for label, value in (
        ("first seen from", flt.created_after),
        ("first seen before", flt.created_before),
        ("last seen from", flt.last_seen_after),
        ("last seen before", flt.last_seen_before),
    ):
        if value is not None:
            parts.append(f"{label} {value.isoformat()}")
    if flt.audience is not None:
        parts.append(f"audience {flt.audience}")
    if flt.crm_sync_status is not None:
        parts.append(f"CRM sync {flt.crm_sync_status}")
    return "; ".join(parts)


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _members(con: duckdb.DuckDBPyConnection, name: str, flt: ContactFilter, now: datetime) -> int:
    """Insert the view's members with the search's own SQL, in DuckDB (a view of every contact
    of a 10M-contact file never passes through Python); how many."""
    if flt.text:
        load_fts(con)
    sql, params = search_sql(flt, now, postings=bool(flt.text) and has_postings(con))
    row = con.execute(
        f"INSERT INTO saved_view_members SELECT ?, contact_id FROM ({sql})", [name, *params]
    ).fetchone()
    return int(row[0]) if row else 0


def _view_row(
    con: duckdb.DuckDBPyConnection, name: str, entry: dict, now: datetime
) -> dict[str, object]:
    """One `saved_views` row; its members inserted on the way."""
    saved = _instant(entry.get("saved_at"))
    row: dict[str, object] = {
        "name": name,
        "filter": json.dumps(entry.get("filter"), sort_keys=True, separators=(",", ":")),
        "description": None,
        "created_at": _instant(entry.get("created_at")) or saved,
        "updated_at": saved,
        "created_by": entry.get("created_by"),
        "members_as_of": now,
        "members": None,
        "problem": None,
    }
    try:
        flt = ContactFilter.from_json(entry["filter"])
    except (FilterError, KeyError, TypeError, ValueError) as exc:
        row["problem"] = f"damaged filter, members not computed: {exc}"
        return row
    row["description"] = describe(flt)
    row["members"] = _members(con, name, flt, now)
    return row


def publish_saved_views(
    build_path: Path, views_path: Path, now: datetime | None = None
) -> PublishedViews:
    """Fill `saved_views` and `saved_view_members` of the (not yet published) build file.

    Args:
        build_path: the build file, after `dedup.snapshot.build.build_snapshot`.
        views_path: `<db>.state/views.json` (StateLayout.views_path).
        now: the instant relative filters are evaluated at (default: now).
    """
    now = now or datetime.now(UTC)
    try:
        entries = read_json(views_path, "views")
    except ValueError as exc:
        return PublishedViews(0, 0, (f"saved views not published: {exc}",))
    con = duckdb.connect(str(build_path))
    try:
        con.execute("BEGIN")
        con.execute("DELETE FROM saved_view_members")
        con.execute("DELETE FROM saved_views")
        rows = [
            _view_row(con, name, entry if isinstance(entry, dict) else {}, now)
            for name, entry in sorted(entries.items())
        ]
        con.register("_views", pl.DataFrame(rows, schema=SAVED_VIEWS_SCHEMA).to_arrow())
        con.execute(
            "INSERT INTO saved_views BY NAME SELECT * REPLACE (filter::JSON AS filter) FROM _views"
        )
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    problems = tuple(f"saved view {r['name']!r}: {r['problem']}" for r in rows if r["problem"])
    return PublishedViews(len(rows), sum(int(r["members"] or 0) for r in rows), problems)
