"""Admins' merge decisions: `contacts proposals ...`, `merge`, `unmerge`, `show`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table

from contacts.cli.common import (
    NEXT_RUN,
    DbOption,
    JsonOption,
    cell,
    fail,
    out,
    print_json,
    review_action,
)

app = typer.Typer()


proposals_app = typer.Typer(
    help="Review merges that probabilistic matching suggests.", no_args_is_help=True
)
app.add_typer(proposals_app, name="proposals")


@proposals_app.command("list")
def proposals_list(
    db: DbOption = Path("contacts.duckdb"),
    status: Annotated[
        str, typer.Option(help="pending, accepted, rejected, superseded or all.")
    ] = "pending",
    min_probability: Annotated[float, typer.Option(help="Hide proposals below this.")] = 0.0,
    limit: Annotated[int, typer.Option(help="Rows to show at most.")] = 50,
    json_: JsonOption = False,
) -> None:
    """List merge proposals, most probable first (pending ones already decided are hidden)."""
    from dedup.service.review import review_queue

    rows = review_action(lambda: review_queue(db, status, min_probability, limit))
    if json_:
        print_json(rows)
        return
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
                cell,
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

    card = review_action(lambda: proposal_card(db, proposal_id))
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
        table.add_row(f, cell(card["left"].get(f)), cell(card["right"].get(f)), style=style)
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
        ids = review_action(lambda: accept_all_above(db, all_above, limit, note))
        out.print(f"accepted {len(ids)} proposal(s) at or above {all_above}; {NEXT_RUN}")
        return
    if not proposal_id or not survivor:
        fail("give PROPOSAL_ID and --survivor CONTACT_ID (or --all-above P)")
    decision = review_action(lambda: accept_proposal(db, proposal_id, survivor, note))
    out.print(f"accepted {proposal_id}, {survivor} survives ({decision}); {NEXT_RUN}")


@proposals_app.command("reject")
def proposals_reject(
    proposal_id: str,
    db: DbOption = Path("contacts.duckdb"),
    note: NoteOption = None,
) -> None:
    """Reject a proposal: the pair is never proposed again and stays apart."""
    from dedup.service.review import reject_proposal

    decision = review_action(lambda: reject_proposal(db, proposal_id, note))
    out.print(f"rejected {proposal_id} ({decision}); {NEXT_RUN}")


group_app = typer.Typer(
    help="Review by person: every contact a set of proposals connects, decided at once.",
    no_args_is_help=True,
)
proposals_app.add_typer(group_app, name="group")


@group_app.command("show")
def group_show(
    proposal_id: Annotated[str, typer.Argument(help="Any proposal of the group.")],
    db: DbOption = Path("contacts.duckdb"),
) -> None:
    """The group's contacts side by side and each proposal's score in words."""
    from dedup.service.review_groups import proposal_group

    g = review_action(lambda: proposal_group(db, proposal_id))
    members = g["members"]
    out.print(f"group {g['group_id']}: {len(members)} contacts, {len(g['proposals'])} proposals")
    table = Table("field", *(Column(m["contact_id"], no_wrap=True) for m in members))
    for f in g["fields"]:
        style = "bold yellow" if g["differs"].get(f) else None
        table.add_row(f, *(cell(m.get(f)) for m in members), style=style)
    out.print(table)
    for p in g["proposals"]:
        w = p["words"]
        out.print(
            f"{p['proposal_id']}: {p['contact_id_l']} – {p['contact_id_r']}, "
            f"probability {p['match_probability']:.3f}"
        )
        out.print(f"  Starting odds {w['start']['odds']}: {w['start']['bits']:+.2f} bits")
        for line in w["lines"]:
            out.print(f"  {line['reads']}: {line['bits']:+.2f} bits")
        if w["missing"]:
            out.print(f"  not compared (missing on one side): {', '.join(w['missing'])}")
        out.print(f"  total: odds {w['total']['odds']}, {w['total']['bits']:+.2f} bits")
    out.print(f"suggested survivor (seen first): {g['survivor']}")


@group_app.command("accept")
def group_accept(
    proposal_id: Annotated[str, typer.Argument(help="Any proposal of the group.")],
    survivor: Annotated[str, typer.Option(help="The contact id that stays.")],
    note: NoteOption = None,
    db: DbOption = Path("contacts.duckdb"),
) -> None:
    """Every contact of the group merges into SURVIVOR (one merge each, each undoable)."""
    from dedup.service.review_groups import decide_group

    ids = review_action(lambda: decide_group(db, proposal_id, "accept", survivor, note=note))
    out.print(f"group of {proposal_id}: {len(ids)} merge(s) into {survivor}; {NEXT_RUN}")


@group_app.command("reject")
def group_reject(
    proposal_id: Annotated[str, typer.Argument(help="Any proposal of the group.")],
    note: NoteOption = None,
    db: DbOption = Path("contacts.duckdb"),
) -> None:
    """Reject every proposal of the group: its contacts stay apart."""
    from dedup.service.review_groups import decide_group

    ids = review_action(lambda: decide_group(db, proposal_id, "reject", note=note))
    out.print(f"group of {proposal_id}: {len(ids)} proposal(s) rejected; {NEXT_RUN}")


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

    decision = review_action(lambda: merge_contacts(db, a, b, survivor, note))
    out.print(f"merging {a} and {b} into {survivor} ({decision}); {NEXT_RUN}")


@app.command()
def unmerge(
    merge_id: Annotated[str, typer.Argument(help="A merge id from `contacts show` or `merges`.")],
    note: NoteOption = None,
    db: DbOption = Path("contacts.duckdb"),
) -> None:
    """Undo a merge (within 30 days): both contacts come back as they were and stay apart."""
    from dedup.service.review import unmerge as undo

    decision = review_action(lambda: undo(db, merge_id, note))
    out.print(f"undoing {merge_id} ({decision}); {NEXT_RUN}")


@app.command()
def show(
    contact_id: Annotated[str, typer.Argument(help="A contact id (a merged-away id is followed).")],
    db: DbOption = Path("contacts.duckdb"),
    limit: Annotated[int, typer.Option(help="Conversation history rows at most.")] = 100,
) -> None:
    """A contact: profile, channels, tags, audience, history across channels, notes, merges."""
    from dedup.service.review import contact_detail

    d = review_action(lambda: contact_detail(db, contact_id, limit))
    c = d["contact"]
    if d["requested"] != c["contact_id"]:
        out.print(f"{d['requested']} was merged into {c['contact_id']}")
    profile = Table(title=f"contact {c['contact_id']}", show_header=False, title_justify="left")
    for k, v in c.items():
        profile.add_row(k, cell(v))
    out.print(profile)
    history = Table("when", "channel", "conversation", "name", "email", "phone", title="history")
    for h in d["history"]:
        history.add_row(
            *map(
                cell,
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
            notes.add_row(cell(n["created_at"]), cell(n["author"]), n["note"])
        out.print(notes)
    if d["tasks"]:
        tasks = Table("task", "title", "assignee", "due", "status", title="tasks")
        for t in d["tasks"]:
            tasks.add_row(
                *map(cell, (t["task_id"], t["title"], t["assignee"], t["due_at"], t["status"]))
            )
        out.print(tasks)
    if d["merges"]:
        merges = Table(
            "merge", "kind", "survivor", "merged", "when", "undo until", "undone", title="merges"
        )
        for m in d["merges"]:
            merges.add_row(
                *map(
                    cell,
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
