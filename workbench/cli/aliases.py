"""How a command is found by name: old names kept as hidden aliases, and the closest command suggested for a
mistyped one.

An old name (`workbench show ID`) still runs its command and says on stderr what replaced it; it is hidden
from `--help` and the CLI reference lists it under its new name. A mistyped command is a usage error that
suggests the closest visible command, a group's subcommand (`workbench pull` → `models pull`) or the new
name of an old one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from difflib import get_close_matches
from typing import Any

import typer
from typer.core import TyperGroup

from workbench.cli.failures import err

# old top-level name -> the command that replaced it; filled by `moved()`, read by the suggestions and docs.
MOVED: dict[str, str] = {}


def notice(old: str, new: str) -> None:
    err.print(f"note: `workbench {old}` is now `workbench {new}`; the old name will be removed in a later release.",
              markup=False)


def moved(app: typer.Typer, old: str, new: str, command: Callable[..., Any]) -> None:
    """Register `command` again as the hidden top-level `old`, which says that `new` replaced it."""

    @functools.wraps(command)
    def alias(*args: Any, **kwargs: Any) -> Any:
        notice(old, new)
        return command(*args, **kwargs)

    MOVED[old] = new
    app.command(old, hidden=True, help=f"Replaced by `workbench {new}`.")(alias)


def candidates(group: TyperGroup, ctx: typer.Context) -> dict[str, str]:
    """What a typed word may have meant: every visible command, every visible subcommand of a group (as
    `group sub`) and every old name (as its new one)."""
    found: dict[str, str] = {}
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        found.setdefault(name, name)
        for sub_name, sub in getattr(command, "commands", {}).items():
            if not sub.hidden:
                found.setdefault(sub_name, f"{name} {sub_name}")
    for old, new in MOVED.items():
        found.setdefault(old, new)
    return found


def closest(word: str, found: dict[str, str]) -> list[str]:
    matches = get_close_matches(word, list(found), n=3, cutoff=0.6)
    return list(dict.fromkeys(found[m] for m in matches))


class CommandGroup(TyperGroup):
    """The root group: an unknown command suggests the closest names (hidden aliases never suggested as
    themselves: their new names are)."""

    def resolve_command(self, ctx: typer.Context, args: list[str]):
        try:
            return super().resolve_command(ctx, args)
        except typer.TyperException as exc:  # typer's own (vendored) click UsageError
            message = getattr(exc, "message", "")
            if args and isinstance(message, str) and message.startswith("No such command"):
                suggestions = closest(args[0], candidates(self, ctx))
                # typer's own suggestion (hidden aliases included) is replaced by ours
                exc.message = message.split(". Did you mean", 1)[0].rstrip(".") + "." + (
                    f" Did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions
                    else " `workbench --help` lists the commands.")
            raise
