"""What running a task, and each subtask of an agents task, through workbench costs on top of Dask.

    .venv/bin/python benchmarks/tasks_dispatch.py [--chains 10] [--chain 10] [--sequential 50] [--tasks 1000]

Everything runs on the real stack the server uses: a fresh embedded Postgres in a temporary WORKBENCH_HOME
and the LocalCluster of `workbench.cluster.start_local_cluster` (worker processes, 1 thread each). Both
sides run in the same process, on the same cluster, in the same run:

- workbench: `TaskService.create` (row + `status` event), `TaskRunner.submit` (`RunOptions(body="noop",
  classify=False)`), done when the task's future is done and its row reads `completed` (the worker
  commits pending -> queued -> processing -> completed, each with its event, and flushes its writer);
- raw Dask: `client.submit(noop, pure=False)`, done when the future's result is back.

0. subtask dispatch: agents tasks planned (by `test:dispatch`, benchmarks/_dispatch_team.py) as a chain
   s1 -> s2 -> ... -> sN, each subtask after the one before and with its output as context, run by the
   real Director (`TaskRunner`, body "agents": the plan step, checkpoints, messages, spans, LLM-slot
   check, cancellation checks); against the same chain of the same `run_specialist` calls submitted from
   a worker through `worker_client()` on raw Dask, each one as soon as its input is back. Measured per
   dependency: from one subtask's specialist finishing to the next one's starting (the `finished_at` and
   `started_at` the specialist run records), i.e. one whole dispatch round: result back, Director,
   submit, scheduler, worker. The specialist's own work (an instant model) is the same on both sides
   and outside the measure, so the difference is what the Director adds per subtask;
1. sequential latency: one task at a time, end to end (p50/p95 per task), three ways interleaved: the
   server's path, `TaskService.create` then `TaskRunner.submit` (split into create, submit, and submit ->
   completed); `TaskRunner.create` (the same rows and four status events, pending -> queued in one
   transaction whose commit overlaps Dask's dispatch); raw Dask;
2. throughput: N tasks submitted at once (one loop of submits, then wait for all); no task may be lost:
   every row must read `completed` and carry exactly its 4 status events;
3. memory: RSS of the scheduler's process (this one: SpecCluster runs the scheduler and the nannies in it)
   and of every worker process (`client.run(os.getpid)`) before and after the N tasks, and Postgres's.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(1, str(Path(__file__).resolve().parent))  # _dispatch_team, the plugin the workers load too
from benchmarks._common import save, table


def noop(i: int) -> int:
    """The raw-Dask task: as little work as the workbench `noop` body."""
    return i


def rss_mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def tree_rss_mib(pid: int | None) -> float:
    if pid is None:
        return 0.0
    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def cpu_s(pids: list[int], pgdata: Path) -> float:
    """CPU seconds used so far by these processes plus the Postgres server (postmaster + backends)."""
    from workbench.store.postgres import postmaster_pid

    procs = [psutil.Process(p) for p in pids]
    pg = postmaster_pid(pgdata)
    if pg is not None:
        procs += [psutil.Process(pg), *psutil.Process(pg).children(recursive=True)]
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def memory(client, pgdata: Path) -> dict:
    from workbench.store.postgres import postmaster_pid

    gc.collect()
    workers = client.run(os.getpid)  # {address: pid of the worker process}
    scheduler = client.run_on_scheduler(os.getpid)
    return {"scheduler_pid_is_this_process": scheduler == os.getpid(),
            "scheduler_process_mib": round(rss_mib(scheduler), 1),
            "workers_mib": round(sum(rss_mib(p) for p in workers.values()), 1),
            "per_worker_mib": [round(rss_mib(p), 1) for p in workers.values()],
            "postgres_mib": round(tree_rss_mib(postmaster_pid(pgdata)), 1)}


class Workbench:
    """The workbench side: create + TaskRunner.submit + wait for `completed`."""

    def __init__(self, client, store):
        from workbench.tasks.runner import RunOptions, TaskRunner
        from workbench.tasks.service import TaskService

        self.service = TaskService(store)
        self.runner = TaskRunner(client, self.service, RunOptions(body="noop", classify=False))

    def create(self, i: int) -> str:
        from workbench.tasks.service import NewTask

        return self.service.create(NewTask(prompt=f"noop {i}"))["id"]

    def submit(self, task_id: str):
        self.runner.submit(task_id)
        entry = self.runner.futures.get(task_id)  # gone already only if it finished (done callback pops it)
        return entry[0] if entry is not None else None

    def finish(self, task_id: str, future) -> None:
        if future is not None:
            future.result()
        status = self.service.get(task_id)["status"]
        assert status == "completed", f"task {task_id} ended {status}"

    def one(self, i: int) -> tuple[float, float, float]:
        t0 = time.perf_counter()
        task_id = self.create(i)
        t1 = time.perf_counter()
        future = self.submit(task_id)
        t2 = time.perf_counter()
        self.finish(task_id, future)
        return t1 - t0, t2 - t1, time.perf_counter() - t2

    def one_together(self, i: int) -> tuple[float, float]:
        """TaskRunner.create: the row, pending -> queued and the Dask submit in one transaction."""
        from workbench.tasks.service import NewTask

        t0 = time.perf_counter()
        task_id = self.runner.create(NewTask(prompt=f"noop {i}"))["id"]
        entry = self.runner.futures.get(task_id)
        t1 = time.perf_counter()
        self.finish(task_id, entry[0] if entry is not None else None)
        return t1 - t0, time.perf_counter() - t1


def chain_gaps(results: list[dict]) -> list[float]:
    """Seconds from each subtask's specialist finishing to the next one's starting, in chain order."""
    ordered = sorted(results, key=lambda r: int(r["subtask_id"][1:]))
    return [b["started_at"] - a["finished_at"] for a, b in zip(ordered, ordered[1:])]


def subtasks(client, service, chains: int, length: int) -> list[dict]:
    """Agents tasks whose plan is a chain, against the same chain of specialist runs on raw Dask."""
    import _dispatch_team as team
    import cloudpickle

    cloudpickle.register_pickle_by_value(team)  # workers have no benchmarks/ on their path

    from workbench.tasks.runner import TaskRunner
    from workbench.tasks.service import NewTask

    runner = TaskRunner(client, service)  # by the task's mode: agents (plan step, then the Director)

    def ours(n: int) -> tuple[list[float], float]:
        task = service.create(NewTask(prompt=f"dispatch benchmark [chain:{n}]", model="test:dispatch"))
        start = time.perf_counter()
        runner.submit(task["id"])
        done = runner.wait(task["id"], timeout=300)
        wall = time.perf_counter() - start
        assert done["status"] == "completed" and done["result"]["ok"], done["error"]
        return chain_gaps(list(done["result"]["subtasks"].values())), wall

    def raw(n: int) -> list[float]:
        return chain_gaps(client.submit(team.raw_chain, n, "test:dispatch", pure=False).result())

    ours(3), raw(3)  # warm-up: imports, plugins, the registry and each worker's store
    gaps_ours, gaps_raw, walls = [], [], []
    for _ in range(chains):  # interleaved, so both sides see the same neighbours on a shared machine
        gaps, wall = ours(length)
        gaps_ours += gaps
        walls.append(wall)
        gaps_raw += raw(length)
    n = len(gaps_ours)
    rows = []
    for name, q in (("p50", 0.5), ("p95", 0.95)):
        w, r = pct(gaps_ours, q) * 1e3, pct(gaps_raw, q) * 1e3
        rows.append({"measure": f"subtask dispatch {name} (ms per dependent subtask, n={n})", "workbench": w,
                     "raw_dask": r, "ratio": w / r, "difference": w - r})
    w, r = statistics.mean(gaps_ours) * 1e3, statistics.mean(gaps_raw) * 1e3
    rows.append({"measure": f"subtask dispatch mean (ms per dependent subtask, n={n})", "workbench": w,
                 "raw_dask": r, "ratio": w / r, "difference": w - r})
    rows.append({"measure": f"  workbench p50: agents task with a chain of {length}, submit -> completed (ms)",
                 "workbench": pct(walls, 0.5) * 1e3})
    return rows


def sequential(wb: Workbench, client, n: int) -> list[dict]:
    ours, parts, together, parts2, raw = [], [], [], [], []
    for i in range(n):  # interleaved, so all three see the same neighbours on a shared machine
        start = time.perf_counter()
        parts.append(wb.one(i))
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        parts2.append(wb.one_together(i))
        together.append(time.perf_counter() - start)
        start = time.perf_counter()
        assert client.submit(noop, i, pure=False).result() == i
        raw.append(time.perf_counter() - start)
    rows = []
    for label, values in (("TaskService.create + TaskRunner.submit", ours), ("TaskRunner.create", together)):
        for name, q in (("p50", 0.5), ("p95", 0.95)):
            w, r = pct(values, q) * 1e3, pct(raw, q) * 1e3
            rows.append({"measure": f"task (noop body, no subtasks), {label}: latency {name} (ms/task, n={n})",
                         "workbench": w, "raw_dask": r, "ratio": w / r, "difference": w - r})
        w, r = statistics.mean(values) * 1e3, statistics.mean(raw) * 1e3
        rows.append({"measure": f"task (noop body, no subtasks), {label}: latency mean (ms/task, n={n})",
                     "workbench": w, "raw_dask": r, "ratio": w / r, "difference": w - r})
    for k, label in enumerate(("create: row + status event", "submit: queued + client.submit, one commit",
                               "submitted -> completed row")):
        p50 = pct([p[k] for p in parts], 0.5) * 1e3
        rows.append({"measure": f"  workbench p50 {label} (ms)", "workbench": p50})
    for k, label in enumerate(("TaskRunner.create: row + pending, queued + client.submit, one commit",
                               "submitted -> completed row")):
        p50 = pct([p[k] for p in parts2], 0.5) * 1e3
        rows.append({"measure": f"  workbench p50 {label} (ms)", "workbench": p50})
    return rows


def throughput(wb: Workbench, client, n: int, pgdata: Path, worker_pids: list[int]) -> tuple[list, dict]:
    pids = [os.getpid(), *worker_pids]
    cpu0 = cpu_s(pids, pgdata)
    start = time.perf_counter()
    ids = [wb.create(i) for i in range(n)]
    created = time.perf_counter()
    futures = {task_id: wb.submit(task_id) for task_id in ids}
    submitted = time.perf_counter()
    client.gather([f for f in futures.values() if f is not None])
    for task_id, future in futures.items():
        wb.finish(task_id, future)
    done = time.perf_counter()
    cpu_ours = cpu_s(pids, pgdata) - cpu0

    with wb.service.store.connection() as conn:
        keys = [uuid.UUID(t) for t in ids]
        by_status = dict(conn.execute(
            "SELECT status, count(*) FROM tasks WHERE id = ANY(%s) GROUP BY status", (keys,)).fetchall())
        status_events = conn.execute(
            "SELECT count(*) FROM events WHERE kind = 'status' AND task_id = ANY(%s)", (keys,)).fetchone()[0]
    lost = {"by_status": by_status, "status_events": status_events, "expected_status_events": 4 * n,
            "memory": memory(client, pgdata), "this_process_mib": rss_mib(os.getpid())}

    cpu0 = cpu_s(pids, pgdata)
    raw_start = time.perf_counter()
    raw = [client.submit(noop, i, pure=False) for i in range(n)]
    raw_submitted = time.perf_counter()
    results = client.gather(raw)
    raw_done = time.perf_counter()
    cpu_raw = cpu_s(pids, pgdata) - cpu0
    assert results == list(range(n)), "raw Dask lost or mixed up results"
    del raw

    ours_s, raw_s = done - start, raw_done - raw_start
    rows = [
        {"measure": f"{n:,} at once: wall s (create + submit + all completed)", "workbench": ours_s,
         "raw_dask": raw_s, "ratio": ours_s / raw_s, "difference": ours_s - raw_s},
        {"measure": f"{n:,} at once: tasks/s", "workbench": n / ours_s, "raw_dask": n / raw_s,
         "ratio": (n / ours_s) / (n / raw_s)},
        {"measure": f"  workbench: create {n:,} rows (s)", "workbench": created - start},
        {"measure": "  submit loop (s)", "workbench": submitted - created,
         "raw_dask": raw_submitted - raw_start},
        {"measure": "  last submit -> all done (s)", "workbench": done - submitted,
         "raw_dask": raw_done - raw_submitted},
        {"measure": "  CPU ms per task (this process + workers + Postgres)", "workbench": cpu_ours / n * 1e3,
         "raw_dask": cpu_raw / n * 1e3, "ratio": cpu_ours / cpu_raw},
    ]
    return rows, lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chains", type=int, default=10, help="agents tasks with a chain plan, per side")
    parser.add_argument("--chain", type=int, default=10, help="subtasks in each chain")
    parser.add_argument("--sequential", type=int, default=50, help="tasks one at a time, per side")
    parser.add_argument("--tasks", type=int, default=1000, help="tasks submitted at once, per side")
    args = parser.parse_args()

    # Outside /tmp/pytest-of-root (a pytest session chmods that to 0700); the embedded Postgres runs as
    # another user and must be able to enter the directory.
    home = Path(tempfile.mkdtemp(prefix="wb-bench-tasks-"))
    home.chmod(0o755)
    os.environ["WORKBENCH_HOME"] = str(home)  # workers inherit WORKBENCH_* and open this store themselves
    here = Path(__file__).resolve().parent
    agents = home / "agents.yaml"  # the packaged one, with room for the chain in a plan
    agents.write_text(re.sub(r"max_subtasks: \d+", f"max_subtasks: {args.chain}",
                             (here.parent / "workbench" / "agents" / "agents.yaml").read_text()))
    os.environ.update(WORKBENCH_AGENTS_FILE=str(agents), WORKBENCH_PLUGINS=str(here / "_dispatch_team.py"))
    from distributed import Client

    from workbench import cluster
    from workbench.config import get_settings, reload_settings
    from workbench.store import Store
    from workbench.store import postgres as embedded

    reload_settings()
    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    store = Store.open(home=home, url="")
    dask_cluster = client = None
    try:
        dask_cluster = cluster.start_local_cluster()
        client = Client(dask_cluster, set_as_default=False)
        client.wait_for_workers(get_settings().dask_workers, timeout=120)
        worker_pids = list(client.run(os.getpid).values())
        wb = Workbench(client, store)
        started = time.perf_counter() - began

        # Warm-up: imports and each worker's own store connection, on both sides.
        warm = [wb.create(-i) for i in range(1, 9)]
        for task_id, future in [(t, wb.submit(t)) for t in warm]:
            wb.finish(task_id, future)
        client.gather([client.submit(noop, -i, pure=False) for i in range(1, 9)])

        rows = subtasks(client, wb.service, args.chains, args.chain)
        rows += sequential(wb, client, args.sequential)
        mem_before = memory(client, store.pgdata)
        rss_before = rss_mib(os.getpid())
        more, lost = throughput(wb, client, args.tasks, store.pgdata, worker_pids)
        rows += more
        mem_after = memory(client, store.pgdata)
        rss_after = rss_mib(os.getpid())
    finally:
        if client is not None:  # workers first (they hold store connections), then Postgres
            client.close()
        if dask_cluster is not None:
            dask_cluster.close()
        store.close()
        embedded.stop(home / "postgres")
        shutil.rmtree(home, ignore_errors=True)

    mem_mid = lost.pop("memory")
    processes = [("scheduler (+ nannies, client, this benchmark: one process)", "scheduler_process_mib"),
                 (f"workers ({len(mem_after['per_worker_mib'])} processes, sum)", "workers_mib"),
                 ("Postgres server (postmaster + backends)", "postgres_mib")]
    mem_rows = [{"process": name, "before_mib": mem_before[key], "after_workbench_mib": mem_mid[key],
                 "after_raw_dask_mib": mem_after[key],
                 "delta_workbench_mib": round(mem_mid[key] - mem_before[key], 1)} for name, key in processes]

    print(table(rows, ["measure", "workbench", "raw_dask", "ratio", "difference"]))
    print()
    print(table(mem_rows, ["process", "before_mib", "after_workbench_mib", "after_raw_dask_mib",
                           "delta_workbench_mib"]))
    print(f"\n(before = after the sequential runs; after_workbench = after the {args.tasks:,} workbench "
          f"tasks; after_raw_dask = after the {args.tasks:,} raw ones; the scheduler runs in this process: "
          f"{mem_after['scheduler_pid_is_this_process']}; this process RSS {rss_before:.1f} -> "
          f"{lost['this_process_mib']:.1f} -> {rss_after:.1f} MiB)")
    print(f"{args.tasks:,} workbench tasks by status: {lost['by_status']}; "
          f"status events {lost['status_events']:,} (expected {lost['expected_status_events']:,})")
    assert lost["by_status"] == {"completed": args.tasks}, f"tasks lost or unfinished: {lost['by_status']}"
    assert lost["status_events"] == lost["expected_status_events"], "status events lost or duplicated"
    load = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    print(f"1-minute load average before/after: {load} (2 cores, shared with other work); "
          f"store + cluster start {started:.1f} s; whole run {time.perf_counter() - began:.0f} s")
    path = save("tasks_dispatch", rows, memory=mem_rows, memory_before=mem_before,
                memory_after_workbench=mem_mid, memory_after_raw_dask=mem_after,
                this_process_rss_mib=[round(m, 1) for m in (rss_before, lost["this_process_mib"], rss_after)],
                tasks_by_status=lost["by_status"], status_events=lost["status_events"],
                chains=args.chains, chain=args.chain, sequential=args.sequential, tasks=args.tasks,
                workers=get_settings().dask_workers,
                start_s=round(started, 1), load_average_1min=load,
                note="2-core machine shared with other work; see the module docstring for what is measured")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
