"""A WORKBENCH_PLUGINS module for benchmarks/tasks_dispatch.py, loaded in the benchmark and every worker.

`test:dispatch` answers at once: as the Director it returns the plan named in the prompt, `[chain:N]`
(s1 -> s2 -> ... -> sN, each after the one before, with it as context) or `[fan:N]` (N independent
subtasks); as a specialist it echoes its instructions. The subtasks then cost as little as a specialist
run can, so what a plan of them takes on top of the same runs on raw Dask is the dispatch.

`raw_chain` and `raw_fan` are the raw-Dask side: a Dask task that runs the same `run_specialist` calls
from a worker through `worker_client()`, each one submitted as soon as its input is back, the way the
Director does, without the Director's bookkeeping (checkpoints, messages, spans of its own, budget).
"""

from __future__ import annotations

import re
import time

from workbench.testing import echo, register_function


def chain(n: int) -> list[dict]:
    return [{"id": f"s{i}", "specialist": "general", "instructions": f"step {i}",
             "depends_on": [f"s{i - 1}"] if i > 1 else []} for i in range(1, n + 1)]


def fan(n: int) -> list[dict]:
    return [{"id": f"s{i}", "specialist": "general", "instructions": f"part {i}", "depends_on": []}
            for i in range(1, n + 1)]


def dispatch(messages, options):
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
    text = " ".join(m["content"] for m in messages if m["role"] == "user")
    if system.startswith("You are the Director"):
        shape, n = re.search(r"\[(chain|fan):(\d+)\]", text).groups()
        return {"reasoning": f"{shape} of {n}", "subtasks": (chain if shape == "chain" else fan)(int(n))}
    return echo(messages, options)


register_function("dispatch", dispatch)


def raw_chain(n: int, model: str) -> list[dict]:
    """s1 .. sN one after the other on raw Dask, each with its input's result as context."""
    from distributed import worker_client


    out: list[dict] = []
    with worker_client(separate_thread=True) as client:
        for sub in chain(n):
            context = {d: out[-1]["output"] for d in sub["depends_on"]}
            out.append(client.submit(_run, sub, context, model, pure=False).result())
    return out


def raw_fan(n: int, model: str) -> tuple[float, list[dict]]:
    """N independent subtasks at once on raw Dask; (wall seconds from first submit to last result, results)."""
    from distributed import as_completed, worker_client

    start = time.time()
    with worker_client(separate_thread=True) as client:
        futures = [client.submit(_run, sub, {}, model, pure=False) for sub in fan(n)]
        out = [f.result() for f in as_completed(futures)]
    return time.time() - start, out


def _run(sub: dict, context: dict, model: str) -> dict:
    from workbench.agents.registry import run_specialist

    return run_specialist(sub, context, model=model).as_dict()
