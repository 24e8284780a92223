"""CLI conventions, checked over every command the CLI has (a group added later is walked too): help text
on every option and argument, `--json` on every command that prints data, noun-verb task commands with the
old verbs as hidden aliases that say what replaced them, and the closest command suggested for a typo."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import pytest
import typer
from rich.console import Console
from test_cli_input import FakeBackend, _task, cli

from workbench.cli import aliases, app, exits

pytestmark = pytest.mark.timeout(120)

# Commands that print no data (they serve, chat, or do work and report progress): no --json needed. A
# command that is not here and prints data must accept --json.
NO_DATA = {
    "serve": "serves until stopped",
    "chat": "an interactive session",
    "demo": "runs a workload, printing progress",
    "mcp serve": "serves MCP until stopped",
    "models pull": "downloads weights, printing progress",
    "models smoke": "runs a check, printing ok or the fix",
}
OLD_VERBS = {"show": "tasks show", "watch": "tasks watch", "cancel": "tasks cancel", "events": "tasks events",
             "approve": "tasks approve"}


def walk(command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, object]]:
    """(`group sub`, command) for the root and every command and subcommand, hidden ones included."""
    yield " ".join(path), command
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk(sub, (*path, name))


def everything() -> dict[str, object]:
    return dict(walk(typer.main.get_command(app)))


def leaves() -> dict[str, object]:
    """Commands that do something themselves: leaves, and groups that run on their own (`workbench models`)."""
    return {p: c for p, c in everything().items()
            if p and (not hasattr(c, "commands") or getattr(c, "invoke_without_command", False))}


def missing_help(commands: dict[str, object]) -> list[str]:
    missing = []
    for path, command in commands.items():
        if not command.hidden and not (command.help or "").strip() and path:
            missing.append(f"{path}: no description (a docstring or help=)")
        for param in command.params:
            if not getattr(param, "hidden", False) and not (getattr(param, "help", None) or "").strip():
                missing.append(f"{path or 'workbench'} {param.name}: no help=")
    return missing


def without_json(commands: dict[str, object]) -> list[str]:
    return sorted(p for p, c in commands.items() if p not in NO_DATA and not c.hidden
                  and "--json" not in {o for param in c.params for o in getattr(param, "opts", [])})


def test_the_walk_finds_groups_and_their_subcommands():
    found = everything()
    assert len(found) > 30
    for path in ("tasks list", "tasks approve", "models pull", "db status", "pipelines run", "mcp tools"):
        assert path in found, path
    assert set(NO_DATA) <= set(found), set(NO_DATA) - set(found)  # the exemptions name real commands


def test_every_option_and_argument_has_help_text():
    assert missing_help(everything()) == []


def test_every_command_that_prints_data_accepts_json():
    assert without_json(leaves()) == []


def test_the_checks_catch_a_new_group_without_help_or_json():
    # A group added later (as other command groups will be) is walked like the rest.
    extra = typer.Typer()

    @extra.command("list")
    def list_things(limit: int = typer.Option(5, "--limit")) -> None:
        """List things."""

    probe = typer.Typer()
    probe.add_typer(extra, name="things")

    @probe.command("other")
    def other() -> None:
        """Other."""

    commands = dict(walk(typer.main.get_command(probe)))
    assert missing_help(commands) == ["things: no description (a docstring or help=)",
                                      "things list limit: no help="]
    assert without_json({p: c for p, c in commands.items() if p and not hasattr(c, "commands")}) == [
        "other", "things list"]


def test_every_help_page_prints(capsys):
    for path, command in everything().items():
        code, out, err = cli(capsys, *path.split(), "--help")
        assert code == 0 and "Usage" in out and "Traceback" not in err, (path, err)


# --- noun-verb task commands, old verbs as aliases ----------------------------------------------------


@pytest.fixture
def fake(monkeypatch):
    from workbench.cli import run, tasks

    b = FakeBackend()

    @contextlib.contextmanager
    def backend():
        yield b

    for module in (tasks, run):
        monkeypatch.setattr(module, "backend", backend)
    monkeypatch.setattr(tasks, "out", Console(soft_wrap=True, width=200))
    return b


def test_tasks_is_a_group_of_verbs(capsys):
    code, out, _ = cli(capsys, "tasks", "--help")
    assert code == 0
    for verb in ("list", "show", "watch", "cancel", "events", "approve"):
        assert f" {verb} " in out, verb


@pytest.mark.parametrize("verb", ["show", "watch", "cancel", "events"])
def test_old_verb_and_new_command_print_the_same(capsys, fake, verb):
    task = _task(status="processing")
    fake.tasks[task.id] = task
    code, new_out, new_err = cli(capsys, "tasks", verb, task.id, "--json")
    assert code == 0 and "note:" not in new_err, new_err
    code, old_out, old_err = cli(capsys, verb, task.id, "--json")
    assert code == 0 and json.loads(old_out) == json.loads(new_out)
    assert old_err.strip() == (f"note: `workbench {verb}` is now `workbench tasks {verb}`; the old name will be "
                               f"removed in a later release.")


def test_bare_tasks_still_lists_and_says_what_replaced_it(capsys, fake):
    fake.tasks.update({t.id: t for t in (_task(), _task(status="failed"))})
    code, new_out, new_err = cli(capsys, "tasks", "list", "--status", "failed", "--json")
    assert code == 0 and json.loads(new_out)["total"] == 2 and len(json.loads(new_out)["items"]) == 1
    assert "note:" not in new_err
    code, old_out, old_err = cli(capsys, "tasks", "--status", "failed", "--json")
    assert code == 0 and json.loads(old_out) == json.loads(new_out)
    assert "`workbench tasks` is now `workbench tasks list`" in old_err
    assert usage(cli(capsys, "tasks", "--limit", "0"))  # the old options are still checked


def test_approve_moved_under_tasks(capsys, fake):
    code, _, err = cli(capsys, "approve", "not-an-id")
    assert code == exits.NOT_FOUND and "No task" in err
    assert aliases.MOVED["approve"] == "tasks approve"
    assert {old: aliases.MOVED[old] for old in OLD_VERBS} == OLD_VERBS


def test_old_verbs_are_hidden_from_help(capsys):
    code, out, _ = cli(capsys, "--help")
    listed = {line.split()[1] for line in out.splitlines() if line.startswith("│ ") and len(line.split()) > 2}
    assert "tasks" in listed and "submit" in listed
    assert not listed & set(OLD_VERBS), listed & set(OLD_VERBS)


def usage(result: tuple[int, str, str]) -> str:
    code, _, err = result
    assert code == exits.USAGE and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("typed, suggested", [
    ("submt", "'submit'"),         # a top-level command
    ("shw", "'tasks show'"),        # an old verb: its new name, not the hidden alias
    ("lst", "'tasks list'"),        # a group's subcommand
    ("pul", "'models pull'"),
    ("modles", "'models'"),
])
def test_an_unknown_command_suggests_the_closest(capsys, typed, suggested):
    err = usage(cli(capsys, typed))
    assert f"No such command '{typed}'. Did you mean {suggested}" in err, err
    assert "Did you mean 'show'" not in err


def test_an_unknown_subcommand_suggests_the_closest(capsys):
    assert "Did you mean 'list'" in usage(cli(capsys, "tasks", "lsit"))
    assert "Did you mean 'status'" in usage(cli(capsys, "db", "stat"))


def test_nothing_close_points_to_help(capsys):
    err = usage(cli(capsys, "xyzzy"))
    assert "No such command 'xyzzy'." in err and "`workbench --help` lists the commands" in err
