"""A batch of single prompts on Dask, for notebooks:

    df = workbench.map(["Reverse a string in Python", "Sum a list in Python"], model="local:qwen2.5-coder-0.5b")
    df[["prompt", "text", "tokens", "seconds", "error"]]

Each prompt is one normal task in mode `single` (one model call, no classification step), created and
queued through the task runner, so it is logged, priced and traced like any other (`workbench.trace(id)`),
and titled "map: ..." so analyses can tell batches apart. The tasks run on this process's Dask client
(a LocalCluster it starts once, or WORKBENCH_DASK_SCHEDULER), each holding an LLM slot while it calls the
model. Every prompt is checked before any task is created: a bad one creates nothing. A prompt whose call
fails is a row with its `error`, not an exception; Ctrl-C cancels the tasks that have not finished.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.tasks.records import NewTask
from workbench.tasks.runner import RunOptions

CHUNK = 64  # tasks created per transaction: the first ones start while the rest are being queued
TITLE_CHARS = 80
COLUMNS = ["prompt", "text", "tokens", "seconds", "error", "status", "model", "cost_usd", "task_id"]


def _prompts(prompts: Any) -> list[str]:
    if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Iterable):
        raise WorkbenchError("map() takes a list of prompts (e.g. map([\"first\", \"second\"])), not "
                             f"{type(prompts).__name__}: wrap a single prompt in a list.")
    items = list(prompts)
    if not items:
        raise WorkbenchError("map() got no prompts: pass a non-empty list of strings.")
    wrong = [(i, p) for i, p in enumerate(items) if not isinstance(p, str)]
    if wrong:
        i, p = wrong[0]
        raise WorkbenchError(f"Prompt {i} is a {type(p).__name__}, not a string: every prompt must be text.")
    return items


def _request(i: int, prompt: str, model: str | None) -> NewTask:
    first = " ".join(prompt.split())[:TITLE_CHARS]
    try:
        return NewTask(prompt=prompt, title=f"map: {first}", model=model, mode="single")
    except WorkbenchError as exc:
        raise type(exc)(f"Prompt {i}: {exc}") from None


def _row(prompt: str, task: dict) -> dict[str, Any]:
    import datetime as dt

    result = task.get("result") if isinstance(task.get("result"), dict) else {}
    seconds = None
    if task.get("started_at") and task.get("finished_at"):
        seconds = (dt.datetime.fromisoformat(task["finished_at"]) -
                   dt.datetime.fromisoformat(task["started_at"])).total_seconds()
    tokens = (result.get("tokens_in") or 0) + (result.get("tokens_out") or 0) if result.get("answer") is not None else None
    error = task.get("error") or (None if task["status"] == "completed" else f"task {task['status']}")
    return {"prompt": prompt, "text": result.get("answer"), "tokens": tokens, "seconds": seconds, "error": error,
            "status": task["status"], "model": result.get("model") or task.get("model"),
            "cost_usd": result.get("cost_usd"), "task_id": task["id"]}


def run_batch(prompts: Any, model: str | None = None, max_tokens: int = 512, timeout: float | None = None,
              runner=None) -> pd.DataFrame:
    """One row per prompt, in the prompts' order: prompt, text, tokens, seconds (the task's run time), error,
    and status, model, cost_usd, task_id. `runner`: a TaskRunner (default: on this process's cluster)."""
    items = _prompts(prompts)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise WorkbenchError(f"max_tokens must be a positive whole number, not {max_tokens!r}.")
    requests = [_request(i, p, model) for i, p in enumerate(items)]
    runner = runner or _runner()
    options = RunOptions(body="single_call", classify=False, max_tokens=max_tokens, model=model)
    ids: list[str] = []
    try:
        for start in range(0, len(requests), CHUNK):
            created = runner.create_many([(new, options) for new in requests[start:start + CHUNK]])
            ids.extend(task["id"] for task in created)
        finished = [runner.wait(task_id, timeout) for task_id in ids]
    except BaseException:  # Ctrl-C or a timeout: what is still queued or running is cancelled, not left behind
        _cancel_unfinished(runner, ids)
        raise
    return pd.DataFrame([_row(p, t) for p, t in zip(items, finished)], columns=COLUMNS)


def _cancel_unfinished(runner, ids: list[str]) -> None:
    from workbench.tasks import states

    for task_id in ids:
        try:
            if runner.service.get(task_id)["status"] not in states.RESTING:
                runner.cancel(task_id, reason="map() interrupted")
        except WorkbenchError:
            continue  # finished (or gone) in between: nothing to cancel


_runners: dict[tuple[int, int], Any] = {}


def _runner():
    """One TaskRunner per Dask client and store (its watchdog thread is reused by every later batch)."""
    from workbench import cluster
    from workbench.store import open_store
    from workbench.tasks.runner import TaskRunner
    from workbench.tasks.service import TaskService

    client, store = cluster.get_client(), open_store()
    key = (id(client), id(store))
    if key not in _runners:
        _runners.clear()
        _runners[key] = TaskRunner(client, TaskService(store), reconnect=cluster.reconnect)
    return _runners[key]
