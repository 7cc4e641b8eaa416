"""`contacts run`, `contacts demo` and `contacts import`: the nightly job and what feeds it."""

from __future__ import annotations

import os
import shutil
import sys
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


def _settings(exports: Path, db: Path, region: str, engine: str = ""):
    from assets.resources import ContactsSettings

    # The one settings object the code location reads too: what the flags do not say (staff
    # domains, CRM links, the property schema, the engine without --engine) comes from the same
    # environment variables.
    return ContactsSettings(
        exports_dir=str(exports), db_path=str(db), default_region=region, engine=engine
    )


def _run(
    exports: Path,
    db: Path,
    region: str,
    retrain: bool = False,
    keep_worker: bool = False,
    full: bool = False,
    engine: str = "",
):
    # Export-day partitions start at this folder's first day (assets.partitions): they are
    # defined when the assets are imported, below.
    os.environ["CONTACTS_EXPORTS_DIR"] = str(exports)
    from contacts.runner import PipelineError, run_pipeline

    with err.status("starting…") as status:
        try:
            summary = run_pipeline(
                _settings(exports, db, region, engine),
                progress=lambda m: status.update(m),
                retrain=retrain,
                keep_quality_worker=keep_worker,
                full=full,
            )
        except PipelineError as exc:
            fail(str(exc))
    # On stdout, every run: a log line below ERROR went unseen (issue 23, item 7).
    for warning in summary.warnings:
        out.print(f"[bold yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    return summary


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
        Path,
        typer.Option(
            "--exports",
            envvar="CONTACTS_EXPORTS_DIR",
            help="EXPORTS folder: <source>/<YYYY-MM-DD>/<files>.",
        ),
    ],
    db: DbOption = Path("contacts.duckdb"),
    region: Annotated[
        str,
        typer.Option(
            envvar="CONTACTS_DEFAULT_REGION",
            help="Region for phone numbers written without a country code.",
        ),
    ] = "US",
    retrain: Annotated[
        bool,
        typer.Option("--retrain", help="Retrain the matching model even if the saved one fits."),
    ] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Rebuild from every staged day (normalization, every profile, all candidate "
            "pairs) instead of carrying over what did not change since the last night.",
        ),
    ] = False,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="Where the identity steps run: local (this process) or spark (the session from "
            "CONTACTS_SPARK_CONF / CONTACTS_SPARK_MASTER; docs/scale.md). Default: "
            "CONTACTS_ENGINE, else local.",
        ),
    ] = "",
) -> None:
    """Run the nightly job: ingest changed export days, auto-merge, propose merges, publish."""
    if not exports.is_dir():
        fail(f"exports folder not found: {exports}")
    engine = engine.strip().lower()
    if engine not in ("", "local", "spark"):
        fail(f"--engine must be local or spark, not {engine!r}")
    summary = _run(exports, db, region, retrain, full=full, engine=engine)
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
    from contacts.demo import DEMO_STAFF_DOMAIN, GeneratorConfig, generate_exports

    db = db or folder / "contacts.duckdb"
    if folder.exists():
        shutil.rmtree(folder)
    incoming = folder / "incoming"
    exports = folder / "exports"
    # Sign the sample's identities with the caller's secret if there is one, so they verify.
    secret = os.environ.setdefault("ASKVAULT_IDENTITY_SECRET", GeneratorConfig.secret)
    config = GeneratorConfig(persons=persons, days=days, secret=secret, native=True)
    # The sample workspace's own people answer in mail and Slack threads; they are not contacts.
    os.environ.setdefault("CONTACTS_STAFF_DOMAINS", DEMO_STAFF_DOMAIN)
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
        # One GX worker for the whole demo (it ends with this process): not an import a night.
        summary = _run(exports, db, "US", keep_worker=True)
    assert summary is not None
    out.print(
        f"Generated {generated.interactions:,} product-export interactions of "
        f"{generated.persons:,} people, plus their native WhatsApp, Slack, email, SMS and CRM "
        f"exports ({generated.bad_records} malformed records on purpose), under {exports}."
    )
    _print_summary(summary, "contacts demo: last night's run")
    # The DuckDB CLI is a runtime dependency (duckdb-cli, same build as the engine), installed
    # beside this interpreter; name it by path, since the environment's bin folder is not on PATH.
    duckdb_cli = Path(sys.executable).parent / "duckdb"
    out.print(
        f'Query it:  {duckdb_cli} -readonly {db} "SELECT name, email, channels, audience, '
        'conversation_count FROM contacts ORDER BY conversation_count DESC LIMIT 10"'
    )


@app.command("import")
def import_csv(
    file: Annotated[Path, typer.Argument(help="A CSV contact list (header row required).")],
    exports: Annotated[
        Path, typer.Option("--exports", help="The EXPORTS folder `contacts run` reads.")
    ],
    db: DbOption = Path("contacts.duckdb"),
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", help="FIELD=COLUMN, overriding the detected mapping (repeatable)."),
    ] = None,
    run_now: Annotated[
        bool, typer.Option("--run/--no-run", help="Run the nightly job right after.")
    ] = True,
) -> None:
    """Import a CSV contact list through the same validation, normalization and auto-merge."""
    from dedup.ingest.csv_import import ImportError_, plan_import, write_import

    overrides = {}
    for item in map_ or []:
        field, sep, column = item.partition("=")
        if not sep:
            fail(f"--map takes FIELD=COLUMN, not {item!r}")
        overrides[field.strip()] = column.strip()
    try:
        plan, canonical = plan_import(file, exports, overrides)
    except ImportError_ as exc:
        fail(str(exc))
    mapping = ", ".join(f"{k}←{v}" for k, v in sorted(plan.mapping.items()))
    if plan.already_imported:
        out.print(f"{file} was already imported ({plan.target.name}); nothing to do")
        return
    write_import(plan, canonical)
    out.print(f"{plan.rows:,} row(s) mapped ({mapping}) → {plan.target}")
    if run_now:
        _print_summary(_run(exports, db, "US"), "contacts import: run")
