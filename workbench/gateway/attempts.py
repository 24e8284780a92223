"""The one hook every gateway wrapper reports through: one `llm_attempt` event per attempt (provider
calls, retries, failovers, skipped members, cache hits, refusals), tagged with who called and which
logical call it was.

    with attempts.caller(agent="director", api_key=key):   # who is calling (API key: fingerprint only)
        model.complete("hi")

Who is calling is the `call` part of the telemetry context (workbench.telemetry), so it travels with the
task, trace and span: an attempt lands under the llm_call span the LoggedModel opened around it, and
agent and task default to the telemetry context's. Attempts are events like any other: the store's
writer (or a test's MemorySink) receives them through telemetry.emit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

from workbench import telemetry
from workbench.events import COLUMNS, Event, Kind
from workbench.ids import task_id_or_none

STATS = {"recorded": 0}


def _new_call_id() -> str:
    """Unique across processes (Dask workers), so it names one logical call within a task's trace."""
    return f"call-{uuid.uuid4().hex[:16]}"
_ERROR_OUTCOMES = ("error", "refused", "breaker_open")  # where `error` is the event's error, not a note


def fingerprint(api_key: str) -> str:
    """Stable short id of an API key; the key itself never reaches a record or a log."""
    return "key-" + hashlib.sha256(api_key.encode()).hexdigest()[:12]


def current() -> Mapping[str, Any]:
    return telemetry.current().call


def who() -> Mapping[str, Any]:
    """The caller scope for budgets and rate limits; the agent from the telemetry context when not set."""
    ctx = telemetry.current()
    call = ctx.call
    if call.get("agent"):
        return call
    return {**call, "agent": ctx.agent}


def captured() -> telemetry.Context:
    """The current context with a call id, to carry into a stream that runs later (possibly elsewhere)."""
    ctx = telemetry.current()
    if "call_id" in ctx.call:
        return ctx
    return dataclasses.replace(ctx, call={**ctx.call, "call_id": _new_call_id()})


class _Scope:
    """Sets the context on enter, restores it on exit (a class: this runs several times per call)."""

    __slots__ = ("ctx", "token")

    def __init__(self, ctx: telemetry.Context | None):
        self.ctx, self.token = ctx, None

    def __enter__(self) -> Mapping[str, Any]:
        if self.ctx is None:  # nothing to add: keep the current context
            return telemetry.current().call
        self.token = telemetry.enter(self.ctx)
        return self.ctx.call

    def __exit__(self, *exc: object) -> None:
        if self.token is not None:
            telemetry.leave(self.token)


def scope(**fields: Any) -> _Scope:
    """Add fields to every record made inside; the outermost scope also opens a new call id."""
    ctx = telemetry.current()
    base = ctx.call
    add = {k: v for k, v in fields.items() if v is not None} if fields else None
    if not add and "call_id" in base:
        return _Scope(None)
    call = {**base, **add} if add else dict(base)
    if "call_id" not in call:
        call["call_id"] = _new_call_id()
    return _Scope(dataclasses.replace(ctx, call=call))


def caller(*, agent: str | None = None, api_key: str | None = None, task_id: str | None = None,
           key_name: str | None = None, **extra: Any) -> _Scope:
    """Who is calling: budgets and rate limits use agent and the key, records all of these. Use around a call
    (or a whole task). key_name: a stored key's name (the server's authenticated caller), which budgets key on;
    api_key: a raw key from code, known only by its fingerprint."""
    key = key_name or (fingerprint(api_key) if api_key else None)
    return scope(agent=agent, key=key, task_id=task_id, **extra)


def restored(ctx: telemetry.Context | None, **fields: Any) -> _Scope:
    """Re-enter a captured context (streams resume in whatever context their consumer runs)."""
    ctx = ctx or telemetry.current()
    return _Scope(dataclasses.replace(ctx, call={**ctx.call, **{k: v for k, v in fields.items() if v is not None}}))


def record(ctx: telemetry.Context | None = None, **fields: Any) -> Event:
    """One attempt, as an llm_attempt event. `ctx` is a captured context (streams); else the current one.
    The caller scope and anything that is not an event column go into the payload."""
    STATS["recorded"] += 1
    if ctx is None:
        return telemetry.emit(Kind.LLM_ATTEMPT, **_fields(telemetry.current(), fields))
    with telemetry.use(ctx):
        return telemetry.emit(Kind.LLM_ATTEMPT, **_fields(ctx, fields))


def _fields(ctx: telemetry.Context, fields: dict[str, Any]) -> dict[str, Any]:
    record = {**ctx.call, **fields}
    out = {k: v for k, v in record.items() if k in COLUMNS and k not in ("task_id", "error", "payload")}
    payload = {k: v for k, v in record.items() if k not in out}
    if record.get("outcome") in _ERROR_OUTCOMES and record.get("error"):
        out["error"] = payload.pop("error")  # elsewhere `error` is a note (why a member was skipped)
    task = record.get("task_id")
    if task_id_or_none(task) is not None:  # the column holds task UUIDs; an API caller's label stays in payload
        out["task_id"] = payload.pop("task_id")
    out["payload"] = payload
    return out



