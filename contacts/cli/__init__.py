"""The `contacts` command: one module per command group, all on the shared helpers of `common`.

May import: `contacts.runner`, `contacts.web`, `contacts.demo`, `assets.resources`, `dedup`,
`quality` (lazily, inside commands, so `contacts --help` stays fast).
"""

from __future__ import annotations

import sys
from importlib import metadata

import typer

from contacts.cli import admin, analyst, followups, pipeline, privacy, review, server

# Click's error base class, wherever this typer takes click from (recent ones vendor it).
_CLICK_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class _Contacts(typer.Typer):
    """The command, whose every failure is one line on stderr and an exit code (the contract:
    `exits non-zero with a one-line reason`): a usage error exits 2 with click's message only,
    an error no command caught exits 1 with its type and first line (no traceback)."""

    def __call__(self, *args, **kwargs):
        kwargs["standalone_mode"] = False
        try:
            code = super().__call__(*args, **kwargs)
        except _CLICK_ERROR as exc:
            code = _click_error(exc)
        except Exception as exc:  # noqa: BLE001 - one line, not a traceback
            if type(exc).__name__ == "Abort":  # Ctrl+C at a prompt
                _one_line("aborted")
            else:
                text = str(exc).strip().splitlines()
                _one_line(f"{type(exc).__name__}: {text[0] if text else 'no message'}")
            code = 1
        sys.exit(code if isinstance(code, int) else 0)


def _click_error(exc) -> int:
    if type(exc).__name__ == "NoArgsIsHelpError":  # `contacts` alone: the help, as before
        exc.show()
        return 0
    ctx = getattr(exc, "ctx", None)
    hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    _one_line(f"{exc.format_message()}{hint}")
    return exc.exit_code


def _one_line(message: str) -> None:
    sys.stderr.write(f"error: {' '.join(message.split())}\n")


app = _Contacts(
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


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"contacts {metadata.version('askvault-contacts')}\n")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_version, help="Print the version and exit."
    ),
) -> None:
    """Options of the `contacts` command itself."""


for _module in (pipeline, review, followups, privacy, server, admin, analyst):
    app.add_typer(_module.app)


def main() -> None:  # pragma: no cover - console entry point
    app()
