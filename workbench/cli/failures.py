"""How `workbench` ends on a failure: one line on stderr and an exit code from `exits`, never a traceback.

Usage errors come from typer/click (their own exception classes, vendored by recent typer), workbench's
errors from the commands, lost connections from the HTTP client.
"""

from __future__ import annotations

import typer
from rich.console import Console

from workbench.cli import exits
from workbench.cli.text import plain, quoted
from workbench.errors import WorkbenchError

err = Console(stderr=True, soft_wrap=True, highlight=False)


def _usage_classes() -> tuple[type[BaseException], ...]:
    """typer's exception base (typer >= 0.17 vendors click) and click's, for older typer releases."""
    classes: list[type[BaseException]] = []
    if hasattr(typer, "TyperException"):
        classes.append(typer.TyperException)
    try:
        import click

        classes.append(click.ClickException)
    except ImportError:
        pass
    return tuple(classes)


USAGE_ERRORS = _usage_classes()


class BadArgument(WorkbenchError):
    exit_code = exits.USAGE


def check_arguments(args: list[str]) -> None:
    """Refuse an argument that is not UTF-8 (Python keeps its bytes as lone surrogates) before parsing it."""
    for position, arg in enumerate(args, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raise BadArgument(f"Argument {position} ({quoted(arg)}) is not valid UTF-8. Pass text in UTF-8 "
                              f"(check the terminal's locale, e.g. LANG=C.UTF-8).") from None


def error_line(message: object) -> None:
    err.print(f"[bold red]error:[/] {plain(message)}")


def report(exc: BaseException) -> int:
    """Print what went wrong (if anything) and return the exit code."""
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else (exits.OK if exc.code is None else exits.FAILED)
    if isinstance(exc, typer.Exit):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        err.print("interrupted")
        return exits.INTERRUPTED
    if isinstance(exc, typer.Abort):
        err.print("aborted")
        return exits.FAILED
    if isinstance(exc, WorkbenchError):
        error_line(exc)
        return exits.for_error(exc)
    if USAGE_ERRORS and isinstance(exc, USAGE_ERRORS):
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            error_line(exc)
        return getattr(exc, "exit_code", exits.USAGE)
    connection = _connection_error(exc)
    if connection:
        error_line(connection)
        return exits.FAILED
    raise exc


def _connection_error(exc: BaseException) -> str | None:
    import httpx

    if isinstance(exc, (httpx.TransportError, ConnectionError)):
        return (f"Lost the connection to the workbench server ({type(exc).__name__}: {exc}). Check that "
                f"`workbench serve` is still running, or stop it to work on the store directly.")
    return None
