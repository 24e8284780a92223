"""The agent loop: one readable `while` loop that yields a Step per model call (smolagents `_run_stream`).

    for step in run_agent(agent, "What is in notes.txt?", model=FunctionModel(fn)):
        print(step.number, step.action, step.stop_reason)
    result = run(agent, task)          # the same, collected into an AgentResult

Each iteration: one model call within the budget (`workbench.agents.calls`), read an action from its reply
(schema-constrained JSON, or a call printed as text), then either finish (final_answer), run the tool and
feed its result back, or re-ask once with a correction. The last step carries `stop_reason`.
Every step is emitted as an `agent_step` event; nothing here raises for a model or tool failure:
the run stops with a reason instead, so one failing agent never takes its caller down.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

from workbench import telemetry
from workbench.agents.actions import (
    FINAL,
    action_schema,
    bind_positional,
    correction,
    normalize,
    parse_action,
    tools_prompt,
)
from workbench.agents.agent import Agent, resolve_model
from workbench.agents.calls import model_step
from workbench.agents.guards import Budget, LoopDetector
from workbench.agents.steps import AgentResult, Step
from workbench.errors import LoopDetected
from workbench.providers.base import Model
from workbench.tools import Toolset

MAX_CORRECTIONS = 1  # re-ask once with what was wrong; a second miss stops the run
Stop = tuple[str, str | None]  # (stop_reason, error)


def run_agent(agent: Agent, task: str, *, context: str | Mapping[str, str] | None = None,
              model: Model | str | None = None, budget: Budget | None = None,
              task_id: str | None = None) -> Iterator[Step]:
    """Run `agent` on `task`, yielding one Step per iteration; the last step has a stop_reason.

    context: results of earlier subtasks ({"s1": "text"} or preformatted text) shown before the task.
    model: a Model, a model name, or None for the agent's configured model.
    budget: the task's Budget; the agent's own limits become a child of it.
    """
    llm = resolve_model(model if model is not None else agent.model)
    limits = agent.limits
    budget = (budget or Budget(name="task")).child(
        max_tokens=limits.max_tokens, max_usd=limits.budget_usd, timeout_s=limits.timeout_s, name=f"agent {agent.name}")
    toolset = agent.toolset()
    tools = toolset.allowed()
    # Constrain replies to the action grammar only where the model enforces schemas; others are parsed.
    schema = action_schema(tools) if tools and llm.structured_output != "none" else None
    messages = first_messages(agent, task, context, toolset)
    detector = LoopDetector()
    answered: dict[str, str] = {}  # a read-only call's result, by its action: a repeat is answered from here
    corrections = 0
    step_no = 1
    with telemetry.span("agent", agent=agent.name, task_id=task_id) as span:
        while step_no <= limits.max_steps:
            began = time.perf_counter()
            step = model_step(llm, messages, budget, agent=agent.name, number=step_no,
                              max_tokens=limits.max_tokens_per_call, options={**agent.options, "schema": schema}).step
            stop = (step.stop_reason, step.error) if step.stop_reason is not None else None
            if stop is None:
                action = read_action(step, tools) if tools else plain_answer(step)
                if action is None:
                    corrections += 1
                    stop = ("unparseable_output", step.error) if corrections > MAX_CORRECTIONS else None
                    messages += [{"role": "assistant", "content": step.model_output or "(empty)"},
                                 {"role": "user", "content": correction(step.error or "empty reply", tools)}]
                elif action["tool"] == FINAL:
                    step.final_answer = action["arguments"]["answer"]
                    stop = ("final_answer", None)
                else:
                    corrections = 0
                    stop = loop_guard(detector, action)
                    if stop is None:
                        act(toolset, action, step, messages, answered)
            if stop is None and step_no == limits.max_steps:
                stop = ("max_steps", (f"Stopped after {limits.max_steps} steps without a final answer. Raise "
                                      f"max_steps for {agent.name} in agents.yaml or simplify the task."))
            finish(step, began, stop)
            tally(span, step)
            yield step
            if stop is not None:
                return
            step_no += 1


def run(agent: Agent, task: str, **kwargs: Any) -> AgentResult:
    """Run to the end and summarise (tokens, cost, output, stop reason)."""
    return AgentResult.from_steps(agent.name, list(run_agent(agent, task, **kwargs)))


# --- the pieces of one iteration ------------------------------------------------------------------


def first_messages(agent: Agent, task: str, context: str | Mapping[str, str] | None,
                   toolset: Toolset) -> list[dict[str, str]]:
    system = agent.system_prompt.strip()
    if toolset.allowed():
        system += "\n\n" + tools_prompt(toolset.allowed())
    user = f"{format_context(context)}Task: {task.strip()}" if context else task.strip()
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def format_context(context: str | Mapping[str, str] | None) -> str:
    if not context:
        return ""
    if isinstance(context, str):
        return f"Context:\n{context.strip()}\n\n"
    blocks = "\n\n".join(f"[{key}]\n{text.strip()}" for key, text in context.items())
    return f"Results of earlier subtasks (cite them by their [id]):\n{blocks}\n\n"


def read_action(step: Step, tools: list) -> dict[str, Any] | None:
    """The action of this step (already parsed under a schema, else read from the text), or None + error."""
    if step.error:  # malformed JSON: model_step left the reason
        return None
    if step.action is not None:  # parsed under the schema; normalise anyway (a grammar is not a guarantee)
        found = (normalize(step.action), "schema")
    else:
        found = parse_action(step.model_output, [t.name for t in tools])
    action = found[0] if found else None
    if action is None:
        step.error = "no JSON action or tool call was found in the reply"
        step.action = None
        return None
    step.action = bind_positional(action, {t.name: t for t in tools})
    step.parsed_from = found[1]
    return step.action


def plain_answer(step: Step) -> dict[str, Any] | None:
    """An agent without tools answers in plain text: any non-empty reply is its final answer."""
    if step.error or not step.model_output.strip():
        step.error = step.error or "the reply was empty"
        return None
    step.parsed_from = "text"
    return {"tool": FINAL, "arguments": {"answer": step.model_output.strip()}}


def loop_guard(detector: LoopDetector, action: dict[str, Any]) -> Stop | None:
    try:
        detector.see({"tool": action["tool"], "arguments": action["arguments"]})
    except LoopDetected as exc:
        return "loop_detected", str(exc)
    return None


def act(toolset: Toolset, action: dict[str, Any], step: Step, messages: list[dict[str, str]],
        answered: dict[str, str]) -> None:
    """Run the tool and feed its result (or error) back to the model as the next user message. A read-only
    call repeated with the same arguments is not run again: the model is shown the result it already has
    (small models re-issue a call whose answer they just got instead of answering)."""
    key = json.dumps({"tool": action["tool"], "arguments": action["arguments"]}, sort_keys=True, default=str)
    if key in answered:
        observation = (f"You already called {action['tool']} with these arguments; its result was:\n{answered[key]}\n"
                       f"Calling it again gives the same result. Use the tool \"{FINAL}\" now with the answer "
                       f"this result gives.")
    else:
        call = toolset.call(action["tool"], action["arguments"])
        step.tool_calls.append(call)
        if call.error is not None:
            observation = f"Error from {call.name}: {call.error}"
        else:
            observation = (f"Result of {call.name}:\n{call.result}\n\nIf this answers the task, use the tool "
                           f"\"{FINAL}\" with the answer now; otherwise choose the next action.")
            tool_ = toolset.get(call.name)
            if tool_ is not None and tool_.read_only:
                answered[key] = call.result or ""
    messages += [{"role": "assistant", "content": step.model_output},
                 {"role": "user", "content": observation}]


def tally(span: telemetry.Span, step: Step) -> None:
    """Totals for the agent span's event. In the payload, not the token columns: the agent_step events
    (and the gateway's llm_call events) already carry them, and sums over the log must not count twice."""
    totals = span.fields.setdefault("payload", {"tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0})
    totals["tokens_in"] += step.tokens_in
    totals["tokens_out"] += step.tokens_out
    totals["cost_usd"] += step.cost_usd
    totals.update(steps=step.number, stop_reason=step.stop_reason)
    span.set(model=step.model, error=step.error if step.stop_reason not in (None, "final_answer") else None)


def finish(step: Step, began: float, stop: Stop | None) -> None:
    step.duration_ms = (time.perf_counter() - began) * 1000
    if stop is not None:
        step.stop_reason, error = stop
        step.error = error if error is not None else (step.error if stop[0] != "final_answer" else None)
    telemetry.emit("agent_step", **step.as_event())
