"""Memory in the agents, on the real store, embedder and sandbox with a scripted model: the Code specialist
answers a repeated request of the same owner from the execution cache (no model call), never another
owner's; a similar request gets the verified solution in its prompt; each use is a memory event."""

from __future__ import annotations

import pytest
from helpers import require, requires, sandbox_ok, scripted_coder

from workbench import memory
from workbench.agents.specialist import SpecialistCall, Subtask
from workbench.code.specialist import handle
from workbench.store import close_store, open_store
from workbench.testing import FunctionModel

pytestmark = [pytest.mark.timeout(300), requires(*sandbox_ok())]
TASK = "Write fib.py with fib(n), the n-th Fibonacci number (0, 1, 1, 2, 3, ...). Tests go in test_fib.py."
SIMILAR = "Write fibo.py with fibo(n) returning the n-th Fibonacci number, starting 0, 1, 1, 2. Tests in test_fibo.py."
TESTS = ("```python\n# test_fib.py\nfrom fib import fib\n\n\ndef test_base_cases():\n    assert (fib(0), fib(1)) == (0, 1)\n"
         "\n\ndef test_fib_of_ten():\n    assert fib(10) == 55\n```")
RIGHT = "```python\n# fib.py\ndef fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n```"


def _never(messages, options):
    raise AssertionError("the model was called although the execution cache had the answer")


def _call(text: str, model, **options) -> SpecialistCall:
    return SpecialistCall(subtask=Subtask("s1", "code", text), context={}, agent=None, model=model, budget=None,
                          options={"max_rounds": 2, **options})


@pytest.fixture
def store(monkeypatch):
    require(memory.available(), "the embedder is not installed: run `make venv`")
    monkeypatch.setenv("WORKBENCH_MEMORY", "auto")
    from workbench.config import reload_settings

    reload_settings()
    memory.forget_instances()
    s = open_store()
    yield s
    memory.forget_instances()
    close_store()


def test_repeated_request_is_answered_from_memory_for_its_owner_only(store):
    first = handle(_call(TASK, scripted_coder(RIGHT, tests=TESTS), memory_owner="ana"))
    assert first.ok and first.stop_reason == "passed"
    again = handle(_call(TASK, FunctionModel(_never), memory_owner="ana"))
    assert again.ok and again.stop_reason == "memory_cache" and again.data["from_memory"]
    assert "a, b = b, a + b" in again.data["code"] and again.tokens_in == 0
    # another owner never gets ana's answer: the model is asked
    bob = scripted_coder(RIGHT, tests=TESTS)
    assert handle(_call(TASK, bob, memory_owner="bob")).stop_reason == "passed" and bob.requests
    # opted out for this call: no cache, the model is asked
    fresh = scripted_coder(RIGHT, tests=TESTS)
    assert handle(_call(TASK, fresh, memory_owner="ana", memory_cache=False)).stop_reason == "passed"
    assert fresh.requests
    store.flush()
    actions = [(e["payload"]["action"], e["payload"].get("used")) for e in store.events(kinds=["memory"])]
    assert ("cache_hit", again.data["memory_entry"]) in actions
    assert sum(1 for a, _ in actions if a == "cache_hit") == 1


def test_a_similar_request_gets_the_verified_solution_in_its_prompt(store):
    assert handle(_call(TASK, scripted_coder(RIGHT, tests=TESTS), memory_owner="ana")).ok
    model = scripted_coder(RIGHT.replace("fib", "fibo"), tests=TESTS.replace("fib", "fibo"))
    handle(_call(SIMILAR, model, memory_owner="ana"))
    first_prompt = model.requests[0][0][1]["content"]
    assert "Similar past tasks from memory" in first_prompt and "a, b = b, a + b" in first_prompt
    # memory off for this call: the prompt is the request alone
    plain = scripted_coder(RIGHT.replace("fib", "fibo"), tests=TESTS.replace("fib", "fibo"))
    handle(_call(SIMILAR, plain, memory_owner="ana", memory=False))
    assert "from memory" not in plain.requests[0][0][1]["content"]
    store.flush()
    used = [e["payload"] for e in store.events(kinds=["memory"]) if e["payload"]["action"] == "retrieve"]
    assert any(p["used"] and p["similarity"] >= 0.6 and "verified solution" in p["why"] for p in used)


def test_the_director_sees_plans_that_worked_for_similar_requests(store):
    import json

    from workbench.agents.director import plan
    from workbench.agents.registry import Registry

    request = "Compare the average cost per model in the execution log, then write a Python function for the median"
    worked = {"subtasks": [{"id": "s1", "specialist": "data", "instructions": "average cost per model from the log"},
                           {"id": "s2", "specialist": "code", "instructions": "a median function"}]}
    assert memory.remember_plan(request, worked, owner="local", ok=True)
    answer = json.dumps({"reasoning": "two", "subtasks": [
        {"id": "s1", "specialist": "data", "instructions": "costs", "depends_on": []},
        {"id": "s2", "specialist": "code", "instructions": "median", "depends_on": []}]})
    model = FunctionModel(lambda messages, options: answer, name="planner")
    registry = Registry.from_config()
    similar = "Compare the mean cost of each model in the execution log, then write a Python median function"
    assert plan(similar, registry=registry, model=model).source == "model"
    assert "Plan that worked" in model.requests[0][0][1]["content"]
    assert "average cost per model from the log" in model.requests[0][0][1]["content"]
    off = FunctionModel(lambda messages, options: answer, name="planner")
    plan(similar, registry=registry, model=off, use_memory=False)
    assert "from memory" not in off.requests[0][0][1]["content"]
