"""The review page and Contact API server (`contacts serve`) and its API keys (`contacts apikey ...`).

Admins who sign in to the page are `contacts admin ...` (cli/admin.py).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from contacts.cli.common import (
    DbOption,
    err,
    fail,
    out,
)

app = typer.Typer()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def _allowed_hosts(given: list[str] | None) -> list[str]:
    """`--allowed-host` values, else CONTACTS_ALLOWED_HOSTS (comma-separated)."""
    if given:
        return given
    return [h.strip() for h in os.environ.get("CONTACTS_ALLOWED_HOSTS", "").split(",") if h.strip()]


@app.command()
def serve(
    db: DbOption = Path("contacts.duckdb"),
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    host: Annotated[
        str,
        typer.Option(
            help="Address to bind; any but loopback needs an admin (`contacts admin add`)."
        ),
    ] = "127.0.0.1",
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="A Host name to answer besides 127.0.0.1 and localhost (repeatable; "
            "env CONTACTS_ALLOWED_HOSTS, comma-separated).",
        ),
    ] = None,
    requests_per_minute: Annotated[
        int, typer.Option(help="Contact API calls per key per minute before 429.")
    ] = 120,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes (uvicorn workers); the rate limit is shared out among them.",
        ),
    ] = 1,
) -> None:
    """The admins' review web page (proposal queue, review cards, contact pages with undo)."""
    import uvicorn

    from contacts.web import create_app
    from dedup.service.admins import AdminError, admins_path, list_admins

    if not db.exists():
        fail(f"no published file at {db}; run `contacts run` or `contacts demo` first")
    try:
        has_admins = bool(list_admins(admins_path(db)))
    except AdminError as exc:
        fail(str(exc))
    if not _loopback(host) and not has_admins:
        fail(
            f"refusing to listen on {host} with no admin to sign in; add one with `contacts admin add NAME --db {db}`"
        )
    if not has_admins:
        err.print(
            f"no admin yet: the page asks for a sign-in; add one with `contacts admin add NAME --db {db}`"
        )
    hosts = _allowed_hosts(allowed_host)
    err.print(f"review page on http://{host}:{port}/ (Ctrl+C to stop)")
    properties = os.environ.get("CONTACTS_PROPERTIES_FILE") or None
    if workers > 1:
        _serve_workers(db, host, port, requests_per_minute, properties, hosts, workers)
        return
    uvicorn.run(
        create_app(
            db,
            requests_per_minute=requests_per_minute,
            properties_file=Path(properties) if properties else None,
            allowed_hosts=hosts,
        ),
        host=host,
        port=port,
        log_level="warning",
    )


def _serve_workers(
    db: Path,
    host: str,
    port: int,
    requests_per_minute: int,
    properties: str | None,
    hosts: list[str],
    workers: int,
) -> None:
    """uvicorn with `workers` processes; each builds its app from the options in the environment
    (contacts.web.app.app_from_environment) and allows 1/workers of the rate limit."""
    import json

    import uvicorn

    from contacts.web.app import SERVE_ENV

    os.environ[SERVE_ENV] = json.dumps(
        {
            "db": str(db.resolve()),
            "requests_per_minute": requests_per_minute,
            "properties_file": properties,
            "allowed_hosts": hosts,
            "workers": workers,
        }
    )
    uvicorn.run(
        "contacts.web.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )


apikey_app = typer.Typer(help="API keys for the Contact API (/v1/contacts).", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")


def _keys(db: Path, action):
    from dedup.layout import StateLayout
    from dedup.service.apikeys import ApiKeyError

    try:
        return action(StateLayout(db).api_keys_path)
    except ApiKeyError as exc:
        fail(str(exc))


@apikey_app.command("create")
def apikey_create(
    scope: Annotated[str, typer.Option(help="read or write (write includes read).")],
    name: Annotated[str, typer.Option(help="What the key is for.")] = "",
    db: DbOption = Path("contacts.duckdb"),
) -> None:
    """Print a new `ak_...` key (shown once; only its hash is stored)."""
    from dedup.service.apikeys import create_key

    key, record = _keys(db, lambda path: create_key(path, scope, name))
    err.print(f"{record.key_id} ({record.scope}); store the key now, it is not shown again:")
    print(key)  # noqa: T201 - the one line a script captures


@apikey_app.command("list")
def apikey_list(db: DbOption = Path("contacts.duckdb")) -> None:
    """Keys by id, scope and state (never the keys themselves)."""
    from dedup.service.apikeys import list_keys

    table = Table("key id", "scope", "name", "created", "revoked")
    for k in _keys(db, list_keys):
        table.add_row(k.key_id, k.scope, k.name, k.created_at, k.revoked_at or "")
    out.print(table)


@apikey_app.command("revoke")
def apikey_revoke(key_id: str, db: DbOption = Path("contacts.duckdb")) -> None:
    """Revoke a key at once (requests with it get 401)."""
    from dedup.service.apikeys import revoke_key

    record = _keys(db, lambda path: revoke_key(path, key_id))
    out.print(f"revoked {record.key_id}")
