"""The event model is defined once (workbench/events.py) and everything else derives from it; the
telemetry context carries spans across threads; the store is the sink of the process that opened it."""

from __future__ import annotations

import ast
from concurrent.futures import ThreadPoolExecutor

import duckdb
import pytest
from helpers import REPO

from workbench import events, telemetry
from workbench.testing import MemorySink

SOURCES = [p for d in ("workbench", "dashboards") for p in (REPO / d).rglob("*.py")]
NAMES = set(events.COLUMNS)
MOST = 12  # of the 15 columns


def _words(text: str) -> set[str]:
    for sep in ",()=.:;":
        text = text.replace(sep, " ")
    return set(text.split()) & NAMES


def restatements(name: str, source: str) -> list[str]:
    """Where a module names the event columns itself: a tuple/list/set, a class's fields (a second model)
    or a text (a SELECT, a CREATE TABLE, a COPY) naming most of them. Using a few (a query, the columns a
    table shows) is fine. (scripts/redesign_counts.py counts with it at any commit.)"""
    found = []
    tree = ast.parse(source, name)
    docs = {id(n.body[0].value) for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef))
            and n.body and isinstance(n.body[0], ast.Expr)}  # prose may name the columns
    for node in ast.walk(tree):
        if id(node) in docs:
            continue
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            named, limit = {e.value for e in node.elts if isinstance(e, ast.Constant)} & NAMES, MOST
        elif isinstance(node, ast.ClassDef):
            named, limit = {s.target.id for s in node.body if isinstance(s, ast.AnnAssign)
                            and isinstance(s.target, ast.Name)} & NAMES, MOST
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            named, limit = _words(node.value), MOST
        elif isinstance(node, ast.JoinedStr):
            named, limit = _words(" ".join(str(v.value) for v in node.values if isinstance(v, ast.Constant))), MOST
        else:
            continue
        if len(named) >= limit:
            found.append(f"{name}:{node.lineno}")
    return found


def test_only_events_py_knows_the_event_columns():
    """No module restates the columns except migrations.py's applied CREATE TABLE, which must never
    change (a new column is a new migration); in events.py itself only as the dataclass's fields."""
    found = [hit.split(":")[0] for p in SOURCES for hit in restatements(str(p.relative_to(REPO)), p.read_text())]
    assert sorted(found) == ["workbench/events.py", "workbench/store/migrations.py"], found


def test_derived_forms_follow_the_dataclass():
    con = duckdb.connect()
    con.execute(events.duckdb_ddl())
    assert [r[0] for r in con.execute("DESCRIBE events").fetchall()] == ["seq", *events.COLUMNS]
    assert events.arrow_schema().names == ["seq", *events.COLUMNS]
    assert list(events.api_model().model_fields) == list(events.READ_COLUMNS)
    assert "event_id" not in events.READ_COLUMNS  # the idempotency key stays internal
    assert len(events.PG_TYPES) == len(events.COLUMNS)


def test_the_writers_row_puts_every_column_in_its_place():
    """The store's row is derived from the Event: each column's value comes back under its own name."""
    import dataclasses
    import datetime as dt
    import uuid

    from workbench.store.writer import build_row, row_as_dict

    columns = dataclasses.fields(events.Event)
    texts = {f.name: f"{f.name}-value" for f in columns if f.metadata["pg"] == "text"}
    numbers = {f.name: 10 + i for i, f in enumerate(columns) if f.metadata["pg"] in ("int4", "float8")}
    ids = {f.name: str(uuid.uuid4()) for f in columns if f.metadata["pg"] == "uuid"}
    when = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    given = {**texts, **numbers, **ids, "ts": when, "payload": {"p": 1}}
    assert set(given) == set(events.COLUMNS)  # a column of a new type needs a value here
    row = row_as_dict(build_row(events.Event(**given)))
    assert row == {**given, "ts": when.isoformat()}


def test_extra_fields_go_to_the_payload_and_unknown_columns_are_refused_by_the_store():
    from workbench.store.writer import event

    e = events.of("tool_call", {"agent": "a", "tool": "sql", "payload": {"rows": 3}})
    assert (e.agent, e.payload, e["tool"], e.get("missing", 0)) == ("a", {"tool": "sql", "rows": 3}, "sql", 0)
    with pytest.raises(TypeError, match="Unknown event field"):
        event("tool_call", {"tokens_input": 3})


def test_spans_nest_and_cross_threads_only_when_carried():
    with MemorySink() as rec, telemetry.span("task", agent="director") as task:
        carried = telemetry.wrap(lambda: telemetry.emit("message", payload={"carried": True}))
        with ThreadPoolExecutor(1) as pool:
            pool.submit(carried).result()
            pool.submit(lambda: telemetry.emit("message", payload={"carried": False})).result()
        with telemetry.span("subtask", agent="data"):
            telemetry.emit("tool_call")
    carried_msg = rec.of("message", carried=True)[0]
    assert carried_msg.parent_span_id == task.id and carried_msg.agent == "director"
    assert carried_msg.task_id == task.task_id and carried_msg.trace_id == task.context.trace_id
    lost = rec.of("message", carried=False)[0]  # contextvars do not flow into a pool's thread by themselves
    assert lost.parent_span_id is None and lost.task_id is None
    subtask = rec.of("subtask")[0]
    assert subtask.parent_span_id == task.id and rec.of("tool_call")[0].parent_span_id == subtask.span_id
    assert rec.of("tool_call")[0].agent == "data" and rec.of("task")[0].duration_ms > 0


def test_a_failing_sink_never_fails_the_caller():
    def broken(event):
        raise RuntimeError("sink down")

    before = telemetry.STATS["sink_failed"]
    telemetry.add_sink(broken)
    try:
        with MemorySink() as rec, pytest.raises(ValueError), telemetry.span("agent_step"):
            raise ValueError("the body's own error")
    finally:
        telemetry.remove_sink(broken)
    assert telemetry.STATS["sink_failed"] == before + 1
    assert rec.of("agent_step")[0].error == "ValueError: the body's own error"


def test_a_forked_child_does_not_inherit_the_sinks():
    """A child's events must not go to its parent's writer (its thread and connection do not exist there)."""
    import multiprocessing
    import os

    def child():
        os._exit(0 if not telemetry.has_sink() else 1)

    rec = MemorySink()
    telemetry.add_sink(rec)
    try:
        assert telemetry.has_sink()
        proc = multiprocessing.get_context("fork").Process(target=child)
        proc.start()
        proc.join(30)
    finally:
        telemetry.remove_sink(rec)
    assert proc.exitcode == 0
