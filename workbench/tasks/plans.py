"""A task's run settings, plan and finished subtasks in Postgres: what approval and resume read.

    plans = PlanStore(store)
    plans.create(task_id, mode="agents", approve_plan=True)     # with the task (TaskService.create)
    version = plans.propose(task_id, plan_dict)                   # the Director's plan; approved unless asked
    plans.approve(task_id, edited_plan_dict, by="cli")            # human approval (optionally edited)
    plans.save_subtask(task_id, version, result_dict)             # a subtask finished (done/failed/skipped)
    plans.done(task_id, version)                                  # {subtask_id: result} to resume from

A task restarted after a crash finds its plan and finished subtasks here and runs only the rest. Editing
a plan bumps its version, so results of an older plan are never mixed into a newer one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from workbench.errors import WorkbenchError


class PlanNotAwaitingApproval(WorkbenchError):
    http_status = 409


@dataclass
class RunRecord:
    task_id: str
    mode: str = "agents"
    approve_plan: bool = False
    plan: dict[str, Any] | None = None
    plan_version: int = 0
    plan_state: str = "none"  # none | proposed | approved
    approved_by: str | None = None
    memory: bool | None = None
    memory_owner: str | None = None


class PlanStore:
    def __init__(self, store):
        self.store = store

    def create(self, task_id: str, *, mode: str = "agents", approve_plan: bool = False, memory: bool | None = None,
               memory_owner: str | None = None, conn=None) -> None:
        sql = ("INSERT INTO task_runs (task_id, mode, approve_plan, memory, memory_owner) VALUES (%s, %s, %s, %s, %s) "
               "ON CONFLICT DO NOTHING")
        args = (task_id, mode, approve_plan, memory, memory_owner)
        if conn is not None:  # inside the caller's transaction (the task and its run row appear together)
            conn.execute(sql, args)
            return
        with self.store.pool.connection() as c:
            c.execute(sql, args)

    def get(self, task_id: str) -> RunRecord:
        with self.store.pool.connection() as conn:
            row = conn.cursor(row_factory=dict_row).execute(
                "SELECT task_id::text, mode, approve_plan, plan, plan_version, plan_state, approved_by, memory, memory_owner "
                "FROM task_runs WHERE task_id = %s", (task_id,)).fetchone()
        return RunRecord(**row) if row else RunRecord(task_id=task_id)

    def propose(self, task_id: str, plan: dict[str, Any], *, approved: bool) -> int:
        """Store the Director's plan as a new version; `approved=False` leaves it for a human."""
        state = "approved" if approved else "proposed"
        with self.store.pool.connection() as conn:
            conn.execute("INSERT INTO task_runs (task_id) VALUES (%s) ON CONFLICT DO NOTHING", (task_id,))
            row = conn.execute(
                "UPDATE task_runs SET plan = %s, plan_version = plan_version + 1, plan_state = %s, "
                "approved_by = %s, updated_at = now() WHERE task_id = %s RETURNING plan_version",
                (Jsonb(plan), state, "auto" if approved else None, task_id)).fetchone()
        return row[0]

    def approve(self, task_id: str, plan: dict[str, Any] | None = None, *, by: str = "api") -> RunRecord:
        """Approve the proposed plan, or replace it with an edited one (a new version), approved."""
        with self.store.pool.connection() as conn, conn.transaction():
            row = conn.execute("SELECT plan_state FROM task_runs WHERE task_id = %s FOR UPDATE",
                               (task_id,)).fetchone()
            if row is None or row[0] != "proposed":
                raise PlanNotAwaitingApproval(
                    f"Task {task_id} has no plan waiting for approval (plan state: {row[0] if row else 'none'}). "
                    f"Only a task in `awaiting_approval` can be approved; see `workbench tasks show {task_id}`.")
            if plan is None:
                conn.execute("UPDATE task_runs SET plan_state = 'approved', approved_by = %s, updated_at = now() "
                             "WHERE task_id = %s", (by, task_id))
            else:
                conn.execute("UPDATE task_runs SET plan = %s, plan_version = plan_version + 1, "
                             "plan_state = 'approved', approved_by = %s, updated_at = now() WHERE task_id = %s",
                             (Jsonb(plan), f"{by} (edited)", task_id))
        return self.get(task_id)

    def save_subtask(self, task_id: str, version: int, result: dict[str, Any], worker: str | None = None) -> None:
        """Checkpoint one finished subtask. A done result is final; a failed or skipped one is replaced by
        a later attempt (a resumed task gives them another chance). The checkpoint commits in the event
        writer's transaction, with every event emitted before it: a process killed right after the commit
        can never leave a checkpoint whose subtask's events were still queued in its memory."""
        def save(conn) -> None:
            conn.execute(
                "INSERT INTO task_subtasks (task_id, plan_version, subtask_id, specialist, status, result, worker) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (task_id, plan_version, subtask_id) DO UPDATE "
                "SET status = excluded.status, result = excluded.result, worker = excluded.worker, "
                "finished_at = now() WHERE task_subtasks.status <> 'done'",
                (task_id, version, result["subtask_id"], result["specialist"], result["status"], Jsonb(result),
                 worker))

        self.store.commit_with_events(save)

    def done(self, task_id: str, version: int, subtask_id: str | None = None) -> dict[str, dict[str, Any]]:
        """Subtasks of this plan version that finished successfully (only `subtask_id`, if given): a resumed
        run skips them."""
        query = "SELECT subtask_id, result FROM task_subtasks WHERE task_id = %s AND plan_version = %s AND status = 'done'"
        args: tuple = (task_id, version)
        if subtask_id is not None:
            query, args = query + " AND subtask_id = %s", (*args, subtask_id)
        with self.store.pool.connection() as conn:
            rows = conn.execute(query, args).fetchall()
        return {sid: result for sid, result in rows}


def approve_task(service, runner, task_id: str, plan: dict[str, Any] | None = None, *, by: str = "api") -> dict:
    """Approve (or edit and approve) a task's plan, then queue the task again so it runs the plan.

    An edited plan is validated like the Director's own (known, enabled specialists; no cycles; the
    item cap); a bad one is refused with every problem listed and nothing changes.
    """
    from workbench.agents.director import validate_plan
    from workbench.agents.registry import default_registry

    task = service.get(task_id)
    if task["status"] != "awaiting_approval":
        raise PlanNotAwaitingApproval(f"Task {task_id} is {task['status']}, not awaiting_approval: there is no plan "
                                      f"to approve. Submit with approve_plan (`workbench run --approve-plan`).")
    if plan is not None:
        checked = validate_plan(plan, default_registry(), task=task["prompt"])  # PlanError (422) lists problems
        checked.reasoning = checked.reasoning or "edited by a human"
        checked.source = "edited"
        plan = checked.as_dict()
    PlanStore(service.store).approve(task_id, plan, by=by)
    service.transition(task_id, "queued", reason=f"plan approved by {by}" + (" (edited)" if plan else ""))
    runner.submit(task_id)
    return service.get(task_id)
