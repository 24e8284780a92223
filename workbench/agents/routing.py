"""Routing: the Director's first, cheap call — which one specialist handles a request, or `multi`.

    r = route("Write a Python function is_prime(n) with tests", registry=registry, model="qwen-0.5b")
    r.route, r.single          # "code", True: no plan is needed, the code specialist gets the request as is

One schema-constrained call whose whole answer is `{"route": NAME}`: the enum is the enabled
specialists plus `multi` (a request with parts for different specialists, which then gets a plan).
Grammar-constrained JSON on a small local model costs a forward pass per token, so the answer is a
handful of tokens and the prompt is the specialists' one-line descriptions, nothing more.
When the model picks a specialist whose own test of the words (`Specialist.accepts`) says the request is not
its kind of work — the Code specialist for "What is the time complexity of merge sort?" — the router asks
once more among the others (`Route.declined` names the one passed over).
A route that cannot be had (model down, no JSON, budget spent) is `Route(route=MULTI, source="error")`:
the caller plans as if routing had never happened, so routing can only save time, never lose a task.

The models route single-specialist requests well but almost never answer `multi` (the 1.5B sent all six
multi-part requests of a benchmark run to one of their specialists), and a multi-part request on the
fast path loses its other parts. So a request whose wording joins two actions ("..., then write",
"and explain", "Also ...") is planned without asking a model at all (`Route.parts` holds the words that
showed it, source "parts"); the plan may still be one subtask. A wrong guess here costs a planning call,
never a part.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from workbench import telemetry
from workbench.agents.agent import resolve_model
from workbench.agents.calls import model_step
from workbench.agents.guards import Budget
from workbench.agents.registry import Registry
from workbench.providers.base import Model

MULTI = "multi"  # the request has parts for different specialists: it gets a plan
MAX_TOKENS = 16  # {"route": "general"} is about 7 tokens
PROMPT_CHARS = 2000  # a long request's head is enough to route it


@dataclass
class Route:
    route: str  # an enabled specialist's name, or MULTI
    source: str = "model"  # model | parts (several parts in its words: planned, no call) | error (plan as if not routed)
    error: str | None = None
    parts: str | None = None  # the words that show a request of several parts: plan it, whatever the route
    declined: str | None = None  # the specialist first picked, which said the request is not its kind of work
    model: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    duration_ms: float = 0.0

    @property
    def single(self) -> bool:
        """One specialist can take the request as it is: no plan needed (the Director's fast path)."""
        return self.route != MULTI and self.source == "model" and not self.parts

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "single": self.single}


def route_schema(names: list[str]) -> dict[str, Any]:
    """`multi` first: a schema-following test model (the first enum value) keeps planning as before."""
    return {"type": "object", "properties": {"route": {"type": "string", "enum": [MULTI, *names]}},
            "required": ["route"]}


def route_prompt(registry: Registry, names: list[str]) -> str:
    team = registry.team(names)
    return (f"Pick who handles the user's request.\n{team}\n- {MULTI}: the request has two or more parts that "
            f"need different specialists above (e.g. a question about the execution log AND a program).\n"
            'Reply with JSON only: {"route": "<name>"}')


def route(task: str, *, registry: Registry, names: list[str], model: Model | str | None,
          budget: Budget | None = None) -> Route:
    """Route `task` among `names` (enabled specialists, the catch-all first); one short call, one step event."""
    parts = several_parts(task)
    if parts:  # it will be planned whatever a model says: no routing call
        with telemetry.span("agent_step", agent="router") as span:
            result = Route(MULTI, source="parts", parts=parts)
            span.set(payload=result.as_dict())
        return result
    llm = resolve_model(model)
    with telemetry.span("agent_step", agent="router") as span:
        result = _ask(llm, task, registry, names, budget, 1)
        declined = _declined(result, registry, task)
        if declined:  # the model's pick does not take this kind of request: one more call among the others
            others = [n for n in names if n != declined]
            retry = _ask(llm, task, registry, others, budget, 2)
            retry.declined = declined
            retry.tokens_in, retry.tokens_out = result.tokens_in + retry.tokens_in, result.tokens_out + retry.tokens_out
            retry.cost_usd, retry.duration_ms = result.cost_usd + retry.cost_usd, result.duration_ms + retry.duration_ms
            result = retry
        span.set(model=result.model, tokens_in=result.tokens_in, tokens_out=result.tokens_out,
                 cost_usd=result.cost_usd, error=result.error, payload=result.as_dict())
    return result


def _ask(llm: Model, task: str, registry: Registry, names: list[str], budget: Budget | None, number: int) -> Route:
    messages = [{"role": "system", "content": route_prompt(registry, names)},
                {"role": "user", "content": task.strip()[:PROMPT_CHARS]}]
    step = model_step(llm, messages, budget, agent="router", number=number, max_tokens=MAX_TOKENS,
                      options={"schema": route_schema(names), "temperature": 0.0}).step
    result = Route(MULTI, source="error", error=step.error, model=step.model, tokens_in=step.tokens_in,
                   tokens_out=step.tokens_out, cost_usd=step.cost_usd, duration_ms=step.duration_ms)
    name = str((step.action or {}).get("route", "")).strip().lower()
    if step.error is None and name in (MULTI, *names):
        result.route, result.source = name, "model"
    elif step.error is None:
        result.error = f"the router answered {step.model_output[:80]!r}, not one of {MULTI}, {', '.join(names)}"
    return result


def _declined(result: Route, registry: Registry, task: str) -> str | None:
    """The specialist the model picked when its own test of the words says the request is not its kind."""
    if result.source != "model" or result.route == MULTI:
        return None
    accepts = registry.get(result.route).accepts
    return result.route if accepts is not None and not accepts(task) else None


_VERBS = (r"(?:write|explain|compute|calculate|give|list|suggest|count|find|describe|summari[sz]e|draft|make|create|"
          r"tell|show|plot|implement|compare|send|add|answer|format)")
_PARTS = re.compile(
    rf"(?:[,;]\s*|\s)(?:and\s+)?then\s+{_VERBS}?|"  # "..., then write", "and then explain"
    r"\b(?:also|additionally|as well as)\b|"  # "Also write ..."
    rf"[,;]\s*and\s+{_VERBS}\b|"  # ", and explain it"
    r"\band\s+(?:a|an)\s+(?:python|typescript|java)?\s*(?:function|script|program|email|explanation)\b|"
    # "... and explain how" (not "push and pop methods", nor "... and tell me the result": the same part)
    rf"\band\s+{_VERBS}\b(?!\s+(?:methods?|it\b|me\s+(?:the\s+|what\s+)?(?:result|answer|value|sum|total|output)s?\b))",
    re.IGNORECASE)


def several_parts(task: str) -> str | None:
    """The words that join two actions in `task` ("and explain", ", then write"), or None."""
    match = _PARTS.search(task)
    return match[0].strip() if match else None


_JOINER = re.compile(r"^[\s,;]*(?:and\s+)?(?:then\s+)?(?:also|additionally|as well as)?[\s,]*", re.IGNORECASE)


def split_parts(task: str, most: int) -> list[str]:
    """`task` cut where its wording joins two actions, at most `most` parts, each in the user's words
    (the joining words dropped: "..., then write an email" -> "Write an email"); [task] when there is
    no such place. A part shorter than three words is not a part: the cut was wrong, the task stays whole."""
    cuts = [m.start() for m in _PARTS.finditer(task)][:max(0, most - 1)]
    parts, at = [], 0
    for cut in [*cuts, len(task)]:
        text = _JOINER.sub("", task[at:cut]).strip(" ,;")
        parts.append(text[:1].upper() + text[1:])
        at = cut
    if len(parts) < 2 or any(len(p.split()) < 3 for p in parts):
        return [task.strip()]
    return parts


CODE_LANGUAGES = (("typescript", re.compile(r"\btype ?script\b|\.tsx?\b", re.IGNORECASE)),
                  ("java", re.compile(r"\bjava\b|\.java\b", re.IGNORECASE)))


def guess_language(task: str) -> str:
    """The programming language a code request names (TypeScript, Java), else python."""
    return next((name for name, pattern in CODE_LANGUAGES if pattern.search(task)), "python")


__all__ = ["MULTI", "Route", "guess_language", "route", "route_prompt", "route_schema", "several_parts", "split_parts"]
