"""The one place where agent code meets the event store and the gateway's caller context.

    with trace.span("subtask", agent="data", task_id=tid, subtask_id="s2") as sp:
        trace.emit("agent_step", agent="data", tokens_in=120, payload={...})   # a point event inside
        sp.set(model="local:...", tokens_in=120, payload={...})              # fields of the span's event
    trace.recent(kind="tool_call")        # newest last (tests, notebooks)

A span emits ONE event of its kind when it ends (span_id, parent_span_id, duration_ms, error if the body
raised); point events emitted inside get parent_span_id = that span. Every record is kept in an
in-process ring, and also sent to `workbench.store.emit_event` when the store is importable; inside a
span the store's context (`workbench.store.context.use`) is set to this span's ids, so events that other
layers emit (the gateway's LLM calls, sandbox runs) hang under the right agent in `workbench trace`.
The gateway's `attempts.caller(agent=, task_id=)` is entered too, for its per-agent budgets and records.
Nothing else in workbench.agents touches the store or the gateway's internals.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

RING_SIZE = 5000
# Columns of the events table; any other field goes into the payload (the store refuses unknown fields).
STORE_FIELDS = frozenset({"task_id", "trace_id", "span_id", "parent_span_id", "agent", "model", "tokens_in",
                          "tokens_out", "cost_usd", "duration_ms", "error", "payload", "ts", "event_id"})
_RING: collections.deque[dict[str, Any]] = collections.deque(maxlen=RING_SIZE)
# The default is never mutated: span() always sets a new dict.
_IDS: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("workbench_agent_span", default={})  # noqa: B039
_HOOKS: dict[str, Any] = {}  # resolved once per process; each may be None until its component lands
_LOCK = threading.Lock()


def _hooks() -> dict[str, Any]:
    if not _HOOKS:
        with _LOCK:
            if not _HOOKS:
                _HOOKS.update(
                    emit=_optional("workbench.store", "emit_event"),
                    use=_optional("workbench.store.context", "use"),
                    store_current=_optional("workbench.store.context", "current"),
                    caller=_optional("workbench.gateway.attempts", "caller"),
                )
    return _HOOKS


def _optional(module: str, name: str) -> Callable[..., Any] | None:
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def new_span_id() -> str:
    return uuid.uuid4().hex[:16]  # the OpenTelemetry span-id size, as the store uses


def current() -> dict[str, Any]:
    """The ids of the innermost span: task_id, trace_id, span_id, parent_span_id, agent."""
    return dict(_IDS.get())


@dataclass
class Span:
    kind: str
    ids: dict[str, Any]
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.ids["span_id"]

    def set(self, **fields: Any) -> None:
        """Fields of the event this span emits when it ends (model, tokens, payload, ...)."""
        self.fields.update(fields)


@contextlib.contextmanager
def span(kind: str, **fields: Any) -> Iterator[Span]:
    """Open a span (task, plan, subtask, agent). `task_id`/`agent` given here are inherited inside."""
    parent = _IDS.get()
    hooks = _hooks()
    if not parent:
        parent = _store_parent(hooks)
    task_id = fields.pop("task_id", None) or parent.get("task_id") or _store_task(hooks) or str(uuid.uuid4())
    ids = {"task_id": str(task_id), "trace_id": str(task_id), "parent_span_id": parent.get("span_id"),
           "span_id": new_span_id(), "agent": fields.get("agent") or parent.get("agent")}
    handle = Span(kind, ids, dict(fields))
    token = _IDS.set(ids)
    began = time.perf_counter()
    error: str | None = None
    try:
        with contextlib.ExitStack() as stack:
            if hooks["use"] is not None:
                stack.enter_context(hooks["use"](task_id=ids["task_id"], trace_id=ids["trace_id"],
                                                 parent_span_id=ids["span_id"], agent=ids["agent"]))
            if hooks["caller"] is not None:
                stack.enter_context(hooks["caller"](agent=ids["agent"], task_id=ids["task_id"]))
            yield handle
    except BaseException as exc:
        if not isinstance(exc, GeneratorExit):
            error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        with contextlib.suppress(ValueError):  # a generator closed in another context cannot reset
            _IDS.reset(token)
        out = {"duration_ms": (time.perf_counter() - began) * 1000, **handle.fields}
        if error is not None and not out.get("error"):
            out["error"] = error
        _record(kind, {**ids, **out})


def _store_parent(hooks: dict[str, Any]) -> dict[str, Any]:
    """The store's open span, when agent code starts inside one (a Dask task the runner or the Director
    opened), so the agent's spans hang under it in `workbench trace` instead of starting at the root."""
    if hooks["store_current"] is None:
        return {}
    ctx = hooks["store_current"]()
    if not ctx["task_id"]:
        return {}
    return {"task_id": ctx["task_id"], "span_id": ctx["parent_span_id"], "agent": ctx["agent"]}


def _store_task(hooks: dict[str, Any]) -> str | None:
    """The task the caller entered with the store's task_context (e.g. at the top of a Dask task)."""
    return hooks["store_current"]()["task_id"] if hooks["store_current"] is not None else None


def emit(kind: str, **fields: Any) -> dict[str, Any]:
    """Record one point event inside the current span. Never raises: logging must not break a run."""
    ids = _IDS.get()
    context = {"task_id": ids.get("task_id"), "trace_id": ids.get("trace_id"),
               "parent_span_id": ids.get("span_id"), "agent": ids.get("agent")}
    return _record(kind, {**context, **{k: v for k, v in fields.items() if v is not None or k == "error"}})


def _record(kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    record = {"kind": kind, "ts": time.time(), **fields}
    _RING.append(record)
    emit_event = _hooks()["emit"]
    if emit_event is not None:
        try:
            emit_event(kind, ts=record["ts"], **store_fields(fields))
        except Exception:  # noqa: BLE001 - the record is in the ring; a failing store must not fail an agent
            record["store_error"] = True
    return record


def store_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Event columns as they are; every other field moved into the payload."""
    extra = {k: v for k, v in fields.items() if k not in STORE_FIELDS}
    out = {k: v for k, v in fields.items() if k in STORE_FIELDS and v is not None}
    if extra:
        out["payload"] = {**extra, **(fields.get("payload") or {})}
    return out


def recent(n: int | None = None, **match: Any) -> list[dict[str, Any]]:
    """Records, newest last; `match` keeps records whose fields (or payload fields) are equal."""

    def matches(rec: dict[str, Any]) -> bool:
        payload = rec.get("payload") or {}
        return all(rec.get(k, payload.get(k)) == v for k, v in match.items())

    items = [r for r in list(_RING) if matches(r)]
    return items[-n:] if n else items


def clear() -> None:
    """Forget records and re-resolve the hooks (tests)."""
    _RING.clear()
    with _LOCK:
        _HOOKS.clear()
