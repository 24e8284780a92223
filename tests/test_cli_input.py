"""The CLI as a new user meets it: bad input is one clear line and a meaningful exit code, never a
traceback; task ids are checked before any request; user and model text is never read as Rich markup.

Most tests call `workbench.cli.main` in this process with a fake task backend (no server, no store);
a few run the real command in a subprocess, where the traceback would have been seen.
"""

from __future__ import annotations

import contextlib
import uuid

import httpx
import pytest
import typer
from helpers import run_cli
from rich.console import Console

from workbench.cli import app, exits, main
from workbench.errors import ConfigError, WorkbenchError
from workbench.tasks.records import Task, TaskPage
from workbench.tasks.service import TaskNotFound

pytestmark = pytest.mark.timeout(120)

TRICKY_TITLE = "fix [/INST] parsing [bold]x[/bold] \\[y]"


def _task(**fields) -> Task:
    base = {"id": str(uuid.uuid4()), "title": TRICKY_TITLE, "prompt": "p [/INST]", "status": "completed",
            "priority": 0, "created_at": "2026-01-01T00:00:00+00:00", "updated_at": "2026-01-01T00:00:00+00:00",
            "error": "model said [/red] oops", "result": {"answer": "answer with [/INST] in it"}}
    return Task.model_validate({**base, **fields})


class FakeBackend:
    """The backend interface of workbench.tasks.client, in memory; records every call."""

    def __init__(self, tasks: list[Task] = (), fail: BaseException | None = None):
        self.tasks = {t.id: t for t in tasks}
        self.calls: list[tuple] = []
        self.opened = 0
        self.fail = fail

    def _call(self, *call):
        self.calls.append(call)
        if self.fail is not None:
            raise self.fail

    def create(self, new, wait):
        self._call("create", new, wait)
        task = _task(title=new.title or new.prompt, prompt=new.prompt, status="pending", error=None, result=None)
        self.tasks[task.id] = task
        return task

    def list(self, status, limit):
        self._call("list", status, limit)
        items = [t for t in self.tasks.values() if status in (None, t.status)][:limit]
        return TaskPage(items=items, total=len(self.tasks), limit=limit, offset=0)

    def get(self, task_id):
        self._call("get", task_id)
        if task_id not in self.tasks:
            raise TaskNotFound(task_id)
        return self.tasks[task_id]

    def cancel(self, task_id):
        self._call("cancel", task_id)
        return self.tasks[task_id].model_copy(update={"status": "cancelled"})

    def events(self, task_id, after=0):
        self._call("events", task_id, after)
        return [{"seq": 1, "ts": "2026-01-01T00:00:00.000+00:00", "kind": "llm_call", "agent": "coder [/x]",
                 "model": "test:echo", "error": "boom [/red]", "payload": {}}]

    def follow(self, task_id, after=0):
        self._call("follow", task_id, after)
        yield {"seq": 2, "ts": "2026-01-01T00:00:00.000+00:00", "kind": "status",
               "payload": {"from": "processing", "to": "completed", "reason": "[/INST] done"}}

    def close(self):
        pass


@pytest.fixture
def fake(monkeypatch):
    """A FakeBackend in place of the real one for every command module; wide consoles (no wrapping)."""
    from workbench.cli import run, tasks, trace

    b = FakeBackend()

    @contextlib.contextmanager
    def backend():
        b.opened += 1
        yield b

    for module in (tasks, run, trace):
        monkeypatch.setattr(module, "backend", backend)
    monkeypatch.setattr(tasks, "out", Console(soft_wrap=True, width=200))
    return b


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run `workbench ARGS` in this process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as ended:
        main(list(args))
        raise SystemExit(0)
    out = capsys.readouterr()
    code = ended.value.code
    return (0 if code is None else code), out.out, out.err


def usage_error(code: int, err: str, *words: str) -> None:
    assert code == exits.USAGE and "Traceback" not in err, err
    for word in words:
        assert word in err, err


# --- usage errors are click's, exit 2 ------------------------------------------------------------------


def test_mistyped_option_and_command_are_usage_errors(capsys, fake):
    code, _, err = cli(capsys, "submit", "x", "--bugdet", "5")
    usage_error(code, err, "No such option: --bugdet", "--budget")
    code, _, err = cli(capsys, "submt", "x")
    usage_error(code, err, "No such command 'submt'", "submit")
    assert fake.opened == 0


def test_missing_prompt_is_a_usage_error_in_the_real_command():
    out = run_cli("submit", input="")  # `workbench submit </dev/null`
    usage_error(out.returncode, out.stderr, "Missing argument")


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_budget_must_be_a_finite_number(capsys, fake, value):
    for command in ("submit", "run"):
        code, _, err = cli(capsys, command, "x", "--budget", value)
        usage_error(code, err, "--budget", "not a finite number")
    assert fake.calls == []


def test_a_non_utf8_argument_is_one_line(capsys, fake):
    code, _, err = cli(capsys, "submit", b"caf\xe9".decode("utf-8", "surrogateescape"))
    assert code == exits.USAGE and "not valid UTF-8" in err and "caf\\udce9" in err and "Traceback" not in err
    assert fake.opened == 0
    out = run_cli("show", b"\xff\xfe".decode("utf-8", "surrogateescape"))  # the bytes a shell passes
    assert out.returncode == exits.USAGE and "not valid UTF-8" in out.stderr and "Traceback" not in out.stderr


def test_limit_and_max_tokens_below_one_are_refused(capsys, fake):
    for limit in ("0", "-3", "501"):
        code, _, err = cli(capsys, "tasks", "--limit", limit)
        usage_error(code, err, "--limit")
    code, _, err = cli(capsys, "ask", "hi", "--model", "test:echo", "--max-tokens", "0")
    usage_error(code, err, "--max-tokens")
    assert fake.calls == []
    assert cli(capsys, "tasks", "--limit", "1", "--json")[0] == 0
    assert fake.calls == [("list", None, 1)]


def test_status_is_one_of_the_task_states(capsys, fake):
    code, _, err = cli(capsys, "tasks", "--status", "sleeping")
    usage_error(code, err, "Unknown status 'sleeping'", "awaiting_approval", "cancelled")
    assert fake.calls == []
    assert _option("tasks", "status").metavar == "[pending|queued|processing|awaiting_approval|completed|failed|cancelled]"
    assert cli(capsys, "tasks", "--status", "Completed", "--json")[0] == 0
    assert fake.calls == [("list", "completed", 20)]


def test_language_is_one_the_sandbox_runs(capsys, tmp_path):
    for command in (("code", "write x", "--out", str(tmp_path)), ("sandbox", "exec", str(tmp_path))):
        code, _, err = cli(capsys, *command, "--language", "cobol")
        usage_error(code, err, "Invalid value for '--language'", "Unknown language 'cobol'", "python", "java")
    for name in ("code", "sandbox exec"):  # the choices, in --help and to shell completion
        assert _option(name, "language").metavar == "[python|typescript|java]"
    # An alias is still accepted: the command goes on to find the path missing.
    code, _, err = cli(capsys, "sandbox", "exec", "-l", "PY", str(tmp_path / "missing.py"))
    assert code == exits.FAILED and "does not exist" in err


def test_serve_port_must_be_a_tcp_port(capsys, monkeypatch):
    for port in ("70000", "0"):
        code, _, err = cli(capsys, "serve", "--port", port)
        usage_error(code, err, "--port")
    monkeypatch.setenv("WORKBENCH_PORT", "70000")
    from workbench.config import reload_settings

    reload_settings()
    code, out, err = cli(capsys, "serve")
    assert code == exits.FAILED and "WORKBENCH_PORT=70000" in err and "1 to 65535" in err and ":70000" not in out


# --- task ids are checked before any request ---------------------------------------------------------


@pytest.mark.parametrize("bad", ["1;rm -rf /", "../../../gateway/health", "not-a-task-id", "\x1b[2Jx"])
def test_malformed_task_id_makes_no_request(capsys, fake, bad):
    for command in ("show", "watch", "cancel", "events", "trace", "approve"):
        code, out, err = cli(capsys, command, bad, "--json")
        assert code == exits.NOT_FOUND and out == "" and "Traceback" not in err, (command, err)
        assert "No task" in err and "workbench tasks" in err and "\x1b" not in err
    assert fake.opened == 0 and fake.calls == []


def test_unknown_task_is_not_found(capsys, fake):
    missing = str(uuid.uuid4())
    code, out, err = cli(capsys, "show", missing.upper(), "--json")
    assert code == exits.NOT_FOUND and out == "" and f"No task {missing}" in err
    assert fake.calls == [("get", missing)]  # sent in its canonical form


# --- user and model text is printed as text ---------------------------------------------------------


def test_markup_in_a_title_is_printed_as_written(capsys, fake):
    code, out, err = cli(capsys, "submit", "do it", "--title", TRICKY_TITLE)
    assert code == 0, err
    assert TRICKY_TITLE in out
    code, out, err = cli(capsys, "tasks")
    assert code == 0 and TRICKY_TITLE in out, err
    task_id = next(iter(fake.tasks))
    assert task_id in out  # the full id, which `show` takes
    fake.tasks[task_id] = _task(id=task_id)
    code, out, err = cli(capsys, "show", task_id)
    assert code == 0 and TRICKY_TITLE in out and "model said [/red] oops" in out and "answer with [/INST]" in out
    code, out, err = cli(capsys, "events", task_id)
    assert code == 0 and "coder [/x]" in out and "boom [/red]" in out, err


def test_markup_in_progress_lines_is_escaped():
    from rich.text import Text

    from workbench.cli.run import _progress

    events = [
        {"kind": "plan", "payload": {"plan": {"source": "[/model]", "subtasks": [
            {"id": "s1", "specialist": "gen[/x]eral", "depends_on": []}]}}},
        {"kind": "message", "payload": {"type": "request", "to": "coder", "subtask_id": "s1",
                                        "text": "parse [/INST] tags"}},
        {"kind": "subtask", "agent": "coder", "error": "failed at [/b]", "duration_ms": 10,
         "payload": {"status": "failed", "subtask_id": "s1"}},
    ]
    rendered = [Text.from_markup(_progress(e)).plain for e in events]
    assert "[/model]" in rendered[0] and "gen[/x]eral" in rendered[0]
    assert "parse [/INST] tags" in rendered[1] and "failed at [/b]" in rendered[2]


def test_error_messages_are_printed_as_text(capsys, fake):
    fake.fail = WorkbenchError("the model wrote [/INST] where it should not")
    code, _, err = cli(capsys, "tasks")
    assert code == exits.FAILED and "the model wrote [/INST] where it should not" in err


def test_a_lost_server_is_one_line(capsys, fake):
    fake.fail = httpx.ConnectError("connection refused")
    code, _, err = cli(capsys, "tasks")
    assert code == exits.FAILED and "Lost the connection" in err and "workbench serve" in err
    assert "Traceback" not in err


# --- gateway policy ------------------------------------------------------------------------------------


def test_malformed_policy_names_file_and_line(tmp_path, monkeypatch):
    from workbench.gateway import policy

    bad = tmp_path / "policy.yaml"
    bad.write_text("retry:\n  attempts: [1, 2\nbreaker: {\n")
    with pytest.raises(ConfigError) as raised:
        policy.load(bad)
    message = str(raised.value)
    assert str(bad) in message and "line 3, column 8" in message and "<unicode string>" not in message

    out = run_cli("ask", "hi", "--model", "test:echo", env={"WORKBENCH_GATEWAY_POLICY": str(bad)})
    assert out.returncode == exits.FAILED and "Traceback" not in out.stderr
    assert str(bad) in out.stderr and "line 3" in out.stderr


# --- conventions -------------------------------------------------------------------------------------


def test_version_from_the_package_metadata(capsys):
    from importlib.metadata import version

    code, out, _ = cli(capsys, "--version")
    assert code == 0 and out.strip() == f"workbench {version('workbench')}"


def test_shell_completion_is_offered(capsys):
    code, out, _ = cli(capsys, "--help")
    assert code == 0 and "--install-completion" in out and "--show-completion" in out
    code, out, _ = cli(capsys, "--show-completion", "bash")
    assert code == 0 and "_WORKBENCH_COMPLETE" in out


def test_exit_codes_are_documented_in_help(capsys):
    import workbench.cli

    code, out, _ = cli(capsys, "--help")
    text = " ".join(out.replace("│", " ").split())
    assert "Exit codes" in text
    for number, meaning in exits.TABLE:
        assert f"{number} {meaning.split()[0]}" in text
        assert f"    {number}" in workbench.cli.__doc__


def _commands(group: typer.Typer) -> dict[str, object]:
    command = typer.main.get_command(group)
    found = {}
    for name, sub in command.commands.items():
        if hasattr(sub, "commands"):
            found[name] = sub
            found.update({f"{name} {n}": c for n, c in sub.commands.items()})
        else:
            found[name] = sub
    return found


def _option(command: str, name: str):
    return next(p for p in _commands(app)[command].params if p.name == name)


def test_every_command_that_lists_or_shows_has_json():
    shows = {"submit", "run", "approve", "tasks", "show", "watch", "cancel", "events", "trace", "ask", "models",
             "config", "doctor", "code", "sandbox exec", "db migrate", "db status", "db sync"}
    commands = _commands(app)
    assert shows <= set(commands), shows - set(commands)
    for name in shows:
        options = {o for p in commands[name].params for o in getattr(p, "opts", [])}
        assert "--json" in options, name


def test_watch_and_cancel_print_json(capsys, fake):
    import json

    task = _task(status="processing")
    fake.tasks[task.id] = task
    code, out, _ = cli(capsys, "cancel", task.id, "--json")
    assert code == 0 and json.loads(out)["status"] == "cancelled"
    code, out, _ = cli(capsys, "watch", task.id, "--json")
    assert code == 0 and json.loads(out)["id"] == task.id
