"""A Postgres blip after a task's work, before its final status: the work is never run twice.

`execute` runs in-process on a real embedded Postgres (no Dask: what Dask does on an error, requeue and
run again, is done by hand, as TaskRunner._done does it). The body calls a FunctionModel, which counts.
"""

from __future__ import annotations

import psycopg
import pytest

from workbench.errors import StoreError
from workbench.store import close_store, open_store
from workbench.tasks import bodies, outcomes, runner
from workbench.tasks.records import NewTask
from workbench.tasks.service import TaskService
from workbench.testing import FunctionModel

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def setup(isolated_home, monkeypatch):
    calls = []
    model = FunctionModel(lambda messages, options: calls.append(1) or "the answer", name="counted")
    monkeypatch.setitem(bodies.BODIES, "counted", lambda task, ctx: {"answer": model.complete(task["prompt"]).text})
    store = open_store(url="")
    service = TaskService(store)
    yield store, service, calls
    close_store()


def blip(monkeypatch, times: int) -> list[int]:
    """Every way of writing a final status fails `times` times in all, as if Postgres restarted."""
    left = [times]

    def failing(original):
        def wrapper(self, *args, **kwargs):
            wanted = args[2] if original.__name__ == "transition_on" else args[1]
            if wanted in ("completed", "failed") and left[0] > 0:
                left[0] -= 1
                raise psycopg.OperationalError("server closed the connection unexpectedly (injected)")
            return original(self, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(TaskService, "transition_on", failing(TaskService.transition_on))
    monkeypatch.setattr(TaskService, "transition", failing(TaskService.transition))
    return left


def queued_task(service: TaskService) -> str:
    task_id = service.create(NewTask(prompt="do it", mode="single"))["id"]
    service.transition(task_id, "queued")
    return task_id


def run_as_dask_would(service: TaskService, task_id: str, options) -> str:
    """execute(); on an error, what the runner does: requeue the task and run it again."""
    try:
        return runner.execute(task_id, options)
    except Exception:  # noqa: BLE001 - Dask's retry
        if service.get(task_id)["status"] == "processing":
            service.transition(task_id, "queued", reason="retrying")
        return runner.execute(task_id, options)


def test_a_blip_before_the_final_status_does_not_rerun_the_work(setup, monkeypatch):
    store, service, calls = setup
    task_id = queued_task(service)
    left = blip(monkeypatch, times=2)  # the writer's transaction and then the one-by-one path: both fail once
    final = run_as_dask_would(service, task_id, runner.RunOptions(body="counted", classify=False))
    assert left == [0], "the blip never happened: the test proves nothing"
    assert final == "completed" and service.get(task_id)["status"] == "completed"
    assert service.get(task_id)["result"] == {"answer": "the answer"}
    assert len(calls) == 1, f"the model was called {len(calls)} times: the work ran again"
    assert not outcomes.path_for(store.home, task_id).exists()


def test_postgres_away_longer_than_the_retries_the_rerun_records_the_saved_outcome(setup, monkeypatch):
    store, service, calls = setup
    task_id = queued_task(service)
    monkeypatch.setattr(runner, "FINAL_COMMIT_TIMEOUT_S", 0.5)
    left = blip(monkeypatch, times=10**6)
    with pytest.raises(StoreError, match="outcome is saved in"):
        runner.execute(task_id, runner.RunOptions(body="counted", classify=False))
    assert outcomes.load(store.home, task_id).final == "completed"
    left[0] = 0  # Postgres is back: Dask's retry (or recover() after a restart) runs the task again
    service.transition(task_id, "queued", reason="retrying")
    assert runner.execute(task_id, runner.RunOptions(body="counted", classify=False)) == "completed"
    task = service.get(task_id)
    assert task["status"] == "completed" and task["result"] == {"answer": "the answer"}
    assert len(calls) == 1, f"the model was called {len(calls)} times: the work ran again"
    assert not outcomes.path_for(store.home, task_id).exists()
    # A rerun of a finished task returns its status, and never calls the model.
    assert runner.execute(task_id, runner.RunOptions(body="counted", classify=False)) == "completed"
    assert len(calls) == 1
