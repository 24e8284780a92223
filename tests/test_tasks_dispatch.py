"""What a task's dispatch writes and in which transaction, on the real stack (embedded Postgres, a Dask
LocalCluster of worker processes): the writer's `transact` commits a job with the events before it, a
task created and submitted together keeps its four status events in order after its body's events, and
a pooled connection the server ended is replaced at checkout without a round trip in the usual case.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid

import pytest
from helpers import home_dir

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def stack():
    from workbench import cluster
    from workbench.config import reload_settings
    from workbench.store import close_store, open_store
    from workbench.store import postgres as embedded
    from workbench.tasks.service import TaskService

    home = home_dir("wb-dispatch-")
    old = os.environ.get("WORKBENCH_HOME")
    os.environ["WORKBENCH_HOME"] = str(home)
    reload_settings()
    store = open_store()
    yield store, TaskService(store), home
    cluster.close_client()
    close_store()
    embedded.stop(home / "postgres")
    shutil.rmtree(home, ignore_errors=True)
    if old is None:
        os.environ.pop("WORKBENCH_HOME", None)
    else:
        os.environ["WORKBENCH_HOME"] = old


@pytest.fixture(autouse=True)
def stack_home(request, monkeypatch):
    if "stack" in request.fixturenames:
        from workbench.config import reload_settings

        monkeypatch.setenv("WORKBENCH_HOME", str(request.getfixturevalue("stack")[2]))
        reload_settings()


def _count(conn, task_id, kind=None):
    sql = "SELECT count(*) FROM events WHERE task_id = %s" + (" AND kind = %s" if kind else "")
    return conn.execute(sql, (task_id, kind) if kind else (task_id,)).fetchone()[0]


def test_transact_commits_the_job_with_the_events_emitted_before_it(stack):
    """Inside the job the earlier events are written but not yet visible to anyone else: one commit."""
    import psycopg

    from workbench.store.writer import EventWriter

    store = stack[0]
    w = EventWriter(store.conninfo, home=stack[2], interval_s=60)  # writes only when woken: deterministic
    tid = str(uuid.uuid4())
    try:
        for i in range(3):
            w.emit("tool_call", task_id=tid, payload={"i": i})

        def look(conn):
            with psycopg.connect(store.conninfo) as other:
                return _count(conn, tid), _count(other, tid)

        assert w.transact(look).result(30) == (3, 0)
        w.emit("tool_call", task_id=tid, payload={"late": 1})
        w.flush()
    finally:
        w.close()
    with store.connection() as conn:
        assert _count(conn, tid) == 4


def test_a_failed_job_rolls_back_alone_and_its_events_are_still_written(stack):
    from workbench import events
    from workbench.store import writer

    store = stack[0]
    tid = str(uuid.uuid4())
    for i in range(3):
        store.writer.emit("tool_call", task_id=tid, payload={"i": i})

    def write_then_fail(conn):
        writer.insert(conn, events.Event(kind="status", task_id=tid, payload={"to": "never"}))
        raise RuntimeError("the job failed after writing")

    job = store.writer.transact(write_then_fail)
    with pytest.raises(RuntimeError, match="failed after writing"):
        job.result(30)
    store.flush()
    with store.connection() as conn:
        assert _count(conn, tid, "tool_call") == 3 and _count(conn, tid, "status") == 0
    assert store.writer.transact(lambda conn: _count(conn, tid)).result(30) == 3  # the writer goes on


def test_created_and_submitted_together_four_statuses_in_order_after_the_body(stack):
    from workbench import cluster
    from workbench.tasks.runner import RunOptions, TaskRunner
    from workbench.tasks.service import NewTask

    service = stack[1]
    runner = TaskRunner(cluster.get_client(), service, RunOptions(body="noop", classify=False))
    queued = runner.create(NewTask(prompt="noop, created and submitted in one transaction"))
    assert queued["status"] == "queued" and queued["mode"] == "agents"
    task = runner.wait(queued["id"], timeout=60)
    assert task["status"] == "completed" and task["result"] == {"answer": ""}
    assert task["started_at"] <= task["finished_at"]
    evs = service.events(task["id"])
    assert [e["seq"] for e in evs] == sorted(e["seq"] for e in evs)
    statuses = [(e["payload"]["from"], e["payload"]["to"]) for e in evs if e["kind"] == "status"]
    assert statuses == [(None, "pending"), ("pending", "queued"), ("queued", "processing"),
                        ("processing", "completed")]
    kinds = [e["kind"] if e["kind"] != "status" else e["payload"]["to"] for e in evs]
    # The body's span event is committed with (and before) the final status; processing is stamped
    # with when the body began, not when it was committed.
    assert kinds.index("processing") < kinds.index("agent_step") < kinds.index("completed") == len(kinds) - 1
    processing = next(e for e in evs if e["kind"] == "status" and e["payload"]["to"] == "processing")
    step = next(e for e in evs if e["kind"] == "agent_step")
    assert processing["ts"] <= step["ts"]


def test_a_submit_dask_refuses_leaves_nothing_behind(stack, monkeypatch):
    """create_and_submit is one step: when Dask refuses the task, no row, no event and no future remain,
    and the same request goes through once Dask takes it again."""
    from workbench import cluster
    from workbench.tasks.api import TaskApi
    from workbench.tasks.records import NewTask
    from workbench.tasks.runner import RunOptions, TaskRunner

    store, service = stack[0], stack[1]
    client = cluster.get_client()
    runner = TaskRunner(client, service, RunOptions(body="noop", classify=False))
    tasks = TaskApi(service, runner)
    store.flush()
    with store.connection() as conn:
        events_before = conn.execute("SELECT count(*) FROM events WHERE kind = 'status'").fetchone()[0]
    total_before = tasks.list().total

    def refuse(*args, **kwargs):
        raise OSError("the scheduler is gone")

    monkeypatch.setattr(client, "submit", refuse)
    new = NewTask(prompt="noop, refused by Dask")
    with pytest.raises(OSError, match="the scheduler is gone"):
        tasks.create_and_submit(new)
    assert tasks.list().total == total_before and runner.futures == {}
    store.flush()
    with store.connection() as conn:
        assert conn.execute("SELECT count(*) FROM events WHERE kind = 'status'").fetchone()[0] == events_before
    monkeypatch.undo()
    task = tasks.create_and_submit(new)
    assert task.status == "queued" and tasks.list().total == total_before + 1
    assert runner.wait(task.id, timeout=60)["status"] == "completed"


def test_without_a_runner_a_task_waits_pending_and_is_cancelled_here(stack):
    from workbench.tasks.api import NoTaskRunner, TaskApi
    from workbench.tasks.records import NewTask
    from workbench.tasks.runner import RunOptions

    tasks = TaskApi(stack[1])
    task = tasks.create_and_submit(NewTask(prompt="for `workbench serve` to queue when it starts"))
    assert task.status == "pending" and not tasks.runs_tasks
    with pytest.raises(NoTaskRunner, match="workbench tasks approve"):
        tasks.approve(task.id)
    with pytest.raises(ValueError, match="runner"):  # run options here would be silently lost
        tasks.create_and_submit(NewTask(prompt="never created"), RunOptions(max_tokens=8))
    assert tasks.cancel(task.id, reason="cancelled in a test").status == "cancelled"
    reasons = [e["payload"]["reason"] for e in tasks.events(task.id) if e["kind"] == "status"]
    assert reasons == ["created", "cancelled in a test"]


def test_a_pooled_connection_the_server_ended_is_replaced_at_checkout(stack):
    store = stack[0]
    with store.connection() as conn:
        mine = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    with store.connect() as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", (mine,)).fetchone()[0]
        deadline = time.monotonic() + 10
        while other.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (mine,)).fetchone()[0]:
            assert time.monotonic() < deadline, "the backend did not end"
            time.sleep(0.01)
    for _ in range(3):  # the pool holds the ended connection; checkout notices and replaces it
        with store.connection() as conn:
            assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] != mine
