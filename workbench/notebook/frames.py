"""Tasks, events and one task's spans as pandas DataFrames, for notebooks:

    import workbench
    workbench.tasks(status="failed", model="local:qwen2.5-coder-0.5b", since="1d", limit=50)
    workbench.events(task_id=tid, kind="llm_call", since="2h")
    workbench.trace(tid)          # one row per span/event: depth, parent, start, duration, kind, name

They read Postgres, the system of record, through the store's pool (the analytics snapshot lags by a sync):
what a notebook just ran is there at once. Tokens and cost of a task are summed over its llm_call events
only (workbench.traces explains why). Bad arguments raise a WorkbenchError that says what to pass.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import pandas as pd
from psycopg.rows import dict_row

from workbench import events as event_schema
from workbench import traces
from workbench.errors import WorkbenchError
from workbench.tasks.service import TaskNotFound
from workbench.tasks.states import TRANSITIONS

MAX_LIMIT = 100_000

TASK_COLUMNS = ["id", "title", "status", "mode", "model", "kind", "priority", "llm_calls", "tokens_in", "tokens_out",
                "cost_usd", "duration_s", "error", "created_at", "started_at", "finished_at"]
_TASKS = """
SELECT t.id::text AS id, t.title, t.status, coalesce(r.mode, 'agents') AS mode, t.model, t.kind, t.priority,
       coalesce(e.calls, 0) AS llm_calls, coalesce(e.tokens_in, 0) AS tokens_in,
       coalesce(e.tokens_out, 0) AS tokens_out, e.cost_usd,
       date_part('epoch', t.finished_at - t.started_at) AS duration_s, t.error,
       t.created_at, t.started_at, t.finished_at
FROM tasks t LEFT JOIN task_runs r ON r.task_id = t.id
LEFT JOIN LATERAL (
    SELECT count(*) AS calls, sum(tokens_in) AS tokens_in, sum(tokens_out) AS tokens_out, sum(cost_usd) AS cost_usd
    FROM events WHERE task_id = t.id AND kind = 'llm_call') e ON true
WHERE (%(status)s::text IS NULL OR t.status = %(status)s)
  AND (%(model)s::text IS NULL OR t.model = %(model)s)
  AND (%(since)s::timestamptz IS NULL OR t.created_at >= %(since)s)
ORDER BY t.created_at DESC, t.id LIMIT %(limit)s
"""
TRACE_COLUMNS = ["seq", "depth", "span_id", "parent_span_id", "kind", "name", "agent", "model", "start", "end",
                 "duration_ms", "tokens_in", "tokens_out", "cost_usd", "error"]


def _store(store):
    if store is not None:
        return store
    from workbench.store import open_store

    return open_store()


def _limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise WorkbenchError(f"limit must be a whole number from 1 to {MAX_LIMIT:,}, not {limit!r}.")
    return limit


_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hrs?|hours?|d|days?|w|weeks?)\s*$",
                   re.IGNORECASE)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}  # by the unit's first letter


def since_time(since: Any) -> dt.datetime | None:
    """A moment: a datetime, an ISO date/time string, or a span back from now ("90min", "2h", "7d", a timedelta)."""
    if since is None:
        return None
    now = dt.datetime.now(dt.timezone.utc)
    if isinstance(since, (dt.timedelta, pd.Timedelta)):
        return now - pd.Timedelta(since).to_pytimedelta()
    if isinstance(since, str) and (span := _SPAN.match(since)):
        return now - dt.timedelta(seconds=float(span[1]) * _UNIT_S[span[2][0].lower()])
    try:
        when = pd.Timestamp(since)
    except (ValueError, TypeError):
        when = pd.NaT
    if pd.isna(when):
        raise WorkbenchError(f"since={since!r} is not a time: pass a datetime, an ISO time such as "
                             f"'2026-11-30T12:00', or a span back from now such as '2h' or '7d'.")
    return (when.tz_localize("UTC") if when.tzinfo is None else when).to_pydatetime()


def _text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise WorkbenchError(f"{name} must be a non-empty string or None, not {value!r}.")
    return value


def _task_id(value: Any) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise TaskNotFound(str(value)) from None


def _times(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    for col in columns:
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def tasks(status: str | None = None, model: str | None = None, since: Any = None, limit: int = 100,
          store=None) -> pd.DataFrame:
    """Tasks, newest first, with their model calls' tokens and cost and their run time (duration_s)."""
    status = _text("status", status)
    if status is not None and status not in TRANSITIONS:
        raise WorkbenchError(f"Unknown status {status!r}: use one of {', '.join(TRANSITIONS)}.")
    params = {"status": status, "model": _text("model", model), "since": since_time(since), "limit": _limit(limit)}
    with _store(store).connection() as conn:
        rows = conn.cursor(row_factory=dict_row).execute(_TASKS, params).fetchall()
    frame = pd.DataFrame(rows, columns=TASK_COLUMNS)
    return _times(frame, ["created_at", "started_at", "finished_at"])


def events(task_id: str | None = None, kind: str | None = None, limit: int = 10_000, since: Any = None,
           store=None) -> pd.DataFrame:
    """The newest `limit` events (of one task, of one kind, since a moment), oldest first; payload stays a
    dict per row."""
    clauses, args = [], []
    if task_id is not None:
        clauses.append("task_id = %s")
        args.append(_task_id(task_id))
    if _text("kind", kind) is not None:
        clauses.append("kind = %s")
        args.append(kind)
    if (moment := since_time(since)) is not None:
        clauses.append("ts >= %s")
        args.append(moment)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    columns = list(event_schema.READ_COLUMNS)
    sql = (f"SELECT * FROM (SELECT {', '.join(columns)} FROM events {where} ORDER BY seq DESC LIMIT %s) newest "
           "ORDER BY seq")
    with _store(store).connection() as conn:
        rows = conn.cursor(row_factory=dict_row).execute(sql, [*args, _limit(limit)]).fetchall()
    frame = pd.DataFrame(rows, columns=columns)
    frame["task_id"] = frame["task_id"].map(lambda v: None if v is None else str(v))
    return _times(frame, ["ts"])


def _name(event: dict[str, Any]) -> str:
    """What the span is, in a few words: its agent or model, and the detail traces shows for its kind."""
    payload, label = event.get("payload"), traces.LABELS.get(event["kind"])
    detail = label(payload) if label is not None and isinstance(payload, dict) else None
    parts = [event.get("agent"), event.get("model"), detail]
    return " · ".join(str(p) for p in parts if p) or event["kind"]


def trace(task_id: str, store=None) -> pd.DataFrame:
    """One task's spans and events in tree order (a parent before its children): depth, parent_span_id,
    start and end (UTC), duration, kind and name, tokens and cost. Unknown id: TaskNotFound."""
    tree = traces.build_tree(traces.load(str(task_id), _store(store)))
    rows = []

    def walk(node: traces.Node, depth: int) -> None:
        e = node.event
        rows.append({"seq": e.get("seq"), "depth": depth, "span_id": e.get("span_id"),
                     "parent_span_id": e.get("parent_span_id"), "kind": e["kind"], "name": _name(e),
                     "agent": e.get("agent"), "model": e.get("model"), "start": node.start, "end": node.end,
                     "duration_ms": node.duration_ms, "tokens_in": e.get("tokens_in"),
                     "tokens_out": e.get("tokens_out"), "cost_usd": e.get("cost_usd"), "error": e.get("error")})
        for child in node.children:
            walk(child, depth + 1)

    for root in tree:
        walk(root, 0)
    frame = pd.DataFrame(rows, columns=TRACE_COLUMNS)
    for col in ("start", "end"):
        frame[col] = pd.to_datetime(frame[col], unit="s", utc=True)
    return frame
