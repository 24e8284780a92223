"""Run a whole task in this process: route -> plan (unless one specialist takes it) -> waves of subtasks
-> aggregate. The reference semantics.

The Dask executor (workbench.tasks.agents_on_dask) runs the same steps with each subtask as a Dask task,
started as soon as its inputs are ready; this sequential version is for notebooks, tests and
single-process use, and documents the rules both follow (the skip rule is one function both call,
director.skipped_before_start):
  - a request the router gives to one specialist runs unplanned, as the user wrote it (the fast path);
  - every subtask carries the user's own words beside its instructions;
  - a subtask runs after all its dependencies, with their results as context;
  - a failed subtask fails alone; its dependents are skipped (never run on missing inputs);
  - the task's budget covers the plan and every subtask; when it is spent the rest is skipped;
  - the final answer aggregates whatever finished and says what failed or was skipped.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench import telemetry
from workbench.agents.director import (
    FinalAnswer,
    Plan,
    aggregate,
    plan,
    route_task,
    skipped_before_start,
    topological_waves,
)
from workbench.agents.guards import Budget
from workbench.agents.registry import Registry, default_registry, run_specialist
from workbench.agents.specialist import SubtaskResult
from workbench.providers.base import Model


@dataclass
class TaskResult:
    task_id: str
    task: str
    plan: Plan
    results: dict[str, SubtaskResult]
    answer: FinalAnswer
    tokens: int = 0
    cost_usd: float = 0.0
    duration_ms: float = 0.0
    waves: list[list[str]] = field(default_factory=list)

    def summary(self) -> str:
        done = sum(r.ok for r in self.results.values())
        return (f"{self.duration_ms / 1000:.1f} s, {self.tokens} tokens, ${self.cost_usd:.6f}, "
                f"{done}/{len(self.plan.subtasks)} subtasks done")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_task(task: str, *, registry: Registry | None = None, model: Model | str | None = None,
             budget: Budget | None = None, task_id: str | None = None,
             options: Mapping[str, Mapping[str, Any]] | None = None) -> TaskResult:
    """Route, plan and run `task` here. options: per specialist, e.g. {"data": {"snapshot": path}}.
    `model` (when given) routes, plans and runs every subtask; else agents.yaml names the models."""
    registry = registry or default_registry()
    budget = budget or Budget(name="task")
    began = time.perf_counter()
    with telemetry.span("task", task_id=task_id or str(uuid.uuid4())) as span:
        tid = span.task_id
        routed = route_task(task, registry=registry, model=model, budget=budget)
        the_plan = plan(task, registry=registry, model=model, budget=budget, task_id=tid, route=routed)
        waves = topological_waves(the_plan)
        results: dict[str, SubtaskResult] = {}
        for wave in waves:
            for sid in wave:
                results[sid] = _run_one(the_plan, sid, results, registry, model, budget, tid, options)
        answer = aggregate(task, the_plan, results)
        span.set(error=None if answer.ok else f"failed {answer.failed}, skipped {answer.skipped}",
                 payload={"task": task, "subtasks": len(the_plan.subtasks), "waves": waves})
    spent = the_plan.tokens_in + the_plan.tokens_out + sum(r.tokens_in + r.tokens_out for r in results.values())
    cost = the_plan.cost_usd + sum(r.cost_usd for r in results.values())
    return TaskResult(tid, task, the_plan, results, answer, spent, cost,
                      (time.perf_counter() - began) * 1000, waves)


def _run_one(the_plan: Plan, sid: str, results: dict[str, SubtaskResult], registry: Registry,
             model: Model | str | None, budget: Budget, task_id: str,
             options: Mapping[str, Mapping[str, Any]] | None) -> SubtaskResult:
    subtask = the_plan.get(sid)
    skipped = skipped_before_start(subtask, results, budget)
    if skipped is not None:
        return skipped
    context = {d: results[d] for d in subtask.depends_on}
    return run_specialist(subtask, context, registry=registry, model=model, budget=budget, task_id=task_id,
                          options=(options or {}).get(subtask.specialist))
