"""One model call as one agent step, the same way for every agent (the loop, the Director's routing and
planning calls, the Data specialist, the code loop):

    call = model_step(llm, messages, budget, agent="data", number=1, max_tokens=200, options={"schema": SQL_SCHEMA})
    call.step.model_output, call.step.tokens_in, call.step.stop_reason   # None: the model answered

Before the call the budget is checked (and a call with too few tokens left for a reply is refused); the
reply is capped by the tokens left and the call's timeout by the seconds left; after it, the usage,
cost, duration and reply land on the Step and the budget is charged. A spent budget, a deadline passed
or a failing model becomes the step's stop_reason instead of an exception, so a caller decides what a
stop means; `ModelCall.failure` keeps the exception for a caller that lets it propagate (the code loop).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from workbench.agents.guards import Budget
from workbench.agents.steps import Step
from workbench.errors import AgentTimeout, BudgetExceeded, Cancelled, ProviderError, WorkbenchError
from workbench.messages import Completion
from workbench.providers.base import Model

MIN_REPLY_TOKENS = 16  # below this a call cannot produce a usable answer: the budget is spent
BUDGET_STOPS: dict[type[WorkbenchError], str] = {BudgetExceeded: "budget_exceeded", AgentTimeout: "timeout"}

# (messages, **options) -> Completion: `Model.complete`, or a streamed call that stops early (the code loop).
Complete = Callable[..., Completion]


@dataclass
class ModelCall:
    step: Step
    # The exception behind step.stop_reason, or behind step.error when the reply was not valid JSON; None
    # when the model answered.
    failure: WorkbenchError | None = None


def model_step(llm: Model, messages: list[dict], budget: Budget | None, *, agent: str, number: int,
               max_tokens: int, options: Mapping[str, Any] | None = None,
               complete: Complete | None = None) -> ModelCall:
    """Call `llm` once within `budget` and record the call as Step `number` of `agent`.

    max_tokens: the reply cap before the budget's (lowered to the tokens left). options: the rest of the
    request (schema, temperature, seed, ...); a timeout is set from the budget's deadline. complete:
    how to make the call, `llm.complete` unless given. Under a schema, the parsed reply (a dict) is left in
    step.action for the caller to read its action from. A reply that is not valid JSON under a schema
    leaves step.error and no stop_reason: the caller may re-ask.
    """
    step = Step(number=number, agent=agent, model=llm.model_id, model_input=list(messages), started_at=time.time())
    budget = budget if budget is not None else Budget(name="call")
    began = time.perf_counter()
    try:
        completion = (complete or llm.complete)(messages, **within(budget, {**(options or {}), "max_tokens": max_tokens}))
    except Cancelled:  # the task was cancelled (the budget's watch): no step to record, stop the run
        raise
    except tuple(BUDGET_STOPS) as exc:  # from the budget, or a budget the gateway keeps
        step.stop_reason = next(reason for cls, reason in BUDGET_STOPS.items() if isinstance(exc, cls))
        step.error = str(exc)
        return ModelCall(step, exc)
    except WorkbenchError as exc:
        if isinstance(exc, ProviderError) and malformed_json(exc):  # often cut off by max_tokens: re-ask
            step.error = f"the reply was not valid JSON ({exc})"
        else:
            step.stop_reason, step.error = "model_error", f"{type(exc).__name__}: {exc}"
        return ModelCall(step, exc)
    finally:
        step.duration_ms = (time.perf_counter() - began) * 1000
    step.model_output, step.model = completion.text, completion.model or step.model
    step.tokens_in, step.tokens_out = completion.usage.input_tokens, completion.usage.output_tokens
    step.cost_usd = completion.cost_usd or 0.0
    budget.charge(tokens=completion.usage.total_tokens, usd=completion.cost_usd)
    if options and options.get("schema") is not None and isinstance(completion.data, dict):
        step.action = completion.data
    return ModelCall(step)


def within(budget: Budget, options: dict[str, Any]) -> dict[str, Any]:
    """The call's options inside what `budget` has left; BudgetExceeded / AgentTimeout when it has nothing."""
    budget.check()
    tokens_left = budget.tokens_left()
    if tokens_left is not None:
        if tokens_left < MIN_REPLY_TOKENS:
            raise BudgetExceeded(f"Only {tokens_left} tokens are left in the budget, too few for a reply. "
                                 f"Raise max_tokens in agents.yaml limits or the task's budget.")
        options["max_tokens"] = min(options["max_tokens"], tokens_left)
    seconds_left = budget.seconds_left()
    if seconds_left is not None:
        options["timeout"] = max(1.0, seconds_left)
    return options


def malformed_json(exc: ProviderError) -> bool:
    """The provider answered, but not with JSON under a schema (base.parse_json raises this)."""
    return isinstance(exc.__cause__, ValueError) or "malformed JSON" in str(exc)
