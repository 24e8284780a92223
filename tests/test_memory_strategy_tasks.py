"""The strategy choice through the real task path: the store, a LocalCluster of worker processes, the
sandbox and a scripted model (tests/memory_plugins.py). Without a record the Code specialist keeps its
configured rounds and says why; once the stored outcomes show one round doing as well for this kind, a task
gets one round, its trace (`workbench trace`) shows the choice, and its outcome counts in the table."""

from __future__ import annotations

import pytest
from helpers import REPO, home_dir, requires, run_cli, sandbox_ok, stack_in

pytestmark = [pytest.mark.timeout(600), requires(*sandbox_ok())]
PLUGIN = str(REPO / "tests" / "memory_plugins.py")
TASK = "Write fib.py with fib(n), the n-th Fibonacci number (0, 1, 1, 2, 3, ...). Tests go in test_fib.py."
ENV = {"WORKBENCH_PLUGINS": PLUGIN, "WORKBENCH_MEMORY": "off", "WORKBENCH_STRATEGY": "true",
       "WORKBENCH_STRATEGY_EXPLORE": "0", "WORKBENCH_MODEL": "test:coder", "WORKBENCH_STRATEGY_MODELS": "test:coder2"}


@pytest.fixture(scope="module")
def stack():
    from workbench.tasks.runner import TaskRunner

    home = home_dir("wb-strategy-")
    with stack_in(home, **ENV) as (store, client, service):
        yield store, service, TaskRunner(client, service), home


@pytest.fixture(autouse=True)
def stack_env(request, monkeypatch):
    if "stack" in request.fixturenames:
        from workbench.config import reload_settings

        monkeypatch.setenv("WORKBENCH_HOME", str(request.getfixturevalue("stack")[3]))
        for key, value in ENV.items():
            monkeypatch.setenv(key, value)
        reload_settings()


def run(stack, model: str | None = "test:coder", setting: str = "max_rounds"):
    from workbench.tasks.records import NewTask

    store, service, runner, _ = stack
    task = service.create(NewTask(prompt=TASK, model=model))
    runner.submit(task["id"])
    done = runner.wait(task["id"], timeout=240)
    assert done["status"] == "completed", done["error"]
    store.flush()
    [choice] = [e["payload"] for e in service.events(task["id"])
                if e["kind"] == "memory" and e["payload"].get("action") == "strategy"
                and e["payload"]["setting"] == setting]
    return done, choice


def test_a_task_reads_the_statistics_and_its_trace_shows_the_choice(stack):
    from psycopg.types.json import Jsonb

    from workbench.memory import strategy

    store, _, _, home = stack
    first, choice = run(stack)
    assert choice["chose"] == 3 and "the configured default" in choice["why"], choice
    [sub] = first["result"]["subtasks"].values()
    assert sub["data"]["max_rounds"] == 3
    model = sub["model"]
    with store.connection() as conn:  # ten earlier tasks of this kind solved in one round, cheaply
        for _ in range(10):
            task_id = conn.execute("INSERT INTO tasks (prompt, kind, language) VALUES ('x', 'code', 'python') "
                                   "RETURNING id").fetchone()[0]
            conn.execute("INSERT INTO task_subtasks (task_id, plan_version, subtask_id, specialist, status, result) "
                         "VALUES (%s, 1, 's1', 'code', 'done', %s)",
                         (task_id, Jsonb({"data": {"language": "python", "max_rounds": 1}, "model": model,
                                          "cost_usd": 0.0, "tokens_in": 1, "tokens_out": 1})))
    second, choice = run(stack)
    assert choice["chose"] == 1 and not choice["explored"], choice
    assert choice["why"].startswith("chose the loop with 1 round: 10/10 past successes for this kind (code:python")
    [sub] = second["result"]["subtasks"].values()
    assert sub["data"]["max_rounds"] == 1 and sub["status"] == "done"
    trace = run_cli("trace", second["id"], env={"WORKBENCH_HOME": str(home), "COLUMNS": "200"})
    assert trace.returncode == 0 and "strategy max_rounds=1" in trace.stdout, trace.stdout + trace.stderr
    arms = {(a.settings, a.model): a for a in strategy.table(store)}
    assert arms[("max_rounds=1", model)].trials == 11 and arms[("max_rounds=3", model)].trials == 1


def test_a_subtask_without_a_model_runs_on_the_model_the_statistics_favour(stack):
    """WORKBENCH_STRATEGY_MODELS names test:coder2 beside the default test:coder: once the stored outcomes
    show the default failing code subtasks and coder2 delivering them, a task that names no model has its
    subtask run on coder2, and the Director's choice is an event with its reason."""
    from psycopg.types.json import Jsonb

    store = stack[0]
    with store.connection() as conn:
        for model, status in [("test:coder", "failed")] * 12 + [("test:coder2", "done")] * 10:
            task_id = conn.execute("INSERT INTO tasks (prompt, kind, language) VALUES ('x', 'code', 'python') "
                                   "RETURNING id").fetchone()[0]
            conn.execute("INSERT INTO task_subtasks (task_id, plan_version, subtask_id, specialist, status, result) "
                         "VALUES (%s, 1, 's1', 'code', %s, %s)",
                         (task_id, status, Jsonb({"data": {"language": "python"}, "model": model, "status": status,
                                                  "cost_usd": 0.0, "tokens_in": 1, "tokens_out": 1})))
    done, choice = run(stack, model=None, setting="model")
    assert choice["chose"] == "test:coder2" and not choice["explored"], choice
    assert choice["why"].startswith("chose the model test:coder2: 10/10 past successes for code subtasks"), choice
    [sub] = done["result"]["subtasks"].values()
    assert sub["model"] == "test:coder2" and sub["status"] == "done"
