"""`workbench trace`: the span tree of a real task in a real store, its totals, text and JSON, and the
OpenTelemetry export (GenAI conventions) through the in-memory exporter and a local OTLP/HTTP receiver.

The task is built the way agents build one: workbench.telemetry.task around telemetry spans, real
gateway calls on the deterministic test models (so the gateway writes
its own llm_call and llm_attempt events), a tool call, a sandbox run and a message.
"""

from __future__ import annotations

import http.server
import json
import shutil
import threading
import time
import uuid
from typing import ClassVar

import pytest
from helpers import free_port, home_dir, run_cli

pytestmark = pytest.mark.timeout(300)
SECRET = "sk-test-0123456789abcdef"  # lands in a payload; must never reach an exported attribute


@pytest.fixture(scope="module")
def traced():
    """A task with plan → llm_call, subtask(coder) → llm_call/tool_call/sandbox_run/message, and a failing
    subtask(reviewer) whose call fails on every attempt. Yields (home, store, task id, events, span ids)."""
    import workbench
    from workbench import telemetry, traces
    from workbench.errors import ProviderError
    from workbench.store import close_store, open_store
    from workbench.store import postgres as embedded
    from workbench.tasks.service import NewTask, TaskService

    home = home_dir("wb-trace-")
    store = open_store(home, url="")
    ids: dict[str, str] = {}
    try:
        tid = TaskService(store).create(NewTask(prompt="Write and review a haiku about queues"))["id"]
        with telemetry.task(tid):
            with telemetry.span("plan", agent="director") as plan:
                reply = workbench.get_model("test:echo").complete("Plan: write, then review.")
                # the agent keeps a copy of its call's usage: the totals must not count it twice
                plan.set(model="test:echo", tokens_in=reply.usage.input_tokens, tokens_out=reply.usage.output_tokens)
            ids["plan"] = plan.id
            with telemetry.span("subtask", agent="coder") as coder:
                workbench.get_model("test:echo").complete("Write a haiku about queues.")
                began = time.perf_counter()
                time.sleep(0.01)
                telemetry.emit("tool_call", duration_ms=(time.perf_counter() - began) * 1000,
                           payload={"tool": "write_file", "arguments": {"path": "haiku.txt", "token": SECRET}})
                with pytest.raises(RuntimeError), telemetry.span("sandbox_run") as run:
                    run.set(payload={"language": "python", "exit_code": 1, "stderr_tail": SECRET})
                    raise RuntimeError("exit 1")
                ids["sandbox_run"] = run.id
                telemetry.emit("message", payload={"text": "haiku written"})
            ids["coder"] = coder.id
            with pytest.raises(ProviderError), telemetry.span("subtask", agent="reviewer") as reviewer:
                workbench.get_model("test:fail").complete("Review the haiku.")
            ids["reviewer"] = reviewer.id
        store.flush()
        yield home, store, tid, traces.load(tid, store), ids
    finally:
        close_store()
        embedded.stop(home / "postgres")
        shutil.rmtree(home, ignore_errors=True)


def _find(nodes, kind, agent=None):
    return next(n for n in nodes if n.kind == kind and (agent is None or n.event.get("agent") == agent))


# --- the tree, totals and text ------------------------------------------------------------------


def test_tree_nests_calls_under_their_agent_span(traced):
    from workbench import traces

    _, _, _, events, ids = traced
    tree = traces.build_tree(events)
    assert len(traces.flatten(tree)) == len(events)  # every event exactly once
    assert [n.kind for n in tree] == ["status", "plan", "subtask", "subtask"]  # status rows have no parent
    plan = _find(tree, "plan")
    call = _find(plan.children, "llm_call")
    assert call.event["parent_span_id"] == ids["plan"] and call.event["agent"] == "director"
    assert call.event["model"] == "test:echo" and call.start >= plan.start - 0.001 and call.end <= plan.end + 0.001
    assert [n.kind for n in call.children] == ["llm_attempt"]  # each attempt under its own call
    coder = _find(tree, "subtask", "coder")
    assert sorted(n.kind for n in coder.children) == ["llm_call", "message", "sandbox_run", "tool_call"]
    assert [n.kind for n in _find(coder.children, "llm_call").children] == ["llm_attempt"]
    assert [n.start for n in coder.children] == sorted(n.start for n in coder.children)
    assert _find(coder.children, "tool_call").duration_ms >= 10
    reviewer = _find(tree, "subtask", "reviewer")
    failed_call = _find(reviewer.children, "llm_call")
    assert [n.kind for n in reviewer.children] == ["llm_call"]
    attempts = failed_call.children
    assert [a.kind for a in attempts] == ["llm_attempt"] * 3 and all(a.event["error"] for a in attempts)  # retried
    assert all(failed_call.start <= a.start and a.end <= failed_call.end + 0.001 for a in attempts)
    assert reviewer.event["error"].startswith("ProviderError")


def test_nesting_rules_on_hand_made_events():
    """Orphans and cycles go to the root; an attempt that points at its call nests under it."""
    from workbench import traces

    def ev(seq, kind, span=None, parent=None, ts=100.0, ms=None):
        return {"seq": seq, "ts": ts, "kind": kind, "span_id": span, "parent_span_id": parent, "duration_ms": ms}

    events = [ev(1, "llm_attempt", parent="c1", ts=100.5, ms=400), ev(2, "llm_call", "c1", "a1", ts=100.6, ms=600),
              ev(3, "agent_step", "a1", ts=101.0, ms=1000), ev(4, "tool_call", parent="gone", ts=99.0),
              ev(5, "plan", "x", "y", ts=98.0), ev(6, "plan", "y", "x", ts=97.0)]
    tree = traces.build_tree(events)
    assert [n.event["seq"] for n in tree] == [6, 4, 3]  # 5 hangs under 6; 6 under 5 would close a cycle
    assert [n.event["seq"] for n in tree[0].children] == [5]
    step = tree[-1]
    assert [n.kind for n in step.children] == ["llm_call"] and step.start == pytest.approx(100.0)
    assert [n.kind for n in step.children[0].children] == ["llm_attempt"]
    assert len(traces.flatten(tree)) == len(events)


def test_lines_say_the_fast_path_the_code_loops_decisions_and_reused_prompt_tokens():
    from workbench import traces

    def line(kind, payload, **extra):
        return traces.line(traces.Node({"seq": 1, "ts": 1.0, "kind": kind, "payload": payload, **extra}))

    assert line("plan", {"fast_path": True, "specialist": "code"}, agent="director") == "plan · fast path → code · director"
    assert line("plan", {"fast_path": False}) == "plan"
    step = line("agent_step", {"loop": "code", "kind": "sample", "decision": "round 1 misses an example"}, agent="code")
    assert step == "agent_step · sample: round 1 misses an example · code"
    assert line("llm_call", {"cache_read_tokens": 384}) == "llm_call · 384 prompt tokens reused"


def test_totals_count_only_llm_calls(traced):
    from workbench import traces

    _, _, _, events, _ = traced
    calls = [e for e in events if e["kind"] == "llm_call"]
    t = traces.totals(events)
    assert t["llm_calls"] == len(calls) == 3
    assert t["tokens_in"] == sum(e["tokens_in"] or 0 for e in calls) > 0
    assert t["tokens_out"] == sum(e["tokens_out"] or 0 for e in calls) > 0
    # the plan and the attempts repeat the calls' tokens: summing every row would double count
    assert sum(e["tokens_in"] or 0 for e in events) > t["tokens_in"]
    assert t["cost_usd"] == pytest.approx(sum(e["cost_usd"] or 0 for e in calls))
    assert t["unpriced_calls"] == 0  # the failed call has no cost, but nothing was left unpriced
    # sandbox_run, the failed call, its 3 attempts, the failed subtask
    assert t["errors"] == 6 and t["events"] == len(events)
    assert t["wall_ms"] >= max(e["duration_ms"] or 0 for e in events)


def test_render_shows_agents_kinds_and_errors(traced):
    from workbench import traces

    _, _, tid, events, _ = traced
    text = traces.render(traces.build_tree(events))
    assert text.splitlines()[0] == f"trace {tid}"
    for needle in ("plan · director · test:echo", "subtask · coder", "subtask · reviewer", "llm_call · director",
                   "tool_call · write_file", "sandbox_run · python exit 1", "✗ RuntimeError: exit 1",
                   "│   ├── ", "└── ", " tok", " ms", "$"):
        assert needle in text, needle
    assert SECRET not in text
    assert text.splitlines()[-1].startswith(f"{len(events)} events · 3 LLM calls · ")


# --- the command ----------------------------------------------------------------------------------


def test_cli_json_is_the_nested_tree(traced):
    home, _, tid, events, ids = traced
    out = run_cli("trace", tid, "--json", env={"WORKBENCH_HOME": str(home)})
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["task_id"] == tid and data["totals"]["llm_calls"] == 3 and data["totals"]["events"] == len(events)
    plan = next(n for n in data["tree"] if n["kind"] == "plan")
    assert plan["span_id"] == ids["plan"] and plan["children"][0]["kind"] == "llm_call"
    assert [c["kind"] for c in plan["children"][0]["children"]] == ["llm_attempt"] and plan["start"] < plan["end"]
    text = run_cli("trace", tid, env={"WORKBENCH_HOME": str(home)})
    assert text.returncode == 0 and "├── plan · director" in text.stdout, text.stderr


def test_cli_unknown_or_malformed_id_is_one_clean_line(traced):
    home = traced[0]
    for bad in (str(uuid.uuid4()), "not-a-task-id"):
        out = run_cli("trace", bad, env={"WORKBENCH_HOME": str(home)})
        assert out.returncode != 0 and out.stdout == ""
        assert "Traceback" not in out.stderr
        errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and f"No task {bad}" in errors[0], out.stderr


def test_cli_otlp_without_endpoint_says_how_to_set_it(traced):
    out = run_cli("trace", traced[2], "--otlp", env={"WORKBENCH_OTLP_ENDPOINT": ""})
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "WORKBENCH_OTLP_ENDPOINT is not set" in out.stderr


# --- OpenTelemetry --------------------------------------------------------------------------------


def test_otel_spans_keep_the_tree_and_the_genai_attributes(traced):
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import StatusCode

    from workbench import otel

    _, store, tid, events, ids = traced
    exporter = InMemorySpanExporter()
    assert otel.export_task(tid, exporter, store=store) == sum(otel.is_span(e) for e in events)
    spans = exporter.get_finished_spans()
    assert len(spans) == sum(otel.is_span(e) for e in events) == len(events) - 1  # the message is an OTel event
    assert {s.context.trace_id for s in spans} == {uuid.UUID(tid).int}
    by_id = {format(s.context.span_id, "016x"): s for s in spans}
    for e in events:
        if e["span_id"]:
            span = by_id[e["span_id"]]  # the event's own span id, so a backend's span leads back to Postgres
            assert span.attributes["workbench.kind"] == e["kind"]
            parent = format(span.parent.span_id, "016x") if span.parent else None
            assert parent == e["parent_span_id"]
    chat = next(s for s in spans if s.attributes["workbench.kind"] == "llm_call"
                and s.attributes["workbench.agent"] == "director")
    call = next(e for e in events if e["kind"] == "llm_call" and e["agent"] == "director")
    assert chat.name == "chat echo" and chat.parent.span_id == int(ids["plan"], 16)
    assert {k: chat.attributes[k] for k in ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.system",
                                            "gen_ai.request.model", "gen_ai.response.model")} == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "test", "gen_ai.system": "test",
        "gen_ai.request.model": "echo", "gen_ai.response.model": "echo"}
    assert chat.attributes["gen_ai.usage.input_tokens"] == call["tokens_in"]
    assert chat.attributes["gen_ai.usage.output_tokens"] == call["tokens_out"]
    assert chat.attributes["workbench.task_id"] == tid and chat.attributes["workbench.cost_usd"] == call["cost_usd"]
    assert chat.end_time - chat.start_time == pytest.approx(call["duration_ms"] * 1e6, abs=2000)
    plan = by_id[ids["plan"]]
    assert plan.name == "invoke_agent director" and plan.attributes["gen_ai.agent.name"] == "director"
    assert "gen_ai.usage.input_tokens" not in plan.attributes  # usage only on llm_call: no double counting
    tool = next(s for s in spans if s.attributes["workbench.kind"] == "tool_call")
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool" and tool.name == "execute_tool write_file"
    assert tool.parent.span_id == int(ids["coder"], 16)
    sandbox = by_id[ids["sandbox_run"]]
    assert sandbox.status.status_code is StatusCode.ERROR and sandbox.status.description == "RuntimeError: exit 1"
    assert sandbox.attributes["error.type"] == "RuntimeError"
    reviewer = by_id[ids["reviewer"]]
    assert reviewer.status.status_code is StatusCode.ERROR and "503" in reviewer.status.description
    assert [ev.name for ev in by_id[ids["coder"]].events] == ["message"]
    assert by_id[ids["coder"]].status.status_code is StatusCode.UNSET
    values = [str(v) for s in spans for v in s.attributes.values()] + [s.name for s in spans]
    assert not any(SECRET in v for v in values) and not any("haiku" in v for v in values)  # no payload content


class _Receiver(http.server.BaseHTTPRequestHandler):
    """A minimal OTLP/HTTP traces endpoint: keeps each protobuf request body."""

    bodies: ClassVar[list[bytes]] = []

    def do_POST(self):
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_cli_otlp_exports_to_the_endpoint(traced):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from workbench import otel

    home, _, tid, events, _ = traced
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    try:
        out = run_cli("trace", tid, "--otlp", env={"WORKBENCH_HOME": str(home), "WORKBENCH_OTLP_ENDPOINT": endpoint})
    finally:
        server.shutdown()
    assert out.returncode == 0, out.stderr
    expected = sum(otel.is_span(e) for e in events)
    assert f"exported {expected} spans to {endpoint}" in out.stderr
    spans = []
    for body in _Receiver.bodies:
        request = ExportTraceServiceRequest.FromString(body)
        spans += [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert len(spans) == expected and {s.trace_id for s in spans} == {uuid.UUID(tid).bytes}
    chat = next(s for s in spans if s.name == "chat echo")
    assert {a.key for a in chat.attributes} >= {"gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"}


def test_otlp_export_to_a_dead_endpoint_fails_once_and_says_where():
    from workbench import otel
    from workbench.errors import WorkbenchError

    events = [{"seq": i, "ts": 100.0 + i, "kind": "agent_step", "span_id": f"{i:016x}", "duration_ms": 5.0,
               "parent_span_id": f"{i - 1:016x}" if i > 1 else None, "task_id": str(uuid.uuid4())} for i in (1, 2, 3)]
    exporter = otel.default_exporter(f"http://127.0.0.1:{free_port()}/v1/traces", timeout_s=2)
    began = time.monotonic()
    with pytest.raises(WorkbenchError, match="3 of 3 spans could not be exported.*WORKBENCH_OTLP_ENDPOINT"):
        otel.export_events(events, exporter)
    assert time.monotonic() - began < 5  # one failed export, then no more tries (not one timeout per span)
    exporter.shutdown()
