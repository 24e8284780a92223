"""`workbench run "..."`: submit a task to the Director, follow it, print the final answer and a summary.

    workbench run "Compare the average cost per task of each model, then write a median function"
    workbench run "..." --approve-plan        # stop after planning; approve here (or later, by id)
    workbench tasks approve ID [--plan edited.json]

Uses the running server when there is one, else starts the store and a LocalCluster for the run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from workbench.cli import tasks
from workbench.cli.params import finite, task_id_argument
from workbench.cli.text import plain, printable
from workbench.errors import ConfigError
from workbench.tasks.client import backend
from workbench.tasks.records import NewTask, Task

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _progress(event: dict) -> str | None:
    """One line of Rich markup for the events a person follows; None for the rest (`workbench tasks events` shows
    all). Every value from the event (plans and messages are model text) is escaped."""
    p = event.get("payload") or {}
    kind = event["kind"]
    if kind == "status":
        return f"[dim]status[/] {plain(p.get('to'))}"
    if kind == "plan":
        subs = (p.get("plan") or {}).get("subtasks") or []
        steps = "; ".join(f"{s['id']} {s['specialist']}" + (f" after {','.join(s['depends_on'])}" if s.get("depends_on") else "")
                          for s in subs)
        return f"[bold]plan[/] ({plain((p.get('plan') or {}).get('source', '?'))}): {plain(steps)}"
    if kind == "message" and p.get("type") == "request":
        return f"  → {plain(p.get('to'))} [dim]{plain(p.get('subtask_id'))}[/]: {plain(str(p.get('text'))[:90])}"
    if kind == "subtask":
        mark = {"done": "[green]done[/]", "failed": "[red]failed[/]", "skipped": "[yellow]skipped[/]"}.get(p.get("status"), "?")
        extra = f" — {plain(event.get('error'))}" if event.get("error") else ""
        return (f"  ← {plain(event.get('agent'))} [dim]{plain(p.get('subtask_id'))}[/] {mark} "
                f"{(event.get('duration_ms') or 0) / 1000:.1f} s{extra}")
    return None


def _plan_text(plan: dict | None) -> str:
    if not plan:
        return "(no plan)"
    lines = [f"reasoning: {plan.get('reasoning') or '-'}"]
    for s in plan.get("subtasks") or []:
        after = f" (after {', '.join(s['depends_on'])})" if s.get("depends_on") else ""
        lines.append(f"  {s['id']} [{s['specialist']}]{after}: {s['instructions']}")
    return "\n".join(lines)


def summary_line(task: Task) -> str:
    r = task.result or {}
    if "subtasks" not in r:  # not run by the Director (yet): waiting for approval, failed before planning
        return f"{task.status} · {task.id}" + (f" · {task.error}" if task.error else "")
    subs = r.get("subtasks") or {}
    done = sum(s.get("status") == "done" for s in subs.values())
    seconds = (r.get("duration_ms") or 0) / 1000
    return (f"{task.status} in {seconds:.1f} s · {r.get('tokens', 0):,} tokens · ${r.get('cost_usd', 0):.6f} · "
            f"{done}/{len(subs)} subtasks done · trace: workbench trace {task.id}")


def code_lines(result: Any) -> list[str]:
    """One line per subtask of a task's result whose code ran in the sandbox: files, tests, coverage,
    rounds, time, cost."""
    lines = []
    for sid, sub in sorted(((result or {}).get("subtasks") or {}).items()):
        data = sub.get("data") or {}
        if not data.get("executed"):
            continue
        coverage = data.get("coverage")
        lines.append(
            f"code {sid}: {', '.join(sorted(data.get('files') or [])) or 'no files'} · "
            f"{data.get('tests_passed', 0)}/{data.get('tests_run', 0)} tests pass · "
            f"coverage {'n/a' if coverage is None else f'{coverage:.0f}%'} · {data.get('rounds', 0)} round(s) · "
            f"{data.get('seconds', 0):.1f} s · ${data.get('cost_usd', 0):.6f}")
    return lines


def _follow(b, task_id: str, quiet: bool, after: int = 0) -> Task:
    for event in b.follow(task_id, after):
        line = None if quiet else _progress(event)
        if line:
            err.print(line, highlight=False)
    return b.get(task_id)


def _approve_here(b, task: Task, quiet: bool) -> Task:
    out.print("[bold]The Director proposes:[/]")
    out.print(printable(_plan_text(task.plan)), highlight=False, markup=False)
    if not sys.stdin.isatty():
        out.print(f"Waiting for approval: `workbench tasks approve {task.id}` (optionally --plan edited.json).")
        return task
    if not typer.confirm("Run this plan?", default=True):
        out.print(f"Left waiting: approve later with `workbench tasks approve {task.id}`, or cancel it.")
        return task
    after = _last_seq(b, task.id)
    b.approve(task.id)
    return _follow(b, task.id, quiet, after)


def _last_seq(b, task_id: str) -> int:
    """Follow only what happens next (the earlier `awaiting_approval` status would end the follow)."""
    events = b.events(task_id)
    return events[-1]["seq"] if events else 0


def register(app: typer.Typer) -> None:
    @app.command()
    def run(
        prompt: str = typer.Argument(..., help="The task, in plain words."),
        model: str = typer.Option(None, "--model", "-m", help="provider:model or alias (default: each agent's)."),
        budget: float = typer.Option(None, "--budget", callback=finite, help="Cost budget in USD for the whole task."),
        approve_plan: bool = typer.Option(False, "--approve-plan", help="Show the plan and ask before running it."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the answer and the summary."),
        as_json: bool = typer.Option(False, "--json", help="The finished task as JSON."),
        use_memory: bool = typer.Option(None, "--memory/--no-memory",
                                        help="Use memory for this task, or not (default: WORKBENCH_MEMORY)."),
    ) -> None:
        """Plan and run a task with the Director and specialists; print the answer and a summary."""
        new = NewTask.of(prompt=prompt, model=model, budget_usd=budget, approve_plan=approve_plan, mode="agents",
                         memory=use_memory)
        with backend() as b:
            task = b.create(new, wait=True)
            task = _follow(b, task.id, quiet or as_json)
            if task.status == "awaiting_approval" and not as_json:
                task = _approve_here(b, task, quiet)
        if as_json:
            print(json.dumps(task.model_dump(mode="json")))
        else:
            answer = (task.result or {}).get("answer")
            if answer:
                out.print(printable(answer), highlight=False, markup=False)
            for line in code_lines(task.result):
                err.print(printable(line), highlight=False, markup=False)
            if task.error:
                err.print(f"[red]error:[/] {plain(task.error)}", highlight=False)
            err.print(printable(summary_line(task)), highlight=False, markup=False)
        if task.status not in ("completed", "awaiting_approval"):
            raise typer.Exit(1)

    tasks.add_task_command(app, "approve", approve)


def approve(
    task_id: str = task_id_argument("A task in awaiting_approval."),
    plan: Path = typer.Option(None, "--plan", help="An edited plan (JSON: reasoning, subtasks) to run instead."),
    as_json: bool = typer.Option(False, "--json", help="Run quietly, then print the finished task as JSON."),
) -> None:
    """Approve a task's proposed plan (or an edited one) so it runs."""
    edited = None
    if plan is not None:
        try:
            edited = json.loads(plan.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"Cannot read the plan {plan}: {exc}. Give a JSON file like the `plan` of "
                              f"`workbench tasks show {task_id} --json`.") from None
    with backend() as b:
        after = _last_seq(b, task_id)
        task = b.approve(task_id, edited)
        if not as_json:
            out.print(f"{task.id} approved (plan version {task.plan_version}); running it:")
        task = _follow(b, task_id, quiet=as_json, after=after)  # without a server, this process runs it: stay until done
    answer = (task.result or {}).get("answer")
    if as_json:
        print(json.dumps(task.model_dump(mode="json")))
    elif answer:
        out.print(printable(answer), highlight=False, markup=False)
    if not as_json:
        err.print(printable(summary_line(task)), highlight=False, markup=False)
    if task.status != "completed":
        raise typer.Exit(1)
