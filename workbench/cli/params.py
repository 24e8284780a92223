"""Options and arguments shared by commands, checked while the command line is parsed, before any
request: task ids, finite numbers, and values from a fixed set (task states, sandbox languages)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable
from typing import Any, get_args

import typer

from workbench.cli.exits import NOT_FOUND
from workbench.cli.text import quoted
from workbench.errors import WorkbenchError


class MalformedTaskId(WorkbenchError):
    """Not a task id at all: no task has it, and no request is made to find out."""

    http_status = 404
    exit_code = NOT_FOUND

    def __init__(self, value: str):
        super().__init__(f"No task {quoted(value)}: a task id is a UUID such as {uuid.UUID(int=0)}. "
                         f"List tasks and their ids with `workbench tasks list`.")


def task_id(value: str) -> str:
    """The canonical form of a task id (a UUID); MalformedTaskId for anything else."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise MalformedTaskId(value) from None


def task_id_argument(help: str = "Task id (a UUID; `workbench tasks list` lists them).") -> Any:
    return typer.Argument(..., help=help, metavar="TASK_ID", callback=task_id, show_default=False)


def finite(value: float | None) -> float | None:
    """A number option must be a number: inf and nan are refused as usage errors."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number: give a plain number such as 0.5.")
    return value


def choice(values: Callable[[], Iterable[str]], what: str,
           resolve: Callable[[str], str] | None = None) -> dict[str, Any]:
    """Keyword arguments for typer.Option: accept one of `values()` (or what `resolve` maps to one, such as
    an alias), offer them to shell completion and show them in --help. Anything else is a usage error
    naming the choices."""
    names = list(values())

    def check(value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return resolve(value) if resolve else _member(value, names, what)
        except WorkbenchError as exc:
            raise typer.BadParameter(str(exc)) from None

    def complete(incomplete: str) -> list[str]:
        return [n for n in names if n.startswith(incomplete)]

    return {"callback": check, "autocompletion": complete, "metavar": "[" + "|".join(names) + "]"}


def _member(value: str, names: list[str], what: str) -> str:
    key = value.strip().lower()
    if key not in names:
        raise WorkbenchError(f"Unknown {what} {quoted(value)!r}. Choose one of: {', '.join(names)}.")
    return key


def task_status(**option: Any) -> Any:
    from workbench.tasks.states import Status

    return typer.Option(None, "--status", help="Only tasks in this state.",
                        **choice(lambda: get_args(Status), "status"), **option)


def language_option(default: Any, help: str = "Language of the code.") -> Any:
    from workbench.sandbox.runtimes import RUNTIMES, get_runtime

    return typer.Option(default, "--language", "-l", help=help,
                        **choice(lambda: RUNTIMES, "language", lambda v: get_runtime(v).name))
