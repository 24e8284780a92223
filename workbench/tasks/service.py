"""Tasks in Postgres: create, read, list, change status (atomically, with a `status` event), cancel, delete.

Status changes update the row and append their `status` event in ONE transaction, so a stream that
follows the events never sees a status the table does not have, nor misses one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from workbench import events, telemetry
from workbench.errors import WorkbenchError
from workbench.store import writer
from workbench.tasks import states
from workbench.tasks.plans import MODES, PlanStore

TASK_COLUMNS = ("id, title, prompt, kind, language, complexity, summary, status, priority, model, budget_usd, "
                "parent_id, result, error, attempts, created_at, started_at, finished_at, updated_at")
# With the run settings and plan (task_runs); tasks created before that table existed read as mode agents.
_SELECT = ("SELECT " + ", ".join(f"t.{c.strip()}" for c in TASK_COLUMNS.split(",")) +
           ", coalesce(r.mode, 'agents') AS mode, coalesce(r.approve_plan, false) AS approve_plan, r.plan, "
           "coalesce(r.plan_state, 'none') AS plan_state, coalesce(r.plan_version, 0) AS plan_version "
           "FROM tasks t LEFT JOIN task_runs r ON r.task_id = t.id")
MAX_PROMPT_BYTES = 1_000_000
MAX_TITLE_CHARS = 500


class TaskNotFound(WorkbenchError):
    http_status = 404

    def __init__(self, task_id: str):
        super().__init__(f"No task {task_id}. List tasks with `workbench tasks` or GET /api/v1/tasks.")


class InvalidTask(WorkbenchError):
    http_status = 422


class PromptTooLarge(WorkbenchError):
    http_status = 413


@dataclass
class NewTask:
    prompt: str
    title: str = ""
    model: str | None = None
    priority: int = 0
    budget_usd: float | None = None
    approve_plan: bool = False
    parent_id: str | None = None
    mode: str = "agents"  # agents: the Director plans, specialists run the steps; single: one model call


def validate(new: NewTask) -> NewTask:
    """Refuse what cannot be stored or run, with a message that says how to fix it."""
    if not isinstance(new.prompt, str) or not new.prompt.strip():
        raise InvalidTask("The prompt is empty: describe the task in a few words.")
    size = len(new.prompt.encode("utf-8", "surrogatepass"))
    if size > MAX_PROMPT_BYTES:
        raise PromptTooLarge(f"The prompt is {size:,} bytes; the limit is {MAX_PROMPT_BYTES:,}. "
                             f"Put large inputs in a file and refer to it, or shorten the prompt.")
    for field, value in (("prompt", new.prompt), ("title", new.title)):
        if "\x00" in value:
            raise InvalidTask(f"The {field} contains NUL bytes (\\x00), which cannot be stored. Remove them.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidTask(f"The {field} is not valid UTF-8 (lone surrogates). Re-encode it as UTF-8.") from None
    if len(new.title) > MAX_TITLE_CHARS:
        raise InvalidTask(f"The title has {len(new.title)} characters; the limit is {MAX_TITLE_CHARS}.")
    if new.mode not in MODES:
        raise InvalidTask(f"Unknown mode {new.mode!r}; use one of {', '.join(MODES)} (agents: the Director plans "
                          f"and specialists run the steps; single: one model call).")
    if new.approve_plan and new.mode != "agents":
        raise InvalidTask("approve_plan needs mode 'agents': only the Director makes a plan to approve.")
    if new.budget_usd is not None and new.budget_usd < 0:
        raise InvalidTask(f"The budget must be zero or positive, got {new.budget_usd}.")
    if not -1000 <= new.priority <= 1000:
        raise InvalidTask(f"Priority must be between -1000 and 1000, got {new.priority}.")
    if new.model is not None:
        from workbench import providers

        providers.get_model(new.model)  # UnknownModelError (422) names the available models
    return new


def _title(prompt: str) -> str:
    line = prompt.strip().splitlines()[0]
    return line[:80] + ("…" if len(line) > 80 else "")


class TaskService:
    def __init__(self, store):
        self.store = store

    def _conn(self):
        return self.store.pool.connection()

    def create(self, new: NewTask) -> dict[str, Any]:
        validate(new)
        task_id = str(uuid.uuid4())
        with self._conn() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO tasks (id, title, prompt, status, priority, model, budget_usd, parent_id, result) "
                "VALUES (%s, %s, %s, 'pending', %s, %s, %s, %s, %s)",
                (task_id, new.title or _title(new.prompt), new.prompt, new.priority, new.model, new.budget_usd,
                 new.parent_id, Jsonb({"approve_plan": new.approve_plan}) if new.approve_plan else None),
            )
            PlanStore(self.store).create(task_id, mode=new.mode, approve_plan=new.approve_plan, conn=conn)
            self._status_event(conn, task_id, None, "pending", "created")
        return self.get(task_id)

    def get(self, task_id: str) -> dict[str, Any]:
        _check_uuid(task_id)
        with self._conn() as conn:
            row = conn.cursor(row_factory=dict_row).execute(
                f"{_SELECT} WHERE t.id = %s", (task_id,)).fetchone()
        if row is None:
            raise TaskNotFound(task_id)
        return _jsonable(row)

    def list(self, status: str | None = None, limit: int = 50, offset: int = 0) -> tuple[list[dict], int]:
        if status is not None and status not in states.TRANSITIONS:
            raise InvalidTask(f"Unknown status {status!r}; one of {', '.join(states.TRANSITIONS)}.")
        where, args = ("WHERE t.status = %s", [status]) if status else ("", [])
        with self._conn() as conn:
            cur = conn.cursor(row_factory=dict_row)
            total = cur.execute(f"SELECT count(*) AS n FROM tasks t {where}", args).fetchone()["n"]
            rows = cur.execute(
                f"{_SELECT} {where} ORDER BY t.created_at DESC, t.id LIMIT %s OFFSET %s",
                [*args, limit, offset]).fetchall()
        return [_jsonable(r) for r in rows], total

    def transition(self, task_id: str, wanted: str, reason: str = "", **fields: Any) -> dict[str, Any]:
        """Move a task to `wanted` if the machine allows it from its current status; set extra columns."""
        _check_uuid(task_id)
        sets, args = ["status = %s"], [wanted]
        if wanted == "processing":
            sets.append("started_at = coalesce(started_at, now())")
        if wanted in states.TERMINAL:
            sets.append("finished_at = now()")
        for column, value in fields.items():
            sets.append(f"{_column(column)} = %s")
            args.append(Jsonb(value) if column == "result" else value)
        with self._conn() as conn, conn.transaction():
            row = conn.execute("SELECT status FROM tasks WHERE id = %s FOR UPDATE", (task_id,)).fetchone()
            if row is None:
                raise TaskNotFound(task_id)
            states.check(task_id, row[0], wanted)
            conn.execute(f"UPDATE tasks SET {', '.join(sets)} WHERE id = %s", [*args, task_id])
            self._status_event(conn, task_id, row[0], wanted, reason)
            task = conn.cursor(row_factory=dict_row).execute(f"{_SELECT} WHERE t.id = %s", (task_id,)).fetchone()
        return _jsonable(task)

    def update(self, task_id: str, **fields: Any) -> dict[str, Any]:
        """Set non-status columns (priority, classification) without a transition."""
        if not fields:
            return self.get(task_id)
        sets = [f"{_column(c)} = %s" for c in fields]
        args = [Jsonb(v) if c == "result" else v for c, v in fields.items()]
        with self._conn() as conn:
            cur = conn.execute(f"UPDATE tasks SET {', '.join(sets)} WHERE id = %s", [*args, _check_uuid(task_id)])
            if cur.rowcount == 0:
                raise TaskNotFound(task_id)
        return self.get(task_id)

    def delete(self, task_id: str) -> None:
        task = self.get(task_id)
        if task["status"] not in states.TERMINAL and task["status"] != "pending":
            raise states.IllegalTransition(task_id, task["status"], "deleted (cancel it first)")
        with self._conn() as conn:
            conn.execute("DELETE FROM tasks WHERE id = %s", (task_id,))

    def events(self, task_id: str, after_seq: int = 0, limit: int = 10_000) -> list[dict[str, Any]]:
        _check_uuid(task_id)
        with self._conn() as conn:
            rows = conn.cursor(row_factory=dict_row).execute(
                f"SELECT {', '.join(events.READ_COLUMNS)} FROM events WHERE task_id = %s AND seq > %s ORDER BY seq LIMIT %s", (task_id, after_seq, limit)).fetchall()
        return [_jsonable(r) for r in rows]

    def stale(self) -> list[dict[str, Any]]:
        """Tasks a previous run left unfinished (for recovery at start-up)."""
        with self._conn() as conn:
            rows = conn.cursor(row_factory=dict_row).execute(
                f"{_SELECT} WHERE t.status IN ('pending', 'queued', 'processing') "
                "ORDER BY t.priority DESC, t.created_at").fetchall()
        return [_jsonable(r) for r in rows]

    @staticmethod
    def _status_event(conn, task_id: str, old: str | None, new: str, reason: str) -> None:
        """In the status change's own transaction: a status row never exists without its event."""
        writer.insert(conn, events.Event(
            kind=events.Kind.STATUS, task_id=task_id, span_id=telemetry.new_span_id(), agent="workbench",
            payload={"from": old, "to": new, "reason": reason}))


_UPDATABLE = {"priority", "kind", "language", "complexity", "summary", "result", "error", "attempts", "model", "title"}


def _column(name: str) -> str:
    if name not in _UPDATABLE:
        raise InvalidTask(f"Field {name!r} cannot be changed; changeable: {', '.join(sorted(_UPDATABLE))}.")
    return name


def _check_uuid(task_id: str) -> str:
    try:
        return str(uuid.UUID(str(task_id)))
    except ValueError:
        raise TaskNotFound(task_id) from None


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if isinstance(value, uuid.UUID):
            value = str(value)
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        out[key] = value
    return out

