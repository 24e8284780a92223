"""The one way into tasks for the REST API, the CLI and the dashboards: create and submit, cancel, approve,
change the priority, delete, read. Callers get typed results (`Task`, `TaskPage`) and never reach the
rows' service, the runner or SQL themselves.

A process that runs tasks (the server; a CLI that started its own LocalCluster) has a runner: there
`create_and_submit` creates the task and queues it on Dask in one transaction. All or nothing: when Dask
refuses the task or the commit fails, no row, no event and no future are left, and the caller gets the error
to retry. A process without a runner (the CLI's `submit` with no server up) creates the task pending, and
`workbench serve` queues every pending task when it starts.
"""

from __future__ import annotations

import time
from typing import Any

from workbench.errors import WorkbenchError
from workbench.tasks import overview, states, task_filter
from workbench.tasks.overview import ActiveTask, Activity, TaskLines
from workbench.tasks.plans import approve_task
from workbench.tasks.records import NewTask, Task, TaskPage
from workbench.tasks.runner import RunOptions, TaskRunner
from workbench.tasks.service import TaskService
from workbench.tasks.task_filter import Bucket, CostPoint, FilterChoices, TaskFilter


class NoTaskRunner(WorkbenchError):
    http_status = 503

    def __init__(self, task_id: str):
        super().__init__(f"This process runs no tasks, so it cannot queue task {task_id} again. Approve it "
                         f"through the running `workbench serve` (its Tasks page, or `workbench tasks approve {task_id}`).")


class TaskApi:
    """Tasks for one process: its rows' service and, where it runs tasks, its runner (see the module)."""

    def __init__(self, service: TaskService, runner: TaskRunner | None = None):
        self._service = service
        self._runner = runner

    def with_connect_timeout(self, seconds: float) -> TaskApi:
        """The same tasks through connections the pool must give within `seconds` (PoolTimeout otherwise):
        a page says at once that Postgres is unreachable instead of waiting for the pool's own timeout."""
        return TaskApi(TaskService(self._service.store, connect_timeout=seconds), self._runner)

    @property
    def runs_tasks(self) -> bool:
        """Whether tasks are queued here (create_and_submit) and a proposed plan can be approved here."""
        return self._runner is not None

    def create_and_submit(self, new: NewTask, options: RunOptions | None = None) -> Task:
        """The new task, queued (pending where this process runs no tasks); see the module's docstring.
        `options`: how this process's runner runs it (a demo's token limit); a programming error without
        a runner, where they would be silently lost."""
        if self._runner is not None:
            return Task.model_validate(self._runner.create(new, options))
        if options is not None:
            raise ValueError("Run options need a TaskApi with a runner: this process runs no tasks.")
        return Task.model_validate(self._service.create(new))

    def get(self, task_id: str) -> Task:
        return Task.model_validate(self._service.get(task_id))

    def wait(self, task_id: str, timeout: float | None = None) -> Task:
        """The task once it rests (finished, or awaiting approval). Where this process runs tasks the runner
        waits on the task's future; elsewhere the row is polled."""
        if self._runner is not None:
            return Task.model_validate(self._runner.wait(task_id, timeout))
        deadline = None if timeout is None else time.monotonic() + timeout
        while (task := self.get(task_id)).status not in states.RESTING:
            if deadline is not None and time.monotonic() > deadline:
                raise WorkbenchError(f"Task {task_id} is still {task.status} after {timeout:g} s.")
            time.sleep(0.2)
        return task

    def list(self, status: str | None = None, limit: int = 50, offset: int = 0) -> TaskPage:
        rows, total = self._service.list(status, limit, offset)
        return TaskPage(items=[Task.model_validate(r) for r in rows], total=total, limit=limit, offset=offset)

    def set_priority(self, task_id: str, priority: int) -> Task:
        return Task.model_validate(self._service.update(task_id, priority=priority))

    def cancel(self, task_id: str, reason: str = "cancelled by user") -> Task:
        """Cancelled at once (409 once it has finished); a running task stops at its next cancellation check."""
        if self._runner is not None:
            return Task.model_validate(self._runner.cancel(task_id, reason))
        return Task.model_validate(self._service.transition(task_id, "cancelled", reason=reason))

    def delete(self, task_id: str) -> None:
        self._service.delete(task_id)

    def approve(self, task_id: str, plan: dict[str, Any] | None = None, *, by: str = "api") -> Task:
        """Approve the proposed plan (or an edited one) and queue the task again to run it."""
        if self._runner is None:
            raise NoTaskRunner(task_id)
        return Task.model_validate(approve_task(self._service, self._runner, task_id, plan, by=by))

    def events(self, task_id: str, after: int = 0, limit: int = 10_000) -> list[dict[str, Any]]:
        """The task's events after seq `after`, in order, as the API shows them (an unknown id: none)."""
        return self._service.events(task_id, after, limit)

    # --- what the dashboards follow live (see overview) ---------------------------------------------

    def active(self, limit: int = 100) -> list[ActiveTask]:
        with self._service.connection() as conn:
            return overview.active(conn, limit)

    def activity(self, limit: int = 30) -> list[Activity]:
        with self._service.connection() as conn:
            return overview.activity(conn, limit)

    def find(self, f: TaskFilter, limit: int = 200) -> TaskLines:
        """The tasks `f` matches, newest first (see task_filter)."""
        with self._service.connection() as conn:
            return task_filter.lines(conn, f, limit)

    def cost_over_time(self, f: TaskFilter, bucket: Bucket = "day") -> list[CostPoint]:
        """The model-call cost of the tasks `f` matches, per time bucket and model."""
        with self._service.connection() as conn:
            return task_filter.cost_over_time(conn, f, bucket)

    def filter_choices(self) -> FilterChoices:
        """The models and agents present in the store (the filters' choices)."""
        with self._service.connection() as conn:
            return task_filter.choices(conn)
