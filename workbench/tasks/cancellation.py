"""A cancelled task stops at its next model step, wherever that step runs: `CancelWatch` is the watch a task's
budget carries (workbench.agents.guards.Budget.watch). It is picklable, so it travels with the budget to the
workers that route, plan and run the subtasks, and reads the task's status there through that process's store.

The store unreachable (Postgres restarting, a network blip) does not stop the task: its status cannot be read,
so it is not known to be cancelled, and the work goes on; a cancel made meanwhile is seen once the store
answers again. The store is then not asked again for UNREADABLE_PAUSE_S, so each model step does not wait on it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import psycopg

from workbench.errors import Cancelled

log = logging.getLogger(__name__)
READ_TIMEOUT_S = 2.0  # a status read waits this long for a connection, not the pool's default 30 s
UNREADABLE_PAUSE_S = 5.0
_unreadable_until = 0.0


@dataclass(frozen=True)
class CancelWatch:
    task_id: str

    def __call__(self) -> None:
        """Cancelled once the task's row says so (one indexed read: a model step costs far more)."""
        if is_cancelled(self.task_id):
            raise Cancelled(f"Task {self.task_id} was cancelled.")


def is_cancelled(task_id: str) -> bool:
    """Whether the task's row says cancelled; False while the store cannot be read (see the module's note)."""
    global _unreadable_until
    if time.monotonic() < _unreadable_until:
        return False
    try:
        return status_of(task_id) == "cancelled"
    except psycopg.Error as exc:  # PoolTimeout is an OperationalError too
        _unreadable_until = time.monotonic() + UNREADABLE_PAUSE_S
        log.warning("task %s: its status cannot be read (%s: %s); it goes on, and is looked at again in %g s",
                    task_id, type(exc).__name__, exc, UNREADABLE_PAUSE_S)
        return False


def status_of(task_id: str) -> str | None:
    from workbench.store import get_store

    with get_store().pool.connection(timeout=READ_TIMEOUT_S) as conn:
        row = conn.execute("SELECT status FROM tasks WHERE id = %s", (task_id,)).fetchone()
    return row[0] if row else None
