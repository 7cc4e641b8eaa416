"""Agent notes and tasks on a contact: `contacts note ...`, `contacts task ...`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table

from contacts.cli.common import (
    DbOption,
    cell,
    fail,
    out,
    review_action,
)

app = typer.Typer()


note_app = typer.Typer(help="Agent-only contact notes.", no_args_is_help=True)
app.add_typer(note_app, name="note")


@note_app.command("add")
def note_add(
    contact_id: str,
    text: Annotated[str, typer.Argument(help="The note.")],
    db: DbOption = Path("contacts.duckdb"),
) -> None:
    """Add a note to a contact (kept through merges and unmerges)."""
    from dedup.service.review import add_note

    decision = review_action(lambda: add_note(db, contact_id, text))
    out.print(f"note added to {contact_id} ({decision}); shown at once by `contacts show`")


task_app = typer.Typer(help="Contact tasks (follow-ups with a due date).", no_args_is_help=True)
app.add_typer(task_app, name="task")


@task_app.command("add")
def task_add(
    contact_id: str,
    title: Annotated[str, typer.Argument(help="What to do.")],
    due: Annotated[str | None, typer.Option(help="3d, 12h, 2w or an ISO date.")] = None,
    assignee: Annotated[str | None, typer.Option(help="Who does it.")] = None,
    db: DbOption = Path("contacts.duckdb"),
) -> None:
    """Add a task to a contact (it follows the contact through merges and unmerges)."""
    from dedup.service.review import add_task

    task_id = review_action(lambda: add_task(db, contact_id, title, due, assignee))
    out.print(f"task {task_id} added to {contact_id}")


@task_app.command("list")
def task_list(
    status: Annotated[
        str, typer.Option(help="open (incl. overdue), overdue, done or all.")
    ] = "open",
    assignee: Annotated[str | None, typer.Option(help="Only this assignee's.")] = None,
    db: DbOption = Path("contacts.duckdb"),
) -> None:
    """Tasks across contacts, due first."""
    import polars as pl

    from dedup.service.review import tasks

    if status not in {"open", "overdue", "done", "all"}:
        fail(f"unknown status '{status}' (open, overdue, done or all)")
    frame = review_action(lambda: tasks(db))
    wanted = {"open": ["open", "overdue"], "overdue": ["overdue"], "done": ["done"]}.get(status)
    if wanted:
        frame = frame.filter(pl.col("status").is_in(wanted))
    if assignee:
        frame = frame.filter(pl.col("assignee") == assignee)
    table = Table(
        Column("task", no_wrap=True),
        Column("contact", no_wrap=True),
        "title",
        "assignee",
        "due",
        "status",
    )
    for t in frame.sort("due_at", "created_at", nulls_last=True).iter_rows(named=True):
        table.add_row(
            *map(
                cell,
                (
                    t["task_id"],
                    t["contact_id"],
                    t["title"],
                    t["assignee"],
                    t["due_at"],
                    t["status"],
                ),
            )
        )
    out.print(table)


@task_app.command("done")
def task_done(task_id: str, db: DbOption = Path("contacts.duckdb")) -> None:
    """Complete a task."""
    from dedup.service.review import complete_task

    review_action(lambda: complete_task(db, task_id))
    out.print(f"task {task_id} done")
