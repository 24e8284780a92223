"""The notebook helpers on the real stack: `workbench.map` runs prompts as tasks on a Dask LocalCluster of
processes (deterministic models from tests/notebook_plugins.py on the workers), and `workbench.tasks`,
`events` and `trace` read them back from the embedded Postgres as DataFrames."""

from __future__ import annotations

import datetime as dt

import pytest

import workbench
from helpers import REPO, module_stack
from workbench.errors import WorkbenchError

pytestmark = pytest.mark.timeout(300)
PLUGIN = str(REPO / "tests" / "notebook_plugins.py")
stack, stack_home = module_stack("wb-nb-", PLUGIN)


@pytest.fixture(scope="module")
def batch(stack):
    """One batch of three prompts, one of which fails, run once for the module."""
    return workbench.map(["alpha beta gamma", "please fail now", "delta"], model="test:picky", max_tokens=64)


def _count(stack) -> int:
    with stack[0].connection() as conn:
        return conn.execute("SELECT count(*) FROM tasks").fetchone()[0]


def test_map_runs_each_prompt_as_a_task_and_keeps_their_order(batch):
    assert list(batch["prompt"]) == ["alpha beta gamma", "please fail now", "delta"]
    ok, failed = batch[batch["error"].isna()], batch[batch["error"].notna()]
    assert list(ok["text"]) == ["alpha beta gamma", "delta"]  # the echo, each row its own prompt's answer
    assert (ok["tokens"] > 0).all() and (ok["seconds"] >= 0).all() and set(ok["status"]) == {"completed"}
    assert set(ok["model"]) == {"test:picky"}
    assert list(failed["prompt"]) == ["please fail now"]
    assert "picky refuses" in failed["error"].iloc[0] and failed["text"].isna().all()
    assert failed["status"].iloc[0] == "failed"
    assert batch["task_id"].is_unique


def test_tasks_lists_the_batch_with_tokens_from_its_model_calls(batch):
    frame = workbench.tasks(limit=50)
    mine = frame[frame["id"].isin(batch["task_id"])].set_index("id")
    assert len(mine) == 3 and set(mine["mode"]) == {"single"} and set(mine["model"]) == {"test:picky"}
    assert mine["title"].str.startswith("map: ").all()
    assert str(frame["created_at"].dtype).startswith("datetime64") and frame["created_at"].is_monotonic_decreasing
    for row in batch.itertuples():
        calls = workbench.events(task_id=row.task_id, kind="llm_call")
        assert mine.loc[row.task_id, "llm_calls"] == len(calls)
        if row.error is None:
            assert mine.loc[row.task_id, "tokens_in"] + mine.loc[row.task_id, "tokens_out"] == row.tokens
            assert mine.loc[row.task_id, "tokens_in"] == calls["tokens_in"].sum()


def test_tasks_filters_by_status_model_since_and_limit(stack, batch):
    echo = workbench.map(["one", "two"], model="test:echo")
    assert echo["error"].isna().all()
    failed = workbench.tasks(status="failed", limit=100)
    assert set(failed["status"]) == {"failed"}
    assert set(batch.loc[batch["error"].notna(), "task_id"]) <= set(failed["id"])
    assert set(workbench.tasks(model="test:echo", limit=100)["id"]) == set(echo["task_id"])
    for span in ("1h", "90 min", dt.timedelta(days=1), "2 days"):
        assert len(workbench.tasks(since=span, limit=100)) == _count(stack)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1)
    assert workbench.tasks(since=later).empty and workbench.tasks(since=later.isoformat()).empty
    assert workbench.events(since=later).empty
    assert len(workbench.events(kind="llm_call", since="1h")) == len(workbench.events(kind="llm_call")) > 0
    newest = workbench.tasks(limit=1)
    assert len(newest) == 1 and newest["id"].iloc[0] in set(echo["task_id"])


def test_events_of_a_task_are_its_status_changes_in_order(batch):
    task_id = batch["task_id"].iloc[0]
    status = workbench.events(task_id=task_id, kind="status")
    assert [p["to"] for p in status["payload"]] == ["pending", "queued", "processing", "completed"]
    assert status["seq"].is_monotonic_increasing and set(status["task_id"]) == {task_id}
    newest = workbench.events(task_id=task_id, kind="status", limit=2)
    assert list(newest["seq"]) == list(status["seq"].iloc[-2:])  # the newest two, oldest first


def test_trace_is_the_span_tree_with_parents_and_durations(batch):
    task_id = batch["task_id"].iloc[0]
    spans = workbench.trace(task_id)
    assert len(spans) == len(workbench.events(task_id=task_id))  # every event once
    call = spans[spans["kind"] == "llm_call"].iloc[0]
    parent = spans[spans["span_id"] == call["parent_span_id"]].iloc[0]
    assert parent["kind"] == "agent_step" and call["depth"] == parent["depth"] + 1
    assert parent.name < call.name  # tree order: a parent before its children
    assert parent["start"] <= call["start"] and call["end"] <= parent["end"]
    assert call["duration_ms"] >= 0 and "test:picky" in call["name"]
    attempts = spans[spans["parent_span_id"] == call["span_id"]]
    assert set(attempts["kind"]) == {"llm_attempt"} and (attempts["depth"] == call["depth"] + 1).all()


@pytest.mark.parametrize("call, message", [
    (lambda: workbench.tasks(status="done"), "Unknown status 'done'"),
    (lambda: workbench.tasks(since="around noon"), "since='around noon' is not a time"),
    (lambda: workbench.tasks(limit=0), "limit must be a whole number"),
    (lambda: workbench.tasks(model=""), "model must be a non-empty string"),
    (lambda: workbench.events(task_id="nope"), "No task nope"),
    (lambda: workbench.events(since="5 parsecs"), "since='5 parsecs' is not a time"),
    (lambda: workbench.trace("00000000-0000-0000-0000-000000000000"), "No task 0000"),
    (lambda: workbench.map("one prompt"), "wrap a single prompt in a list"),
    (lambda: workbench.map([]), "no prompts"),
    (lambda: workbench.map(["fine", 3]), "Prompt 1 is a int"),
    (lambda: workbench.map(["fine", "   "], model="test:echo"), "Prompt 1: The prompt is empty"),
    (lambda: workbench.map(["fine"], model="test:nosuch"), "test:nosuch"),
    (lambda: workbench.map(["fine"], max_tokens=0), "max_tokens must be a positive"),
])
def test_bad_arguments_say_what_to_pass_and_create_nothing(stack, call, message):
    before = _count(stack)
    with pytest.raises(WorkbenchError, match=message.replace("(", r"\(")):
        call()
    assert _count(stack) == before
