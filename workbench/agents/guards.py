"""Guards around an agent run: a token/cost/wall-clock budget and a stuck (loop) detector.

    task_budget = Budget(max_tokens=20_000, max_usd=0.05, timeout_s=300)   # one per task
    agent_budget = task_budget.child(max_tokens=4_000, timeout_s=60)        # one per agent run
    agent_budget.charge(tokens=812, usd=0.0004)   # charges the task budget too
    agent_budget.check()                          # BudgetExceeded / AgentTimeout, with how to fix it

A budget may carry a `watch`: a picklable callable that raises when the run must stop for another reason
(its task was cancelled). check() calls it first, so every model step, on every worker, stops there.

Budgets are plain picklable data. Across Dask workers, pass `task_budget.remaining()` to a subtask and
charge its reported tokens/cost back with `task_budget.charge(...)` when the result returns.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import AgentTimeout, BudgetExceeded, LoopDetected

LOOP_REPEATS = 3  # OpenHands' stuck detector: the same action three times in a row is a loop


@dataclass
class Budget:
    max_tokens: int | None = None  # input + output tokens of every model call
    max_usd: float | None = None
    deadline: float | None = None  # epoch seconds (time.time()), so it means the same on every worker
    name: str = "task"
    parent: Budget | None = None
    spent_tokens: int = 0
    spent_usd: float = 0.0
    started: float = field(default_factory=time.time)
    watch: Callable[[], None] | None = None  # raises when the run must stop (its task was cancelled)

    @classmethod
    def create(cls, *, max_tokens: int | None = None, max_usd: float | None = None,
               timeout_s: float | None = None, name: str = "task") -> Budget:
        deadline = time.time() + timeout_s if timeout_s is not None else None
        return cls(max_tokens=max_tokens, max_usd=max_usd, deadline=deadline, name=name)

    def child(self, *, max_tokens: int | None = None, max_usd: float | None = None,
              timeout_s: float | None = None, name: str = "agent") -> Budget:
        """A budget inside this one: spending charges both; either one running out stops the run."""
        budget = Budget.create(max_tokens=max_tokens, max_usd=max_usd, timeout_s=timeout_s, name=name)
        budget.parent = self
        return budget

    def remaining(self) -> Budget:
        """A detached budget holding what is left (to send to another process)."""
        tokens = self.tokens_left()
        usd = self.usd_left()
        return Budget(max_tokens=tokens, max_usd=usd, deadline=self.effective_deadline(), name=self.name,
                      watch=self.watcher())

    def watcher(self) -> Callable[[], None] | None:
        """The nearest watch up the chain (see the module)."""
        return next((b.watch for b in self.chain() if b.watch is not None), None)

    def charge(self, *, tokens: int = 0, usd: float | None = 0.0) -> None:
        self.spent_tokens += tokens
        self.spent_usd += usd or 0.0
        if self.parent is not None:
            self.parent.charge(tokens=tokens, usd=usd)

    def chain(self) -> list[Budget]:
        out, node = [], self
        while node is not None:
            out.append(node)
            node = node.parent
        return out

    def tokens_left(self) -> int | None:
        lefts = [b.max_tokens - b.spent_tokens for b in self.chain() if b.max_tokens is not None]
        return max(0, min(lefts)) if lefts else None

    def usd_left(self) -> float | None:
        lefts = [b.max_usd - b.spent_usd for b in self.chain() if b.max_usd is not None]
        return max(0.0, min(lefts)) if lefts else None

    def effective_deadline(self) -> float | None:
        deadlines = [b.deadline for b in self.chain() if b.deadline is not None]
        return min(deadlines) if deadlines else None

    def seconds_left(self) -> float | None:
        deadline = self.effective_deadline()
        return None if deadline is None else deadline - time.time()

    def check(self) -> None:
        """Raise if the run must stop (the watch: a cancelled task) or any budget in the chain is spent or past
        its deadline."""
        watch = self.watcher()
        if watch is not None:
            watch()
        for b in self.chain():
            if b.max_tokens is not None and b.spent_tokens >= b.max_tokens:
                raise BudgetExceeded(
                    f"The {b.name} token budget is spent: {b.spent_tokens:,} of {b.max_tokens:,} tokens used. "
                    f"Raise max_tokens for it (agents.yaml limits, or the task's budget) or split the task.")
            if b.max_usd is not None and b.spent_usd >= b.max_usd:
                raise BudgetExceeded(
                    f"The {b.name} cost budget is spent: ${b.spent_usd:.6f} of ${b.max_usd:.6f} used. "
                    f"Raise budget_usd for it (agents.yaml limits, or the task's budget) or use a cheaper model.")
            if b.deadline is not None and time.time() >= b.deadline:
                raise AgentTimeout(
                    f"The {b.name} ran past its wall-clock limit ({time.time() - b.started:.1f} s elapsed). "
                    f"Raise timeout_s for it (agents.yaml limits, or the task's timeout) or use a faster model.")


@dataclass
class LoopDetector:
    """Counts identical consecutive actions (tool + arguments, compared as canonical JSON)."""

    repeats: int = LOOP_REPEATS
    last: str | None = None
    count: int = 0

    def see(self, action: dict[str, Any]) -> None:
        """Record the next proposed action; raise LoopDetected on the `repeats`-th identical one in a row."""
        key = json.dumps(action, sort_keys=True, default=str)
        self.count = self.count + 1 if key == self.last else 1
        self.last = key
        if self.count >= self.repeats:
            raise LoopDetected(
                f"Stopped: the agent proposed the same action {self.count} times in a row "
                f"({action.get('tool')} with {json.dumps(action.get('arguments'), default=str)[:200]}). "
                f"Rephrase the task, give the agent a tool that makes progress, or use a larger model.")
