"""What the experiment machinery costs per case on top of calling the model directly (goal: <= 20 ms).

    .venv/bin/python benchmarks/experiment_overhead.py [--cases 200] [--rounds 3]

Everything runs on the real stack: a fresh embedded Postgres in a temporary WORKBENCH_HOME and the
LocalCluster of `workbench.cluster.start_local_cluster` (worker processes, 1 thread each, one LLM slot, as
the CLI runs experiments). The model is `test:echo` (instant, deterministic), through the gateway on both
sides, and every case is judged by exact match on both sides, so the difference is the machinery:

- direct: in this process, for each case `get_model("test:echo").complete(input)` then the checker;
- experiment: `ExperimentRun.run` of a dataset of the same cases in one configuration: the experiment and
  result rows, one task per case (create + queue in one commit, Dask dispatch, the worker's status commits,
  the case body, its result row), and the driver following the rows to the end.

Per case = wall time / cases. Overhead = experiment per case - direct per case, per round (the rounds
alternate the two sides); the table gives each round and the median. Results:
benchmarks/results/experiment_overhead.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._common import code_version, save, table

GOAL_MS = 20.0


def direct(cases, model) -> float:
    from workbench.evals import checkers
    from workbench.evals.checkers import Answer

    start = time.perf_counter()
    for case in cases:
        checkers.check(case, Answer(text=model.complete(case.input, temperature=0, max_tokens=64).text))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=200, help="cases per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (direct, experiment)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="wb-bench-exp-"))
    home.chmod(0o755)  # the embedded Postgres runs as another user and must enter it
    os.environ["WORKBENCH_HOME"] = str(home)  # workers inherit WORKBENCH_* and open this store themselves
    from distributed import Client

    import workbench
    from workbench import cluster
    from workbench.config import get_settings, reload_settings
    from workbench.evals import datasets
    from workbench.evals.cases import Case
    from workbench.evals.config import ExperimentConfig
    from workbench.experiment.run import ExperimentRun
    from workbench.store import Store
    from workbench.store import postgres as embedded
    from workbench.tasks.runner import TaskRunner
    from workbench.tasks.service import TaskService

    reload_settings()
    store = Store.open(home=home, url="")
    dask_cluster = client = None
    rows = []
    try:
        dask_cluster = cluster.start_local_cluster()
        client = Client(dask_cluster, set_as_default=False)
        client.wait_for_workers(get_settings().dask_workers, timeout=120)
        run = ExperimentRun(store, TaskRunner(client, TaskService(store)))
        model = workbench.get_model("test:echo")
        warm = [Case(id=f"w{i}", input=f"warm {i}", expected=f"warm {i}") for i in range(8)]
        datasets.import_cases(store, "warm", warm, "benchmark")
        run.run("warm", [ExperimentConfig(name="warm", model="test:echo")])  # imports, worker store connections
        direct(warm, model)
        for r in range(1, args.rounds + 1):
            cases = [Case(id=f"c{i}", input=f"round {r} case {i}", expected=f"round {r} case {i}")
                     for i in range(args.cases)]
            datasets.import_cases(store, f"round{r}", cases, "benchmark")
            direct_s = direct(cases, model)
            start = time.perf_counter()
            (exp,) = run.run(f"round{r}", [ExperimentConfig(name="echo", model="test:echo")])
            experiment_s = time.perf_counter() - start
            with store.pool.connection() as conn:
                done, passed, body_ms = conn.execute(
                    "SELECT count(*), count(*) FILTER (WHERE passed), percentile_cont(0.5) WITHIN GROUP "
                    "(ORDER BY duration_ms) FROM experiment_results WHERE experiment_id = %s", (exp["id"],)).fetchone()
            assert done == passed == args.cases, f"round {r}: {done} done, {passed} passed of {args.cases}"
            rows.append({"round": r, "cases": args.cases, "direct_ms_per_case": 1000 * direct_s / args.cases,
                         "experiment_ms_per_case": 1000 * experiment_s / args.cases,
                         "overhead_ms_per_case": 1000 * (experiment_s - direct_s) / args.cases,
                         "case_body_p50_ms": body_ms})
    finally:
        if client is not None:
            client.close()
        if dask_cluster is not None:
            dask_cluster.close()
        store.close()
        embedded.stop(home / "postgres")
        shutil.rmtree(home, ignore_errors=True)

    median = {k: statistics.median(r[k] for r in rows) for k in
              ("direct_ms_per_case", "experiment_ms_per_case", "overhead_ms_per_case", "case_body_p50_ms")}
    rows.append({"round": "median", "cases": args.cases, **median})
    columns = ["round", "cases", "direct_ms_per_case", "experiment_ms_per_case", "overhead_ms_per_case",
               "case_body_p50_ms"]
    print(table(rows, columns))
    verdict = "meets" if median["overhead_ms_per_case"] <= GOAL_MS else "misses"
    print(f"overhead per case (median of {args.rounds} rounds): {median['overhead_ms_per_case']:.1f} ms — "
          f"{verdict} the goal of <= {GOAL_MS:g} ms")
    path = save("experiment_overhead", rows, goal_ms=GOAL_MS, code_version=code_version(),
                llm_slots=get_settings().llm_slots, dask_workers=get_settings().dask_workers,
                notes="test:echo through the gateway on both sides; per case = wall / cases; one LLM slot, so the "
                      "cases run one after another on one worker. Machine: 2 shared cores.")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
