"""A WORKBENCH_PLUGINS module for the cancellation tests: `test:dawdle` takes DAWDLE_S per call in every role
(router: multi; Director: a two-part plan; specialists: an answer), so a cancel lands while a call is in flight."""

from __future__ import annotations

import time

from workbench.testing import register_function

DAWDLE_S = 1.5
PLAN = {"reasoning": "two parts", "subtasks": [
    {"id": "s1", "specialist": "general", "instructions": "part one", "depends_on": []},
    {"id": "s2", "specialist": "general", "instructions": "part two", "depends_on": []}]}


def dawdle(messages, options):
    time.sleep(DAWDLE_S)
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
    if system.startswith("Pick who handles"):
        return {"route": "multi"}
    if system.startswith("You are the Director"):
        return PLAN
    return {"action": "final_answer", "arguments": {"answer": "done"}} if options.get("schema") else "done"


register_function("dawdle", dawdle)
