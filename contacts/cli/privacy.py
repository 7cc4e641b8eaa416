"""Erasure, deletion and verification: `erase`, `delete`, `restore`, `verify revoke`, `purge`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from contacts.cli.common import (
    NEXT_RUN,
    DbOption,
    cell,
    fail,
    out,
    review_action,
)

app = typer.Typer()


@app.command()
def erase(
    contact_id: Annotated[
        str | None, typer.Argument(help="The live contact to erase (GDPR right to erasure).")
    ] = None,
    confirm: Annotated[
        str | None, typer.Option(help="One of the contact's email addresses, to confirm.")
    ] = None,
    requests: Annotated[
        Path | None,
        typer.Option(help="Batch: a CSV of erasure requests (`email`, optional `request_id`)."),
    ] = None,
    db: DbOption = Path("contacts.duckdb"),
) -> None:
    """Erase a person: gone from the next published file, suppressed in every export after."""
    from dedup.service.review import erase_contact, erase_requests

    if requests is not None:
        if contact_id or confirm:
            fail("give CONTACT_ID --confirm EMAIL or --requests FILE, not both")
        done = review_action(lambda: erase_requests(db, requests))
        found = sum(len(d["contacts"]) for d in done)
        out.print(f"{len(done)} request(s), {found} contact(s) to erase; {NEXT_RUN}")
        return
    if not contact_id or not confirm:
        fail("give CONTACT_ID and --confirm EMAIL (or --requests FILE)")
    decision = review_action(lambda: erase_contact(db, contact_id, confirm))
    out.print(
        f"erasing {contact_id} ({decision}): its identifiers are suppressed now; the contact and "
        f"its data leave the published file at the next `contacts run`"
    )


@app.command()
def delete(
    contact_ids: Annotated[list[str], typer.Argument(help="Live contact ids (at most 200).")],
    db: DbOption = Path("contacts.duckdb"),
) -> None:
    """Delete contacts: hidden everywhere at once, restorable for 30 days, then purged for good.

    Not an erasure: nothing is suppressed, a person who writes again becomes a new contact. To
    delete by filter or saved view, use `contacts bulk delete`.
    """
    from dedup.service.review import delete_contacts

    done = review_action(lambda: delete_contacts(db, contact_ids))
    out.print(
        f"deleted {len(done)} contact(s): hidden from the review page and the API now, from the "
        f"published file at the next `contacts run`; `contacts restore` undoes it for 30 days"
    )


@app.command()
def restore(
    contact_ids: Annotated[
        list[str] | None, typer.Argument(help="Deleted contact ids; none: list the restorable.")
    ] = None,
    db: DbOption = Path("contacts.duckdb"),
) -> None:
    """Bring deleted contacts back exactly as they were (within 30 days of the deletion)."""
    import polars as pl

    from dedup.admin.deletion import DELETED
    from dedup.service.review import deletions, restore_contacts

    if not contact_ids:
        waiting = review_action(lambda: deletions(db)).filter(pl.col("status") == DELETED)
        table = Table("contact", "deleted at", "by", "restorable until", "interactions")
        for row in waiting.iter_rows(named=True):
            table.add_row(
                row["contact_id"],
                cell(row["deleted_at"]),
                cell(row["deleted_by"]),
                cell(row["restorable_until"]),
                f"{row['interactions']:,}",
            )
        out.print(table if waiting.height else "no deleted contact can be restored")
        return
    done = review_action(lambda: restore_contacts(db, contact_ids))
    out.print(f"restoring {len(done)} contact(s) as they were; {NEXT_RUN}")


verify_app = typer.Typer(help="Identity verification.", no_args_is_help=True)
app.add_typer(verify_app, name="verify")


@verify_app.command("revoke")
def verify_revoke(contact_id: str, db: DbOption = Path("contacts.duckdb")) -> None:
    """Stop trusting a contact's verified identity; its next session must verify again."""
    from dedup.service.review import revoke_verification

    decision = review_action(lambda: revoke_verification(db, contact_id))
    out.print(f"revoked the verification of {contact_id} ({decision}); {NEXT_RUN}")


@app.command()
def purge(
    db: DbOption = Path("contacts.duckdb"),
    work_days: Annotated[
        int, typer.Option(help="Delete build leftovers and work files older than this.")
    ] = 30,
    backup_days: Annotated[int, typer.Option(help="Delete backups older than this.")] = 90,
) -> None:
    """Retention: delete stale build files, old work files and old backups of the state."""
    from dedup.snapshot.retention import RetentionPolicy
    from dedup.snapshot.retention import purge as run_purge

    if not db.exists() and not (db.parent / (db.name + ".state")).exists():
        fail(f"nothing to purge for {db}")
    removed = review_action(lambda: run_purge(db, RetentionPolicy(work_days, backup_days)))
    out.print(f"purged {len(removed)} file(s)")
    for path in removed:
        out.print(f"  {path}", highlight=False)
