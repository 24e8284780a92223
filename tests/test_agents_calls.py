"""model_step: one model call as one agent step, within the budget (logic only, FunctionModel)."""

from __future__ import annotations

import time

from workbench.agents.calls import MIN_REPLY_TOKENS, model_step
from workbench.agents.guards import Budget
from workbench.code.stopping import complete_until
from workbench.errors import AgentTimeout, BudgetExceeded, ProviderError
from workbench.messages import Completion, Usage
from workbench.testing import FunctionModel

MESSAGES = [{"role": "user", "content": "Say hi."}]


def answering(text: str = "hi", *, tokens_in: int = 30, tokens_out: int = 10, cost: float | None = 0.002):
    return FunctionModel(lambda m, o: Completion(text=text, model="test:answered", usage=Usage(tokens_in, tokens_out),
                                                 cost_usd=cost), name="answering")


def test_the_call_is_recorded_on_the_step_and_charged_to_the_budget():
    task = Budget(max_tokens=1000, max_usd=1.0, name="task")
    budget = task.child(max_tokens=500, name="agent calc")
    call = model_step(answering(), MESSAGES, budget, agent="calc", number=3, max_tokens=64)
    step = call.step
    assert call.failure is None and step.stop_reason is None and step.error is None
    assert (step.number, step.agent, step.model, step.model_output) == (3, "calc", "test:answered", "hi")
    assert (step.tokens_in, step.tokens_out, step.cost_usd) == (30, 10, 0.002)
    assert step.model_input == MESSAGES and step.started_at > 0 and step.duration_ms >= 0
    assert (budget.spent_tokens, task.spent_tokens, task.spent_usd) == (40, 40, 0.002)  # charged up the chain


def test_the_reply_is_capped_by_the_tokens_left_and_the_timeout_by_the_seconds_left():
    model = answering()
    budget = Budget.create(max_tokens=100, timeout_s=30)
    budget.charge(tokens=40)
    model_step(model, MESSAGES, budget, agent="calc", number=1, max_tokens=200, options={"temperature": 0.0})
    model_step(model, MESSAGES, budget, agent="calc", number=2, max_tokens=8)
    (_, capped), (_, small) = model.requests
    assert capped["max_tokens"] == 60 and capped["temperature"] == 0.0  # 100 - 40 already spent
    assert small["max_tokens"] == 8  # a smaller cap of the caller's own stays
    assert 25 < capped["timeout"] <= 30


def test_without_a_budget_the_request_is_sent_as_given():
    model = answering()
    model_step(model, MESSAGES, None, agent="code", number=0, max_tokens=1024, options={"temperature": 0.8, "seed": 2})
    assert model.requests[0][1] == {"max_tokens": 1024, "temperature": 0.8, "seed": 2}  # no timeout, no cap


def test_a_spent_budget_stops_before_the_call():
    model = answering()
    budget = Budget(max_tokens=100, name="task")
    budget.charge(tokens=100)
    call = model_step(model, MESSAGES, budget, agent="calc", number=1, max_tokens=64)
    assert call.step.stop_reason == "budget_exceeded" and "task token budget is spent" in call.step.error
    assert isinstance(call.failure, BudgetExceeded) and model.requests == [] and budget.spent_tokens == 100


def test_too_few_tokens_left_for_a_reply_stops_before_the_call():
    model = answering()
    budget = Budget(max_tokens=100)
    budget.charge(tokens=100 - MIN_REPLY_TOKENS + 1)
    call = model_step(model, MESSAGES, budget, agent="calc", number=1, max_tokens=64)
    assert call.step.stop_reason == "budget_exceeded" and "too few for a reply" in call.step.error
    assert model.requests == []


def test_a_passed_deadline_stops_before_the_call():
    model = answering()
    call = model_step(model, MESSAGES, Budget(deadline=time.time() - 1, name="agent calc"), agent="calc",
                      number=1, max_tokens=64)
    assert call.step.stop_reason == "timeout" and "wall-clock limit" in call.step.error
    assert isinstance(call.failure, AgentTimeout) and model.requests == []


def test_a_budget_the_gateway_keeps_stops_the_step_as_a_budget():
    def refused(messages, options):
        raise BudgetExceeded("The agent budget for 'calc' has $0.000000 left. Raise the budget.")

    call = model_step(FunctionModel(refused), MESSAGES, Budget(), agent="calc", number=1, max_tokens=64)
    assert call.step.stop_reason == "budget_exceeded" and call.step.error.startswith("The agent budget")


def test_a_failing_model_stops_the_step_and_charges_nothing():
    def down(messages, options):
        raise ProviderError("upstream answered 503", status=503)

    budget = Budget(max_tokens=1000)
    call = model_step(FunctionModel(down), MESSAGES, budget, agent="calc", number=1, max_tokens=64)
    assert call.step.stop_reason == "model_error" and call.step.error == "ProviderError: upstream answered 503"
    assert isinstance(call.failure, ProviderError) and budget.spent_tokens == 0
    assert call.step.model == "test:down" and call.step.tokens_in == 0


def test_a_reply_that_is_not_json_under_a_schema_is_left_for_a_correction():
    schema = {"type": "object", "properties": {"sql": {"type": "string"}}, "required": ["sql"]}
    call = model_step(FunctionModel(lambda m, o: '{"sql": "SELE'), MESSAGES, Budget(), agent="data", number=1,
                      max_tokens=64, options={"schema": schema})
    assert call.step.stop_reason is None and "not valid JSON" in call.step.error


def test_the_reply_parsed_under_a_schema_is_left_in_the_action():
    schema = {"type": "object", "properties": {"route": {"type": "string"}}, "required": ["route"]}
    call = model_step(FunctionModel(lambda m, o: {"route": "code"}), MESSAGES, Budget(), agent="router", number=1,
                      max_tokens=16, options={"schema": schema})
    assert call.step.action == {"route": "code"} and call.step.error is None


def test_a_streamed_call_stopped_early_is_capped_and_charged_like_any_other():
    model = answering("def f():\n    return 1\n```\nThis function returns one.", tokens_in=50, tokens_out=20)
    budget = Budget(max_tokens=500)
    until = lambda text: text.index("```") + 3 if "```" in text else None  # noqa: E731
    call = model_step(model, MESSAGES, budget, agent="code", number=0, max_tokens=1024, options={"temperature": 0},
                      complete=lambda msgs, **options: complete_until(model, msgs, until, **options))
    assert call.step.model_output == "def f():\n    return 1\n```"  # cut where `until` said
    assert model.requests[0][1]["max_tokens"] == 500 and budget.spent_tokens == 70  # every generated token paid
