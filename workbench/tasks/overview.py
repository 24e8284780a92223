"""What the dashboards follow live about tasks, read from Postgres (the analytics snapshot lags by a sync):
the task list's rows (queried by task_filter); the unfinished tasks with their latest event;
the newest events of all tasks. Each is one query, returned as typed rows.
"""

from __future__ import annotations

import datetime as dt

from psycopg.rows import dict_row
from pydantic import BaseModel

from workbench.tasks.states import Status

_ACTIVE = """
SELECT t.id::text AS id, t.title, t.status, coalesce(t.model, '(default)') AS model, t.created_at, t.started_at,
       le.kind AS last_event, le.agent AS last_agent, le.ts AS last_event_at
FROM tasks t LEFT JOIN LATERAL (SELECT kind, agent, ts FROM events WHERE task_id = t.id ORDER BY seq DESC LIMIT 1) le ON true
WHERE t.status IN ('pending', 'queued', 'processing', 'awaiting_approval')
ORDER BY t.priority DESC, t.created_at LIMIT %s
"""
_ACTIVITY = """
SELECT seq, ts, task_id::text AS task_id, kind, coalesce(agent, '') AS agent, coalesce(model, '') AS model,
       duration_ms, error FROM events WHERE kind <> 'status' ORDER BY seq DESC LIMIT %s
"""


class TaskLine(BaseModel):
    """A task in the dashboards' list: its row's headline and what its model calls used."""

    id: str
    title: str
    status: Status
    kind: str
    model: str
    priority: int
    created_at: dt.datetime
    duration_s: float | None
    tokens: int
    cost_usd: float | None


class TaskLines(BaseModel):
    items: list[TaskLine]  # newest first, at most the limit asked for
    total: int  # every task that matches


class ActiveTask(BaseModel):
    """An unfinished task and the latest thing that happened in it."""

    id: str
    title: str
    status: Status
    model: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    last_event: str | None
    last_agent: str | None
    last_event_at: dt.datetime | None


class Activity(BaseModel):
    """One event (not a status change) in the feed of what agents are doing."""

    seq: int
    ts: dt.datetime
    task_id: str | None
    kind: str
    agent: str
    model: str
    duration_ms: float | None
    error: str | None


def active(conn, limit: int) -> list[ActiveTask]:
    """Unfinished tasks, highest priority first, then oldest."""
    return [ActiveTask(**row) for row in conn.cursor(row_factory=dict_row).execute(_ACTIVE, (limit,)).fetchall()]


def activity(conn, limit: int) -> list[Activity]:
    """The newest events other than status changes, newest first."""
    return [Activity(**row) for row in conn.cursor(row_factory=dict_row).execute(_ACTIVITY, (limit,)).fetchall()]
