"""The one hook every gateway wrapper reports through: one record per attempt (provider calls, retries,
failovers, skipped members, cache hits, refusals), tagged with who called and which logical call it was.

    with attempts.scope(agent="director", task_id="t-1"):   # who is calling (API key: fingerprint only)
        model.complete("hi")
    attempts.recent()   # the last records, newest last (tests, /gateway/health)

Each record also goes to `workbench.store.emit_event("llm_attempt", **record)` when the store is
importable; the store batches writes off the hot path, so recording costs microseconds here.
"""

from __future__ import annotations

import collections
import contextvars
import hashlib
import itertools
import threading
import time
import types
import uuid
from collections.abc import Callable, Mapping
from typing import Any

RING_SIZE = 2000
_RING: collections.deque[dict[str, Any]] = collections.deque(maxlen=RING_SIZE)
# A read-only empty default: scopes always set a new dict, never mutate the current one.
_CTX: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("workbench_gateway_call",
                                                                         default=types.MappingProxyType({}))
_IDS = itertools.count(1)
_EMIT: list[Any] = []  # resolved once: [emit_event, current_store] (or Nones without a store)
_STORE_CONTEXT: list[Callable[[], dict] | None] = []
_LOCK = threading.Lock()
STATS = {"recorded": 0, "emitted": 0, "emit_failed": 0}


def fingerprint(api_key: str) -> str:
    """Stable short id of an API key; the key itself never reaches a record or a log."""
    return "key-" + hashlib.sha256(api_key.encode()).hexdigest()[:12]


def current() -> Mapping[str, Any]:
    return _CTX.get()


def who() -> Mapping[str, Any]:
    """The current context, with agent and task taken from the store's run context when not set here
    (an agent run sets them there with workbench.store.context.task_context / span)."""
    ctx = _CTX.get()
    if ctx.get("agent") and ctx.get("task_id"):
        return ctx
    if not _STORE_CONTEXT:
        try:
            from workbench.store.context import current as store_context
        except ImportError:
            store_context = None
        _STORE_CONTEXT.append(store_context)
    if _STORE_CONTEXT[0] is None:
        return ctx
    run = _STORE_CONTEXT[0]()
    return {**ctx, "agent": ctx.get("agent") or run.get("agent"), "task_id": ctx.get("task_id") or run.get("task_id")}


def captured() -> dict[str, Any]:
    """The current context with a call id, to carry into a stream that runs later (possibly elsewhere)."""
    ctx = _CTX.get()
    return ctx if "call_id" in ctx else {**ctx, "call_id": f"call-{next(_IDS)}"}


class _Scope:
    """Sets the context on enter, restores it on exit (a class: this runs several times per call)."""

    __slots__ = ("ctx", "token")

    def __init__(self, ctx: dict[str, Any] | None):
        self.ctx, self.token = ctx, None

    def __enter__(self) -> dict[str, Any]:
        if self.ctx is None:  # nothing to add: keep the current context
            return _CTX.get()
        self.token = _CTX.set(self.ctx)
        return self.ctx

    def __exit__(self, *exc: object) -> None:
        if self.token is not None:
            _CTX.reset(self.token)


def scope(**fields: Any) -> _Scope:
    """Add fields to every record made inside; the outermost scope also opens a new call id."""
    base = _CTX.get()
    add = {k: v for k, v in fields.items() if v is not None} if fields else None
    if not add and "call_id" in base:
        return _Scope(None)
    ctx = {**base, **add} if add else dict(base)
    if "call_id" not in ctx:
        ctx["call_id"] = f"call-{next(_IDS)}"
    return _Scope(ctx)


def caller(*, agent: str | None = None, api_key: str | None = None, task_id: str | None = None,
           **extra: Any) -> _Scope:
    """Who is calling: budgets, rate limits and records use these. Use around a call (or a whole task)."""
    return scope(agent=agent, key=fingerprint(api_key) if api_key else None, task_id=task_id, **extra)


def restored(ctx: dict[str, Any], **fields: Any) -> _Scope:
    """Re-enter a captured context (streams resume in whatever context their consumer runs)."""
    return _Scope({**ctx, **{k: v for k, v in fields.items() if v is not None}})


def record(ctx: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """One attempt. `ctx` is a captured context (streams); otherwise the current one is used."""
    event = {"ts": time.time(), **(ctx if ctx is not None else _CTX.get()), **fields}
    _RING.append(event)
    STATS["recorded"] += 1
    emit = _emitter()
    if emit is not None:
        try:
            ok = emit("llm_attempt", **as_event(event))
        except Exception:  # the record is in the ring; a failing store must never fail a model call
            ok = False
        STATS["emitted" if ok is not False else "emit_failed"] += 1
    return event


COLUMNS = ("ts", "agent", "model", "tokens_in", "tokens_out", "cost_usd", "duration_ms")  # the store's own columns


def as_event(record: dict[str, Any]) -> dict[str, Any]:
    """A record in the store's event shape: its columns, the rest (outcome, fault, attempt, ...) in payload.
    task_id is a column only when it is a UUID; the store fills task, trace and span from its own context."""
    fields = {k: record[k] for k in COLUMNS if record.get(k) is not None}
    payload = {k: v for k, v in record.items() if k not in fields}
    if record.get("outcome") in ("error", "refused", "breaker_open") and record.get("error"):
        fields["error"] = payload.pop("error")
    task = record.get("task_id")
    if task is not None and _is_uuid(task):
        fields["task_id"] = payload.pop("task_id")
    fields["payload"] = payload
    return fields


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def recent(n: int | None = None, **match: Any) -> list[dict[str, Any]]:
    """Newest last; `match` filters on equal fields, e.g. recent(call_id=...)."""
    items = [e for e in list(_RING) if all(e.get(k) == v for k, v in match.items())]
    return items[-n:] if n else items


def clear() -> None:
    """Forget records and re-resolve the store hook (tests)."""
    _RING.clear()
    with _LOCK:
        _EMIT.clear()
    for key in STATS:
        STATS[key] = 0


def _emitter() -> Callable[..., Any] | None:
    """emit_event while a store is open in this process, else None (checked per record: stores open late)."""
    if not _EMIT:
        with _LOCK:
            if not _EMIT:
                try:
                    from workbench.store import current_store, emit_event
                except ImportError:  # the store is optional: records stay in the ring buffer
                    current_store = emit_event = None
                _EMIT.extend([emit_event, current_store])
    emit, is_open = _EMIT
    if emit is None or (is_open is not None and is_open() is None):
        return None
    return emit
