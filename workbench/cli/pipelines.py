"""`workbench pipelines`: list, run, history, schedule — the notebooks of pipelines/*.yaml.

`run` executes on this process's Dask cluster (the configured scheduler or a LocalCluster) and records the
run in the store; the served app's scheduler fires the cron schedules (workbench.pipelines.scheduler).
Parameters are checked before anything starts: a wrong type or an unknown name is exit 2.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from workbench.cli.text import plain, printable

pipelines_app = typer.Typer(help="Scheduled notebook pipelines (pipelines/NAME.yaml).", no_args_is_help=True)
out = Console(soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(pipelines_app, name="pipelines")


def _loaded():
    from workbench.cli.failures import error_line
    from workbench.pipelines import spec

    found, errors = spec.load_all()
    for error in errors:
        error_line(error)
    return found


@pipelines_app.command("list")
def list_pipelines(as_json: bool = typer.Option(False, "--json", help="Print the pipelines as JSON.")) -> None:
    """Each pipeline: notebook, schedule, next run, parameters (and what is wrong with a broken file)."""
    now = datetime.now(UTC)
    if as_json:
        rows = []
        for p in _loaded():
            nxt = p.next_runs(now)
            rows.append({"name": p.name, "schedule": p.spec.schedule, "next_run": nxt[0].isoformat() if nxt else None,
                         "notebook": p.spec.notebook, "parameters": p.spec.parameters})
        print(json.dumps(rows, default=str))
        return
    table = Table("name", "schedule (UTC)", "next run", "notebook", "parameters")
    for p in _loaded():
        nxt = p.next_runs(now)
        table.add_row(p.name, p.spec.schedule or "manual", nxt[0].strftime("%Y-%m-%d %H:%M") if nxt else "-",
                      p.spec.notebook, Text(printable(json.dumps(p.spec.parameters))))
    out.print(table)


@pipelines_app.command("run")
def run(
    name: str = typer.Argument(..., help="Pipeline name (pipelines/NAME.yaml)."),
    param: list[str] = typer.Option([], "--param", "-p", help="NAME=VALUE, typed as the yaml's default; repeat."),
    as_json: bool = typer.Option(False, "--json", help="Print the finished run as JSON."),
) -> None:
    """Run a pipeline now and wait for it; prints where the executed notebook and HTML are."""
    from workbench import cluster
    from workbench.config import get_settings
    from workbench.pipelines import spec
    from workbench.pipelines.runner import PipelineRunner
    from workbench.store import open_store

    pipeline = spec.get(name)
    params = spec.coerce(pipeline, spec.parse_assignments(param))  # refused here, before any start-up
    store = open_store()
    row = PipelineRunner(store, cluster.get_client(), get_settings().home).run(pipeline, params)
    store.flush()
    if as_json:
        print(json.dumps(row, default=str))
        if row["status"] != "completed":
            raise typer.Exit(1)
        return
    color = "green" if row["status"] == "completed" else "red"
    out.print(f"run {row['id']}  [{color}]{row['status']}[/]  {row['duration_ms'] / 1000:.1f} s")
    for key in ("output_notebook", "output_html"):
        if row[key]:
            out.print(f"  {key.removeprefix('output_')}: {plain(row[key])}")
    if row["status"] != "completed":
        out.print(f"  [red]cell {row['failed_cell']}: {plain(row['error'] or '')}[/]")
        raise typer.Exit(1)


@pipelines_app.command("history")
def history(
    name: str | None = typer.Argument(None, help="Only this pipeline."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=500, help="How many runs, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print the runs as JSON."),
) -> None:
    """Recent runs: status, trigger, when, how long, the failing cell and its error."""
    from workbench.pipelines import history as runs
    from workbench.store import open_store

    rows = runs.recent(open_store(), name, limit)
    if as_json:
        print(json.dumps(rows, default=str))
        return
    if not rows:
        out.print("no pipeline runs yet: `workbench pipelines run NAME`")
        return
    table = Table("run", "pipeline", "trigger", "status", "started (UTC)", "seconds", "failed cell", "error")
    for r in rows:
        seconds = f"{r['duration_ms'] / 1000:.1f}" if r["duration_ms"] is not None else "-"
        table.add_row(str(r["id"])[:8], r["pipeline"], r["trigger"], r["status"],
                      r["started_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"), seconds,
                      "-" if r["failed_cell"] is None else str(r["failed_cell"]),
                      Text(printable((r["error"] or "")[:80])))
    out.print(table)


@pipelines_app.command("schedule")
def schedule(count: int = typer.Option(3, "--count", "-n", min=1, max=100, help="Next run times per schedule."),
             as_json: bool = typer.Option(False, "--json", help="Print the schedules as JSON.")) -> None:
    """The next run times of every scheduled pipeline (UTC; `workbench serve` fires them)."""
    now = datetime.now(UTC)
    scheduled = [p for p in _loaded() if p.spec.schedule and p.spec.enabled]
    if as_json:
        print(json.dumps([{"name": p.name, "schedule": p.spec.schedule,
                           "next_runs": [t.isoformat() for t in p.next_runs(now, count)]} for p in scheduled]))
        return
    if not scheduled:
        out.print("no scheduled pipelines: add `schedule:` (cron) to a pipelines/NAME.yaml")
    for p in scheduled:
        times = ", ".join(t.strftime("%Y-%m-%d %H:%M") for t in p.next_runs(now, count))
        out.print(f"{p.name}  [dim]{plain(p.spec.schedule)}[/]  {times}")
