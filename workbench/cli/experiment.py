"""`workbench experiment`: run a dataset in configurations, list experiments, compare two.

    workbench experiment run --dataset arith --config a.yaml --config b.yaml [--limit 20]
    workbench experiment list
    workbench experiment compare greedy-arith-1 sampled-arith-1
    workbench experiment show greedy-arith-1 --failed        # each case and the task to trace

`run` starts one experiment per configuration and one task per (case, configuration) on Dask (each opens
in `workbench trace ID`), with a progress bar and ETA. Run the same command again after a crash or Ctrl-C:
it resumes the unfinished experiment and runs only the cases it had not finished.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from workbench.cli.text import plain, printable

experiment_app = typer.Typer(help="Experiments: a dataset run in configurations, compared case by case.",
                             no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(experiment_app, name="experiment")


def _pct(x: float | None) -> str:
    from workbench.experiment.compare import pct

    return pct(x)


@experiment_app.command("run")
def run(
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset name (`workbench datasets list`)."),
    config: list[Path] = typer.Option(..., "--config", "-c", help="A configuration YAML file; repeat for more."),
    limit: int = typer.Option(None, "--limit", "-n", min=1, help="Only the dataset's first N cases."),
    as_json: bool = typer.Option(False, "--json", help="No progress bar; print the experiments as JSON."),
) -> None:
    """Run every case of the dataset in every configuration (resuming an unfinished run of the same)."""
    from workbench.evals import config as configs
    from workbench.experiment import records
    from workbench.experiment.run import ExperimentRun
    from workbench.tasks.client import LocalBackend

    loaded = [configs.load(p) for p in config]  # every file checked before anything starts
    backend = LocalBackend()
    try:
        driver = ExperimentRun(backend.store, backend.runner())
        bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[passed]} passed"), TimeElapsedColumn(), TextColumn("ETA"),
                       TimeRemainingColumn(), console=err, disable=as_json)

        def started(experiments: list[dict], resumed: list[bool]) -> None:
            for e, again in zip(experiments, resumed):
                if not as_json:
                    err.print(f"{'resuming' if again else 'started'} {plain(e['name'])} [dim]{e['id']}[/]")

        handle = {}

        def progress(p) -> None:
            if "task" not in handle:
                handle["task"] = bar.add_task(f"{dataset}", total=p.total, passed=0, completed=p.skipped)
                bar.start()
            bar.update(handle["task"], completed=p.done, passed=p.passed)

        try:
            finished = driver.run(dataset, loaded, limit=limit, progress=progress, on_start=started)
        except KeyboardInterrupt:
            bar.stop()
            err.print("stopped: run the same command again to resume (finished cases are kept)")
            raise
        finally:
            bar.stop()
        summaries = [records.summaries(backend.store, e["id"])[0] for e in finished]
    finally:
        backend.close()
    if as_json:
        print(json.dumps(summaries))
        return
    _print_list(summaries)
    if len(summaries) == 2:
        out.print(f"compare: workbench experiment compare {summaries[0]['name']} {summaries[1]['name']}",
                  highlight=False, markup=False)


def _print_list(rows: list[dict]) -> None:
    table = Table("name", "id", "dataset", "model", "mode", "status", "done", "pass rate", "cost $", "median ms")
    for r in rows:
        table.add_row(plain(r["name"]), r["id"][:8], f"{plain(r['dataset'])} v{r['dataset_version']}",
                      plain(r["model"] or "default"), r["mode"], r["status"], f"{r['done']}/{r['cases']}",
                      _pct(r["pass_rate"]), f"{r['cost_usd']:.6f}",
                      "-" if r["median_ms"] is None else f"{r['median_ms']:.0f}")
    out.print(table)


@experiment_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every experiment, newest first: dataset, model, mode, progress, pass rate, cost."""
    from workbench.experiment import records
    from workbench.store import open_store

    rows = records.summaries(open_store())
    if as_json:
        print(json.dumps(rows))
    elif not rows:
        out.print("no experiments yet: `workbench experiment run --dataset D --config a.yaml`")
    else:
        _print_list(rows)


@experiment_app.command("compare")
def compare(
    a: str = typer.Argument(..., help="Experiment A (name or id)."),
    b: str = typer.Argument(..., help="Experiment B (name or id)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Pass rates with 95 % intervals, the paired difference, cost, time and the cases that flipped."""
    from workbench.experiment.compare import compare as run_compare
    from workbench.experiment.compare import points
    from workbench.store import open_store

    c = run_compare(open_store(), a, b)
    if as_json:
        print(json.dumps(c.as_dict()))
        return
    out.print(f"dataset {plain(c.dataset)} v{c.dataset_version} · {c.paired_cases} cases finished by both")
    table = Table("", "experiment", "model", "mode", "passed", "pass rate", "95% CI", "cost $", "tokens",
                  "median ms", "total s")
    for label, arm in (("A", c.a), ("B", c.b)):
        table.add_row(label, plain(arm.name), plain(arm.model or "default"), arm.mode, f"{arm.passed}/{arm.cases}",
                      _pct(arm.rate), f"[{_pct(arm.interval[0])}, {_pct(arm.interval[1])}]", f"{arm.cost_usd:.6f}",
                      str(arm.tokens), "-" if arm.duration_ms_median is None else f"{arm.duration_ms_median:.0f}",
                      f"{arm.duration_ms_total / 1000:.1f}")
    out.print(table)
    out.print(f"difference B-A: {points(c.diff)} points, 95% CI [{points(c.diff_interval[0])}, "
              f"{points(c.diff_interval[1])}]; exact McNemar p = {c.p_value:.4g} "
              f"({len(c.fixed)} flipped to pass, {len(c.broken)} to fail)", highlight=False)
    out.print(f"method: {c.method}", highlight=False, markup=False)
    out.print(f"fail→pass in B: {printable(', '.join(c.fixed)) or '-'}", highlight=False, markup=False)
    out.print(f"pass→fail in B: {printable(', '.join(c.broken)) or '-'}", highlight=False, markup=False)


@experiment_app.command("show")
def show(
    ref: str = typer.Argument(..., help="Experiment name or id."),
    failed: bool = typer.Option(False, "--failed", help="Only the cases that did not pass."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (the summary and every result row)."),
) -> None:
    """One experiment's cases: passed, score, tokens, time, error, and the task to open with `workbench trace`."""
    from workbench.experiment import records
    from workbench.store import open_store

    store = open_store()
    (summary,) = records.summaries(store, ref)
    rows = [r for r in records.results(store, summary["id"]) if not failed or not r["passed"]]
    if as_json:
        print(json.dumps({**summary, "results": rows}, default=str))
        return
    _print_list([summary])
    table = Table("case", "status", "passed", "score", "tokens", "ms", "task (workbench trace ID)", "error")
    for r in rows:
        table.add_row(plain(r["case_id"]), r["status"], "-" if r["passed"] is None else ("yes" if r["passed"] else "no"),
                      "-" if r["score"] is None else f"{r['score']:.2f}",
                      str((r["tokens_in"] or 0) + (r["tokens_out"] or 0)),
                      "-" if r["duration_ms"] is None else f"{r['duration_ms']:.0f}", r["task_id"] or "-",
                      plain((r["error"] or "")[:60]))
    out.print(table)
