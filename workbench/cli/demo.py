"""`workbench demo`: fill the store with a small REAL workload, so the dashboards have something to show.

Every row comes from running real tasks through the task API on the local model (or the one given
with --model): classification and answer calls, their tokens, CPU-second costs and timings. Nothing is
invented. With `--failures` (default) one more task runs on the deterministic `test:fail` model, a real
failing run, so failure analysis has an example. It uses the running server when there is one (its sync
and maintenance then publish and retrain), otherwise its own store and LocalCluster, then publishes the
analytics snapshot and trains the anomaly detector when there are enough rows.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from workbench.cli.text import plain

if TYPE_CHECKING:
    from workbench.services.demo import DemoItem
    from workbench.tasks.records import Task

out = Console(soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        tasks: int = typer.Option(6, "--tasks", "-n", min=1, max=50, help="How many tasks to run (cycles the prompts)."),
        model: str = typer.Option(None, "--model", "-m", help="Model for the tasks (default: WORKBENCH_MODEL)."),
        max_tokens: int = typer.Option(160, "--max-tokens", min=8, max=2048,
                                       help="Answer length cap per task (without a server)."),
        failures: bool = typer.Option(True, "--failures/--no-failures",
                                      help="Also run one task on test:fail (a real failing run)."),
        train: bool = typer.Option(True, "--train/--no-train", help="Train the anomaly detector afterwards."),
    ) -> None:
        """Fill the store with a small real workload on the local model (dashboards: tasks, costs, anomalies)."""
        from workbench.services import demo as seeded
        from workbench.tasks.client import HttpBackend, backend

        items = seeded.plan(tasks, model, failures)
        with backend() as b:
            served = isinstance(b, HttpBackend)
            out.print(f"running {len(items)} real task(s) {'through the running server' if served else 'on a LocalCluster'}"
                      f"{' on ' + plain(model) if model else ''}; this takes a while on a CPU…")
            results = [_run_one(b, item, max_tokens, served) for item in items]
            if not served:
                _publish_and_train(b.store, train)
        done = sum(t.status == "completed" for t in results)
        out.print(f"[bold]{done}/{len(results)} completed[/]. Open the dashboards: `workbench serve`, then "
                  f"http://127.0.0.1:5006/tasks, /costs, /anomalies.")


def _run_one(b, item: DemoItem, max_tokens: int, served: bool) -> Task:
    from workbench.tasks.runner import RunOptions

    started = time.perf_counter()
    new = item.new_task()
    if served:
        task_id = b.create(new, wait=False).id
    else:  # run here, through the task API like every other submit, with this demo's token limit
        b.runner()
        task_id = b.tasks.create_and_submit(new, RunOptions(max_tokens=max_tokens)).id
    for _ in b.follow(task_id):  # returns when the task rests
        pass
    task = b.get(task_id)
    events = b.events(task_id)
    calls = [e for e in events if e["kind"] == "llm_call"]
    tokens = sum((e.get("tokens_in") or 0) + (e.get("tokens_out") or 0) for e in calls)
    cost = sum(e.get("cost_usd") or 0 for e in calls)
    color = "green" if task.status == "completed" else "red"
    out.print(f"  [{color}]{task.status:<9}[/] {time.perf_counter() - started:6.1f} s  {tokens:>6} tok  "
              f"${cost:.6f}  {plain(task.title[:70])}", highlight=False)
    return task


def _publish_and_train(store, train: bool) -> None:
    """Without a server nothing syncs: publish the analytics snapshot now, then train what has enough rows."""
    from workbench.store.sync import Syncer

    store.flush()
    result = Syncer(store).sync_once()
    out.print(f"analytics snapshot published ({result.events_copied} new events)")
    if not train:
        return
    from workbench.analysis import anomaly

    for level in anomaly.LEVELS:
        try:
            r = anomaly.train(store, level, trigger="demo")
        except anomaly.NotEnoughData as exc:
            out.print(f"anomaly detector per {level}: not trained yet ({plain(exc)})", highlight=False)
            continue
        out.print(f"anomaly detector per {level}: trained on {r.rows} rows, {r.flagged} flagged")
