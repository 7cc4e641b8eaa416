"""Review-page admins (`contacts admin add / list / remove`): who may sign in to `contacts serve`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from contacts.cli.common import DbOption, err, fail, out

app = typer.Typer()
admin_app = typer.Typer(
    help="Admins who sign in to the review page (`contacts serve`).", no_args_is_help=True
)
app.add_typer(admin_app, name="admin")


def _admins(db: Path, action):
    from dedup.service.admins import AdminError, admins_path

    try:
        return action(admins_path(db))
    except AdminError as exc:
        fail(str(exc))


def _read_password() -> str:
    """A typed password (asked twice, hidden) or, from a pipe, the first line of stdin."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@admin_app.command("add")
def admin_add(
    name: Annotated[str, typer.Argument(help="The admin's name, recorded as `decided_by`.")],
    password: Annotated[
        bool,
        typer.Option(
            "--password",
            help="Set a password (typed, or read from stdin) instead of a generated token.",
        ),
    ] = False,
    db: DbOption = Path("contacts.duckdb"),
) -> None:
    """Add an admin; without --password prints a generated sign-in token (shown once)."""
    from dedup.service.admins import add_admin

    secret = _read_password() if password else None
    token = _admins(db, lambda path: add_admin(path, name, secret))
    if token is None:
        err.print(f"admin {name} added; sign in at the review page with that password")
        return
    err.print(f"admin {name} added; the sign-in token, shown once (only its hash is stored):")
    print(token)  # noqa: T201 - the one line a script captures


@admin_app.command("list")
def admin_list(db: DbOption = Path("contacts.duckdb")) -> None:
    """Admins by name (never their credentials)."""
    from dedup.service.admins import list_admins

    table = Table("admin", "created")
    for a in _admins(db, list_admins):
        table.add_row(a.name, a.created_at)
    out.print(table)


@admin_app.command("remove")
def admin_remove(name: str, db: DbOption = Path("contacts.duckdb")) -> None:
    """Remove an admin; a running server ends its sessions at their next request."""
    from dedup.service.admins import remove_admin

    _admins(db, lambda path: remove_admin(path, name))
    out.print(f"removed admin {name}")
