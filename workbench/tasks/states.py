"""The task status machine. Every change goes through `check()`: illegal transitions are refused (409)."""

from __future__ import annotations

from typing import Literal, get_args

from workbench.errors import WorkbenchError

Status = Literal["pending", "queued", "processing", "awaiting_approval", "completed", "failed", "cancelled"]

TERMINAL = frozenset({"completed", "failed", "cancelled"})
# Nothing happens in these until someone acts: a follower (CLI, WebSocket) stops at them.
RESTING = TERMINAL | {"awaiting_approval"}
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"queued", "cancelled", "failed"}),
    "queued": frozenset({"processing", "cancelled", "failed", "pending"}),
    # processing -> queued is a retry (worker died, workbench restarted mid-task)
    "processing": frozenset({"completed", "failed", "cancelled", "awaiting_approval", "queued"}),
    "awaiting_approval": frozenset({"queued", "cancelled", "failed"}),
    "completed": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}
assert set(TRANSITIONS) == set(get_args(Status)), "Status and TRANSITIONS name the same statuses"


# A task, or a subtask of one, whose worker died (or that a restart interrupted) is run again until it
# has run this many times; then it fails, saying why.
MAX_ATTEMPTS = 2


def runs_again(runs: int) -> bool:
    """Whether a task or subtask that has run `runs` times, each ended by a lost worker, runs once more."""
    return runs < MAX_ATTEMPTS


class IllegalTransition(WorkbenchError):
    http_status = 409

    def __init__(self, task_id: str, current: str, wanted: str):
        allowed = ", ".join(sorted(TRANSITIONS.get(current, ()))) or "none (it is finished)"
        super().__init__(f"Task {task_id} is {current}; it cannot become {wanted}. Allowed from {current}: {allowed}.")


def sources(wanted: str) -> tuple[str, ...]:
    """The statuses a task may become `wanted` from."""
    return tuple(s for s, targets in TRANSITIONS.items() if wanted in targets)


def check(task_id: str, current: str, wanted: str) -> None:
    if wanted not in TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition(task_id, current, wanted)
