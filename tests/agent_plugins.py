"""A WORKBENCH_PLUGINS module for the tests of tasks on Dask: deterministic models by name (`test:team`,
`test:priced`), registered in every process that loads plugins — the test process and each Dask worker.

`test:priced` echoes like `test:echo` but each call costs PRICED_CPU_S CPU-seconds (priced like a local
model), so a task's budget sees real spend.

`test:team` plays every role, picked by the system prompt: the router sends a task with a `[route:NAME]`
marker to that one specialist (the fast path) and every other task to a plan; the Director returns the
plan named in the task's prompt (PLANS); specialists answer from their instructions. Instructions steer the behaviour:
  "slowly"  -> sleeps SLOW_S before answering (parallelism, kills, timeouts)
  "BOOM"    -> the model fails like a server error (failure isolation)
  "context" -> the reply quotes the context the specialist saw (context passing)
"""

from __future__ import annotations

import json
import os
import time

from workbench.errors import ProviderError
from workbench.messages import Completion, Usage
from workbench.testing import echo, register_function

SLOW_S = float(os.environ.get("WORKBENCH_TEST_SLOW_S", "2.0"))
PRICED_CPU_S = 100.0  # $0.00124 a call at the default WORKBENCH_LOCAL_CPU_SECOND_USD


def sub(i, specialist="general", deps=(), instructions=None):
    return {"id": i, "specialist": specialist, "instructions": instructions or f"answer part {i}",
            "depends_on": list(deps)}


PLANS = {
    "fan-out": {"reasoning": "two parts, then a summary", "subtasks": [
        sub("s1", instructions="part one, slowly"), sub("s2", instructions="part two, slowly"),
        sub("s3", deps=["s1", "s2"], instructions="summarise with context")]},
    "isolation": {"reasoning": "one part fails", "subtasks": [
        sub("s1", instructions="part one BOOM"), sub("s2", instructions="part two"),
        sub("s3", deps=["s1"], instructions="use part one")]},
    "chain": {"reasoning": "a chain", "subtasks": [
        sub("s1", instructions="first part"), sub("s2", deps=["s1"], instructions="second part, slowly")]},
    "late": {"reasoning": "code after a slow first step", "subtasks": [
        sub("s1", instructions="first part, slowly"), sub("s2", specialist="code", deps=["s1"],
                                                          instructions="write the code")]},
    "unknown": {"reasoning": "names a specialist that does not exist", "subtasks": [
        sub("s1", specialist="astrologer", instructions="read the stars")]},
}


def team(messages, options):
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
    text = " ".join(m["content"] for m in messages if m["role"] == "user")
    if system.startswith("Pick who handles"):  # the router: a [route:NAME] marker, else multi (then a plan)
        return {"route": next((n for n in ("general", "code", "data") if f"[route:{n}]" in text), "multi")}
    if system.startswith("You are the Director"):  # the same plan again when re-asked
        return PLANS[next((n for n in PLANS if f"[plan:{n}]" in text), "fan-out")]
    if "BOOM" in text:
        raise ProviderError("test:team was told to fail (HTTP 503)", status=503)
    if "slowly" in text:
        time.sleep(SLOW_S)
    if "with context" in text and not options.get("schema"):
        return f"summary of: {text[-800:]}"
    return echo(messages, options)


register_function("team", team)


def priced(messages, options):
    reply = echo(messages, options)
    text = json.dumps(reply) if isinstance(reply, dict) else reply
    return Completion(text, "test:priced", Usage(1, 1), "stop", cpu_seconds=PRICED_CPU_S)


register_function("priced", priced)
