"""What every `contacts` command shares: the consoles, the one-line failure, `--db`, the published file.

Imports nothing from the other command modules (they all import this one).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

T = TypeVar("T")

err = Console(stderr=True)
# Piped or captured output gets wide tables: a script reading ids must not get them cut.
out = Console() if sys.stdout.isatty() else Console(width=240)

# `CONTACTS_DB` is the variable the code location reads too (assets.resources.SETTINGS_ENV).
DbOption = Annotated[
    Path,
    typer.Option(
        "--db",
        envvar="CONTACTS_DB",
        help="The published DuckDB file (its state folder sits beside it).",
    ),
]

NEXT_RUN = "takes effect at the next `contacts run`"

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the rows as one JSON array on stdout (for scripts).")
]


def _jsonable(value: object) -> object:
    if hasattr(value, "isoformat"):  # datetime, date, time
        return value.isoformat()  # type: ignore[union-attr]
    return str(value)  # Decimal, UUID, bytes: their text


def print_json(rows: list[dict]) -> None:
    """`--json`: the rows as a JSON array of objects on stdout, unwrapped and unstyled (dates as
    ISO 8601 text, lists as arrays)."""
    import json

    sys.stdout.write(json.dumps(rows, default=_jsonable, ensure_ascii=False) + "\n")


def fail(message: str) -> None:
    """Exit non-zero with one line a person can act on."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)


def review_action(action: Callable[[], T]) -> T:
    """Run a dedup.service.review action; its ReviewError (or a damaged decision log) becomes
    the CLI's one-line error."""
    from dedup.decisions import DecisionLogError
    from dedup.service.review import ReviewError

    try:
        return action()
    except (ReviewError, DecisionLogError) as exc:
        fail(str(exc))
        raise  # unreachable: fail() exits


def published_file(db: Path):
    """The published file, read-only; a missing or locked file is the one-line error."""
    from dedup.service.review import open_published

    return review_action(lambda: open_published(db))


def cell(value) -> str:
    if value is None:
        return "∅"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
