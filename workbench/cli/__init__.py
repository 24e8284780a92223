"""`workbench` command line. Each module in COMMANDS adds its commands with `register(app)`; they are
imported plainly, so a command module that cannot be imported is an error, never a missing command.

Errors become one clear line and an exit code from the table in `workbench.cli.exits`, never a traceback:

    0    success
    1    the operation failed (a task, check or model call failed; the server or store could not be used)
    2    usage error: unknown command or option, a missing or invalid value (click's convention)
    3    blocked: the sandbox's security scan refused to run the code
    4    not found: no task with that id
    130  interrupted (Ctrl-C)

Commands are nouns with verbs where there are several (`workbench tasks list|show|watch|cancel|events|approve`);
an older name still works, hidden, and says what replaced it (`workbench.cli.aliases`). `workbench --version`
prints the installed version; `--install-completion` / `--show-completion` set up
shell completion.
"""

from __future__ import annotations

import sys

import typer

from workbench.cli import (
    backup_cmd,
    chat,
    code,
    config_cmd,
    datasets,
    db,
    demo,
    doctor,
    exits,
    experiment,
    keys,
    mcp_cmd,
    memory_cmd,
    models,
    pipelines,
    run,
    sandbox,
    serve,
    tasks,
    trace,
)
from workbench.cli.aliases import CommandGroup
from workbench.cli.failures import report

app = typer.Typer(
    name="workbench",
    help="Run autonomous AI agents on a local model, log every execution, study it.",
    epilog=exits.EPILOG,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    cls=CommandGroup,
)


def _version(value: bool) -> None:
    if value:
        from workbench.cli.version import version

        print(f"workbench {version()}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print the installed version and exit."),
) -> None:
    """Run autonomous AI agents on a local model, log every execution, study it."""


COMMANDS = (config_cmd, models, chat, doctor, serve, tasks, db, sandbox, code, demo, trace, run, pipelines, datasets,
            experiment, mcp_cmd, memory_cmd, keys, backup_cmd)
for _command in COMMANDS:
    _command.register(app)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        from workbench.cli.failures import check_arguments

        check_arguments(args)
        result = app(args=args, prog_name="workbench", standalone_mode=False)
    except BaseException as exc:  # every failure becomes one line and an exit code (a bug still raises)
        sys.exit(report(exc))
    if isinstance(result, int) and result:  # typer.Exit(code) comes back as a return value here
        sys.exit(result)
