"""The `contacts` command: one module per command group, all on the shared helpers of `common`.

May import: `contacts.runner`, `contacts.web`, `contacts.demo`, `assets.resources`, `dedup`,
`quality` (lazily, inside commands, so `contacts --help` stays fast).
"""

from __future__ import annotations

import typer

from contacts.cli import admin, analyst, followups, pipeline, privacy, review, server

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
for _module in (pipeline, review, followups, privacy, server, admin, analyst):
    app.add_typer(_module.app)


def main() -> None:  # pragma: no cover - console entry point
    app()
