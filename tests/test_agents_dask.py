"""The Director on a real Dask cluster (worker processes) and a real store, with deterministic models.

`test:team` (tests/agent_plugins.py, loaded in every process through WORKBENCH_PLUGINS) plays the
Director and the specialists; the plan is picked by a `[plan:NAME]` marker in the prompt. Proven here:
parallel fan-out (overlapping runs on two worker processes), dependency order and context passing,
failure isolation, resume after the Director's worker is killed, plan approval (as proposed or
edited; a bad edit refused), messages from worker processes on the API's WebSocket, and the
real local model on a two-subtask task.
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
from helpers import REPO, free_port, home_dir, served_app, stack_in

pytestmark = pytest.mark.timeout(420)
PLUGIN = str(REPO / "tests" / "agent_plugins.py")
AGENTS_YAML = REPO / "workbench" / "agents" / "agents.yaml"


@pytest.fixture(scope="module")
def stack():
    from workbench.tasks.runner import TaskRunner

    home = home_dir("wb-agents-dask-")
    agents_file = home / "agents.yaml"  # a copy the tests may edit while tasks run (workers re-read it)
    agents_file.write_text(AGENTS_YAML.read_text())
    with stack_in(home, WORKBENCH_PLUGINS=PLUGIN, WORKBENCH_AGENTS_FILE=str(agents_file)) as (store, client, service):
        yield store, client, service, TaskRunner(client, service), home


@pytest.fixture(autouse=True)
def stack_env(request, monkeypatch):
    if "stack" in request.fixturenames:
        from workbench.config import reload_settings

        monkeypatch.setenv("WORKBENCH_HOME", str(request.getfixturevalue("stack")[4]))
        monkeypatch.setenv("WORKBENCH_PLUGINS", PLUGIN)
        monkeypatch.setenv("WORKBENCH_AGENTS_FILE", str(request.getfixturevalue("stack")[4] / "agents.yaml"))
        reload_settings()


def run(stack, prompt, timeout=180, **kw):
    from workbench.tasks.service import NewTask

    _, _, service, runner, _ = stack
    task = service.create(NewTask(prompt=prompt, model="test:team", **kw))
    runner.submit(task["id"])
    return runner.wait(task["id"], timeout=timeout)


def checkpoints(stack, task_id):
    with stack[0].pool.connection() as conn:
        return {r[0]: {"worker": r[1], "status": r[2]} for r in conn.execute(
            "SELECT subtask_id, worker, status FROM task_subtasks WHERE task_id = %s", (task_id,))}


def test_independent_subtasks_run_in_parallel_on_two_workers_and_pass_context(stack):
    task = run(stack, "Answer in parts [plan:fan-out]")
    assert task["status"] == "completed", task["error"]
    result = task["result"]
    subs = result["subtasks"]
    s1, s2, s3 = subs["s1"], subs["s2"], subs["s3"]
    assert all(s["status"] == "done" for s in subs.values())
    assert s1["started_at"] < s2["finished_at"] and s2["started_at"] < s1["finished_at"]  # overlapping
    where = checkpoints(stack, task["id"])
    assert where["s1"]["worker"] != where["s2"]["worker"]  # two worker processes
    assert s3["started_at"] >= max(s1["finished_at"], s2["finished_at"])  # after its inputs
    assert "part one" in s3["output"] and "part two" in s3["output"]  # their results as context
    assert result["ok"] and "Sources:" in result["answer"] and "[s3] general (done)" in result["answer"]
    events = stack[2].events(task["id"])
    task_span = next(e for e in events if e["kind"] == "task" and e["agent"] == "director")
    subtask_spans = [e for e in events if e["kind"] == "subtask"]
    assert len(subtask_spans) == 3 and all(e["parent_span_id"] == task_span["span_id"] for e in subtask_spans)
    messages = [e["payload"] for e in events if e["kind"] == "message"]
    assert {(m["type"], m["subtask_id"]) for m in messages} == {(t, s) for t in ("request", "result")
                                                                for s in ("s1", "s2", "s3")}


def _writer_interval(interval_s: float) -> float:
    """On a worker: set how often its event writer writes by itself; returns the previous interval."""
    from workbench.store import get_store

    writer = get_store().writer
    previous, writer.interval_s = writer.interval_s, interval_s
    writer.flush()  # wakes the writer thread, so the new interval applies from now
    return previous


def test_every_subtask_event_and_checkpoint_is_in_postgres_before_the_task_reads_completed(stack):
    """Workers do not flush per subtask; the Director flushes them all before the final status. With the
    workers' writers left to themselves only once a minute, only that flush can have written s1 and s2's
    events (they run on both workers, so on at least one other than the Director's) and checkpoints."""
    _, client, service, _, _ = stack
    before = client.run(_writer_interval, 60.0)
    try:
        task = run(stack, "Answer in parts [plan:fan-out]")
        events = service.events(task["id"])  # at once: nothing has had time to be written by the timer
        saved = checkpoints(stack, task["id"])
    finally:
        client.run(_writer_interval, next(iter(before.values())))
    assert task["status"] == "completed", task["error"]
    assert {w["worker"] for w in saved.values()} == {"worker-0", "worker-1"}
    assert {sid: c["status"] for sid, c in saved.items()} == {"s1": "done", "s2": "done", "s3": "done"}
    spans = {e["payload"]["subtask_id"]: e for e in events if e["kind"] == "subtask"}
    assert sorted(spans) == ["s1", "s2", "s3"]
    calls = [e for e in events if e["kind"] == "llm_call" and e["agent"] == "general"]
    assert len(calls) >= 3
    messages = [e["payload"] for e in events if e["kind"] == "message"]
    assert sorted(m["subtask_id"] for m in messages if m["type"] == "result") == ["s1", "s2", "s3"]


def _epoch(ts) -> float:
    import datetime as dt

    return ts if isinstance(ts, float) else dt.datetime.fromisoformat(ts).timestamp()


def attempts_hang_under_their_own_call(events: list[dict]) -> dict[str, int]:
    """Every stored llm_attempt's parent_span_id is the span id of an llm_call that was open when it was
    recorded, and every llm_call has attempts of its own. Returns the number of attempts under each call.
    (Grouped by parent span, the trace's own link between an attempt and its call.)"""
    calls = {e["span_id"]: e for e in events if e["kind"] == "llm_call"}
    attempts = [e for e in events if e["kind"] == "llm_attempt"]
    assert calls and attempts
    strays = [(a["seq"], a["parent_span_id"]) for a in attempts if a["parent_span_id"] not in calls]
    assert not strays, f"llm_attempt events not under an llm_call: {strays}"
    for a in attempts:
        call = calls[a["parent_span_id"]]
        assert _epoch(a["ts"]) <= _epoch(call["ts"]) + 0.001  # recorded before its call ended
    under = {sid: sum(a["parent_span_id"] == sid for a in attempts) for sid in calls}
    assert all(under.values()), under
    return under


def test_trace_of_a_run_nests_attempts_under_calls_and_worker_events_under_the_director(stack):
    """The trace of a task run like `workbench run` (created and queued through the task API, run on Dask
    workers through the real gateway stack): every llm_attempt is stored with its llm_call's span id as
    its parent, every llm_call under the agent span that made it, and the result messages sent from the
    worker processes under the Director's task span (the context captured there, carried through Dask)."""
    from workbench import traces
    from workbench.tasks.api import TaskApi
    from workbench.tasks.records import NewTask

    _, _, service, runner, _ = stack
    created = TaskApi(service, runner).create_and_submit(NewTask(prompt="Answer in parts [plan:fan-out]",
                                                                 model="test:team"))
    task = runner.wait(created.id, timeout=180)
    assert task["status"] == "completed", task["error"]
    events = traces.load(task["id"], stack[0])
    attempts_hang_under_their_own_call(events)
    tree = traces.build_tree(events)
    nodes = [n for root in tree for n in root.walk()]
    parent = {id(c): n for n in nodes for c in n.children}
    calls = [n for n in nodes if n.kind == "llm_call"]
    attempts = [n for n in nodes if n.kind == "llm_attempt"]
    assert calls and len(attempts) >= len(calls)
    assert all(parent[id(a)].kind == "llm_call" for a in attempts)  # never a sibling of its call
    assert all([c.kind for c in call.children] == ["llm_attempt"] for call in calls)
    assert all(parent[id(c)].kind in ("agent", "plan", "agent_step") for c in calls)
    task_span = next(n for n in nodes if n.kind == "task")
    results = [n for n in nodes if n.kind == "message" and n.event["payload"]["type"] == "result"]
    workers = {n.event["payload"]["worker"] for n in results}
    assert len(results) == 3 and "in-process" not in workers  # sent from worker processes
    assert all(parent.get(id(n)) is task_span for n in results)


def test_a_request_for_one_specialist_takes_the_fast_path_and_the_trace_says_so(stack):
    from workbench import traces

    task = run(stack, "Say hello [route:general]")
    assert task["status"] == "completed", task["error"]
    the_plan = task["result"]["plan"]
    assert the_plan["source"] == "fast_path" and [s["specialist"] for s in the_plan["subtasks"]] == ["general"]
    assert the_plan["subtasks"][0]["instructions"] == "Say hello [route:general]"  # the user's words, unplanned
    assert task["kind"] == "general" and task["complexity"] == 1 and task["summary"] == "Say hello [route:general]"
    nodes = [n for root in traces.build_tree(traces.load(task["id"], stack[0])) for n in root.walk()]
    plan_span = next(n.event for n in nodes if n.kind == "plan")
    assert plan_span["payload"]["fast_path"] is True and plan_span["payload"]["specialist"] == "general"
    router = next(n for n in nodes if n.kind == "agent_step" and n.event["agent"] == "router")
    assert [c.kind for c in router.children] == ["llm_call"]  # one routing call, and no planning call at all
    assert not any(n.kind == "agent_step" and n.event["agent"] == "director" for n in nodes)


def test_a_failing_specialist_fails_only_its_subtask(stack):
    task = run(stack, "Answer in parts [plan:isolation]")
    assert task["status"] == "completed", task["error"]  # a partial result, never a dead Director
    subs = task["result"]["subtasks"]
    assert subs["s1"]["status"] == "failed" and "503" in subs["s1"]["error"]
    assert subs["s2"]["status"] == "done"
    assert subs["s3"]["status"] == "skipped" and "s1" in subs["s3"]["error"]
    assert not task["result"]["ok"] and task["result"]["failed"] == ["s1"] and task["result"]["skipped"] == ["s3"]
    assert "Incomplete: 1 failed (s1), 1 skipped (s3)" in task["result"]["answer"]
    under = attempts_hang_under_their_own_call(stack[2].events(task["id"]))
    assert max(under.values()) >= 2  # s1's retried call: each retry under that same call


def test_a_spent_task_budget_refuses_every_call_and_skips_every_subtask(stack):
    """The task's budget_usd covers the Director's calls and its subtasks: $0 refuses them all."""
    task = run(stack, "Answer in parts [plan:chain]", budget_usd=0)
    assert task["status"] == "failed" and "No subtask finished" in task["error"]
    subs = task["result"]["subtasks"]
    assert subs and all(s["status"] == "skipped" and "task cost budget is spent" in s["error"] for s in subs.values())
    assert not any(e["kind"] == "llm_call" for e in stack[2].events(task["id"]))


def test_a_plan_naming_an_unknown_specialist_falls_back_to_one_step(stack):
    task = run(stack, "Read my horoscope [plan:unknown]")
    assert task["status"] == "completed", task["error"]
    the_plan = task["result"]["plan"]
    assert the_plan["source"] == "fallback" and len(the_plan["subtasks"]) == 1
    assert "astrologer" in the_plan["attempts"][0]["error"]


def test_a_specialist_disabled_mid_run_fails_only_its_subtask(stack):
    import yaml

    from workbench.tasks.service import NewTask

    _, _, service, runner, home = stack
    agents_file = home / "agents.yaml"
    original = agents_file.read_text()
    task = service.create(NewTask(prompt="Code it [plan:late]", model="test:team"))
    runner.submit(task["id"])
    deadline = time.monotonic() + 60
    while not any(e["kind"] == "message" for e in service.events(task["id"])):  # s1 is running (slowly)
        assert time.monotonic() < deadline
        time.sleep(0.05)
    config = yaml.safe_load(original)
    config["specialists"]["code"]["enabled"] = False
    try:
        agents_file.write_text(yaml.safe_dump(config))
        done = runner.wait(task["id"], timeout=120)
    finally:
        agents_file.write_text(original)
    assert done["status"] == "completed", done["error"]
    subs = done["result"]["subtasks"]
    assert subs["s1"]["status"] == "done"
    assert subs["s2"]["status"] == "failed" and "disabled" in subs["s2"]["error"].lower()


def test_resume_after_the_directors_worker_is_killed(stack):
    from workbench.tasks.service import NewTask

    _, client, service, runner, _ = stack
    task = service.create(NewTask(prompt="Two steps [plan:chain]", model="test:team"))
    runner.submit(task["id"])
    deadline = time.monotonic() + 120

    def running_on() -> str | None:  # `processing` may commit after s1's checkpoint (the writer's next batch)
        return next((e["payload"]["reason"].split()[-1] for e in service.events(task["id"])
                     if e["kind"] == "status" and e["payload"]["to"] == "processing"), None)

    while "s1" not in checkpoints(stack, task["id"]) or running_on() is None:  # s1 done; s2 (slow) is running
        assert time.monotonic() < deadline, service.get(task["id"])
        time.sleep(0.05)
    director = running_on()
    pids = client.run(os.getpid)
    addr = next(a for a, w in client.scheduler_info(n_workers=-1)["workers"].items() if w["name"] == director)
    os.kill(pids[addr], signal.SIGKILL)
    done = runner.wait(task["id"], timeout=180)
    assert done["status"] == "completed", done["error"]
    # s2 may have finished on the surviving worker before the retry looked: then both are resumed.
    assert done["attempts"] == 1 and "s1" in done["result"]["resumed"]
    events = service.events(task["id"])
    assert len([e for e in events if e["kind"] == "plan"]) == 1  # planned once: the retry read the stored plan
    assert len([e for e in events if e["kind"] == "subtask" and e["payload"]["subtask_id"] == "s1"]) == 1
    assert all(s["status"] == "done" for s in done["result"]["subtasks"].values())


def test_a_subtask_dask_runs_again_after_it_finished_returns_its_checkpoint_and_calls_nothing(stack):
    """Dask runs a finished subtask again when the worker holding its result died before the Director fetched
    it: the rerun returns the stored checkpoint; no second model call, no second `subtask` event."""
    from workbench import telemetry
    from workbench.agents.guards import Budget
    from workbench.tasks.agents_on_dask import run_subtask

    _, client, service, _, _ = stack
    task = run(stack, "Answer in parts [plan:fan-out]")
    assert task["status"] == "completed", task["error"]
    s1 = next(s for s in task["result"]["plan"]["subtasks"] if s["id"] == "s1")
    parent = telemetry.Context(task_id=task["id"], trace_id=task["id"].replace("-", ""))
    before = service.events(task["id"])
    again = client.submit(run_subtask, task["id"], parent, s1, {}, Budget(), None, task["result"]["plan_version"],
                          {}, pure=False).result(timeout=60)
    client.run(lambda: __import__("workbench.store", fromlist=["get_store"]).get_store().flush())
    after = service.events(task["id"])[len(before):]
    assert again == task["result"]["subtasks"]["s1"]
    assert [e["kind"] for e in after] == ["agent_step"] and after[0]["payload"] == {"reused_checkpoint": "s1"}


def test_approve_plan_as_proposed_or_edited(stack):
    from workbench.errors import PlanError
    from workbench.tasks.plans import PlanNotAwaitingApproval, approve_task

    _, _, service, runner, _ = stack
    parked = run(stack, "Answer in parts [plan:fan-out]", approve_plan=True)
    assert parked["status"] == "awaiting_approval" and parked["plan_state"] == "proposed"
    assert [s["id"] for s in parked["plan"]["subtasks"]] == ["s1", "s2", "s3"]
    bad = {"subtasks": [{"id": "s1", "specialist": "astrologer", "instructions": "x"}]}
    with pytest.raises(PlanError, match="astrologer"):
        approve_task(service, runner, parked["id"], bad, by="test")
    assert service.get(parked["id"])["status"] == "awaiting_approval"  # nothing changed
    edited = {"reasoning": "one step is enough",
              "subtasks": [{"id": "only", "specialist": "general", "instructions": "answer it all"}]}
    approve_task(service, runner, parked["id"], edited, by="test")
    done = runner.wait(parked["id"], timeout=120)
    assert done["status"] == "completed" and list(done["result"]["subtasks"]) == ["only"]
    assert done["result"]["plan"]["source"] == "edited" and done["plan_version"] == 2
    with pytest.raises(PlanNotAwaitingApproval):
        approve_task(service, runner, parked["id"], None)


# --- the served API: messages from workers on the WebSocket, approval over HTTP ---------------------


@pytest.fixture(scope="module")
def served():
    with served_app("agents-api", WORKBENCH_MODEL="test:team", WORKBENCH_PLUGINS=PLUGIN) as app:
        yield app.url, app.env


def test_messages_from_worker_processes_arrive_on_the_websocket(served):
    from websockets.sync.client import connect

    base, _ = served
    task = httpx.post(f"{base}/api/v1/tasks", json={"prompt": "Answer in parts [plan:fan-out]"}).json()
    with connect(base.replace("http", "ws") + f"/api/v1/tasks/{task['id']}/stream", open_timeout=30) as ws:
        events = [json.loads(m)["event"] for m in ws]
    results = [e["payload"] for e in events if e["kind"] == "message" and e["payload"]["type"] == "result"]
    assert sorted(m["subtask_id"] for m in results) == ["s1", "s2", "s3"]
    assert all(m["worker"].startswith("worker-") for m in results)  # sent from Dask worker processes
    assert events[-1]["kind"] == "status" and events[-1]["payload"]["to"] == "completed"


def test_approval_over_http(served):
    base, _ = served
    task = httpx.post(f"{base}/api/v1/tasks", json={"prompt": "Answer [plan:chain]", "approve_plan": True}).json()
    deadline = time.monotonic() + 120
    while (task := httpx.get(f"{base}/api/v1/tasks/{task['id']}").json())["status"] != "awaiting_approval":
        assert time.monotonic() < deadline and task["status"] not in ("completed", "failed"), task
        time.sleep(0.2)
    bad = httpx.post(f"{base}/api/v1/tasks/{task['id']}/approve", json={"plan": {"subtasks": []}})
    assert bad.status_code == 422 and "subtasks" in bad.text
    r = httpx.post(f"{base}/api/v1/tasks/{task['id']}/approve", json={})
    assert r.status_code == 200 and r.json()["plan_state"] == "approved", r.text
    while (task := httpx.get(f"{base}/api/v1/tasks/{task['id']}").json())["status"] not in ("completed", "failed"):
        assert time.monotonic() < deadline + 60, task
        time.sleep(0.2)
    assert task["status"] == "completed" and list(task["result"]["subtasks"]) == ["s1", "s2"]
    again = httpx.post(f"{base}/api/v1/tasks/{task['id']}/approve", json={})
    assert again.status_code == 409


# --- the CLI: workbench run, approve, trace (no server: the CLI starts what it needs) -----------------


def _cli(env, *args, timeout=240, stdin=None):
    return subprocess.run([sys.executable, "-m", "workbench", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout, input=stdin)


@pytest.fixture()
def cli_env():
    home = home_dir("wb-agents-cli-")
    yield {**os.environ, "WORKBENCH_HOME": str(home), "WORKBENCH_PLUGINS": PLUGIN, "WORKBENCH_PORT": str(free_port())}
    from workbench.store import postgres as embedded

    embedded.stop(home / "postgres")
    shutil.rmtree(home, ignore_errors=True)


def test_cli_run_prints_answer_and_summary_and_trace_shows_both_branches(cli_env):
    r = _cli(cli_env, "run", "Answer in parts [plan:fan-out]", "--model", "test:team")
    assert r.returncode == 0, r.stderr
    assert "Sources:" in r.stdout and "[s3] general (done)" in r.stdout
    summary = r.stderr.strip().splitlines()[-1]
    assert "completed in" in summary and "3/3 subtasks done" in summary and "tokens" in summary
    task_id = summary.split("workbench trace ")[-1].strip()
    t = _cli(cli_env, "trace", task_id, "--json", timeout=120)
    assert t.returncode == 0, t.stderr
    tree = json.loads(t.stdout)["tree"]

    def walk(nodes):
        for n in nodes:
            yield n
            yield from walk(n["children"])

    director = next(n for n in walk(tree) if n["kind"] == "task" and n["agent"] == "director")
    branches = [n for n in director["children"] if n["kind"] == "subtask"]
    assert sorted(n["payload"]["subtask_id"] for n in branches) == ["s1", "s2", "s3"]
    assert all(any(c["kind"] == "llm_call" for c in walk(n["children"])) for n in branches)


def test_cli_approve_plan_then_approve_by_id(cli_env):
    r = _cli(cli_env, "run", "Answer [plan:chain]", "--model", "test:team", "--approve-plan", stdin="")
    assert r.returncode == 0, r.stderr
    assert "The Director proposes" in r.stdout and "s2 [general] (after s1)" in r.stdout
    task_id = r.stdout.split("workbench tasks approve ")[-1].split()[0].strip("`")
    bad = _cli(cli_env, "tasks", "approve", task_id, "--plan", "/nonexistent.json")
    assert bad.returncode != 0 and "Cannot read the plan" in bad.stderr and "Traceback" not in bad.stderr
    ok = _cli(cli_env, "tasks", "approve", task_id)
    assert ok.returncode == 0, ok.stderr
    assert "2/2 subtasks done" in ok.stderr


# --- the real local model ----------------------------------------------------------------------------


@pytest.mark.timeout(900)
def test_two_subtasks_on_the_local_model_with_a_data_answer_from_real_rows(stack, test_model):
    """The plan step runs on the real model (its calls are the logged rows); the approved plan then has a
    Data subtask over those rows and a General one, both on the real model, each holding the LLM slot."""
    from workbench.store.sync import Syncer
    from workbench.tasks.plans import approve_task
    from workbench.tasks.service import NewTask

    store, _, service, runner, _ = stack
    task = service.create(NewTask(prompt="How much did the model calls in the execution log cost on average, "
                                         "and what is a median?", model=test_model, approve_plan=True))
    runner.submit(task["id"])
    parked = runner.wait(task["id"], timeout=600)
    assert parked["status"] == "awaiting_approval", parked["error"]
    assert parked["plan"]["subtasks"] and parked["kind"] in ("code", "general", "data", "multi")
    Syncer(store).sync_once()  # publish the analytics snapshot the Data specialist reads
    plan = {"reasoning": "one data question, one explanation", "subtasks": [
        {"id": "s1", "specialist": "data", "instructions": "Using the events table, what is the average cost_usd for each model?"},
        {"id": "s2", "specialist": "general", "instructions": "Explain in one sentence what a median is."}]}
    approve_task(service, runner, task["id"], plan, by="test")
    done = runner.wait(task["id"], timeout=600)
    assert done["status"] == "completed", done["error"]
    s1, s2 = done["result"]["subtasks"]["s1"], done["result"]["subtasks"]["s2"]
    assert s2["status"] == "done" and s2["output"].strip()
    assert s1["status"] == "done", s1["error"]
    assert s1["data"]["sql"].lower().startswith(("select", "with")) and s1["data"]["rows"]
    calls = [e for e in service.events(task["id"]) if e["kind"] == "llm_call"]
    assert {c["model"] for c in calls} == {test_model} and all(c["cost_usd"] > 0 for c in calls)
    # the Director's routing call (a fast path needs no planning call), then the two specialists
    assert {c["agent"] for c in calls} >= {"router", "data", "general"}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_cli_run_with_an_unreachable_cloud_model_fails_over_to_the_local_model(cli_env, test_model):
    env = {**cli_env, "WORKBENCH_MODEL": test_model, "OPENAI_API_KEY": "sk-test-unreachable",
           "WORKBENCH_OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"}  # nothing listens there
    r = _cli(env, "run", "Say hello in one short sentence.", "--model", "openai:gpt-4o-mini", timeout=840)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "sk-test-unreachable" not in r.stdout + r.stderr  # the key never reaches output
    task_id = r.stderr.strip().splitlines()[-1].split("workbench trace ")[-1].strip()
    t = _cli(env, "trace", task_id, "--json", timeout=120)
    assert t.returncode == 0, t.stderr

    def walk(nodes):
        for n in nodes:
            yield n
            yield from walk(n["children"])

    attempts = [n for n in walk(json.loads(t.stdout)["tree"]) if n["kind"] == "llm_attempt"]
    assert any(a["model"].startswith("openai:") and a["error"] for a in attempts)  # the cloud attempt failed
    assert any(a["model"] == test_model and not a["error"] for a in attempts)  # and the local model answered
    assert "sk-test-unreachable" not in t.stdout


def test_models_shows_the_servers_breakers(served):
    base, env = served
    # A call in the server's own process (breakers are per process; each Dask worker keeps its own).
    r = httpx.post(f"{base}/v1/chat/completions", timeout=60,
                   json={"model": "test:team", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text
    assert httpx.get(f"{base}/gateway/health").json()["breakers"]
    r = _cli({**env, "COLUMNS": "250"}, "models", timeout=120)  # wide enough for every column
    assert r.returncode == 0, r.stderr
    assert f"breakers: from the server at {base}" in r.stdout.replace("\n", " ")
    row = next(line for line in r.stdout.splitlines() if line.strip().startswith("test:team"))
    assert "closed" in row and "ok" in row
