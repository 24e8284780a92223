"""Who is running: the current task, trace, span and agent, carried in contextvars so events nest.

    with task_context(task_id):                 # a task run: trace id = task id
        with span("agent_step", agent="coder") as step:
            ...                                 # events emitted here get parent_span_id = step.id
            step.set(tokens_in=12)              # fields for the event the span emits on exit

A span emits one event of its kind when it ends (duration_ms, and `error` if the body raised; the
exception is re-raised), unless created with emit=False. Context does not flow into threads started
inside a span (contextvars semantics): pass `current()` along and re-enter it with `use(**ctx)`.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

_task_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("workbench_task_id", default=None)
_trace_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("workbench_trace_id", default=None)
_span_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("workbench_span_id", default=None)
_agent: contextvars.ContextVar[str | None] = contextvars.ContextVar("workbench_agent", default=None)


def new_span_id() -> str:
    """16 hex characters, the OpenTelemetry span-id size."""
    return uuid.uuid4().hex[:16]


def new_trace_id() -> str:
    return str(uuid.uuid4())


def current() -> dict[str, str | None]:
    """The context fields an event picks up: task_id, trace_id, parent_span_id (the open span), agent."""
    return {
        "task_id": _task_id.get(),
        "trace_id": _trace_id.get(),
        "parent_span_id": _span_id.get(),
        "agent": _agent.get(),
    }


@contextlib.contextmanager
def use(task_id: str | None = None, trace_id: str | None = None, parent_span_id: str | None = None,
        agent: str | None = None) -> Iterator[None]:
    """Re-enter a context captured with `current()` (e.g. in a thread or a Dask task)."""
    tokens = [
        (_task_id, _task_id.set(str(task_id) if task_id else None)),
        (_trace_id, _trace_id.set(trace_id)),
        (_span_id, _span_id.set(parent_span_id)),
        (_agent, _agent.set(agent)),
    ]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


@contextlib.contextmanager
def task_context(task_id: str | uuid.UUID, agent: str | None = None) -> Iterator[str]:
    """Everything inside belongs to task `task_id`; the trace is the task (trace id = task id)."""
    tid = str(uuid.UUID(str(task_id)))  # refuse a malformed id here, not later in a failed batch
    with use(task_id=tid, trace_id=tid, parent_span_id=None, agent=agent):
        yield tid


@dataclass
class Span:
    kind: str
    id: str
    parent_id: str | None
    trace_id: str
    fields: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def set(self, **fields: Any) -> None:
        """Add or replace fields of the event this span emits when it ends (tokens, payload, model...)."""
        self.fields.update(fields)

    def __str__(self) -> str:
        return self.id


@contextlib.contextmanager
def span(kind: str, emit: bool = True, **fields: Any) -> Iterator[Span]:
    """Open a span: a new span id whose parent is the current span; nested events point at it.

    A span outside any trace starts a new trace. `agent=` also becomes the current agent inside.
    On exit (emit=True) one event of `kind` is emitted with duration_ms and, if the body raised, error.
    """
    from workbench.store import emit_event

    trace = _trace_id.get() or new_trace_id()
    s = Span(kind=kind, id=new_span_id(), parent_id=_span_id.get(), trace_id=trace, fields=dict(fields))
    tokens = [(_trace_id, _trace_id.set(trace)), (_span_id, _span_id.set(s.id))]
    if fields.get("agent"):
        tokens.append((_agent, _agent.set(fields["agent"])))
    error: str | None = None
    try:
        yield s
    except BaseException as exc:
        if not isinstance(exc, GeneratorExit):
            error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
        if emit:
            out = dict(s.fields)
            out.setdefault("duration_ms", (time.perf_counter() - s.started) * 1000)
            if error is not None and not out.get("error"):
                out["error"] = error
            emit_event(kind, span_id=s.id, parent_span_id=s.parent_id, trace_id=s.trace_id, **out)
