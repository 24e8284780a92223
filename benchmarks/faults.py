"""Fault injection, end to end: agent tasks on a served workbench while a worker is SIGKILLed, while the
*server* is SIGKILLed and started again, and while Postgres is stopped for 30 s; then every event and every
model call is counted.

    python benchmarks/faults.py                        # all three faults, 6 tasks each
    python benchmarks/faults.py --faults postgres --pg-down-s 30 --n 4

The deployment is the production one: `workbench serve` attached by environment variables alone to a
Postgres server reached by URL, a `dask scheduler` and two `dask worker` processes (benchmarks/
_external_cluster.py). Each task is a three-step plan of `test:faults` (benchmarks/_fault_team.py: no model
time; its s2 takes WORKBENCH_FAULT_SLOW_S, so the fault lands mid-task), and every call of that model also
appends a line to a file: the ground truth the `llm_call` events are compared with.

Counted per fault, over its tasks, from Postgres itself (not through the server):
- lost: status events missing from a task's chain (pending -> ... -> its final status), subtasks of the
  result with no `subtask` event, and model calls with no `llm_call` event;
- duplicated: event ids stored twice, and `llm_call` events with no model call behind them;
- reruns: model calls beyond one per role and step (a second plan, a subtask run twice), the spend a fault
  cost; and `attempts`, how often the task was run again.
Results: benchmarks/results/faults.json.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._common import code_version, save, table  # noqa: E402
from benchmarks._external_cluster import ExternalCluster, free_port  # noqa: E402

PLUGIN = str(Path(__file__).resolve().parent / "_fault_team.py")
FINAL = ("completed", "failed", "cancelled")
CALLS_PER_TASK = {"router": 1, "director": 1, "specialist": 3}  # one run of the plan, nothing repeated


class Run:
    """The deployment, its server's URL, and the file of model calls."""

    def __init__(self, ext: ExternalCluster, port: int, calls: Path):
        self.ext, self.port, self.calls = ext, port, calls
        self.url = f"http://127.0.0.1:{port}"

    def submit(self, n: int, label: str) -> list[str]:
        ids = []
        for i in range(n):
            r = httpx.post(f"{self.url}/api/v1/tasks", json={"prompt": f"{label} task {i}", "model": "test:faults"},
                           timeout=60)
            r.raise_for_status()
            ids.append(r.json()["id"])
        return ids

    def statuses(self, ids: list[str]) -> dict[str, str]:
        return dict(self.query("SELECT id::text, status FROM tasks WHERE id = ANY(%s::uuid[])", ids))

    def wait_processing(self, ids: list[str], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while "processing" not in self.statuses(ids).values():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no task reached processing in {timeout:g} s: {self.statuses(ids)}")
            time.sleep(0.1)

    def wait_final(self, ids: list[str], timeout: float) -> float:
        start = time.monotonic()
        while True:
            try:
                if all(s in FINAL for s in self.statuses(ids).values()):
                    return time.monotonic() - start
            except Exception:  # noqa: BLE001 - Postgres may be down right now: that is the point
                pass
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"tasks not final after {timeout:g} s: {self.statuses(ids)}")
            time.sleep(0.5)

    def query(self, sql: str, ids: list[str]) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.ext.postgres_url, connect_timeout=3) as conn:
            return conn.execute(sql, (ids,)).fetchall()

    def count(self, fault: str, ids: list[str], seconds: float) -> dict:
        tasks = {tid: (status, attempts, result) for tid, status, attempts, result in self.query(
            "SELECT id::text, status, attempts, coalesce(result, '{}'::jsonb) || jsonb_build_object('error', error) "
            "FROM tasks WHERE id = ANY(%s::uuid[])", ids)}
        events = self.query("SELECT event_id::text, task_id::text, kind, payload FROM events "
                            "WHERE task_id = ANY(%s::uuid[]) ORDER BY seq", ids)
        calls = collections.Counter()
        for line in self.calls.read_text().splitlines() if self.calls.exists() else []:
            task_id, role, _ = line.split("\t")
            if task_id in tasks:
                calls[(task_id, role)] += 1
        llm_events = collections.Counter(task_id for _, task_id, kind, _ in events if kind == "llm_call")
        calls_by_task = collections.Counter()
        for (task_id, _), n in calls.items():
            calls_by_task[task_id] += n
        lost_status = lost_subtask = 0
        for tid, (status, _, result) in tasks.items():
            chain = [(p["from"], p["to"]) for _, t, kind, p in events if t == tid and kind == "status"]
            lost_status += int(not chain or chain[0][0] is not None or chain[-1][1] != status)
            lost_status += sum(a[1] != b[0] for a, b in zip(chain, chain[1:]))
            seen = {p["subtask_id"] for _, t, kind, p in events if t == tid and kind == "subtask"}
            lost_subtask += len(set((result or {}).get("subtasks", {})) - seen)
        expected = sum(CALLS_PER_TASK.values()) * len(tasks)
        states = collections.Counter(s for s, _, _ in tasks.values())
        return {
            "fault": fault, "tasks": len(ids), "completed": states["completed"], "failed": states["failed"],
            "other": len(ids) - states["completed"] - states["failed"], "events": len(events),
            "lost_status_events": lost_status, "lost_subtask_events": lost_subtask,
            "calls_without_event": sum(max(0, calls_by_task[t] - llm_events[t]) for t in tasks),
            "duplicate_event_ids": len(events) - len({e[0] for e in events}),
            "events_without_call": sum(max(0, llm_events[t] - calls_by_task[t]) for t in tasks),
            "model_calls": sum(calls_by_task.values()), "rerun_calls": sum(calls_by_task.values()) - expected,
            "attempts": sum(a for _, a, _ in tasks.values()), "seconds": round(seconds, 1),
            "errors": sorted({(r or {}).get("error") or "" for s, _, r in tasks.values() if s == "failed"}),
        }


def kill_worker(run: Run, ids: list[str], args) -> None:
    """SIGKILL the worker a running task's Director is on (its `processing` event names it)."""
    reasons = run.query("SELECT e.payload->>'reason' FROM events e JOIN tasks t ON t.id = e.task_id "
                        "WHERE e.task_id = ANY(%s::uuid[]) AND e.kind = 'status' AND e.payload->>'to' = 'processing' "
                        "AND t.status = 'processing' ORDER BY e.seq DESC", ids)
    victim = next((r[0].split()[-1] for r in reasons if r[0] and r[0].split()[-1] in run.ext.procs), "w1")
    run.ext.kill(victim)
    run.ext.start_worker(victim)  # a node replaced: the cluster is back to two workers for the next fault


def kill_server(run: Run, ids: list[str], args) -> None:
    run.ext.kill("server")
    run.ext.serve(run.port)  # the same home and port, as a supervisor would restart it


def stop_postgres(run: Run, ids: list[str], args) -> None:
    run.ext.stop_postgres()
    time.sleep(args.pg_down_s)
    run.ext.restart_postgres()


FAULTS = {"worker": kill_worker, "server": kill_server, "postgres": stop_postgres}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faults", default="worker,server,postgres")
    ap.add_argument("--n", type=int, default=6, help="tasks per fault")
    ap.add_argument("--pg-down-s", type=float, default=30.0)
    ap.add_argument("--slow-s", type=float, default=3.0, help="how long each task's s2 takes")
    ap.add_argument("--timeout", type=float, default=600.0, help="how long the tasks of one fault may take")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="wb-faults-"))
    calls = root / "model-calls.tsv"
    env = {"WORKBENCH_MODEL": "test:faults", "WORKBENCH_FAULT_SLOW_S": str(args.slow_s),
           "WORKBENCH_FAULTS_CALLS": str(calls)}
    rows = []
    with ExternalCluster(root, plugins=PLUGIN, env=env) as ext:
        ext.start_all()
        run = Run(ext, free_port(), calls)
        ext.serve(run.port)
        for fault in [f.strip() for f in args.faults.split(",") if f.strip()]:
            ids = run.submit(args.n, fault)
            start = time.monotonic()
            run.wait_processing(ids)
            FAULTS[fault](run, ids, args)
            run.wait_final(ids, args.timeout)
            rows.append(run.count(fault, ids, time.monotonic() - start))
            print(f"{fault}: {rows[-1]}", flush=True)
            ext.wait_for_workers(2)
    columns = ["fault", "tasks", "completed", "failed", "lost_status_events", "lost_subtask_events",
               "calls_without_event", "duplicate_event_ids", "events_without_call", "model_calls", "rerun_calls",
               "attempts", "seconds"]
    print(table(rows, columns))
    path = save("faults", rows, code=code_version(), pg_down_s=args.pg_down_s, slow_s=args.slow_s)
    print(f"results: {path}")


if __name__ == "__main__":
    main()
