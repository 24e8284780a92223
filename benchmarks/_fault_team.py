"""A WORKBENCH_PLUGINS module for benchmarks/faults.py, loaded by the server and every worker.

`test:faults` plays every role of an agent task: the router sends every task to a plan; the Director
plans s1 -> s2 -> s3 (s2 answers after FAULT_SLOW_S seconds, so a fault lands mid-task); specialists echo.
Each call also appends one line (task id, role, pid) to the file named by WORKBENCH_FAULTS_CALLS: the
ground truth of model calls that the benchmark compares with the `llm_call` events Postgres holds.
"""

from __future__ import annotations

import os
import time

from workbench import telemetry
from workbench.testing import echo, register_function

SLOW_S = float(os.environ.get("WORKBENCH_FAULT_SLOW_S", "3"))
PLAN = {"reasoning": "three steps", "subtasks": [
    {"id": "s1", "specialist": "general", "instructions": "first part", "depends_on": []},
    {"id": "s2", "specialist": "general", "instructions": "second part, slowly", "depends_on": ["s1"]},
    {"id": "s3", "specialist": "general", "instructions": "third part", "depends_on": ["s2"]}]}


def _count(role: str) -> None:
    path = os.environ.get("WORKBENCH_FAULTS_CALLS")
    if path:
        line = f"{telemetry.capture().task_id}\t{role}\t{os.getpid()}\n".encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)  # one write of a short line with O_APPEND: lines never interleave
        finally:
            os.close(fd)


def faults(messages, options):
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
    text = " ".join(m["content"] for m in messages if m["role"] == "user")
    if system.startswith("Pick who handles"):
        _count("router")
        return {"route": "multi"}
    if system.startswith("You are the Director"):
        _count("director")
        return PLAN
    _count("specialist")
    if "slowly" in text:
        time.sleep(SLOW_S)
    return echo(messages, options)


register_function("faults", faults)
