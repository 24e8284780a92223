"""Task commands: `workbench submit`, and the `workbench tasks` group (list, show, watch, cancel, events; approve
is added by `workbench.cli.run`). They use the running server when it is up. The old top-level verbs
(`workbench show ID`, bare `workbench tasks`) still work as hidden aliases that say what replaced them.

Task ids are checked while the command line is parsed (`params.task_id`), so a malformed one is never sent
anywhere. Titles, errors and answers are user or model text: printed as text, never as Rich markup.
"""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from workbench.cli import aliases
from workbench.cli.params import finite, task_id_argument, task_status
from workbench.cli.text import plain, printable
from workbench.tasks import states
from workbench.tasks.client import backend
from workbench.tasks.records import NewTask, Task

out = Console(soft_wrap=True)
STATUS_COLOR = {"completed": "green", "failed": "red", "cancelled": "yellow", "processing": "cyan",
                "awaiting_approval": "magenta"}
MAX_LIMIT = 500  # the most the API answers in one page


def _status(s: str) -> str:
    return f"[{STATUS_COLOR.get(s, 'white')}]{plain(s)}[/]"


def _event_line(e: dict) -> str:
    """One event as a line of Rich markup; every value from the event is escaped."""
    payload = e.get("payload") or {}
    if e["kind"] == "status":
        what = (f"{plain(payload.get('from') or '∅')} → {_status(payload.get('to', '?'))}  "
                f"{plain(payload.get('reason') or '')}")
    else:
        parts = [e.get("agent"), e.get("model")]
        if e.get("tokens_in") is not None:
            parts.append(f"{e['tokens_in']}→{e.get('tokens_out')} tok")
        if e.get("cost_usd") is not None:
            parts.append(f"${e['cost_usd']:.6f}")
        if e.get("duration_ms") is not None:
            parts.append(f"{e['duration_ms']:.0f} ms")
        what = plain(" · ".join(str(p) for p in parts if p))
        if e.get("error"):
            what += f"  [red]{plain(e['error'])}[/]"
    return f"#{e['seq']:<6} {plain(str(e['ts'])[11:23])}  {plain(e['kind']):<11} {what}"


def _show(task: Task) -> None:
    table = Table(show_header=False, box=None)
    for key in ("id", "title", "status", "kind", "language", "complexity", "summary", "model", "priority",
                "budget_usd", "attempts", "created_at", "started_at", "finished_at", "error"):
        value = getattr(task, key)
        if value is not None and value != "":
            table.add_row(key, _status(value) if key == "status" else Text(printable(value)))
    out.print(table)
    result = task.result or {}
    if isinstance(result, dict) and result.get("answer"):
        out.print("\n[bold]answer[/]")
        out.print(printable(result["answer"]), highlight=False, markup=False)


def _table(items: list[Task]) -> Table:
    table = Table(box=None)
    table.add_column("id", no_wrap=True, min_width=36)  # whole: `workbench tasks show` takes it
    table.add_column("status", no_wrap=True, min_width=max((len(t.status) for t in items), default=6))
    table.add_column("kind", no_wrap=True, min_width=max((len(t.kind or "") for t in items), default=4))
    table.add_column("title", ratio=1, min_width=10)
    table.add_column("created", no_wrap=True, min_width=16)
    for t in items:
        table.add_row(t.id, _status(t.status), Text(printable(t.kind or "")), Text(printable(t.title), no_wrap=True, overflow="ellipsis"),
                      t.created_at[:16].replace("T", " "))
    return table


def _json(task: Task) -> str:
    return json.dumps(task.model_dump(mode="json"))


def _watch(b, task_id: str) -> Task:
    lines: list[str] = []
    with Live(console=out, refresh_per_second=8, transient=False) as live:
        for event in b.follow(task_id):
            lines.append(_event_line(event))
            live.update("\n".join(lines[-30:]))
    return b.get(task_id)


tasks_app = typer.Typer(help="Tasks: list them, show one, watch it live, cancel it, read its events, approve "
                                 "its plan.", invoke_without_command=True, no_args_is_help=False)


def submit(
    prompt: str = typer.Argument(..., metavar="PROMPT", help="The task."),
    model: str = typer.Option(None, "--model", "-m", help="provider:model or alias."),
    priority: int = typer.Option(0, "--priority", help="Higher runs first."),
    budget: float = typer.Option(None, "--budget", callback=finite, help="Cost budget in USD."),
    title: str = typer.Option("", "--title", help="A short title (default: the prompt)."),
    wait: bool = typer.Option(False, "--wait", help="Run it now and wait for the result."),
    as_json: bool = typer.Option(False, "--json", help="Print the task as JSON."),
) -> None:
    """Submit a task. Without a running server, --wait runs it on a LocalCluster started for it."""
    new = NewTask.of(prompt=prompt, title=title, model=model, priority=priority, budget_usd=budget)
    with backend() as b:
        task = b.create(new, wait=wait)
        if wait:
            task = _watch(b, task.id) if not as_json else _wait_quietly(b, task.id)
        elif task.status == "pending":
            out.print("[dim]no server is running: the task stays pending until `workbench serve` starts "
                      "(or submit with --wait)[/]")
    if as_json:
        print(_json(task))
    else:
        _show(task)
    if wait and task.status != "completed":
        raise typer.Exit(1)


def _limit(**option) -> int:
    return typer.Option(20, "--limit", min=1, max=MAX_LIMIT, help=f"How many tasks to list, 1 to {MAX_LIMIT}.",
                        **option)


def list_tasks(status: str = task_status(), limit: int = _limit(),
               as_json: bool = typer.Option(False, "--json", help="Print the tasks as JSON.")) -> None:
    """List tasks, newest first."""
    with backend() as b:
        page = b.list(status, limit)
    if as_json:
        print(json.dumps({"items": [t.model_dump(mode="json") for t in page.items], "total": page.total}))
        return
    out.print(_table(page.items))
    out.print(f"[dim]{len(page.items)} of {page.total}[/]")


@tasks_app.callback()
def _tasks(ctx: typer.Context, status: str = task_status(hidden=True), limit: int = _limit(hidden=True),
           as_json: bool = typer.Option(False, "--json", hidden=True, help="Print the tasks as JSON.")) -> None:
    """Tasks: list them, show one, watch it live, cancel it, read its events, approve its plan."""
    if ctx.invoked_subcommand is None:  # the old `workbench tasks [--status S] [--limit N] [--json]`
        aliases.notice("tasks", "tasks list")
        list_tasks(status, limit, as_json)


def show(task_id: str = task_id_argument(),
         as_json: bool = typer.Option(False, "--json", help="Print the task as JSON.")) -> None:
    """Show one task."""
    with backend() as b:
        task = b.get(task_id)
    if as_json:
        print(_json(task))
    else:
        _show(task)


def watch(task_id: str = task_id_argument(),
          as_json: bool = typer.Option(False, "--json", help="Wait quietly, then print the task as JSON.")) -> None:
    """Follow a task live until it finishes."""
    with backend() as b:
        b.get(task_id)
        task = _wait_quietly(b, task_id) if as_json else _watch(b, task_id)
    if as_json:
        print(_json(task))
    else:
        _show(task)


def cancel(task_id: str = task_id_argument(),
           as_json: bool = typer.Option(False, "--json", help="Print the cancelled task as JSON.")) -> None:
    """Cancel a queued or running task."""
    with backend() as b:
        task = b.cancel(task_id)
    if as_json:
        print(_json(task))
    else:
        out.print(f"{task.id} {_status(task.status)}")


def events(task_id: str = task_id_argument(),
           as_json: bool = typer.Option(False, "--json", help="Print the events as JSON.")) -> None:
    """Every event of a task, in order."""
    with backend() as b:
        b.get(task_id)
        rows = b.events(task_id)
    if as_json:
        print(json.dumps(rows, default=str))
        return
    for e in rows:
        out.print(_event_line(e), highlight=False)


def add_task_command(app: typer.Typer, name: str, command) -> None:
    """`workbench tasks NAME`, and the old top-level `workbench NAME` as a hidden alias of it."""
    tasks_app.command(name)(command)
    aliases.moved(app, name, f"tasks {name}", command)


def register(app: typer.Typer) -> None:
    app.command("submit")(submit)
    app.add_typer(tasks_app, name="tasks")
    aliases.MOVED["tasks"] = "tasks list"  # bare `workbench tasks` (the group's callback) still lists
    tasks_app.command("list")(list_tasks)
    for name, command in (("show", show), ("watch", watch), ("cancel", cancel), ("events", events)):
        add_task_command(app, name, command)


def _wait_quietly(b, task_id: str) -> Task:
    for event in b.follow(task_id):
        if event["kind"] == "status" and event["payload"].get("to") in states.TERMINAL:
            break
    return b.get(task_id)
