"""A cancelled task stops at its next model step, wherever that step runs: `CancelWatch` is the watch a task's
budget carries (workbench.agents.guards.Budget.watch). It is picklable, so it travels with the budget to the
workers that route, plan and run the subtasks, and reads the task's status there through that process's store.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.errors import Cancelled


@dataclass(frozen=True)
class CancelWatch:
    task_id: str

    def __call__(self) -> None:
        """Cancelled once the task's row says so (one indexed read: a model step costs far more)."""
        if status_of(self.task_id) == "cancelled":
            raise Cancelled(f"Task {self.task_id} was cancelled.")


def status_of(task_id: str) -> str | None:
    from workbench.store import get_store

    with get_store().pool.connection() as conn:
        row = conn.execute("SELECT status FROM tasks WHERE id = %s", (task_id,)).fetchone()
    return row[0] if row else None
