"""`workbench` command line. Each module in COMMANDS adds its commands with `register(app)`.

Errors from workbench become one clear line and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from workbench.errors import WorkbenchError

app = typer.Typer(
    name="workbench",
    help="Run autonomous AI agents on a local model, log every execution, study it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, soft_wrap=True)

COMMANDS = ("config_cmd", "models", "chat", "doctor", "serve", "tasks", "db", "sandbox", "code", "demo", "trace", "run")


def _load() -> None:
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"workbench.cli.{name}")
        except ModuleNotFoundError as exc:  # a component not installed in this checkout: skip its commands
            if exc.name != f"workbench.cli.{name}":
                raise
            continue
        module.register(app)


def main(argv: list[str] | None = None) -> None:
    _load()
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
