"""What a task does once it runs on a worker, by name: `agents` (the Director and its specialists),
`single_call` (one model call), and deterministic bodies for tests and benchmarks. The machinery around
a body (status, events, retries, cancel) is the same for every one.
"""

from __future__ import annotations

from typing import Any, Callable

# body(task: dict, ctx: RunContext) -> result dict (stored in tasks.result)
BODIES: dict[str, Callable[[dict, Any], dict]] = {}


def body(name: str):
    def decorate(fn):
        BODIES[name] = fn
        return fn

    return decorate


@body("agents")
def agents(task: dict, ctx) -> dict:
    """The Director plans, specialists run the steps as Dask tasks (workbench.tasks.agents_on_dask)."""
    from workbench.tasks.agents_on_dask import run_agents

    return run_agents(task, ctx)


@body("noop")
def noop(task: dict, ctx) -> dict:
    """Does nothing (dispatch benchmarks)."""
    return {"answer": ""}


@body("single_call")
def single_call(task: dict, ctx) -> dict:
    """One model call with the task's prompt, streamed so a cancel stops it between tokens. The task's
    budget is checked before the call (a spent one fails the task, saying so) and charged after it."""
    model = ctx.model()
    ctx.budget.check()
    stream = model.stream(task["prompt"], max_tokens=ctx.max_tokens)
    for _ in stream:
        ctx.check_cancelled()
    c = stream.completion
    ctx.budget.charge(tokens=c.usage.total_tokens, usd=c.cost_usd)
    return {"answer": c.text, "model": c.model, "tokens_in": c.usage.input_tokens,
            "tokens_out": c.usage.output_tokens, "cost_usd": c.cost_usd}


@body("experiment_case")
def experiment_case(task: dict, ctx) -> dict:
    """One case of an experiment in one configuration: answer it, judge it, record its result row."""
    from workbench.tasks.experiment_case import run_case

    return run_case(task, ctx)


def needs_llm_slot(options) -> bool:
    """Bodies that call the model themselves hold an LLM slot; the agents body (and an experiment case run
    by the agents) asks for slots per step instead, and the test bodies call no model."""
    if options.body == "experiment_case":
        return options.params.get("config", {}).get("mode") != "agent"
    return options.body == "single_call"


# Bodies for tests and benchmarks: deterministic work with no model, so dispatch, retries, cancels and
# event volume can be measured and exercised on the real cluster.
@body("sleep")
def sleep(task: dict, ctx) -> dict:
    """Sleeps `ctx.options.seconds`, checking for cancellation."""
    import time

    end = time.monotonic() + ctx.options.seconds
    while time.monotonic() < end:
        ctx.check_cancelled()
        time.sleep(0.05)
    return {"answer": f"slept {ctx.options.seconds} s"}


@body("emit")
def emit(task: dict, ctx) -> dict:
    """Emits `ctx.options.events` tool_call events through the batched writer."""
    from workbench import telemetry

    for i in range(ctx.options.events):
        telemetry.emit("tool_call", agent="synthetic", duration_ms=0.0, payload={"i": i})
    return {"answer": f"emitted {ctx.options.events} events"}
