"""Who is running and what it records: one context, spans, and the one way to emit an event.

    with telemetry.task(task_id):                        # trace id = task id
        with telemetry.span("subtask", agent="data") as sp:
            telemetry.emit("tool_call", duration_ms=3.1, payload={"tool": "sql"})   # parent: sp
            sp.set(model="local:...", tokens_in=120)     # fields of the event the span writes when it ends
    ctx = telemetry.capture()                            # picklable: hand it to a Dask task or a thread ...
    with telemetry.use(ctx): ...                         # ... and re-enter it there

The context (one ContextVar holding an immutable `Context`) carries the task, trace, open span and agent,
plus `call`: the gateway's caller scope (who calls, with which key, which logical call and attempt;
workbench.gateway.attempts reads and sets it). Contextvars do not flow into threads or other processes
by themselves: capture and `use` (or `wrap` a function).

A span writes ONE event of its kind when it ends (span_id, parent_span_id, duration_ms, and the error if
its body raised; the exception propagates). `emit()` fills task/trace/parent span/agent from the context
and hands the `workbench.events.Event` to every sink registered in this process: the store registers its
batched writer when it is opened; tests register `workbench.testing.MemorySink`. Without a sink an event
goes nowhere. A failing sink never fails the caller (the failure is counted in STATS and logged), except
when the store says the event could not be kept anywhere (EventNotKept): the emitter gets that error.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from workbench import events
from workbench.errors import EventNotKept
from workbench.events import Event

log = logging.getLogger(__name__)
Sink = Callable[[Event], Any]
STATS = {"emitted": 0, "sink_failed": 0}


@dataclass(frozen=True, slots=True)
class Context:
    task_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None  # the open span: what an event emitted here hangs under
    agent: str | None = None
    call: Mapping[str, Any] = field(default_factory=dict)  # the gateway's caller scope; never mutated


_CTX: contextvars.ContextVar[Context] = contextvars.ContextVar("workbench_telemetry", default=Context())  # noqa: B039
_SINKS: list[tuple[int, Sink]] = []  # (pid, sink): a forked child does not inherit its parent's sinks
_LOCK = threading.Lock()


def new_span_id() -> str:
    """16 hex characters, the OpenTelemetry span-id size."""
    return uuid.uuid4().hex[:16]


def current() -> Context:
    return _CTX.get()


capture = current  # the Context is immutable: capturing is reading it


@contextlib.contextmanager
def use(ctx: Context) -> Iterator[Context]:
    """Re-enter a captured context (in a thread, a Dask task, a stream consumed later)."""
    token = enter(ctx)
    try:
        yield ctx
    finally:
        leave(token)


def enter(ctx: Context) -> contextvars.Token:
    """`use` without a with-block, for hot paths that keep the token themselves; undo with leave()."""
    return _CTX.set(ctx)


def leave(token: contextvars.Token) -> None:
    with contextlib.suppress(ValueError):  # a generator closed in another context cannot reset
        _CTX.reset(token)


def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` running in the caller's current context, wherever it is called (thread pools)."""
    ctx = _CTX.get()

    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        with use(ctx):
            return fn(*args, **kwargs)

    return inner


def task(task_id: str | uuid.UUID, agent: str | None = None) -> contextlib.AbstractContextManager[Context]:
    """Everything inside belongs to task `task_id`, a root of its trace (trace id = task id)."""
    try:
        tid = str(uuid.UUID(str(task_id)))
    except ValueError:  # refuse it here, not later in a failed batch
        raise ValueError(f"Task id {task_id!r} is not a UUID: pass the id workbench gave the task.") from None
    return use(Context(task_id=tid, trace_id=tid, agent=agent, call=_CTX.get().call))


# --- spans ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Span:
    kind: str
    id: str
    parent_id: str | None
    context: Context  # the context inside the span
    fields: dict[str, Any]
    started: float = field(default_factory=time.perf_counter)

    @property
    def task_id(self) -> str | None:
        return self.context.task_id

    def set(self, **fields: Any) -> None:
        """Add or replace fields of the event this span writes when it ends (model, tokens, payload...)."""
        self.fields.update(fields)

    def end(self, error: BaseException | None = None) -> Event:
        """Write the span's event (span() calls this; a span kept open across calls ends it by hand)."""
        out = dict(self.fields)
        out.setdefault("duration_ms", (time.perf_counter() - self.started) * 1000)
        if error is not None and not isinstance(error, GeneratorExit) and not out.get("error"):
            out["error"] = f"{type(error).__name__}: {error}"
        ctx = self.context
        return emit(self.kind, span_id=self.id, parent_span_id=self.parent_id, task_id=ctx.task_id,
                    trace_id=ctx.trace_id, **{"agent": ctx.agent, **out})

    def __str__(self) -> str:
        return self.id


def start(kind: str, *, task_id: str | None = None, agent: str | None = None, **fields: Any) -> Span:
    """A span that is not entered yet: its context is `span.context` (span() is the usual way)."""
    parent = _CTX.get()
    tid = str(task_id) if task_id else parent.task_id
    # trace id = task id; a span outside any task and trace starts a trace of its own
    trace = tid if task_id else parent.trace_id or tid or str(uuid.uuid4())
    sid = new_span_id()
    inner = Context(task_id=tid, trace_id=trace, span_id=sid, agent=agent or parent.agent, call=parent.call)
    if agent:
        fields["agent"] = agent
    return Span(kind, sid, parent.span_id, inner, fields)


@contextlib.contextmanager
def span(kind: str, *, task_id: str | None = None, agent: str | None = None, emit: bool = True,
         **fields: Any) -> Iterator[Span]:
    """Open a span under the current one. `task_id`/`agent` given here hold inside it; other fields
    go to its event (columns by name, the rest into the payload)."""
    s = start(kind, task_id=task_id, agent=agent, **fields)
    error: BaseException | None = None
    try:
        with use(s.context):
            yield s
    except BaseException as exc:
        error = exc
        raise
    finally:
        if emit:
            _end(s, error)


def _end(s: Span, error: BaseException | None) -> None:
    """End a span; if its event cannot be kept while the body's own error propagates, that error wins and
    carries the note (raising here would replace it)."""
    if error is None:
        s.end()
        return
    try:
        s.end(error)
    except EventNotKept as lost:
        log.error("%s span event not recorded: %s", s.kind, lost)
        error.add_note(f"its {s.kind} span event was not recorded: {lost}")


# --- events -----------------------------------------------------------------------------------------


def emit(kind: str, **fields: Any) -> Event:
    """Record one event inside the current span; returns it. Fields that are not columns go into the
    payload. task/trace/agent left out (or None) come from the context, and so does parent_span_id
    unless given (None: a root)."""
    ctx = _CTX.get()
    if fields.get("task_id") is None:
        fields["task_id"] = ctx.task_id
    if fields.get("trace_id") is None:
        fields["trace_id"] = ctx.trace_id or fields["task_id"]
    if fields.get("agent") is None:
        fields["agent"] = ctx.agent
    if "parent_span_id" not in fields:
        fields["parent_span_id"] = ctx.span_id
    if fields.get("ts") is None:
        fields["ts"] = time.time()
    event = events.of(kind, fields)
    STATS["emitted"] += 1
    pid = os.getpid()
    lost: EventNotKept | None = None
    for owner, sink in tuple(_SINKS):
        if owner != pid:
            continue
        try:
            sink(event)
        except EventNotKept as exc:  # the store could neither queue nor save it: the emitter must know
            STATS["sink_failed"] += 1
            lost = lost or exc
        except Exception as exc:  # noqa: BLE001 - a broken sink (a bug, not a full store) must not fail the work
            STATS["sink_failed"] += 1
            log.warning("%s event not recorded: %s", kind, exc)
    if lost is not None:
        raise lost
    return event


def add_sink(sink: Sink) -> None:
    """Send every event emitted in this process (not in processes forked later) to `sink`."""
    with _LOCK:
        _SINKS.append((os.getpid(), sink))


def remove_sink(sink: Sink) -> None:
    with _LOCK:
        _SINKS[:] = [(pid, s) for pid, s in _SINKS if s != sink]


def has_sink() -> bool:
    pid = os.getpid()
    return any(owner == pid for owner, _ in _SINKS)
