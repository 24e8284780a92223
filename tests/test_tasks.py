"""Tasks on the real stack: embedded Postgres, a Dask LocalCluster of worker processes, the served API.

The runner-level tests use deterministic bodies (sleep, emit, noop); the served app runs tasks on the
deterministic `test:echo` model; one CLI test runs a task on the real local model.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import httpx
import pytest

from helpers import REPO, home_dir, module_stack, run_cli, served_app

pytestmark = pytest.mark.timeout(300)
PLUGIN = str(REPO / "tests" / "agent_plugins.py")


# --- the runner, in-process, on a real cluster --------------------------------------------------


# Store + LocalCluster for this module (its own WORKBENCH_HOME, stopped at the end); the workers get the plugins.
stack, stack_home = module_stack("wb-tasks-", PLUGIN)


@pytest.fixture()
def runner(stack):
    from workbench.tasks.runner import TaskRunner

    return TaskRunner(stack[1], stack[2])


def _new(service, prompt="do it", **kw):
    from workbench.tasks.service import NewTask

    return service.create(NewTask(prompt=prompt, **kw))["id"]


def _statuses(service, task_id):
    return [(e["payload"]["from"], e["payload"]["to"]) for e in service.events(task_id) if e["kind"] == "status"]


def test_status_machine_and_events_in_order(stack, runner):
    from workbench.tasks.runner import RunOptions

    service = stack[2]
    task_id = _new(service)
    runner.submit(task_id, RunOptions(body="noop", classify=False))
    task = runner.wait(task_id, timeout=60)
    assert task["status"] == "completed" and task["started_at"] and task["finished_at"]
    assert _statuses(service, task_id) == [(None, "pending"), ("pending", "queued"), ("queued", "processing"),
                                           ("processing", "completed")]


def test_concurrent_tasks_write_exactly_n_times_m_events(stack, runner):
    from workbench.store.sync import Syncer
    from workbench.tasks.runner import RunOptions

    store, service = stack[0], stack[2]
    n, m = 6, 250
    ids = [_new(service, f"emit {i}") for i in range(n)]
    for task_id in ids:
        runner.submit(task_id, RunOptions(body="emit", classify=False, events=m))
    for task_id in ids:
        assert runner.wait(task_id, timeout=120)["status"] == "completed"
    for task_id in ids:
        assert sum(e["kind"] == "tool_call" for e in service.events(task_id)) == m
    Syncer(store).sync_once()
    import duckdb

    from workbench.config import get_settings

    con = duckdb.connect(str(get_settings().duckdb_path), read_only=True)
    try:
        placeholders = ",".join("?" * n)
        count = con.execute(f"SELECT count(*) FROM events WHERE kind = 'tool_call' AND task_id::VARCHAR IN ({placeholders})",
                            ids).fetchone()[0]
    finally:
        con.close()
    assert count == n * m


def test_cancel_running_and_queued(stack, runner):
    from workbench.tasks.runner import RunOptions

    service = stack[2]
    running = _new(service, "long")
    runner.submit(running, RunOptions(body="sleep", classify=False, seconds=30))
    _wait_status(service, running, "processing")
    runner.cancel(running)
    assert runner.wait(running, timeout=30)["status"] == "cancelled"
    # Cancelled wins: the worker noticed and stopped; no completed status came after.
    assert _statuses(service, running)[-1] == ("processing", "cancelled")

    pending = _new(service, "never runs")
    assert runner.cancel(pending)["status"] == "cancelled"


def test_watchdog_resubmits_queued_tasks_whose_future_dask_dropped(stack, runner):
    """A queued task whose future Dask cancelled behind the runner's back runs after reconcile; one the
    user cancelled does not."""
    from workbench.tasks.runner import RunOptions

    client, service = stack[1], stack[2]
    noop = RunOptions(body="noop", classify=False)
    dropped, cancelled = _new(service, "dropped by Dask"), _new(service, "cancelled by the user")
    for task_id in (dropped, cancelled):
        service.transition(task_id, "queued", reason="submitted")
        # A resource no worker has: the future never starts, so cancelling it leaves no sleeping worker thread
        future = client.submit(time.sleep, 30, key=f"lost-{task_id}", pure=False, resources={"NO_SUCH_WORKER": 1})
        runner.futures[task_id] = (future, noop)
        client.cancel(future)
        runner._done(task_id, future)  # as Dask calls it: the entry stays for the watchdog
    service.transition(cancelled, "cancelled", reason="cancelled by user")
    assert runner.reconcile(grace_s=60) == []  # too young to call lost
    assert runner.reconcile(grace_s=0) == [dropped]
    assert runner.wait(dropped, timeout=60)["status"] == "completed"
    assert service.get(cancelled)["status"] == "cancelled" and cancelled not in runner.futures
    assert runner.reconcile(grace_s=0) == []


def test_a_single_call_tasks_budget_is_checked_before_each_call_and_charged_after(stack, runner):
    """test:priced costs $0.00124 a call; a single_call task makes two: the classifying route, then the answer."""
    from agent_plugins import PRICED_CPU_S

    from workbench.config import get_settings

    service, per_call = stack[2], PRICED_CPU_S * get_settings().local_cpu_second_usd
    ids = {usd: _new(service, f"Say hi for ${usd}", model="test:priced", mode="single", budget_usd=usd)  # no cache hit
           for usd in (0.01, 0.001, 0.0)}
    for task_id in ids.values():
        runner.submit(task_id)
    done = {usd: runner.wait(task_id, timeout=60) for usd, task_id in ids.items()}
    assert done[0.01]["status"] == "completed", done[0.01]["error"]
    assert done[0.01]["result"]["cost_usd"] == pytest.approx(per_call)
    # $0.001: the route was allowed (nothing spent yet) and charged, so the answer's call is refused
    assert done[0.001]["status"] == "failed"
    assert f"cost budget is spent: ${per_call:.6f} of $0.001000 used. Raise budget_usd" in done[0.001]["error"]
    # $0: no call at all
    assert done[0.0]["status"] == "failed" and "cost budget is spent: $0.000000 of $0.000000" in done[0.0]["error"]
    calls = {usd: sum(e["kind"] == "llm_call" for e in service.events(task_id)) for usd, task_id in ids.items()}
    assert calls == {0.01: 2, 0.001: 1, 0.0: 0}


def test_illegal_transition_refused(stack):
    from workbench.tasks.states import IllegalTransition

    service = stack[2]
    task_id = _new(service)
    service.transition(task_id, "cancelled")
    with pytest.raises(IllegalTransition, match="cannot become processing"):
        service.transition(task_id, "processing")


def test_a_status_change_and_its_event_commit_together(stack, monkeypatch):
    """The status event is written in the status row's statement: a failure after it ran, before the
    commit, leaves neither; the next change then writes both."""
    from workbench.tasks.service import TaskService

    service = stack[2]
    task_id = _new(service)

    def fail(stage):
        raise RuntimeError(f"crashed at {stage}")

    monkeypatch.setattr(TaskService, "failpoint", staticmethod(fail))
    with pytest.raises(RuntimeError, match="crashed at status_written"):
        service.transition(task_id, "queued", reason="never committed")
    monkeypatch.setattr(TaskService, "failpoint", None)
    assert service.get(task_id)["status"] == "pending"
    assert _statuses(service, task_id) == [(None, "pending")]  # the event rolled back with the row
    service.transition(task_id, "queued")
    assert _statuses(service, task_id) == [(None, "pending"), ("pending", "queued")]


def test_a_process_killed_mid_status_change_leaves_neither_row_nor_event(stack):
    """Killed after the status statement ran, before its commit: Postgres keeps neither."""
    service, home = stack[2], stack[3]
    task_id = _new(service)
    code = f"""
import os
from workbench.store import open_store
from workbench.tasks.service import TaskService
def die(stage):
    os._exit(9)   # no rollback, no close: the process is gone mid-transaction
TaskService.failpoint = staticmethod(die)
TaskService(open_store()).transition("{task_id}", "queued", reason="killed")
"""
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 9, out.stderr[-3000:]
    assert service.get(task_id)["status"] == "pending"
    assert _statuses(service, task_id) == [(None, "pending")]


def test_killed_worker_retries_then_reports(stack, runner):
    from workbench.tasks.runner import RunOptions

    client, service = stack[1], stack[2]
    task_id = _new(service, "victim")
    runner.submit(task_id, RunOptions(body="sleep", classify=False, seconds=3))
    _wait_status(service, task_id, "processing")
    worker = next(e["payload"]["reason"] for e in service.events(task_id)
                  if e["kind"] == "status" and e["payload"]["to"] == "processing").split()[-1]
    pids = client.run(os.getpid)
    addr = next(a for a, info in client.scheduler_info(n_workers=-1)["workers"].items() if info["name"] == worker)
    os.kill(pids[addr], signal.SIGKILL)
    task = runner.wait(task_id, timeout=120)
    # The nanny restarts the worker; the task is retried once and then completes.
    assert task["status"] == "completed", task
    assert task["attempts"] == 1
    assert any("retrying" in (e["payload"].get("reason") or "") for e in service.events(task_id) if e["kind"] == "status")


def test_one_rule_says_how_often_a_lost_worker_is_retried():
    """Tasks (runner) and subtasks (the Director on Dask) share it: one more run after the first."""
    from workbench.tasks import states

    assert states.MAX_ATTEMPTS == 2
    assert states.runs_again(1) and not states.runs_again(2)


def test_restart_mid_task_recovers(stack):
    from workbench import cluster
    from workbench.tasks.runner import RunOptions, TaskRunner

    client, service = stack[1], stack[2]
    task_id = _new(service, "survive a restart")
    TaskRunner(client, service).submit(task_id, RunOptions(body="sleep", classify=False, seconds=20))
    _wait_status(service, task_id, "processing")
    cluster.close_client()  # the workbench goes away mid-task (its workers with it)
    with pytest.raises(cluster.NothingToReconnect):  # closed on purpose: no runner's watchdog brings it back
        cluster.reconnect()
    fresh = TaskRunner(cluster.get_client(), service, RunOptions(body="noop", classify=False))
    assert task_id in fresh.recover()
    task = fresh.wait(task_id, timeout=120)
    assert task["status"] == "completed" and task["attempts"] == 1
    assert ("processing", "queued") in _statuses(service, task_id)


def _wait_status(service, task_id, status, timeout=60):
    deadline = time.monotonic() + timeout
    while service.get(task_id)["status"] != status:
        assert time.monotonic() < deadline, f"{task_id} never reached {status}: {service.get(task_id)['status']}"
        time.sleep(0.05)


# --- the served API ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api():
    with served_app("tasks-api", WORKBENCH_MODEL="test:echo") as app:
        yield app.url, app.env


def _wait_api(base, task_id, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        task = httpx.get(f"{base}/api/v1/tasks/{task_id}").json()
        if task["status"] in ("completed", "failed", "cancelled"):
            return task
        assert time.monotonic() < deadline, task
        time.sleep(0.1)


def test_api_task_lifecycle_and_websocket(api):
    from websockets.sync.client import connect

    base, _ = api
    r = httpx.post(f"{base}/api/v1/tasks", json={"prompt": "Write a haiku about queues", "priority": 3})
    assert r.status_code == 201, r.text
    task_id = r.json()["id"]
    with connect(base.replace("http", "ws") + f"/api/v1/tasks/{task_id}/stream") as ws:
        events = [json.loads(m)["event"] for m in ws]
    statuses = [e["payload"]["to"] for e in events if e["kind"] == "status"]
    assert statuses == ["pending", "queued", "processing", "completed"]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    task = _wait_api(base, task_id)
    assert task["result"]["answer"] and task["kind"] in ("code", "general", "data", "multi")
    listed = httpx.get(f"{base}/api/v1/tasks", params={"status": "completed"}).json()
    assert task_id in [t["id"] for t in listed["items"]]
    assert httpx.get(f"{base}/api/v1/tasks/{task_id}/events").json()[-1]["payload"]["to"] == "completed"
    assert httpx.patch(f"{base}/api/v1/tasks/{task_id}", json={"priority": 9}).json()["priority"] == 9
    assert httpx.post(f"{base}/api/v1/tasks/{task_id}/cancel").status_code == 409
    assert httpx.delete(f"{base}/api/v1/tasks/{task_id}").status_code == 204
    assert httpx.get(f"{base}/api/v1/tasks/{task_id}").status_code == 404


@pytest.mark.parametrize("body,status,fragment", [
    ({"prompt": ""}, 422, "empty"),
    ({"prompt": "x" * 1_500_000}, 413, "limit"),
    ({"prompt": "x" * 10_000_000}, 413, "limit"),
    ({"prompt": "nul \u0000 byte"}, 422, "NUL"),
    ({"prompt": "hi", "model": "local:nope"}, 422, "Available models"),
    ({"prompt": "hi", "budget_usd": -1}, 422, ""),
    ({"title": "no prompt"}, 422, ""),
])
def test_api_bad_input(api, body, status, fragment):
    base, _ = api
    before = httpx.get(f"{base}/api/v1/tasks").json()["total"]
    r = httpx.post(f"{base}/api/v1/tasks", json=body, timeout=60)
    assert r.status_code == status, r.text
    assert fragment in r.text
    assert httpx.get(f"{base}/api/v1/tasks").json()["total"] == before  # nothing half-created


def test_api_malformed_json_unknown_id_and_sql_title(api):
    base, _ = api
    r = httpx.post(f"{base}/api/v1/tasks", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = httpx.post(f"{base}/api/v1/tasks", content=b'{"prompt": "\xff\xfe"}', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "parsing the body" in r.text  # invalid UTF-8 never reaches the store
    assert httpx.get(f"{base}/api/v1/tasks/00000000-0000-0000-0000-000000000000").status_code == 404
    assert httpx.get(f"{base}/api/v1/tasks/not-a-uuid").status_code == 404
    title = "x'); DROP TABLE tasks; --"
    task = httpx.post(f"{base}/api/v1/tasks", json={"prompt": "hi", "title": title}).json()
    assert httpx.get(f"{base}/api/v1/tasks/{task['id']}").json()["title"] == title


def test_cli_talks_to_running_server(api):
    base, env = api
    out = subprocess.run([sys.executable, "-m", "workbench", "submit", "Say hi", "--wait", "--json"], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    task = json.loads(out.stdout.strip().splitlines()[-1])
    assert task["status"] == "completed"
    shown = subprocess.run([sys.executable, "-m", "workbench", "events", task["id"], "--json"], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=60)
    kinds = [e["kind"] for e in json.loads(shown.stdout)]
    assert "status" in kinds and "llm_call" in kinds


def test_cli_without_a_server_submits_runs_lists_and_cancels_through_the_task_api():
    from workbench.store import postgres as embedded

    home = home_dir("wb-cli-local-")
    home.chmod(0o755)
    env = {"WORKBENCH_HOME": str(home), "WORKBENCH_MODEL": "test:echo"}
    try:
        out = run_cli("submit", "Stay pending", "--json", env=env)
        assert out.returncode == 0, out.stderr
        pending = json.loads(out.stdout.strip().splitlines()[-1])
        assert pending["status"] == "pending"  # no server and no --wait: nothing runs it yet
        out = run_cli("submit", "Say hi", "--wait", "--json", env=env)
        assert out.returncode == 0, out.stderr
        done = json.loads(out.stdout.strip().splitlines()[-1])
        assert done["status"] == "completed" and done["result"]["answer"]
        listed = json.loads(run_cli("tasks", "--json", env=env).stdout)
        assert listed["total"] == 2 and [t["id"] for t in listed["items"]] == [done["id"], pending["id"]]
        out = run_cli("cancel", pending["id"], env=env)
        assert out.returncode == 0 and f"{pending['id']} cancelled" in out.stdout
        out = run_cli("cancel", pending["id"], env=env)
        assert out.returncode == 1 and "cannot become cancelled" in out.stderr and "Traceback" not in out.stderr
    finally:
        embedded.stop(home / "postgres")
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.slow
def test_cli_submit_wait_on_local_model_without_server(test_model):
    # A request the small router sends to code, whose example lets the loop verify the answer in the sandbox.
    out = run_cli("submit", "Write a Python function add(a, b) that returns their sum: add(2, 3) == 5.", "--model", test_model,
                  "--wait", "--json", timeout=300)
    assert out.returncode == 0, out.stderr
    task = json.loads(out.stdout.strip().splitlines()[-1])
    assert task["status"] == "completed" and task["result"]["answer"].strip()
    events = json.loads(run_cli("events", task["id"], "--json").stdout)
    calls = [e for e in events if e["kind"] == "llm_call"]
    assert calls and all(c["tokens_out"] > 0 and c["cost_usd"] > 0 for c in calls)
