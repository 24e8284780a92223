"""Scale-out on a real external deployment: a `dask scheduler` and two `dask worker` processes (the venv's
`dask` CLI, loopback only, each with its own --local-directory and WORKBENCH_HOME), a Postgres server
reached by URL only, and `workbench serve` pointed at them by environment variables alone
(WORKBENCH_DASK_SCHEDULER, WORKBENCH_POSTGRES_URL, WORKBENCH_PLUGINS). Model-free agent tasks
(`test:team`, tests/agent_plugins.py, imported by the workers through WORKBENCH_PLUGINS) run on both
workers; one worker is SIGKILLed mid-task and every task still completes on the other, with no event lost
or written twice; the scheduler is killed mid-task and restarted on the same address only after the server's client gave
up on it, the server connects anew, the interrupted task runs again and completes, and so does a new task.
"""

from __future__ import annotations

import time

import httpx
import pytest
from helpers import REPO, home_dir, served_app

from benchmarks._external_cluster import ExternalCluster

# About 2 minutes for the module on 2 shared cores (processes start, a worker dies, the scheduler restarts).
pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]
PLUGIN = str(REPO / "tests" / "agent_plugins.py")
FINAL = ("completed", "failed", "cancelled")


@pytest.fixture(scope="module")
def deployment():
    import shutil

    root = home_dir("wb-scaleout-")
    env = {"WORKBENCH_MODEL": "test:team", "WORKBENCH_TEST_SLOW_S": "3"}
    try:
        with ExternalCluster(root, plugins=PLUGIN, env=env) as ext:
            ext.start_all()
            # The server's client gives up on a lost scheduler after 5 s (30 s by default), so the restart test
            # below sees the scheduler stay away past it: the task runner must connect anew by itself.
            with served_app("scale-out", **ext.app_env(), WORKBENCH_DASK_TIMEOUT_S="5") as served:
                yield ext, served
    finally:
        shutil.rmtree(root, ignore_errors=True)


def submit(served, prompt: str) -> str:
    r = httpx.post(f"{served.url}/api/v1/tasks", json={"prompt": prompt, "model": "test:team"}, timeout=60)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def get(served, task_id: str) -> dict:
    return httpx.get(f"{served.url}/api/v1/tasks/{task_id}", timeout=60).json()


def wait_final(served, ids: list[str], timeout: float = 240) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while True:
        tasks = {i: get(served, i) for i in ids}
        if all(t.get("status") in FINAL for t in tasks.values()):  # an error body while Postgres is away
            return tasks
        assert time.monotonic() < deadline, {i: t.get("status", t) for i, t in tasks.items()}
        time.sleep(0.5)


def events_in_postgres(ext: ExternalCluster, task_ids: list[str]) -> list[dict]:
    """Every event of these tasks, read straight from the external Postgres (not through the server)."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(ext.postgres_url, row_factory=dict_row) as conn:
        return conn.execute("SELECT event_id::text AS id, seq, task_id::text AS task_id, kind, span_id, payload FROM events "
                            "WHERE task_id = ANY(%s::uuid[]) ORDER BY seq", (task_ids,)).fetchall()


def check_events(ext: ExternalCluster, served_app, tasks: dict[str, dict]) -> None:
    """No event written twice (ids unique), none lost: each task's statuses form one unbroken chain from
    pending to its final status (the row's), its plan is there, each subtask has a checkpoint event (more
    than one only for real second runs), and the server's API returns exactly the events Postgres holds."""
    served_url = served_app.url
    rows = events_in_postgres(ext, list(tasks))
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "an event was written twice"
    for task_id, task in tasks.items():
        mine = [r for r in rows if r["task_id"] == task_id]
        chain = [(r["payload"]["from"], r["payload"]["to"]) for r in mine if r["kind"] == "status"]
        assert chain[0] == (None, "pending") and chain[-1][1] == task["status"], chain
        assert all(a[1] == b[0] for a, b in zip(chain, chain[1:])), f"a status event is missing: {chain}"
        # At least one plan; a second is a second real planning run (a worker lost mid-plan), never a copy.
        assert sum(r["kind"] == "plan" for r in mine) >= 1, [r["kind"] for r in mine]
        runs = [(r["payload"]["subtask_id"], r["span_id"]) for r in mine if r["kind"] == "subtask"]
        assert {sid for sid, _ in runs} == set(task["result"]["subtasks"]), runs
        # A subtask runs again only when its first run's checkpoint was not yet committed as its worker died
        # (a finished one is reused, not rerun): each of its events is then its own run, never a copy.
        assert len({span for _, span in runs}) == len(runs), f"a subtask event was copied: {runs}"
        if len(runs) > len(task["result"]["subtasks"]):
            print(f"task {task_id}: a subtask ran twice (its worker died before its checkpoint): {runs}")
        served = [e["seq"] for e in httpx.get(f"{served_url}/api/v1/tasks/{task_id}/events", timeout=60).json()]
        assert served == [r["seq"] for r in mine]


def worker_of(served, task_id: str) -> str | None:
    """The worker the task's Director runs on, from its `processing` status event."""
    events = httpx.get(f"{served.url}/api/v1/tasks/{task_id}/events", timeout=60).json()
    return next((e["payload"]["reason"].split()[-1] for e in reversed(events)
                 if e["kind"] == "status" and e["payload"]["to"] == "processing"), None)


def test_agent_tasks_run_on_both_external_workers(deployment):
    ext, served = deployment
    ids = [submit(served, f"Answer in parts, run {i} [plan:fan-out]") for i in range(3)]
    tasks = wait_final(served, ids)
    assert all(t["status"] == "completed" for t in tasks.values()), tasks
    import psycopg

    with psycopg.connect(ext.postgres_url) as conn:  # the workers' checkpoints say where each subtask ran
        workers = {r[0] for r in conn.execute("SELECT worker FROM task_subtasks WHERE task_id = ANY(%s::uuid[])",
                                              (ids,))}
    assert {"w1", "w2"} <= {w.split()[-1] for w in workers}, workers
    check_events(ext, served, tasks)


def test_a_worker_killed_mid_task_loses_no_task_and_no_event(deployment):
    ext, served = deployment
    ids = [submit(served, f"Two steps, run {i} [plan:chain]") for i in range(4)]
    deadline = time.monotonic() + 120
    victim = None
    while victim is None:  # the first Director to start: its s2 step sleeps, so the kill lands mid-task
        assert time.monotonic() < deadline, [get(served, i)["status"] for i in ids]
        victim = next((w for w in map(lambda i: worker_of(served, i), ids) if w), None)
        time.sleep(0.05)
    ext.kill(victim)
    try:
        tasks = wait_final(served, ids)
        assert all(t["status"] == "completed" for t in tasks.values()), {i: (t["status"], t["error"])
                                                                          for i, t in tasks.items()}
        assert any(t["attempts"] >= 1 for t in tasks.values()), "no task was running on the killed worker"
        check_events(ext, served, tasks)
    finally:
        ext.start_worker(victim)  # back to two workers for the next test, whatever this one found
        ext.wait_for_workers(2)


def test_a_restarted_scheduler_is_found_again_and_the_tasks_it_took_run_again(deployment):
    """The scheduler dies while a task runs (its workers end with it) and stays away until the server's client
    has closed; once a new scheduler and new workers are up at the same address, the server is back on its
    own, the interrupted task runs again from its checkpoints and completes, and a new task completes."""
    ext, served = deployment
    in_flight = submit(served, "Two steps, cut off by the scheduler [plan:chain]")
    deadline = time.monotonic() + 120
    while worker_of(served, in_flight) is None:  # its Director runs; s2 sleeps
        assert time.monotonic() < deadline, get(served, in_flight)
        time.sleep(0.05)
    ext.kill("scheduler")
    deadline = time.monotonic() + 60
    while "client closed" not in str(httpx.get(f"{served.url}/health", timeout=60).json()):  # away for good
        assert time.monotonic() < deadline, httpx.get(f"{served.url}/health", timeout=60).json()
        time.sleep(0.5)
    ext.start_scheduler()  # later than the client waits for it: the task runner's watchdog makes a new client
    for name in ("w1", "w2"):  # workers end with their scheduler; their supervisor (k8s, jobqueue) starts new ones
        ext.procs[name].wait(60)
        ext.procs.pop(name)
    ext.start_worker("w1")
    ext.start_worker("w2")
    ext.wait_for_workers(2)
    deadline = time.monotonic() + 60
    while "dask" in (failed := httpx.get(f"{served.url}/health", timeout=60).json()["failed"]):
        assert time.monotonic() < deadline, failed
        time.sleep(0.5)
    task_id = submit(served, "After the restart [plan:fan-out]")
    tasks = wait_final(served, [in_flight, task_id])
    assert {t["status"] for t in tasks.values()} == {"completed"}, {i: (t["status"], t["error"])
                                                                     for i, t in tasks.items()}
    assert tasks[in_flight]["attempts"] == 1 and tasks[task_id]["attempts"] == 0
    check_events(ext, served, tasks)


def test_postgres_stopped_mid_task_loses_no_task_and_no_event(deployment):
    """Postgres stopped for 20 s while tasks run: the events wait in each process's writer, every read the
    tasks make meanwhile waits for the store (up to the pool's 30 s), and the final statuses land once
    Postgres is back. (An outage longer than the pool waits is counted by benchmarks/faults.py.)"""
    ext, served = deployment
    ids = [submit(served, f"Two steps while Postgres is away, run {i} [plan:chain]") for i in range(2)]
    deadline = time.monotonic() + 120
    while not any(worker_of(served, i) for i in ids):
        assert time.monotonic() < deadline, [get(served, i)["status"] for i in ids]
        time.sleep(0.05)
    ext.stop_postgres()
    time.sleep(20)
    ext.restart_postgres()
    tasks = wait_final(served, ids)
    assert all(t["status"] == "completed" for t in tasks.values()), {i: (t["status"], t["error"])
                                                                      for i, t in tasks.items()}
    check_events(ext, served, tasks)
