"""Task understanding: what the task row records about a request — kind, language, complexity, summary.

It comes from the Director's routing call (workbench.agents.routing), not from a call of its own: the
route is the kind (a specialist's name, or `multi` for a request with parts for different
specialists), the language is read off the request (TypeScript / Java when named, else Python for
code), the complexity is the number of subtasks the plan has, and the summary is the request's first
line. A small model asked for all four in JSON spent seconds per field; none of them needs a model.
"""

from __future__ import annotations

from typing import Any

from workbench.agents.guards import Budget
from workbench.agents.routing import MULTI, Route, guess_language

SUMMARY_CHARS = 120


def understanding_of(prompt: str, route: Route, the_plan: Any = None) -> dict[str, Any]:
    """The task row's fields for a routed (and maybe planned) request; unknown kind when routing failed."""
    kind = route.route if route.source in ("model", "parts") else None
    subtasks = len(getattr(the_plan, "subtasks", None) or []) or (1 if route.single else 2)
    coded = kind == "code" or (the_plan is not None and any(s.specialist == "code" for s in the_plan.subtasks))
    return {
        "kind": kind,
        "language": guess_language(prompt) if coded else None,
        "complexity": min(5, max(1, subtasks)),
        "summary": summary(prompt),
    }


def summary(prompt: str) -> str:
    first = next((line.strip() for line in prompt.splitlines() if line.strip()), "")
    return first if len(first) <= SUMMARY_CHARS else first[: SUMMARY_CHARS - 1].rstrip() + "…"


def classify(prompt: str, model, budget: Budget | None = None) -> dict[str, Any]:
    """Route `prompt` with `model` (one short call, charged to `budget`) and describe it; for bodies that
    run without a plan. A spent budget skips the call: the kind is then unknown."""
    from workbench.agents.director import route_task

    return understanding_of(prompt, route_task(prompt, model=model, budget=budget))


__all__ = ["MULTI", "classify", "summary", "understanding_of"]
