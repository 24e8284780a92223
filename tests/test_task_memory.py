"""A task's own memory switch and owner, through the real task path: the store, a LocalCluster of worker
processes, the real embedder and sandbox, and a scripted model (tests/memory_plugins.py). A repeated code
task with memory on is answered from the execution cache, and its trace says so; with memory off its trace
holds no memory event; another owner never gets the first owner's answer."""

from __future__ import annotations

import pytest
from helpers import REPO, home_dir, require, requires, sandbox_ok, stack_in

pytestmark = [pytest.mark.timeout(600), requires(*sandbox_ok())]
PLUGIN = str(REPO / "tests" / "memory_plugins.py")
TASK = "Write fib.py with fib(n), the n-th Fibonacci number (0, 1, 1, 2, 3, ...). Tests go in test_fib.py."


@pytest.fixture(scope="module")
def stack():
    from workbench import memory
    from workbench.tasks.runner import TaskRunner

    require(memory.available(), "the embedder is not installed: run `make venv`")
    home = home_dir("wb-task-memory-")
    # Memory off by default: only a task that asks for it uses it (the per-task switch wins).
    with stack_in(home, WORKBENCH_PLUGINS=PLUGIN, WORKBENCH_MEMORY="off", WORKBENCH_MEMORY_OWNER="local") as (
            store, client, service):
        yield store, service, TaskRunner(client, service), home


@pytest.fixture(autouse=True)
def stack_env(request, monkeypatch):
    if "stack" in request.fixturenames:
        from workbench.config import reload_settings

        monkeypatch.setenv("WORKBENCH_HOME", str(request.getfixturevalue("stack")[3]))
        monkeypatch.setenv("WORKBENCH_PLUGINS", PLUGIN)
        monkeypatch.setenv("WORKBENCH_MEMORY", "off")
        monkeypatch.setenv("WORKBENCH_MEMORY_OWNER", "local")
        reload_settings()


def run(stack, owner=None, **kw):
    from workbench.tasks.records import NewTask

    store, service, runner, _ = stack
    task = service.create(NewTask(prompt=TASK, model="test:coder", **kw).owned_by(owner))
    runner.submit(task["id"])
    done = runner.wait(task["id"], timeout=240)
    assert done["status"] == "completed", done["error"]
    store.flush()
    return done, service.events(task["id"])


def memory_events(events):
    return [e["payload"] for e in events if e["kind"] == "memory"]


def code_calls(events):
    return [e for e in events if e["kind"] == "llm_call" and e["agent"] == "code"]


def test_a_repeated_task_uses_memory_only_when_on_and_only_for_its_owner(stack):
    first, events = run(stack, memory=True)
    assert first["memory"] is True and first["memory_owner"] == "local"
    stored = [p for p in memory_events(events) if p["action"] == "store"]
    assert stored and stored[0]["entry_kind"] == "solution", memory_events(events)

    again, events = run(stack, memory=True)
    hits = [p for p in memory_events(events) if p["action"] == "cache_hit"]
    assert hits and hits[0]["similarity"] == 1.0 and hits[0]["used"] == stored[0]["entry"]
    assert hits[0]["source_task_id"] == first["id"] and "owner 'local'" in hits[0]["why"]
    assert not code_calls(events)  # answered from memory: the Code specialist asked no model
    sub = next(iter(again["result"]["subtasks"].values()))
    assert sub["stop_reason"] == "memory_cache" and sub["data"]["from_memory"]

    off, events = run(stack, memory=False)
    assert off["memory"] is False
    assert memory_events(events) == [] and code_calls(events)  # solved afresh, and nothing about memory

    bob, events = run(stack, owner="bob", memory=True)
    assert bob["memory_owner"] == "bob"
    assert not any(p["action"] == "cache_hit" for p in memory_events(events)) and code_calls(events)


# --- over HTTP: the switch is a JSON boolean, the owner is the API key's name -----------------------------


@pytest.fixture(scope="module")
def api():
    from helpers import served_app

    with served_app("task-memory-api", WORKBENCH_MODEL="test:echo", WORKBENCH_API_KEY="k-secret-1",
                    WORKBENCH_API_KEY_NAME="ana", WORKBENCH_MEMORY="off") as app:
        yield app.url


@pytest.mark.parametrize("value", ["yes", 1, "true", {"on": True}])
def test_api_refuses_a_memory_switch_that_is_not_a_boolean(api, value):
    import httpx

    headers = {"X-API-Key": "k-secret-1"}
    before = httpx.get(f"{api}/api/v1/tasks", headers=headers).json()["total"]
    r = httpx.post(f"{api}/api/v1/tasks", json={"prompt": "hi", "mode": "single", "memory": value}, headers=headers)
    assert r.status_code == 422 and "memory" in r.json()["error"] and "\n" not in r.json()["error"], r.text
    assert httpx.get(f"{api}/api/v1/tasks", headers=headers).json()["total"] == before


def test_api_task_keeps_its_switch_and_the_keys_name_as_owner(api):
    import httpx

    headers = {"X-API-Key": "k-secret-1"}
    on = httpx.post(f"{api}/api/v1/tasks", json={"prompt": "hi", "mode": "single", "memory": False,
                                                 "memory_owner": "bob"}, headers=headers)
    assert on.status_code == 201, on.text
    task = httpx.get(f"{api}/api/v1/tasks/{on.json()['id']}", headers=headers).json()
    assert task["memory"] is False and task["memory_owner"] == "ana"  # a request cannot name another owner
    default = httpx.post(f"{api}/api/v1/tasks", json={"prompt": "hi", "mode": "single"}, headers=headers).json()
    assert default["memory"] is None and default["memory_owner"] == "ana"
