"""The exit codes of `workbench`: one small table for every command, printed by `workbench --help`."""

from __future__ import annotations

from workbench.errors import WorkbenchError

OK = 0
FAILED = 1
USAGE = 2
BLOCKED = 3
NOT_FOUND = 4
INTERRUPTED = 130

TABLE = (
    (OK, "success"),
    (FAILED, "the operation failed (a task, check or model call failed; the server or store could not be used)"),
    (USAGE, "usage error: unknown command or option, a missing or invalid value (click's convention)"),
    (BLOCKED, "blocked: the sandbox's security scan refused to run the code"),
    (NOT_FOUND, "not found: no task with that id"),
    (INTERRUPTED, "interrupted (Ctrl-C)"),
)

EPILOG = "Exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in TABLE) + "."


def for_error(exc: WorkbenchError) -> int:
    """The exit code for a workbench error: its class's own when it names one (an unknown language is a
    usage error), NOT_FOUND for what does not exist (HTTP 404), else FAILED."""
    if exc.exit_code != FAILED:
        return exc.exit_code
    if getattr(exc, "http_status", None) == 404:
        return NOT_FOUND
    return FAILED
