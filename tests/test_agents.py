"""The agent loop (logic only, FunctionModel): final answer, tool calls (JSON and printed as text),
corrections, and the guards (max steps, loop detection, budget, wall clock)."""

from __future__ import annotations

import json
import time

import pytest

from workbench.agents.agent import Agent, Limits
from workbench.agents.guards import Budget
from workbench.agents.loop import run, run_agent
from workbench.errors import ConfigError, ProviderError
from workbench.messages import Completion, Usage
from workbench.testing import FunctionModel, MemorySink
from workbench.tools import tool


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


def final(answer: str) -> dict:
    return {"thought": "done", "tool": "final_answer", "arguments": {"answer": answer}}


def call_add(a: int, b: int) -> dict:
    return {"thought": "add them", "tool": "add", "arguments": {"a": a, "b": b}}


def scripted(*replies, structured: bool = True) -> FunctionModel:
    """A model that answers with `replies` in order (the last one repeats)."""
    queue = list(replies)

    def fn(messages, options):
        return queue.pop(0) if len(queue) > 1 else queue[0]

    model = FunctionModel(fn, name="scripted")
    if not structured:
        model.structured_output = "none"  # a model that ignores JSON schemas: replies are parsed from text
    return model


def agent(**kwargs) -> Agent:
    defaults = {"name": "calc", "description": "Adds numbers.", "tools": [add], "limits": Limits(max_steps=6)}
    return Agent(**{**defaults, **kwargs})

recorded = MemorySink()  # every event the code under test emits


@pytest.fixture(autouse=True)
def fresh_trace():
    recorded.clear()
    with recorded:
        yield


def test_final_answer_stops_the_loop():
    model = scripted(final("42"))
    steps = list(run_agent(agent(), "What is 6*7?", model=model))
    assert len(steps) == 1
    assert steps[0].stop_reason == "final_answer" and steps[0].final_answer == "42"
    assert steps[0].parsed_from == "schema"
    # The action schema was sent: one option per tool plus final_answer, with a thought length cap.
    schema = model.requests[0][1]["schema"]
    assert [o["properties"]["tool"]["enum"] for o in schema["anyOf"]] == [["add"], ["final_answer"]]
    assert model.requests[0][1]["max_tokens"] == 512


def test_tool_call_via_json_then_answer():
    def fn(messages, options):
        last = messages[-1]["content"]
        return final(last.split("\n")[1]) if last.startswith("Result of add") else call_add(2, 3)

    result = run(agent(), "Add 2 and 3.", model=FunctionModel(fn))
    assert result.ok and result.output == "5" and result.stop_reason == "final_answer"
    first = result.steps[0]
    assert first.action["tool"] == "add" and first.tool_calls[0].result == "5"
    assert [e["payload"]["step"] for e in recorded.of("agent_step")] == [1, 2]
    assert recorded.of("tool_call")[0]["payload"]["tool"] == "add"


@pytest.mark.parametrize("printed, how", [
    ('I will use the tool.\n```json\n{"tool": "add", "arguments": {"a": 2, "b": 3}}\n```', "fenced_json"),
    ('Sure! {"name": "add", "args": {"a": 2, "b": 3}} is the call.', "embedded_json"),
    ("add(2, b=3)", "call_syntax"),
    ('{"action": "add", "action_input": "{\\"a\\": 2, \\"b\\": 3}"}', "json"),
])
def test_tool_call_printed_as_text_is_parsed(printed, how):
    model = scripted(printed, final("5"), structured=False)
    result = run(agent(), "Add 2 and 3.", model=model)
    assert result.ok and result.output == "5"
    assert result.steps[0].parsed_from == how
    assert result.steps[0].tool_calls[0].arguments == {"a": 2, "b": 3}
    assert result.steps[0].tool_calls[0].result == "5"
    assert "schema" not in model.requests[0][1] or model.requests[0][1]["schema"] is None


def test_unparseable_reply_is_reasked_once_with_a_correction():
    model = scripted("I think the answer is five.", final("5"), structured=False)
    result = run(agent(), "Add 2 and 3.", model=model)
    assert result.ok and len(result.steps) == 2
    assert "no JSON action" in result.steps[0].error
    correction = model.requests[1][0][-1]["content"]
    assert "could not be used" in correction and "final_answer" in correction


def test_malformed_json_under_schema_is_reasked():
    model = scripted('{"tool": "add", "argu', final("ok"))  # cut off mid-object: the provider raises
    result = run(agent(), "Add.", model=model)
    assert result.ok and "not valid JSON" in result.steps[0].error


def test_second_unparseable_reply_stops_with_the_text_kept():
    model = scripted("no idea", "still no idea", structured=False)
    result = run(agent(), "Add 2 and 3.", model=model)
    assert not result.ok and result.stop_reason == "unparseable_output"
    assert result.output == "still no idea" and len(result.steps) == 2


def test_max_steps():
    counter = iter(range(100))
    model = FunctionModel(lambda m, o: call_add(next(counter), 1))  # always a new action: no loop
    result = run(agent(limits=Limits(max_steps=3)), "Keep adding.", model=model)
    assert result.stop_reason == "max_steps" and len(result.steps) == 3
    assert "max_steps" in result.error and not result.ok


@pytest.mark.parametrize("read_only", [True, False])
def test_loop_detection_after_three_identical_actions(read_only):
    calls = []

    @tool(read_only=read_only)
    def probe(x: int) -> str:
        """Record a call.

        Args:
            x: Any number.
        """
        calls.append(x)
        return "nothing new"

    seen: list[str] = []

    def again(messages, options):
        seen.append(messages[-1]["content"])
        return {"thought": "again", "tool": "probe", "arguments": {"x": 1}}

    result = run(agent(tools=[probe]), "Probe.", model=FunctionModel(again))
    assert result.stop_reason == "loop_detected" and len(result.steps) == 3
    assert "same action 3 times" in result.error
    # The third identical action is never executed. A read-only call is not repeated at all: the model is
    # shown the result it already has and told to answer; a call that may change something runs again.
    assert calls == ([1] if read_only else [1, 1])
    assert seen[1].startswith("Result of probe:\nnothing new") and 'use the tool "final_answer"' in seen[1]
    assert seen[2].startswith("You already called probe") if read_only else seen[2].startswith("Result of probe")


def test_a_model_shown_its_earlier_result_answers_instead_of_looping():
    def fn(messages, options):
        last = messages[-1]["content"]
        if last.startswith("You already called add"):
            return final(last.split("\n")[1])
        return call_add(2, 3)  # a small model re-issues the call it just got an answer to

    result = run(agent(), "Add 2 and 3.", model=FunctionModel(fn))
    assert result.ok and result.output == "5" and len(result.steps) == 3
    assert [len(s.tool_calls) for s in result.steps] == [1, 0, 0]


def test_token_budget_exceeded():
    def fn(messages, options):
        return Completion(text=json.dumps(call_add(len(messages), 1)), model="test:usage",
                          usage=Usage(300, 100))

    budget = Budget(max_tokens=1000, name="task")
    result = run(agent(), "Add forever.", model=FunctionModel(fn), budget=budget)
    assert result.stop_reason == "budget_exceeded"
    assert "task token budget is spent" in result.error and "Raise max_tokens" in result.error
    assert budget.spent_tokens == 1200  # three calls of 400 tokens; the fourth was refused
    assert len(result.steps) == 4 and result.steps[-1].tokens_in == 0


def test_cost_budget_exceeded_and_reply_capped_by_tokens_left():
    def fn(messages, options):
        return Completion(text=json.dumps(call_add(len(messages), 1)), model="test:usage",
                          usage=Usage(10, 10), cost_usd=0.01)

    model = FunctionModel(fn)
    result = run(agent(limits=Limits(budget_usd=0.025, max_tokens=500)), "Add.", model=model)
    assert result.stop_reason == "budget_exceeded" and "cost budget" in result.error
    assert result.cost_usd == pytest.approx(0.03)
    assert model.requests[1][1]["max_tokens"] == 480  # 500 - 20 already spent


def test_wall_clock_limit():
    def slow(messages, options):
        time.sleep(0.3)
        return call_add(len(messages), 1)

    began = time.monotonic()
    result = run(agent(limits=Limits(timeout_s=0.5)), "Add slowly.", model=FunctionModel(slow))
    assert result.stop_reason == "timeout" and "wall-clock limit" in result.error
    assert time.monotonic() - began < 2.0


def test_model_error_stops_without_raising():
    def down(messages, options):
        raise ProviderError("upstream answered 503", status=503)

    result = run(agent(), "Add.", model=FunctionModel(down))
    assert result.stop_reason == "model_error" and "503" in result.error


def test_agent_without_tools_answers_in_text_and_sees_context():
    model = FunctionModel(lambda m, o: "Paris is the capital [s1].")
    plain = Agent(name="writer", description="Writes text.")
    result = run(plain, "Name the capital.", model=model, context={"s1": "France's capital is Paris."})
    assert result.ok and result.output == "Paris is the capital [s1]."
    user = model.requests[0][0][-1]["content"]
    assert "[s1]\nFrance's capital is Paris." in user and user.endswith("Task: Name the capital.")
    assert model.requests[0][1].get("schema") is None


def test_agent_declaration_is_validated():
    with pytest.raises(ConfigError, match="description"):
        Agent(name="x", description=" ")
    with pytest.raises(ConfigError, match="lowercase"):
        Agent(name="Bad Name", description="d")
    with pytest.raises(ConfigError, match="unknown permission"):
        Agent(name="x", description="d", permissions={"root"})


def test_empty_reply_of_a_plain_agent_is_reasked_in_plain_words():
    model = scripted("  ", "Paris.")
    result = run(Agent(name="writer", description="Writes text."), "Capital of France?", model=model)
    assert result.ok and result.output == "Paris." and result.steps[0].error == "the reply was empty"
    assert model.requests[1][0][-1]["content"].endswith("Answer the task directly, in plain text.")


def test_step_event_has_the_logged_fields():
    steps = list(run_agent(agent(), "x", model=scripted(final("y")), task_id="7f3b7a52-4c8e-4b0e-9d1e-3f1c2a9b8c7d"))
    event = steps[0].as_event()
    assert set(event) == {"agent", "model", "tokens_in", "tokens_out", "cost_usd", "duration_ms", "error", "payload"}
    assert {"step", "model_input", "model_output", "action", "tool_calls", "stop_reason"} <= set(event["payload"])
    step = recorded.of("agent_step")[-1]
    span = recorded.of("agent")[-1]  # the agent span's own event, emitted when the run ends
    assert step["parent_span_id"] == span["span_id"] and step["agent"] == "calc"
    assert step["task_id"] == span["task_id"] == span["trace_id"] == "7f3b7a52-4c8e-4b0e-9d1e-3f1c2a9b8c7d"
    assert span["payload"]["stop_reason"] == "final_answer" and span["payload"]["steps"] == 1
    assert span.tokens_in is None  # totals live in the payload: sums over the log must not count twice
    json.dumps([step.as_dict(), span.as_dict()])  # records are JSON-serialisable
