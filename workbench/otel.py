"""A task's span tree exported as OpenTelemetry spans, with the GenAI semantic conventions (gen_ai.*).

    otel.export_task(task_id)                              # to WORKBENCH_OTLP_ENDPOINT over OTLP/HTTP
    otel.export_events(events, InMemorySpanExporter())     # any SpanExporter (tests use the in-memory one)

Spans are rebuilt after the fact from the events table (workbench.traces): start and end come from ts and
duration_ms, the OTel trace id is the task's UUID and each span keeps its event's span_id, so a span seen
in a tracing backend can be looked up in Postgres. An event becomes a span when it has a span_id or a
duration (tool calls and attempts are logged as point events, but they took time); an instant without
either (message, final_answer) becomes an OTel event on its parent span.

Payloads are never exported: they hold prompts, code, tool arguments and results, where secrets end up.
Only the small scalar fields in PAYLOAD_FIELDS are. Usage attributes go on llm_call spans only, so a
backend that sums gen_ai.usage.* does not count the copies that agent spans carry.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode

from workbench import traces
from workbench.errors import ConfigError, WorkbenchError

AGENT_KINDS = frozenset({"plan", "subtask", "agent_step", "agent"})
# Small, non-secret payload fields worth filtering on in a tracing backend (scalars only, strings cut).
PAYLOAD_FIELDS: dict[str, tuple[str, ...]] = {
    "llm_call": ("finish_reason", "cached", "cost_source"),
    "llm_attempt": ("outcome", "fault", "call_id"),
    "tool_call": ("refused",),
    "sandbox_run": ("backend", "language", "exit_code", "timed_out"),
    "status": ("from", "to"),
}
MAX_STRING = 200


def is_span(event: dict[str, Any]) -> bool:
    """Whether an event becomes an OTel span (else: an OTel event on its parent span)."""
    return bool(event.get("span_id")) or event.get("duration_ms") is not None


# --- attributes -----------------------------------------------------------------------------------


def _provider_and_model(model: str) -> tuple[str | None, str]:
    provider, sep, name = model.partition(":")
    return (provider, name) if sep else (None, model)


def _chat(event: dict[str, Any]) -> dict[str, Any]:
    provider, name = _provider_and_model(event.get("model") or "")
    attrs: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.request.model": name,
                             "gen_ai.response.model": name}
    if provider:  # gen_ai.system is the older name of gen_ai.provider.name; backends read either
        attrs["gen_ai.provider.name"] = attrs["gen_ai.system"] = provider
    for column, key in (("tokens_in", "gen_ai.usage.input_tokens"), ("tokens_out", "gen_ai.usage.output_tokens")):
        if event.get(column) is not None:
            attrs[key] = event[column]
    return attrs


def _agent(event: dict[str, Any]) -> dict[str, Any]:
    return {"gen_ai.operation.name": "invoke_agent", **({"gen_ai.agent.name": event["agent"]} if event.get("agent") else {})}


def _tool(event: dict[str, Any]) -> dict[str, Any]:
    payload = event.get("payload")
    tool = payload.get("tool") if isinstance(payload, dict) else None
    return {"gen_ai.operation.name": "execute_tool", **({"gen_ai.tool.name": str(tool)} if tool else {})}


GEN_AI: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "llm_call": _chat, "tool_call": _tool, **{kind: _agent for kind in AGENT_KINDS},
}


def attributes(event: dict[str, Any], task_id: str) -> dict[str, Any]:
    kind = event["kind"]
    attrs: dict[str, Any] = {"workbench.kind": kind, "workbench.task_id": task_id}
    for column in ("seq", "agent", "model", "cost_usd"):
        if event.get(column) is not None:
            attrs[f"workbench.{column}"] = event[column]
    attrs.update(GEN_AI[kind](event) if kind in GEN_AI else {})
    payload = event.get("payload") if isinstance(event.get("payload"), dict) else {}
    for key in PAYLOAD_FIELDS.get(kind, ()):
        value = payload.get(key)
        if isinstance(value, (bool, int, float)):
            attrs[f"workbench.payload.{key}"] = value
        elif isinstance(value, str):
            attrs[f"workbench.payload.{key}"] = value[:MAX_STRING]
    if event.get("error"):
        kind_of_error = str(event["error"]).partition(":")[0]
        attrs["error.type"] = kind_of_error if kind_of_error.isidentifier() else "error"
    return attrs


def span_name(event: dict[str, Any]) -> str:
    """GenAI convention: '{operation} {target}', e.g. 'chat echo', 'invoke_agent coder'."""
    attrs = GEN_AI[event["kind"]](event) if event["kind"] in GEN_AI else {}
    target = attrs.get("gen_ai.request.model") or attrs.get("gen_ai.agent.name") or attrs.get("gen_ai.tool.name")
    return " ".join(str(x) for x in (attrs["gen_ai.operation.name"], target) if x) if attrs else event["kind"]


# --- export ---------------------------------------------------------------------------------------


class _EventIds(IdGenerator):
    """Gives the SDK the ids the events already have: trace id = task UUID, span id = the event's span_id."""

    def __init__(self, trace_id: int):
        self.trace_id, self.next_span_id, self._random = trace_id, 0, RandomIdGenerator()

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        span_id, self.next_span_id = self.next_span_id, 0
        return span_id or self._random.generate_span_id()


class _FailFast(SpanExporter):
    """Counts failures and stops after the first one: SimpleSpanProcessor exports span by span and drops
    the result, so a collector that is down would otherwise cost one timeout per span, silently."""

    def __init__(self, inner: SpanExporter):
        self.inner, self.failed, self.reason = inner, 0, ""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not self.failed:
            try:
                if self.inner.export(spans) is SpanExportResult.SUCCESS:
                    return SpanExportResult.SUCCESS
            except Exception as exc:  # noqa: BLE001 - reported once, as one line, by export_events
                self.reason = f": {type(exc).__name__}: {exc}"
        self.failed += len(spans)
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        pass  # the exporter belongs to the caller, who may export more tasks with it


def _int_id(value: Any, bits: int) -> int:
    try:
        number = uuid.UUID(str(value)).int if bits == 128 else int(str(value), 16)
    except (TypeError, ValueError):
        return 0
    return number if 0 < number < 2**bits else 0


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def export_events(events: list[dict[str, Any]], exporter: SpanExporter) -> int:
    """Export one task's events through `exporter`; returns the number of spans. Parents start first."""
    tree = traces.build_tree(events)
    task_id = next((str(e["task_id"]) for e in events if e.get("task_id")), "")
    ids = _EventIds(_int_id(task_id, 128) or RandomIdGenerator().generate_trace_id())
    provider = TracerProvider(resource=Resource.create({"service.name": "workbench"}), id_generator=ids,
                              shutdown_on_exit=False)
    checked = _FailFast(exporter)
    provider.add_span_processor(SimpleSpanProcessor(checked))
    tracer = provider.get_tracer("workbench.traces")
    count = 0

    def emit(node: traces.Node, parent: trace.Span | None) -> None:
        nonlocal count
        event, attrs = node.event, attributes(node.event, task_id)
        if parent is not None and not is_span(event):
            parent.add_event(event["kind"], attributes=attrs, timestamp=_ns(node.end))
            return
        ids.next_span_id = _int_id(event.get("span_id"), 64)
        # A root gets an empty context, never the caller's current span: the task is its own trace.
        ctx = trace.set_span_in_context(parent) if parent is not None else otel_context.Context()
        span = tracer.start_span(span_name(event), context=ctx, start_time=_ns(node.start), attributes=attrs,
                                 kind=SpanKind.CLIENT if event["kind"] == "llm_call" else SpanKind.INTERNAL)
        if event.get("error"):
            span.set_status(Status(StatusCode.ERROR, str(event["error"])[:1000]))
        for child in node.children:
            emit(child, span)
        span.end(end_time=_ns(node.end))
        count += 1

    for root in tree:
        emit(root, None)
    if checked.failed:
        raise WorkbenchError(f"{checked.failed} of {count} spans could not be exported{checked.reason}. "
                             f"Check that an OTLP/HTTP collector listens at WORKBENCH_OTLP_ENDPOINT.")
    return count


def default_exporter(endpoint: str | None = None, timeout_s: float = 10.0) -> SpanExporter:
    """OTLP/HTTP to `endpoint` (default: WORKBENCH_OTLP_ENDPOINT); retries inside `timeout_s` per export."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from workbench.config import get_settings

    endpoint = endpoint or get_settings().otlp_endpoint
    if not endpoint:
        raise ConfigError("WORKBENCH_OTLP_ENDPOINT is not set: set it to an OTLP/HTTP traces URL, e.g. "
                          "http://127.0.0.1:4318/v1/traces (an OpenTelemetry Collector, Jaeger, Tempo...).")
    return OTLPSpanExporter(endpoint=endpoint, timeout=timeout_s)


def export_task(task_id: str, exporter: SpanExporter | None = None, store: Any = None) -> int:
    """Export every event of a task (read from the store); returns the number of spans."""
    events = traces.load(task_id, store)
    own = exporter is None
    exporter = exporter if exporter is not None else default_exporter()
    try:
        return export_events(events, exporter)
    finally:
        if own:
            exporter.shutdown()
