"""`workbench` command line. Each module in COMMANDS adds its commands with `register(app)`; they are
imported plainly, so a command module that cannot be imported is an error, never a missing command.

Errors from workbench become one clear line and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from workbench.cli import (
    chat,
    code,
    config_cmd,
    db,
    demo,
    doctor,
    models,
    run,
    sandbox,
    serve,
    tasks,
    trace,
)
from workbench.errors import WorkbenchError

app = typer.Typer(
    name="workbench",
    help="Run autonomous AI agents on a local model, log every execution, study it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, soft_wrap=True)

COMMANDS = (config_cmd, models, chat, doctor, serve, tasks, db, sandbox, code, demo, trace, run)
for _command in COMMANDS:
    _command.register(app)


def main(argv: list[str] | None = None) -> None:
    try:
        result = app(args=argv, standalone_mode=False)
        if isinstance(result, int) and result:  # typer.Exit(code) comes back as a return value here
            sys.exit(result)
    except WorkbenchError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors and aborts
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        raise
