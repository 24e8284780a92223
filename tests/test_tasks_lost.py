"""A task whose run the cluster took away runs again; it is never left `processing` nor recorded as failed for
a reason that is not its own. On the real stack (embedded Postgres, a Dask LocalCluster of processes); the
external-cluster version, with real kills, is tests/test_scale_out.py.
"""

from __future__ import annotations

import concurrent.futures
import time

import pytest
from helpers import REPO, module_stack

pytestmark = pytest.mark.timeout(300)
PLUGIN = str(REPO / "tests" / "agent_plugins.py")

stack, stack_home = module_stack("wb-tasks-lost-", PLUGIN)


@pytest.fixture()
def runner(stack):
    from workbench.tasks.runner import TaskRunner

    return TaskRunner(stack[1], stack[2])


def processing(service, prompt: str) -> str:
    """A task as a run that was lost left it: processing, no end recorded."""
    from workbench.tasks.records import NewTask

    task_id = service.create(NewTask(prompt=prompt))["id"]
    service.transition(task_id, "queued", reason="submitted")
    service.transition(task_id, "processing", reason="running on a worker that is gone now")
    return task_id


def test_a_rerun_by_the_scheduler_that_finds_the_task_processing_is_retried(stack, runner):
    """An external scheduler with allowed-failures > 0 runs the same submission again on another worker;
    that run (the real `execute`) finds the task processing and leaves it: the runner retries it."""
    from workbench.tasks.runner import RunOptions, execute

    client, service = stack[1], stack[2]
    noop = RunOptions(body="noop", classify=False)
    task_id = processing(service, "its worker died, Dask ran it again")
    future = client.submit(execute, task_id, noop, key=f"rerun-{task_id}", pure=False)
    runner.futures[task_id] = (future, noop)
    assert future.result(60) == "processing"  # the rerun touched nothing
    runner._done(task_id, future)  # as Dask calls it
    task = runner.wait(task_id, timeout=60)
    assert task["status"] == "completed" and task["attempts"] == 1
    reasons = [e["payload"]["reason"] for e in service.events(task_id) if e["kind"] == "status"]
    assert any("worker was lost mid-task" in r for r in reasons), reasons


def test_a_processing_task_whose_future_a_lost_scheduler_dropped_runs_again_after_a_grace(stack, runner):
    from workbench.tasks.runner import RunOptions

    client, service = stack[1], stack[2]
    noop = RunOptions(body="noop", classify=False)
    task_id = processing(service, "its scheduler went away")
    future = client.submit(time.sleep, 30, key=f"dropped-{task_id}", pure=False)
    runner.futures[task_id] = (future, noop)
    client.cancel(future)  # what the client does to every future when it loses the scheduler
    runner._done(task_id, future)  # the entry stays for the watchdog
    assert runner.reconcile(grace_s=60) == []  # first seen gone: a run may still be recording its end
    assert service.get(task_id)["status"] == "processing"
    assert runner.reconcile(grace_s=0) == [task_id]
    task = runner.wait(task_id, timeout=60)
    assert task["status"] == "completed" and task["attempts"] == 1
    assert runner.reconcile(grace_s=0) == []


def test_a_step_dask_cancelled_stops_the_run_without_recording_it_failed(stack):
    """A body whose own Dask future the cluster cancelled (its scheduler was lost) raises ClusterLost out
    of execute: no final status is written, so the runner retries the task instead of failing it."""
    from workbench.cluster import ClusterLost
    from workbench.tasks import bodies
    from workbench.tasks.records import NewTask
    from workbench.tasks.runner import RunOptions, execute

    service = stack[2]

    def dropped_by_dask(task, ctx):
        raise concurrent.futures.CancelledError("plan_step-x cancelled for reason: scheduler-connection-lost")

    bodies.BODIES["dropped_by_dask"] = dropped_by_dask
    try:
        task_id = service.create(NewTask(prompt="a step of it is dropped"))["id"]
        service.transition(task_id, "queued", reason="submitted")
        with pytest.raises(ClusterLost, match="runs again from its checkpoints"):
            execute(task_id, RunOptions(body="dropped_by_dask", classify=False))
    finally:
        del bodies.BODIES["dropped_by_dask"]
    time.sleep(0.5)  # past PROCESSING_COMMIT_S: a `processing` the run scheduled is committed by now
    stack[0].flush()
    # Not ended: queued or processing (whether its `processing` was committed yet), which the runner retries.
    assert service.get(task_id)["status"] in ("queued", "processing")
    assert not {e["payload"]["to"] for e in service.events(task_id) if e["kind"] == "status"} & {"failed", "completed"}
