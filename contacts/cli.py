"""The `contacts` command."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    name="contacts",
    help=(
        "Turn chat-platform exports (widget, WhatsApp, Slack, email, SMS, CRM) into one contact per "
        "person, published as a DuckDB file analysts can query.\n\n"
        "Start with `contacts demo`; point `contacts run` at your own exports folder after that."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True)
out = Console()

DbOption = Annotated[
    Path, typer.Option("--db", help="The published DuckDB file (its state folder sits beside it).")
]


def fail(message: str) -> None:
    """Exit non-zero with one line a person can act on."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)


def _settings(exports: Path, db: Path, region: str):
    from assets.resources import ContactsSettings, workspace_from_env

    return ContactsSettings(
        exports_dir=str(exports),
        db_path=str(db),
        default_region=region,
        **workspace_from_env(),  # type: ignore[arg-type]
    )


def _run(exports: Path, db: Path, region: str, retrain: bool = False):
    from contacts.runner import PipelineError, run_pipeline

    with err.status("starting…") as status:
        try:
            return run_pipeline(
                _settings(exports, db, region), progress=lambda m: status.update(m), retrain=retrain
            )
        except PipelineError as exc:
            fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - the CLI promises one line, not a traceback
            fail(
                f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            )


def _print_summary(summary, title: str) -> None:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_row("published file", str(summary.db_path.resolve()))
    table.add_row("interactions", f"{summary.interactions:,}")
    table.add_row("contacts", f"{summary.contacts:,}")
    table.add_row("quarantined records", f"{summary.quarantined:,}")
    table.add_row("merges (all time)", f"{summary.merges:,}")
    table.add_row("redirected contact ids", f"{summary.redirects:,}")
    table.add_row("ambiguous keys not merged", f"{summary.ambiguous_keys:,}")
    table.add_row("merge proposals pending", f"{summary.pending_proposals:,}")
    table.add_row("seconds", f"{summary.seconds:.1f}")
    out.print(table)


@app.command()
def run(
    exports: Annotated[
        Path, typer.Option("--exports", help="EXPORTS folder: <source>/<YYYY-MM-DD>/<files>.")
    ],
    db: DbOption = Path("contacts.duckdb"),
    region: Annotated[
        str, typer.Option(help="Region for phone numbers written without a country code.")
    ] = "US",
    retrain: Annotated[
        bool,
        typer.Option("--retrain", help="Retrain the matching model even if the saved one fits."),
    ] = False,
) -> None:
    """Run the nightly job: ingest changed export days, auto-merge, propose merges, publish."""
    if not exports.is_dir():
        fail(f"exports folder not found: {exports}")
    summary = _run(exports, db, region, retrain)
    _print_summary(summary, "contacts run")


@app.command()
def demo(
    folder: Annotated[
        Path, typer.Option("--dir", help="Where to write the sample exports and the result.")
    ] = Path("contacts-demo"),
    db: Annotated[
        Path | None, typer.Option("--db", help="Published file (default DIR/contacts.duckdb).")
    ] = None,
    persons: Annotated[int, typer.Option(help="People in the sample.")] = 300,
    days: Annotated[int, typer.Option(help="Export days; one nightly run per day.")] = 7,
) -> None:
    """Make a realistic sample exports folder and run the job on it, one night per export day."""
    from contacts.generator import GeneratorConfig, generate_exports

    db = db or folder / "contacts.duckdb"
    if folder.exists():
        shutil.rmtree(folder)
    incoming = folder / "incoming"
    exports = folder / "exports"
    # Sign the sample's identities with the caller's secret if there is one, so they verify.
    secret = os.environ.setdefault("ASKVAULT_IDENTITY_SECRET", GeneratorConfig.secret)
    config = GeneratorConfig(persons=persons, days=days, secret=secret, native=True)
    with err.status("generating sample exports…"):
        generated = generate_exports(incoming, config)
    summary = None
    # Every source's day folder lands on its night, as a provider's daily export would.
    sources = [d.name for d in sorted(incoming.iterdir()) if not d.name.startswith("_")]
    for day in sorted({d.name for s in sources for d in (incoming / s).iterdir()}):
        for source in sources:
            day_dir = incoming / source / day
            if day_dir.is_dir():
                target = exports / source / day
                target.parent.mkdir(parents=True, exist_ok=True)
                day_dir.rename(target)
        err.print(f"night of {day}")
        summary = _run(exports, db, "US")
    assert summary is not None
    out.print(
        f"Generated {generated.interactions:,} interactions of {generated.persons:,} people "
        f"({generated.bad_records} malformed on purpose) under {exports}."
    )
    _print_summary(summary, "contacts demo: last night's run")
    out.print(
        f'Query it:  duckdb -readonly {db} "SELECT name, email, channels, audience, '
        'conversation_count FROM contacts ORDER BY conversation_count DESC LIMIT 10"'
    )


proposals_app = typer.Typer(
    help="Review merges that probabilistic matching suggests.", no_args_is_help=True
)
app.add_typer(proposals_app, name="proposals")


def _published(db: Path):
    import duckdb

    if not db.exists():
        fail(f"no published file at {db}; run `contacts run` or `contacts demo` first")
    try:
        return duckdb.connect(str(db), read_only=True)
    except duckdb.Error as exc:
        fail(f"cannot open {db}: {str(exc).splitlines()[0]}")


@proposals_app.command("list")
def proposals_list(
    db: DbOption = Path("contacts.duckdb"),
    status: Annotated[str, typer.Option(help="pending, rejected, superseded or all.")] = "pending",
    min_probability: Annotated[float, typer.Option(help="Hide proposals below this.")] = 0.0,
    limit: Annotated[int, typer.Option(help="Rows to show at most.")] = 50,
) -> None:
    """List merge proposals, most probable first."""
    if status not in {"pending", "rejected", "superseded", "accepted", "all"}:
        fail(f"unknown status '{status}' (pending, rejected, superseded, accepted or all)")
    con = _published(db)
    try:
        rows = con.execute(
            """
            SELECT p.proposal_id, round(p.match_probability, 3), p.status,
                   l.name, l.email, r.name, r.email
            FROM merge_proposals p
            LEFT JOIN contacts l ON l.contact_id = p.contact_id_l
            LEFT JOIN contacts r ON r.contact_id = p.contact_id_r
            WHERE (? = 'all' OR p.status = ?) AND coalesce(p.match_probability, 1) >= ?
            ORDER BY p.match_probability DESC NULLS LAST, p.proposal_id LIMIT ?
            """,
            [status, status, min_probability, limit],
        ).fetchall()
    finally:
        con.close()
    table = Table(
        "proposal", "probability", "status", "left name", "left email", "right name", "right email"
    )
    for row in rows:
        table.add_row(*("∅" if v is None else str(v) for v in row))
    out.print(table)


@proposals_app.command("show")
def proposals_show(proposal_id: str, db: DbOption = Path("contacts.duckdb")) -> None:
    """Both contacts side by side and the per-field explanation of the score."""
    import json

    con = _published(db)
    try:
        found = con.execute(
            "SELECT * FROM merge_proposals WHERE proposal_id = ?", [proposal_id]
        ).fetchall()
        if not found:
            fail(f"no proposal {proposal_id} in {db}")
        cols = [d[0] for d in con.description]
        proposal = dict(zip(cols, found[0], strict=True))
        fields = [
            "contact_id",
            "name",
            "email",
            "phone",
            "company",
            "channels",
            "audience",
            "last_seen",
        ]
        sides = []
        for cid in (proposal["contact_id_l"], proposal["contact_id_r"]):
            got = con.execute(
                f"SELECT {', '.join(fields)} FROM contacts WHERE contact_id = ?", [cid]
            ).fetchall()
            sides.append(dict(zip(fields, got[0], strict=True)) if got else {"contact_id": cid})
    finally:
        con.close()
    out.print(
        f"{proposal_id}: {proposal['status']}, match probability {proposal['match_probability']:.3f} "
        f"(weight {proposal['match_weight']:.2f})"
    )
    table = Table("field", "left", "right")
    for f in fields:
        left, right = sides[0].get(f), sides[1].get(f)
        style = "bold yellow" if left != right else None
        table.add_row(
            f, "∅" if left is None else str(left), "∅" if right is None else str(right), style=style
        )
    out.print(table)
    why = Table("field", "level reached", "weight")
    for item in json.loads(proposal["explanation"] or "[]"):
        why.add_row(item["field"], item["level"], f"{item['weight']:+.2f}")
    out.print(why)


@proposals_app.command("reject")
def proposals_reject(
    proposal_id: str,
    db: DbOption = Path("contacts.duckdb"),
    note: Annotated[str | None, typer.Option(help="Why, for the audit log.")] = None,
) -> None:
    """Reject a proposal: the pair is never proposed again. Applied by the next run."""
    from dedup.decisions import REJECT_PROPOSAL, Decision, append
    from dedup.snapshot import StateLayout

    con = _published(db)
    try:
        found = con.execute(
            "SELECT contact_id_l, contact_id_r, status FROM merge_proposals WHERE proposal_id = ?",
            [proposal_id],
        ).fetchall()
    finally:
        con.close()
    if not found:
        fail(f"no proposal {proposal_id} in {db}")
    left, right, status = found[0]
    if status != "pending":
        fail(f"proposal {proposal_id} is {status}, not pending")
    decision_id = append(
        StateLayout(db).decisions_path,
        Decision(
            kind=REJECT_PROPOSAL,
            proposal_id=proposal_id,
            contact_id_l=left,
            contact_id_r=right,
            note=note,
        ),
    )
    out.print(f"rejected {proposal_id} ({decision_id}); the next `contacts run` publishes it")


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="A SQL query over the published tables.")],
    db: DbOption = Path("contacts.duckdb"),
    limit: Annotated[int, typer.Option(help="Rows to show at most.")] = 50,
) -> None:
    """Query the published file read-only (for machines without the `duckdb` CLI)."""
    import duckdb

    if not db.exists():
        fail(f"no published file at {db}; run `contacts run` or `contacts demo` first")
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error as exc:
        fail(f"cannot open {db}: {exc}")
    try:
        rel = con.sql(query)
        if rel is None:
            fail("the statement returned no rows; only queries are allowed on the published file")
        columns, rows = rel.columns, rel.fetchmany(limit)
    except duckdb.Error as exc:
        fail(str(exc).splitlines()[0])
    finally:
        con.close()
    table = Table(*columns)
    for row in rows:
        table.add_row(*("∅" if v is None else str(v) for v in row))
    out.print(table)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
