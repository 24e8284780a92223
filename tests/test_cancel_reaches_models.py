"""Cancelling a task stops its model calls: the routing and the Director's plan, on whichever worker they run,
stop at their next model step (the task budget's watch), so no llm_call is recorded after the cancelled status
but the one already in flight, every event of the task is stored under its own id, and it ends cancelled.
"""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from cancel_plugins import DAWDLE_S
from helpers import REPO, module_stack

pytestmark = pytest.mark.timeout(300)
PLUGIN = str(REPO / "tests" / "cancel_plugins.py")


# Store + LocalCluster for this module (its own WORKBENCH_HOME, stopped at the end); the workers get the plugins.
stack, stack_home = module_stack("wb-cancel-", PLUGIN)


def _status_at(service, task_id: str, status: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while service.get(task_id)["status"] != status:
        assert time.monotonic() < deadline, f"task {task_id} never reached {status}"
        time.sleep(0.05)


def _ts(event: dict) -> datetime:
    return datetime.fromisoformat(event["ts"])


def _director_done(service, task_id: str, timeout: float = 120) -> list[dict]:
    """The task's events once the Director's own run has ended (its `task` span is written when it returns,
    however it ends), and the events its workers wrote have had time to arrive."""
    deadline = time.monotonic() + timeout
    while not any(e["kind"] == "task" and e["agent"] == "director" for e in service.events(task_id)):
        assert time.monotonic() < deadline, "the Director never finished"
        time.sleep(0.2)
    time.sleep(2 * DAWDLE_S)  # a step that went on regardless on another worker would have ended by now
    return service.events(task_id)


def test_a_cancel_stops_routing_and_planning(stack):
    from workbench.tasks.records import NewTask
    from workbench.tasks.runner import TaskRunner

    store, client, service, _ = stack
    runner = TaskRunner(client, service)
    task_id = runner.create(NewTask(prompt="write a poem and analyse its meter", model="test:dawdle"))["id"]
    _status_at(service, task_id, "processing")
    time.sleep(0.3)  # the routing call is in flight
    runner.cancel(task_id)
    assert runner.wait(task_id, timeout=60)["status"] == "cancelled"
    events = _director_done(service, task_id)
    cancelled_at = next(_ts(e) for e in events if e["kind"] == "status" and e["payload"]["to"] == "cancelled")
    late = [e for e in events if e["kind"] == "llm_call" and _ts(e) > cancelled_at]
    assert len(late) <= 1, f"{len(late)} model calls recorded after the cancel: {[e['agent'] for e in late]}"
    assert service.get(task_id)["status"] == "cancelled"
    assert not [e for e in events if e["kind"] == "status" and e["payload"]["from"] == "cancelled"]
    with store.pool.connection() as conn:
        strays = conn.execute("SELECT count(*) FROM events WHERE trace_id = %s AND task_id IS DISTINCT FROM %s",
                              (task_id, task_id)).fetchone()[0]
    assert strays == 0  # nothing of this task is stored under another task's id (or none)


def test_a_budget_watch_travels_with_the_budget():
    import pickle

    from workbench.agents.calls import model_step
    from workbench.agents.guards import Budget
    from workbench.errors import Cancelled
    from workbench.testing import FakeModel

    def watch():
        raise Cancelled("Task t was cancelled.")

    budget = Budget.create(max_usd=1.0)
    budget.watch = watch
    detached = budget.child(max_tokens=100).remaining()
    assert detached.watcher() is watch
    llm = FakeModel().enqueue("never asked")
    with pytest.raises(Cancelled):
        model_step(llm, [{"role": "user", "content": "hi"}], detached, agent="a", number=1, max_tokens=10)
    assert llm.requests == []
    from workbench.tasks.cancellation import CancelWatch

    assert pickle.loads(pickle.dumps(Budget(watch=CancelWatch("t")))).watch == CancelWatch("t")
