"""Tasks in Postgres: create, read, list, change status (atomically, with a `status` event), cancel, delete.

Status changes update the row and append their `status` event in ONE transaction, so a stream that
follows the events never sees a status the table does not have, nor misses one.

Each write is one round trip and one commit: a status change is a single statement (lock, check, update,
event, the row back), `create` one pipelined transaction. `transition_on(conn, ...)` runs the same
statement inside a caller's transaction (the runner's submit, the worker writer's final commit). Every
statement that changes a status takes the events advisory lock before the row lock, the order the
event writer's transactions use too (COPY first), so the two can never wait for each other.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from workbench import events, telemetry
from workbench.errors import WorkbenchError
from workbench.ids import task_id_or_none
from workbench.store import migrations, writer
from workbench.tasks import states
from workbench.tasks.plans import PlanStore
from workbench.tasks.records import InvalidTask, NewTask

TASK_COLUMNS = ("id, title, prompt, kind, language, complexity, summary, status, priority, model, budget_usd, "
                "parent_id, result, error, attempts, created_at, started_at, finished_at, updated_at")
# With the run settings and plan (task_runs); tasks created before that table existed read as mode agents.
_SELECT = ("SELECT " + ", ".join(f"t.{c.strip()}" for c in TASK_COLUMNS.split(",")) +
           ", coalesce(r.mode, 'agents') AS mode, coalesce(r.approve_plan, false) AS approve_plan, r.plan, "
           "coalesce(r.plan_state, 'none') AS plan_state, coalesce(r.plan_version, 0) AS plan_version, "
           "r.memory, r.memory_owner "
           "FROM tasks t LEFT JOIN task_runs r ON r.task_id = t.id")
_COLUMNS = tuple(c.strip() for c in TASK_COLUMNS.split(","))
_UNREAD = object()
_RUN_DEFAULTS = {"plan": None, "plan_state": "none", "plan_version": 0}  # a new task's task_runs row


class TaskNotFound(WorkbenchError):
    http_status = 404

    def __init__(self, task_id: str):
        super().__init__(f"No task {task_id}. List tasks with `workbench tasks list` or GET /api/v1/tasks.")


def check_model(new: NewTask) -> None:
    """The request's model must be one this process can run, and priced where its provider lists prices:
    UnknownModelError (422) names the available ones and how to add one."""
    if new.model is not None:
        from workbench import providers
        from workbench.providers.priced_names import check_priced

        providers.get_model(new.model)
        check_priced(providers.resolve(new.model))


def memory_owner(new: NewTask) -> str:
    """Whose memory the new task uses: the authenticated caller's (`NewTask.owned_by`), else the setting's.
    Fixed at creation, so a retry or a resume never reads another owner's memory."""
    if new.owner is not None:
        return new.owner
    from workbench.config import get_settings

    return get_settings().memory_owner


def _title(prompt: str) -> str:
    line = prompt.strip().splitlines()[0]
    return line[:80] + ("…" if len(line) > 80 else "")


class TaskService:
    # Test hook: called with "status_written" after a status change's statement ran, before its commit.
    failpoint: Callable[[str], None] | None = None

    def __init__(self, store, connect_timeout: float | None = None):
        self.store = store
        self.connect_timeout = connect_timeout  # seconds to wait for a pooled connection; None: the pool's own

    def connection(self):
        """A pooled connection (PoolTimeout after `connect_timeout` when Postgres does not give one)."""
        return self.store.pool.connection(timeout=self.connect_timeout)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """A pooled connection in pipeline mode and one transaction: statements go out without waiting,
        and everything up to the commit is one round trip unless a result is read in between."""
        with self.connection() as conn, conn.pipeline(), conn.transaction():
            yield conn

    def create(self, new: NewTask) -> dict[str, Any]:
        """The task row, its run row and its `pending` event: one transaction, one round trip."""
        check_model(new)
        with self.transaction() as conn:
            created = self.create_on(conn, new)
        return created()

    def create_on(self, conn, new: NewTask) -> Callable[[], dict[str, Any]]:
        """Insert the task, its run row and its `pending` event in the caller's transaction. Returns a
        function that gives the new row (calling it inside a pipeline waits for the statements' results).
        The caller has checked the model (`check_model`); the request checked itself when it was made."""
        task_id = str(uuid.uuid4())
        cur = conn.cursor(row_factory=dict_row).execute(
            "INSERT INTO tasks (id, title, prompt, status, priority, model, budget_usd, result) "
            f"VALUES (%s, %s, %s, 'pending', %s, %s, %s, %s) RETURNING {TASK_COLUMNS}",
            (task_id, new.title or _title(new.prompt), new.prompt, new.priority, new.model, new.budget_usd,
             Jsonb({"approve_plan": new.approve_plan}) if new.approve_plan else None),
        )
        owner = memory_owner(new)
        PlanStore(self.store).create(task_id, mode=new.mode, approve_plan=new.approve_plan, memory=new.memory,
                                     memory_owner=owner, conn=conn)
        self._status_event(conn, task_id, None, "pending", "created")
        return lambda: _jsonable({**cur.fetchone(), "mode": new.mode, "approve_plan": new.approve_plan,
                                  "memory": new.memory, "memory_owner": owner, **_RUN_DEFAULTS})

    def get(self, task_id: str) -> dict[str, Any]:
        _check_uuid(task_id)
        with self.connection() as conn:
            row = conn.cursor(row_factory=dict_row).execute(
                f"{_SELECT} WHERE t.id = %s", (task_id,)).fetchone()
        if row is None:
            raise TaskNotFound(task_id)
        return _jsonable(row)

    def list(self, status: str | None = None, limit: int = 50, offset: int = 0) -> tuple[list[dict], int]:
        if status is not None and status not in states.TRANSITIONS:
            raise InvalidTask(f"Unknown status {status!r}; one of {', '.join(states.TRANSITIONS)}.")
        where, args = ("WHERE t.status = %s", [status]) if status else ("", [])
        with self.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            total = cur.execute(f"SELECT count(*) AS n FROM tasks t {where}", args).fetchone()["n"]
            rows = cur.execute(
                f"{_SELECT} {where} ORDER BY t.created_at DESC, t.id LIMIT %s OFFSET %s",
                [*args, limit, offset]).fetchall()
        return [_jsonable(r) for r in rows], total

    def transition(self, task_id: str, wanted: str, reason: str = "", **fields: Any) -> dict[str, Any]:
        """Move a task to `wanted` if the machine allows it from its current status; set extra columns.
        One statement, one commit: TaskNotFound or IllegalTransition (nothing written) otherwise."""
        row: Any = _UNREAD
        with self.transaction() as conn:
            cur = self._transition(conn, task_id, wanted, reason, **fields)
            if self.failpoint:
                row = cur.fetchone()  # waits for the statement: what the hook interrupts is the commit
                self.failpoint("status_written")
        if row is _UNREAD:
            row = cur.fetchone()
        if row is None:
            with self.connection() as conn:
                self._refusal(conn, task_id, wanted)
        return _jsonable(row)

    def transition_on(self, conn, task_id: str, wanted: str, reason: str = "", *, sources: tuple[str, ...] | None = None,
                      started: float | None = None, **fields: Any) -> dict[str, Any] | None:
        """The status change as one statement in the caller's transaction: the row after it, or None when
        the task is missing or its status is not one `wanted` may follow (or not in `sources`, if given).

        `started`: when processing began (a Unix time; default now), for started_at and the event's time.
        """
        row = self._transition(conn, task_id, wanted, reason, sources=sources, started=started, **fields).fetchone()
        return None if row is None else _jsonable(row)

    def _transition(self, conn, task_id: str, wanted: str, reason: str = "", *,
                    sources: tuple[str, ...] | None = None, started: float | None = None, **fields: Any):
        _check_uuid(task_id)
        allowed = [s for s in states.sources(wanted) if sources is None or s in sources]
        names = tuple(_column(c) for c in fields)
        values = {f"f_{c}": Jsonb(v) if c == "result" else v for c, v in fields.items()}
        event = writer.params(events.Event(
            kind=events.Kind.STATUS, task_id=task_id, span_id=telemetry.new_span_id(), agent="workbench",
            ts=started if wanted == "processing" else None, payload={"from": None, "to": wanted, "reason": reason}))
        return conn.cursor(row_factory=dict_row).execute(_transition_sql(wanted, names), {
            "id": task_id, "to": wanted, "sources": allowed, "started": event[1] if started else None,
            **values, **{f"e_{c}": v for c, v in zip(events.COLUMNS, event)}})

    @staticmethod
    def _refusal(conn, task_id: str, wanted: str) -> None:
        """Why a status change found nothing to change: raise TaskNotFound or IllegalTransition."""
        row = conn.execute("SELECT status FROM tasks WHERE id = %s", (task_id,)).fetchone()
        if row is None:
            raise TaskNotFound(task_id)
        states.check(task_id, row[0], wanted)
        raise states.IllegalTransition(task_id, row[0], wanted)  # allowed in general, not from these sources

    def get_on(self, conn, task_id: str, *, wait_for_writers: bool = False) -> dict[str, Any]:
        """The task read on `conn`. `wait_for_writers`: first wait (a shared lock, no write, no commit to
        flush) for every transaction writing events to commit, e.g. the submit that queued this task."""
        _check_uuid(task_id)
        if wait_for_writers:
            conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (migrations.EVENTS_LOCK_KEY,))
        row = conn.cursor(row_factory=dict_row).execute(f"{_SELECT} WHERE t.id = %s", (task_id,)).fetchone()
        if row is None:
            raise TaskNotFound(task_id)
        return _jsonable(row)

    def update(self, task_id: str, **fields: Any) -> dict[str, Any]:
        """Set non-status columns (priority, classification) without a transition."""
        if not fields:
            return self.get(task_id)
        sets = [f"{_column(c)} = %s" for c in fields]
        args = [Jsonb(v) if c == "result" else v for c, v in fields.items()]
        with self.connection() as conn:
            cur = conn.execute(f"UPDATE tasks SET {', '.join(sets)} WHERE id = %s", [*args, _check_uuid(task_id)])
            if cur.rowcount == 0:
                raise TaskNotFound(task_id)
        return self.get(task_id)

    def delete(self, task_id: str) -> None:
        task = self.get(task_id)
        if task["status"] not in states.TERMINAL and task["status"] != "pending":
            raise states.IllegalTransition(task_id, task["status"], "deleted (cancel it first)")
        with self.connection() as conn:
            conn.execute("DELETE FROM tasks WHERE id = %s", (task_id,))

    def events(self, task_id: str, after_seq: int = 0, limit: int = 10_000) -> list[dict[str, Any]]:
        _check_uuid(task_id)
        with self.connection() as conn:
            rows = conn.cursor(row_factory=dict_row).execute(
                f"SELECT {', '.join(events.READ_COLUMNS)} FROM events WHERE task_id = %s AND seq > %s ORDER BY seq LIMIT %s", (task_id, after_seq, limit)).fetchall()
        return [_jsonable(r) for r in rows]

    def stale(self) -> list[dict[str, Any]]:
        """Tasks a previous run left unfinished (for recovery at start-up)."""
        with self.connection() as conn:
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


@functools.lru_cache(maxsize=64)
def _transition_sql(wanted: str, fields: tuple[str, ...]) -> str:
    """Lock (events, then the row), check, update, append the event, return the row: one statement.

    The event's "from" is filled in from the locked row. The advisory lock comes first because `lock`
    is materialised before the join that `FOR UPDATE` locks the row through.
    """
    sets = ["status = %(to)s"]
    if wanted == "processing":
        sets.append("started_at = coalesce(started_at, %(started)s, now())")
    if wanted in states.TERMINAL:
        sets.append("finished_at = now()")
    sets += [f"{c} = %(f_{c})s" for c in fields]
    values = ", ".join(
        f"jsonb_set(%(e_{c})s::jsonb, '{{from}}', to_jsonb(u.old_status))" if c == "payload" else f"%(e_{c})s::{t}"
        for c, t in zip(events.COLUMNS, events.PG_TYPES))
    return (
        f"WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock({migrations.EVENTS_LOCK_KEY})), "
        "old AS MATERIALIZED (SELECT t.id, t.status FROM tasks t, lock WHERE t.id = %(id)s FOR UPDATE OF t), "
        f"u AS (UPDATE tasks SET {', '.join(sets)} FROM old WHERE tasks.id = old.id "
        f"AND old.status = ANY(%(sources)s) RETURNING {', '.join(f'tasks.{c}' for c in _COLUMNS)}, "
        "old.status AS old_status), "
        f"e AS ({writer.insert_sql(f'SELECT {values} FROM u')}) "
        "SELECT " + ", ".join(f"u.{c}" for c in _COLUMNS) +
        ", coalesce(r.mode, 'agents') AS mode, coalesce(r.approve_plan, false) AS approve_plan, r.plan, "
        "coalesce(r.plan_state, 'none') AS plan_state, coalesce(r.plan_version, 0) AS plan_version, "
           "r.memory, r.memory_owner "
        "FROM u LEFT JOIN task_runs r ON r.task_id = u.id")


def _check_uuid(task_id: str) -> str:
    found = task_id_or_none(task_id)
    if found is None:
        raise TaskNotFound(task_id)
    return found


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if isinstance(value, uuid.UUID):
            value = str(value)
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        out[key] = value
    return out

