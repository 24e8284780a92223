"""Benchmarks as experiments: import a benchmark's cases as a dataset, run configurations through the
experiment runner (one traced task per case and configuration, rows in Postgres, resumable), and read the
finished rows back so the benchmark can export them to its results file.

The store is the configured one (WORKBENCH_HOME), so the runs show in `workbench experiment list`, on the
Experiments page and in `workbench trace`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

EXPERIMENTS = Path(__file__).resolve().parent / "experiments"  # the shipped configuration files


def configs(names: list[str], model: str | None = None) -> list:
    """The shipped configurations `benchmarks/experiments/<name>.yaml`, with `model` when given."""
    from workbench.evals import config

    loaded = [config.load(EXPERIMENTS / f"{name}.yaml") for name in names]
    return [c.model_copy(update={"model": model}) if model else c for c in loaded]


def run(dataset: str, cases: list, source: str, configs: list, limit: int | None = None
        ) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Import `cases` as `dataset` (a new version only when they changed), run every configuration on them
    (resuming an unfinished run of the same), and return each experiment with its finished rows."""
    from workbench.evals import datasets
    from workbench.experiment.run import ExperimentRun
    from workbench.tasks.client import LocalBackend

    backend = LocalBackend()
    try:
        imported = datasets.import_cases(backend.store, dataset, cases, source)
        print(f"dataset {dataset} v{imported.version}: {imported.cases} cases"
              + (" (imported)" if imported.created else ""), flush=True)
        began, last = time.monotonic(), [0.0]

        def started(experiments: list[dict], resumed: list[bool]) -> None:
            for e, again in zip(experiments, resumed):
                print(f"{'resuming' if again else 'started'} experiment {e['name']} ({e['id']})", flush=True)

        def progress(p) -> None:
            if time.monotonic() - last[0] >= 10 or p.done >= p.total:
                last[0] = time.monotonic()
                print(f"  {p.done}/{p.total} cases done, {p.passed} passed, {time.monotonic() - began:.0f} s",
                      flush=True)

        finished = ExperimentRun(backend.store, backend.runner()).run(dataset, configs, limit=limit,
                                                                     progress=progress, on_start=started)
        return [rows(e["id"], backend.store) for e in finished]
    finally:
        backend.close()


def rows(ref: str, store=None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An experiment (by name or id) and its finished result rows, in the dataset's order."""
    from workbench.experiment import records
    from workbench.store import open_store

    store = store or open_store()
    experiment = records.get(store, ref)
    return experiment, [r for r in records.results(store, experiment["id"]) if r["status"] == "done"]
