"""The `contacts` command."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

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
# Piped or captured output gets wide tables: a script reading ids must not get them cut.
out = Console() if sys.stdout.isatty() else Console(width=240)

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
    from contacts.generator import DEMO_STAFF_DOMAIN, GeneratorConfig, generate_exports

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
        summary = _run(exports, db, "US")
    assert summary is not None
    out.print(
        f"Generated {generated.interactions:,} product-export interactions of "
        f"{generated.persons:,} people, plus their native WhatsApp, Slack, email, SMS and CRM "
        f"exports ({generated.bad_records} malformed records on purpose), under {exports}."
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


def _review(action):
    """Run a dedup.service.review action; its ReviewError becomes the CLI's one-line error."""
    from dedup.service.review import ReviewError

    try:
        return action()
    except ReviewError as exc:
        fail(str(exc))


NEXT_RUN = "takes effect at the next `contacts run`"


def _cell(value) -> str:
    if value is None:
        return "∅"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


@proposals_app.command("list")
def proposals_list(
    db: DbOption = Path("contacts.duckdb"),
    status: Annotated[
        str, typer.Option(help="pending, accepted, rejected, superseded or all.")
    ] = "pending",
    min_probability: Annotated[float, typer.Option(help="Hide proposals below this.")] = 0.0,
    limit: Annotated[int, typer.Option(help="Rows to show at most.")] = 50,
) -> None:
    """List merge proposals, most probable first (pending ones already decided are hidden)."""
    from dedup.service.review import review_queue

    rows = _review(lambda: review_queue(db, status, min_probability, limit))
    # Ids never wrap: people copy them into the next command.
    table = Table(
        Column("proposal", no_wrap=True),
        "probability",
        "status",
        "left name",
        "left email",
        "right name",
        "right email",
    )
    for r in rows:
        table.add_row(
            *map(
                _cell,
                (
                    r["proposal_id"],
                    r["match_probability"],
                    r["status"],
                    r["name_l"],
                    r["email_l"],
                    r["name_r"],
                    r["email_r"],
                ),
            )
        )
    out.print(table)


@proposals_app.command("show")
def proposals_show(proposal_id: str, db: DbOption = Path("contacts.duckdb")) -> None:
    """Both contacts side by side and the per-field explanation of the score."""
    from dedup.service.review import proposal_card

    card = _review(lambda: proposal_card(db, proposal_id))
    p = card["proposal"]
    out.print(
        f"{proposal_id}: {p['status']}, match probability {p['match_probability']:.3f} "
        f"(weight {p['match_weight']:.2f})"
    )
    if card["pending"]:
        out.print(f"already decided: {card['pending']['kind']}; {NEXT_RUN}")
    table = Table("field", "left", "right")
    table.add_row("contact_id", card["left"]["contact_id"], card["right"]["contact_id"])
    for f in card["fields"]:
        style = "bold yellow" if card["differs"][f] else None
        table.add_row(f, _cell(card["left"].get(f)), _cell(card["right"].get(f)), style=style)
    out.print(table)
    why = Table("field", "level reached", "weight")
    for item in card["explanation"]:
        why.add_row(item["field"], item["level"], f"{item['weight']:+.2f}")
    out.print(why)


NoteOption = Annotated[str | None, typer.Option("--note", help="Why, for the audit log.")]


@proposals_app.command("accept")
def proposals_accept(
    proposal_id: Annotated[str | None, typer.Argument(help="The proposal to accept.")] = None,
    survivor: Annotated[
        str | None, typer.Option(help="The contact id that stays (one of the pair).")
    ] = None,
    all_above: Annotated[
        float | None,
        typer.Option("--all-above", help="Accept every pending proposal at or above this."),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many with --all-above (≤ 200).")] = 200,
    note: NoteOption = None,
    db: DbOption = Path("contacts.duckdb"),
) -> None:
    """Accept a proposal (choose the survivor), or in bulk with --all-above P --limit N."""
    from dedup.service.review import accept_all_above, accept_proposal

    if all_above is not None:
        if proposal_id:
            fail("give a proposal id or --all-above, not both")
        ids = _review(lambda: accept_all_above(db, all_above, limit, note))
        out.print(f"accepted {len(ids)} proposal(s) at or above {all_above}; {NEXT_RUN}")
        return
    if not proposal_id or not survivor:
        fail("give PROPOSAL_ID and --survivor CONTACT_ID (or --all-above P)")
    decision = _review(lambda: accept_proposal(db, proposal_id, survivor, note))
    out.print(f"accepted {proposal_id}, {survivor} survives ({decision}); {NEXT_RUN}")


@proposals_app.command("reject")
def proposals_reject(
    proposal_id: str,
    db: DbOption = Path("contacts.duckdb"),
    note: NoteOption = None,
) -> None:
    """Reject a proposal: the pair is never proposed again and stays apart."""
    from dedup.service.review import reject_proposal

    decision = _review(lambda: reject_proposal(db, proposal_id, note))
    out.print(f"rejected {proposal_id} ({decision}); {NEXT_RUN}")


@app.command()
def merge(
    a: Annotated[str, typer.Argument(help="A live contact id.")],
    b: Annotated[str, typer.Argument(help="Another live contact id.")],
    survivor: Annotated[str, typer.Option(help="Which of the two keeps its id.")],
    note: NoteOption = None,
    db: DbOption = Path("contacts.duckdb"),
) -> None:
    """Merge two contacts by hand; the other id redirects to the survivor."""
    from dedup.service.review import merge_contacts

    decision = _review(lambda: merge_contacts(db, a, b, survivor, note))
    out.print(f"merging {a} and {b} into {survivor} ({decision}); {NEXT_RUN}")


@app.command()
def unmerge(
    merge_id: Annotated[str, typer.Argument(help="A merge id from `contacts show` or `merges`.")],
    note: NoteOption = None,
    db: DbOption = Path("contacts.duckdb"),
) -> None:
    """Undo a merge (within 30 days): both contacts come back as they were and stay apart."""
    from dedup.service.review import unmerge as undo

    decision = _review(lambda: undo(db, merge_id, note))
    out.print(f"undoing {merge_id} ({decision}); {NEXT_RUN}")


@app.command()
def show(
    contact_id: Annotated[str, typer.Argument(help="A contact id (a merged-away id is followed).")],
    db: DbOption = Path("contacts.duckdb"),
    limit: Annotated[int, typer.Option(help="Conversation history rows at most.")] = 100,
) -> None:
    """A contact: profile, channels, tags, audience, history across channels, notes, merges."""
    from dedup.service.review import contact_detail

    d = _review(lambda: contact_detail(db, contact_id, limit))
    c = d["contact"]
    if d["requested"] != c["contact_id"]:
        out.print(f"{d['requested']} was merged into {c['contact_id']}")
    profile = Table(title=f"contact {c['contact_id']}", show_header=False, title_justify="left")
    for k, v in c.items():
        profile.add_row(k, _cell(v))
    out.print(profile)
    history = Table("when", "channel", "conversation", "name", "email", "phone", title="history")
    for h in d["history"]:
        history.add_row(
            *map(
                _cell,
                (
                    h["occurred_at"],
                    h["channel"],
                    h["conversation_id"],
                    h["name"],
                    h["email"],
                    h["phone"],
                ),
            )
        )
    out.print(history)
    if d["notes"]:
        notes = Table("when", "by", "note", title="notes")
        for n in d["notes"]:
            notes.add_row(_cell(n["created_at"]), _cell(n["author"]), n["note"])
        out.print(notes)
    if d["tasks"]:
        tasks = Table("task", "title", "assignee", "due", "status", title="tasks")
        for t in d["tasks"]:
            tasks.add_row(
                *map(_cell, (t["task_id"], t["title"], t["assignee"], t["due_at"], t["status"]))
            )
        out.print(tasks)
    if d["merges"]:
        merges = Table(
            "merge", "kind", "survivor", "merged", "when", "undo until", "undone", title="merges"
        )
        for m in d["merges"]:
            merges.add_row(
                *map(
                    _cell,
                    (
                        m["merge_id"],
                        m["kind"],
                        m["survivor_id"],
                        m["merged_ids"],
                        m["decided_at"],
                        m["reversible_until"] if m["undoable"] else None,
                        m["undone_at"],
                    ),
                )
            )
        out.print(merges)
    for p in d["pending"]:
        out.print(
            f"pending: {p['kind']} by {p['decided_by']} at {p['decided_at']:%Y-%m-%d %H:%M}; {NEXT_RUN}"
        )


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

    decision = _review(lambda: add_note(db, contact_id, text))
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

    task_id = _review(lambda: add_task(db, contact_id, title, due, assignee))
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
    frame = _review(lambda: tasks(db))
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
                _cell,
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

    _review(lambda: complete_task(db, task_id))
    out.print(f"task {task_id} done")


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


@app.command()
def serve(
    db: DbOption = Path("contacts.duckdb"),
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8765,
    host: Annotated[
        str, typer.Option(help="Address to bind; keep 127.0.0.1 unless proxied.")
    ] = "127.0.0.1",
    requests_per_minute: Annotated[
        int, typer.Option(help="Contact API calls per key per minute before 429.")
    ] = 120,
) -> None:
    """The admins' review web page (proposal queue, review cards, contact pages with undo)."""
    import uvicorn

    from contacts.web import create_app

    if not db.exists():
        fail(f"no published file at {db}; run `contacts run` or `contacts demo` first")
    err.print(f"review page on http://{host}:{port}/ (Ctrl+C to stop)")
    uvicorn.run(
        create_app(
            db,
            requests_per_minute=requests_per_minute,
            properties_file=Path(os.environ["CONTACTS_PROPERTIES_FILE"])
            if os.environ.get("CONTACTS_PROPERTIES_FILE")
            else None,
        ),
        host=host,
        port=port,
        log_level="warning",
    )


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
        done = _review(lambda: erase_requests(db, requests))
        found = sum(len(d["contacts"]) for d in done)
        out.print(f"{len(done)} request(s), {found} contact(s) to erase; {NEXT_RUN}")
        return
    if not contact_id or not confirm:
        fail("give CONTACT_ID and --confirm EMAIL (or --requests FILE)")
    decision = _review(lambda: erase_contact(db, contact_id, confirm))
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

    done = _review(lambda: delete_contacts(db, contact_ids))
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
        waiting = _review(lambda: deletions(db)).filter(pl.col("status") == DELETED)
        table = Table("contact", "deleted at", "by", "restorable until", "interactions")
        for row in waiting.iter_rows(named=True):
            table.add_row(
                row["contact_id"],
                _cell(row["deleted_at"]),
                _cell(row["deleted_by"]),
                _cell(row["restorable_until"]),
                f"{row['interactions']:,}",
            )
        out.print(table if waiting.height else "no deleted contact can be restored")
        return
    done = _review(lambda: restore_contacts(db, contact_ids))
    out.print(f"restoring {len(done)} contact(s) as they were; {NEXT_RUN}")


verify_app = typer.Typer(help="Identity verification.", no_args_is_help=True)
app.add_typer(verify_app, name="verify")


@verify_app.command("revoke")
def verify_revoke(contact_id: str, db: DbOption = Path("contacts.duckdb")) -> None:
    """Stop trusting a contact's verified identity; its next session must verify again."""
    from dedup.service.review import revoke_verification

    decision = _review(lambda: revoke_verification(db, contact_id))
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
    removed = _review(lambda: run_purge(db, RetentionPolicy(work_days, backup_days)))
    out.print(f"purged {len(removed)} file(s)")
    for path in removed:
        out.print(f"  {path}", highlight=False)


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


from contacts.cli_analyst import register as _register_analyst  # noqa: E402

_register_analyst(app)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
