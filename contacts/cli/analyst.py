"""Analyst commands: `contacts search`, `export`, `views ...`, `bulk ...`, `sql`.

Every command calls the same functions (dedup.service.search, saved_views, export) that the
Dagster assets and the web page use.
"""

from __future__ import annotations

import functools
import inspect
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from contacts.cli.common import (
    NEXT_RUN,
    DbOption,
    JsonOption,
    fail,
    out,
    print_json,
    published_file,
    review_action,
)

app = typer.Typer()

views_app = typer.Typer(help="Saved Contact Views: named filters to list, run and export.")

Tag = Annotated[list[str] | None, typer.Option("--tag", help="Has this tag (repeatable: all).")]
NotTag = Annotated[
    list[str] | None, typer.Option("--not-tag", help="Does not have this tag (repeatable).")
]
Channel = Annotated[
    list[str] | None,
    typer.Option("--channel", help="Engaged via this channel (repeatable: all of them)."),
]
NotChannel = Annotated[
    list[str] | None,
    typer.Option("--not-channel", help="Never engaged via this channel (repeatable)."),
]
CreatedWithin = Annotated[
    int | None, typer.Option("--created-within", help="First seen within the last N days.")
]
CreatedAfter = Annotated[
    str | None, typer.Option("--created-after", help="First seen at/after (ISO 8601, UTC if bare).")
]
CreatedBefore = Annotated[str | None, typer.Option("--created-before", help="First seen before.")]
SeenAfter = Annotated[str | None, typer.Option("--seen-after", help="Last seen at/after.")]
SeenBefore = Annotated[str | None, typer.Option("--seen-before", help="Last seen before.")]
Audience = Annotated[str | None, typer.Option("--audience", help="Audience equals.")]
CrmStatus = Annotated[
    str | None, typer.Option("--crm-status", help="CRM sync state equals ('none' = no state).")
]
Text = Annotated[
    str | None, typer.Argument(help="Words to find in name, email, company or attributes.")
]


def _filter(
    text: str | None,
    tag: list[str] | None,
    not_tag: list[str] | None,
    channel: list[str] | None,
    not_channel: list[str] | None,
    created_within: int | None,
    created_after: str | None,
    created_before: str | None,
    seen_after: str | None,
    seen_before: str | None,
    audience: str | None,
    crm_status: str | None,
):
    from dedup.service.search import ContactFilter, FilterError, parse_instant

    def instant(value: str | None) -> datetime | None:
        return parse_instant(value) if value else None

    try:
        return ContactFilter(
            text=text,
            has_tags=tuple(tag or ()),
            not_tags=tuple(not_tag or ()),
            engaged=tuple(c.lower() for c in channel or ()),
            not_engaged=tuple(c.lower() for c in not_channel or ()),
            created_within_days=created_within,
            created_after=instant(created_after),
            created_before=instant(created_before),
            last_seen_after=instant(seen_after),
            last_seen_before=instant(seen_before),
            audience=audience,
            crm_sync_status=crm_status,
        )
    except FilterError as exc:
        fail(str(exc))


# The Contacts-page filters every selecting command takes, spliced into its signature by
# `with_filters` (Typer reads a command's options from its signature).
FILTER_OPTIONS = {
    "tag": Tag,
    "not_tag": NotTag,
    "channel": Channel,
    "not_channel": NotChannel,
    "created_within": CreatedWithin,
    "created_after": CreatedAfter,
    "created_before": CreatedBefore,
    "seen_after": SeenAfter,
    "seen_before": SeenBefore,
    "audience": Audience,
    "crm_status": CrmStatus,
}
TextOption = Annotated[str | None, typer.Option("--text", help="Full-text words.")]


def with_filters(command):
    """Give `command` the filter options; it receives them as one `flt` (a ContactFilter).

    The full text comes from the command's own `text` parameter when it has one (an argument for
    `search`), else from a `--text` option added here.
    """
    own = inspect.signature(command, eval_str=True)
    kept = [p for p in own.parameters.values() if p.name != "flt"]
    has_text = "text" in own.parameters
    extra = [] if has_text else [("text", TextOption)]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=kind)
        for name, kind in [*extra, *FILTER_OPTIONS.items()]
    ]

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        values = {name: kwargs.pop(name) for name in FILTER_OPTIONS}
        text = kwargs.get("text") if has_text else kwargs.pop("text")
        return command(*args, flt=_filter(text, **values), **kwargs)

    wrapper.__signature__ = own.replace(parameters=[*kept, *added])  # type: ignore[attr-defined]
    return wrapper


def _show(frame, limit: int) -> None:
    table = Table(
        "contact", "name", "email", "channels", "audience", "conversations", "tags", "last seen"
    )
    for row in frame.head(limit).iter_rows(named=True):
        table.add_row(
            row["contact_id"],
            row["name"] or "∅",
            row["email"] or "∅",
            ", ".join(row["channels"] or []),
            row["audience"] or "∅",
            str(row["conversation_count"]),
            ", ".join(row["tags"] or []),
            str(row["last_seen"])[:19],
        )
    out.print(table)


def _run_search(db: Path, flt, limit: int, json_: bool = False) -> None:
    from dedup.service.review import hidden_ids
    from dedup.service.search import FilterError, count, search

    hidden = hidden_ids(db)
    con = published_file(db)
    try:
        total = count(con, flt, hidden=hidden)
        frame = search(con, flt, limit=limit, hidden=hidden)
    except FilterError as exc:
        fail(str(exc))
    finally:
        con.close()
    if json_:
        print_json(frame.head(limit).to_dicts())
        return
    _show(frame, limit)
    out.print(f"{total:,} contact(s) match" + (f"; showing {limit}" if total > limit else ""))


@with_filters
def search_command(
    text: Text = None,
    db: DbOption = Path("contacts.duckdb"),
    limit: Annotated[int, typer.Option(help="Rows to show at most.")] = 50,
    json_: JsonOption = False,
    *,
    flt,
) -> None:
    """Find contacts: full text plus tag, channel, date, audience and CRM filters."""
    _run_search(db, flt, limit, json_)


@with_filters
def export_command(
    out_file: Annotated[Path, typer.Option("--out", help="CSV file to write.")],
    db: DbOption = Path("contacts.duckdb"),
    view: Annotated[str | None, typer.Option("--view", help="Export a saved view.")] = None,
    max_rows: Annotated[
        int | None,
        typer.Option(
            "--max-rows", help="Refuse (write nothing) when more contacts match, e.g. 200."
        ),
    ] = None,
    *,
    flt,
) -> None:
    """Export every live contact, a saved view's or a filter's to CSV, checked before it is written."""
    from dedup.layout import StateLayout
    from dedup.service.export import ExportError, check_export_target, export_contacts
    from dedup.service.saved_views import ViewError, get_view
    from dedup.service.search import FilterError
    from quality.export_checks import check_export_file

    try:
        check_export_target(out_file, db)
    except ExportError as exc:
        fail(str(exc))
    if view is not None:
        if not flt.is_empty():
            fail("give either --view or filters, not both")
        try:
            flt = get_view(StateLayout(db).views_path, view).filter
        except ViewError as exc:
            fail(str(exc))
    from dedup.service.review import hidden_ids

    hidden = hidden_ids(db)
    con = published_file(db)
    try:
        result = export_contacts(
            con, flt, out_file, check_export_file(), max_rows=max_rows, hidden=hidden
        )
    except (ExportError, FilterError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {out_file}: {exc.strerror or exc}")
    finally:
        con.close()
    out.print(f"wrote {result.rows:,} contact(s) to {result.path} in {result.seconds:.2f}s")


@views_app.command("save")
@with_filters
def views_save(
    name: Annotated[str, typer.Argument(help="Name of the view.")],
    db: DbOption = Path("contacts.duckdb"),
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite a view of that name.")
    ] = False,
    *,
    flt,
) -> None:
    """Save a filter under a name (kept in the state folder; never lost to a run)."""
    from dedup.layout import StateLayout
    from dedup.service.saved_views import ViewError, save_view

    try:
        save_view(StateLayout(db).views_path, name, flt, replace=replace)
    except ViewError as exc:
        fail(str(exc))
    out.print(f"saved view {name!r}: {flt.to_json()}")


@views_app.command("list")
def views_list(db: DbOption = Path("contacts.duckdb")) -> None:
    """Saved views and their filters."""
    from dedup.layout import StateLayout
    from dedup.service.saved_views import ViewError, list_views

    try:
        views = list_views(StateLayout(db).views_path)
    except ViewError as exc:
        fail(str(exc))
    table = Table("view", "filter", "saved at")
    for v in views:
        table.add_row(v.name, str(v.filter.to_json()), v.saved_at.isoformat(timespec="seconds"))
    out.print(table)


@views_app.command("show")
def views_show(name: str, db: DbOption = Path("contacts.duckdb")) -> None:
    """A saved view's filter."""
    import json

    from dedup.layout import StateLayout
    from dedup.service.saved_views import ViewError, get_view

    try:
        view = get_view(StateLayout(db).views_path, name)
    except ViewError as exc:
        fail(str(exc))
    out.print(json.dumps(view.filter.to_json(), indent=2))


@views_app.command("run")
def views_run(
    name: str,
    db: DbOption = Path("contacts.duckdb"),
    limit: Annotated[int, typer.Option(help="Rows to show at most.")] = 50,
) -> None:
    """Run a saved view on the published file."""
    from dedup.layout import StateLayout
    from dedup.service.saved_views import ViewError, get_view

    try:
        view = get_view(StateLayout(db).views_path, name)
    except ViewError as exc:
        fail(str(exc))
    _run_search(db, view.filter, limit)


@views_app.command("delete")
def views_delete(name: str, db: DbOption = Path("contacts.duckdb")) -> None:
    """Delete a saved view."""
    from dedup.layout import StateLayout
    from dedup.service.saved_views import ViewError, delete_view

    try:
        delete_view(StateLayout(db).views_path, name)
    except ViewError as exc:
        fail(str(exc))
    out.print(f"deleted view {name!r}")


bulk_app = typer.Typer(
    help="Bulk actions on at most 200 contacts: tag, untag, audience, CRM re-sync.",
    no_args_is_help=True,
)

Ids = Annotated[
    list[str] | None, typer.Option("--id", help="A contact id (repeatable); or use filters.")
]
View = Annotated[str | None, typer.Option("--view", help="A saved view's contacts.")]


def _bulk(action: str, value: str | None, db: Path, ids, view, flt) -> None:
    from dedup.layout import StateLayout
    from dedup.service.review import bulk_edit, select_contacts
    from dedup.service.saved_views import ViewError, get_view

    def chosen() -> list[str]:
        if view:
            try:
                saved = get_view(StateLayout(db).views_path, view)
            except ViewError as exc:
                fail(str(exc))
            return select_contacts(db, flt=saved.filter)
        return select_contacts(db, contact_ids=ids, flt=None if flt.is_empty() else flt)

    targets = review_action(chosen)
    review_action(lambda: bulk_edit(db, action, targets, value))
    out.print(
        f"{action} {value or ''} on {len(targets)} contact(s): shown as pending now; {NEXT_RUN}"
    )


def _bulk_command(action: str, takes_value: bool):
    @with_filters
    def command(
        value: Annotated[str, typer.Argument(help="The tag or audience.")] = "",
        db: DbOption = Path("contacts.duckdb"),
        id: Ids = None,
        view: View = None,
        *,
        flt,
    ) -> None:
        if takes_value and not value:
            fail(f"`bulk {action}` needs a value")
        _bulk(action, value or None, db, id, view, flt)

    command.__doc__ = {
        "tag-add": "Add a tag to the selected contacts (≤ 200).",
        "tag-remove": "Remove a tag from the selected contacts (≤ 200).",
        "audience": "Set the audience of the selected contacts (≤ 200).",
        "crm-resync": "Force a CRM re-sync of the selected contacts (≤ 200).",
        "delete": "Delete the selected contacts (≤ 200); `contacts restore` within 30 days.",
    }[action]
    return command


for _action, _takes in (
    ("tag-add", True),
    ("tag-remove", True),
    ("audience", True),
    ("crm-resync", False),
    ("delete", False),
):
    bulk_app.command(_action)(_bulk_command(_action, _takes))


app.command("search")(search_command)
app.command("export")(export_command)
app.add_typer(views_app, name="views")
app.add_typer(bulk_app, name="bulk")


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="A SQL query over the published tables.")],
    db: DbOption = Path("contacts.duckdb"),
    limit: Annotated[int, typer.Option(help="Rows to show at most.")] = 50,
    json_: JsonOption = False,
) -> None:
    """Query the published file read-only (for machines without the `duckdb` CLI)."""
    import duckdb

    con = published_file(db)
    try:
        rel = con.sql(query)
        if rel is None:
            fail("the statement returned no rows; only queries are allowed on the published file")
        columns, rows = rel.columns, rel.fetchmany(limit)
    except duckdb.Error as exc:
        fail(str(exc).splitlines()[0])
    finally:
        con.close()
    if json_:
        print_json([dict(zip(columns, row, strict=True)) for row in rows])
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*("∅" if v is None else str(v) for v in row))
    out.print(table)
