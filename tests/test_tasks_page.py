"""The Tasks page's filters, span drill-down and cost over time, against a real store: the embedded Postgres,
a Dask LocalCluster of processes running real tasks through the task service on deterministic models
(`test:echo`, `test:slow`, `test:fail`, and tests/agent_plugins.py's `test:priced` and `test:team`)."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
from types import SimpleNamespace

import pytest
from helpers import REPO, module_stack

pytestmark = pytest.mark.timeout(420)
PLUGIN = str(REPO / "tests" / "agent_plugins.py")
MARKUP_PROMPT = "Say <script>document.title='pwned'</script> and [bold]loud[/bold] with key sk-ABCDEFGHIJKLMNOPQRSTUVWXYZ123456"
stack, stack_home = module_stack("wb-taskspage-", PLUGIN)


@pytest.fixture(scope="module")
def runner(stack):
    """The served app's services for the page (no LISTEN hub: the tests refresh)."""
    from workbench.services import runtime as rt
    from workbench.tasks.api import TaskApi
    from workbench.tasks.runner import TaskRunner

    store, client, service, _ = stack
    runner = TaskRunner(client, service)
    rt.set_runtime(rt.Runtime(store, TaskApi(service, runner), None, client, asyncio.new_event_loop()))
    yield runner
    rt.set_runtime(None)


def _run(stack, runner, prompt: str, model: str, mode: str = "single") -> dict:
    from workbench.tasks.service import NewTask

    task = stack[2].create(NewTask(prompt=prompt, model=model, mode=mode))
    runner.submit(task["id"])
    return runner.wait(task["id"], timeout=180)


@pytest.fixture(scope="module")
def history(stack, runner):
    """Tasks of known shape: cheap, priced, failed, slow, agents (router + general specialist), one with markup in
    its prompt, and an old one (created ten days ago, its calls too)."""
    t = SimpleNamespace(
        echo=_run(stack, runner, "Echo alpha", "test:echo"),
        priced=_run(stack, runner, "Priced beta", "test:priced"),
        failed=_run(stack, runner, "Failing gamma", "test:fail"),
        slow=_run(stack, runner, "Slow delta", "test:slow"),
        agents=_run(stack, runner, "Answer epsilon [route:general]", "test:team", mode="agents"),
        markup=_run(stack, runner, MARKUP_PROMPT, "test:echo"),
        old=_run(stack, runner, "Old zeta", "test:priced"),
    )
    assert [x["status"] for x in vars(t).values()] == ["completed", "completed", "failed", "completed", "completed",
                                                       "completed", "completed"], [x["error"] for x in vars(t).values()]
    from workbench.events import Event

    store = stack[0]
    with store.connection() as conn:  # the old task: created ten days ago ...
        conn.execute("UPDATE tasks SET created_at = created_at - interval '10 days' WHERE id = %s", (t.old["id"],))
    # ... with one earlier priced call recorded then (events are append-only: a new one, with its own time).
    ten_days_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=10)
    store.record(Event(kind="llm_call", ts=ten_days_ago, task_id=t.old["id"], trace_id=t.old["id"], model="test:priced",
                       tokens_in=1, tokens_out=1, cost_usd=0.00124, duration_ms=1.0, payload={"response": "earlier"}))
    store.flush()
    return t


def _find(**fields) -> set[str]:
    from workbench.services import runtime
    from workbench.tasks.task_filter import TaskFilter

    return {line.id for line in runtime.current().tasks.find(TaskFilter(**fields)).items}


def _lines():
    from workbench.services import runtime
    from workbench.tasks.task_filter import TaskFilter

    return runtime.current().tasks.find(TaskFilter()).items


def _ids(*tasks) -> set[str]:
    return {t["id"] for t in tasks}


# --- filters in the query --------------------------------------------------------------------------------


def test_each_filter_selects_the_matching_tasks(history):
    h = history
    everything = _ids(*vars(h).values())
    assert _find() == everything
    assert _find(status="failed") == _ids(h.failed)
    assert _find(model="test:priced") == _ids(h.priced, h.old)
    assert _find(agent="general") == _ids(h.agents)
    assert h.agents["id"] in _find(agent="router")
    assert _find(has_error=True) == _ids(h.failed)
    assert _find(has_error=False) == everything - _ids(h.failed)
    assert _find(cost_min=0.001) == _ids(h.priced, h.old)  # test:priced costs $0.00124 a call
    assert _find(cost_max=0.001) == everything - _ids(h.priced, h.old)
    # Durations vary on a loaded machine: compare with the listed run times; test:slow takes over a second.
    ran = {line.id: line.duration_s for line in _lines()}
    assert _find(duration_min=1.0) == {i for i, s in ran.items() if s is not None and s >= 1.0} >= _ids(h.slow)
    assert _find(duration_max=0.99) == {i for i, s in ran.items() if s is not None and s <= 0.99}
    assert h.slow["id"] not in _find(duration_max=0.99) and _find(duration_max=0.99)
    today = dt.datetime.now(dt.timezone.utc).date()
    assert _find(created_to=today - dt.timedelta(days=5)) == _ids(h.old)
    assert _find(created_from=today - dt.timedelta(days=1)) == everything - _ids(h.old)
    assert _find(created_from=today - dt.timedelta(days=10), created_to=today - dt.timedelta(days=10)) == _ids(h.old)
    assert _find(search="gamma") == _ids(h.failed)
    assert _find(search="%") == set()  # a wildcard typed in the box is a literal character


def test_filters_combine_and_an_empty_result_is_empty(history):
    h = history
    today = dt.datetime.now(dt.timezone.utc).date()
    assert _find(model="test:priced", created_from=today) == _ids(h.priced)
    assert _find(model="test:priced", cost_min=0.001, has_error=False, status="completed") == _ids(h.priced, h.old)
    assert _find(model="test:fail", status="completed") == set()
    assert _find(agent="general", duration_min=3600) == set()


def test_user_input_is_bound_never_spliced_into_sql(history):
    injection = "x' OR '1'='1"
    assert _find(model=injection) == set() and _find(agent=injection) == set() and _find(search=injection) == set()


def test_the_url_form_round_trips_and_bad_values_are_named(history):
    from workbench.tasks.task_filter import FilterError, TaskFilter, from_query, parse, to_query

    f = TaskFilter(status="completed", model="test:priced", agent="general", search="a b", cost_min=0.001, cost_max=2.5,
                   duration_min=1, duration_max=30, has_error=False, created_from=dt.date(2026, 1, 2),
                   created_to=dt.date(2026, 2, 3))
    query = to_query(f)
    assert query == {"status": "completed", "model": "test:priced", "agent": "general", "q": "a b", "cost_min": "0.001",
                     "cost_max": "2.5", "dur_min": "1", "dur_max": "30", "error": "no", "from": "2026-01-02",
                     "to": "2026-02-03"}
    assert from_query(query) == (f, [])
    assert to_query(TaskFilter()) == {}
    got, problems = from_query({"status": "done", "cost_min": "-1", "error": "maybe", "from": "2026-13-01",
                                "model": "test:echo", "id": "ignored"})
    assert got == TaskFilter(model="test:echo")
    assert len(problems) == 4 and "status='done'" in problems[0] and "completed" in problems[0]
    assert any("error=yes or error=no" in p for p in problems)
    got, problems = from_query({"cost_min": "5", "cost_max": "1", "status": "failed"})
    assert got == TaskFilter(status="failed") and "cost range is empty" in problems[0]
    with pytest.raises(FilterError, match="dur_min='soon'"):
        parse({"dur_min": "soon"})


def test_cost_over_time_per_model_and_bucket(stack, history):
    from workbench.services import runtime
    from workbench.tasks.task_filter import FilterError, TaskFilter

    api = runtime.current().tasks
    per_day = api.cost_over_time(TaskFilter(model="test:priced"), "day")
    # Ten days ago: the old task's earlier call; today: the priced and old tasks' own calls (each task asks
    # the model to classify it, then to answer).
    today = [e for t in (history.priced, history.old) for e in stack[0].events(t["id"])
             if e["kind"] == "llm_call" and e["payload"].get("response") != "earlier"]
    assert len(today) == 4
    assert [(p.model, p.calls, round(p.cost_usd, 6)) for p in per_day] == [
        ("test:priced", 1, 0.00124), ("test:priced", 4, round(sum(e["cost_usd"] for e in today), 6))]
    assert per_day[1].bucket - per_day[0].bucket == dt.timedelta(days=10)
    everything = api.cost_over_time(TaskFilter(), "hour")
    assert {"test:priced", "test:echo"} <= {p.model for p in everything}
    assert all(p.bucket.minute == 0 and p.bucket.second == 0 for p in everything)
    assert api.cost_over_time(TaskFilter(status="cancelled")) == []
    with pytest.raises(FilterError, match="use one of day, hour"):
        api.cost_over_time(TaskFilter(), "week")  # type: ignore[arg-type]


# --- the page ---------------------------------------------------------------------------------------------


def _page(**params):
    from dashboards.tasks import TasksPage

    page = TasksPage(**params)
    page.param.trigger("refresh")  # the store may have changed since a cached read; no LISTEN hub here
    return page


def _listed(page) -> set[str]:
    return set(page.frames["tasks"]["id"])


def test_the_page_filters_offer_the_store_values_and_say_when_nothing_matches(history):
    h = history
    page = _page()
    assert _listed(page) == _ids(*vars(h).values()) and not page.no_match.visible
    assert {"test:priced", "test:echo", "test:team"} <= set(page.param.model_filter.objects)
    assert {"general", "router"} <= set(page.param.agent_filter.objects)
    page.status_filter = "failed"
    assert _listed(page) == _ids(h.failed)
    page.param.update(status_filter="completed", model_filter="test:priced", cost_min=0.001, has_error="without errors")
    assert _listed(page) == _ids(h.priced, h.old)
    assert set(page.frames["costs"]["model"]) == {"test:priced"}  # the chart covers the listed tasks only
    assert page.cost_chart.object is not None
    page.param.update(model_filter="test:fail")
    assert page.frames["tasks"].empty and page.no_match.visible and not page.list_empty.visible
    assert "No task matches these filters" in page.no_match.object
    page.param.trigger("clear_filters")
    assert _listed(page) == _ids(*vars(h).values()) and not page.no_match.visible
    page.agent_filter = "general"
    assert _listed(page) == _ids(h.agents)
    page.param.trigger("clear_filters")
    today = dt.datetime.now(dt.timezone.utc).date()
    page.created = (today - dt.timedelta(days=11), today - dt.timedelta(days=9))
    assert _listed(page) == _ids(h.old)
    page.param.trigger("clear_filters")
    page.param.update(duration_min=5.0, duration_max=1.0)  # an empty range: said, nothing listed
    assert page.filter_note.visible and "duration range is empty" in page.filter_note.object
    assert page.frames["tasks"].empty
    page.duration_max = None
    assert not page.filter_note.visible


def test_the_page_filters_round_trip_through_the_url_query(history):
    h = history
    page = _page()
    page.param.update(status_filter="completed", model_filter="test:priced", cost_min=0.001, cost_bucket="hour",
                      has_error="without errors", created=(dt.date(2026, 1, 2), dt.date(2030, 2, 3)))
    query = page.filter_query()
    assert query == {"status": "completed", "model": "test:priced", "cost_min": "0.001", "error": "no",
                     "from": "2026-01-02", "to": "2030-02-03", "per": "hour"}
    shown = _listed(page)
    again = _page()
    assert again.apply_query(query) == []  # what a reload of the shared link does
    assert _listed(again) == shown == _ids(h.priced, h.old)
    assert again.cost_bucket == "hour" and len(again.frames["costs"])
    problems = again.apply_query({"status": "done", "per": "week", "dur_max": "soon"})
    assert len(problems) == 3 and "per=day or per=hour" in problems[-1]
    assert _listed(again) == _ids(*vars(h).values())  # the bad values left out, nothing else filters


def _open_span(page, kind: str, contains: str = ""):
    table = page.events_table.value
    for row, seq in enumerate(table["seq"]):
        event = next(e for e in page.events if e["seq"] == seq)
        if event["kind"] == kind and contains in str(event.get("payload")):
            page._event_clicked(SimpleNamespace(row=row))  # what Tabulator's on_click hands over
            return event
    raise AssertionError(f"no {kind} event with {contains!r} in the table")


def test_clicking_a_span_shows_its_input_and_output_as_text(history):
    page = _page(task_id=history.markup["id"])
    event = _open_span(page, "llm_call", "[bold]loud")
    assert page.span_seq == event["seq"] and page.span.event["seq"] == event["seq"]
    shown = page.span.body.object
    # The prompt and the echoed reply appear literally: escaped, never as markup.
    assert html.escape("<script>document.title='pwned'</script>") in shown and "<script" not in shown
    assert "[bold]loud[/bold]" in shown and "prompt (" in shown and "reply (" in shown
    # The store redacted the key when it wrote the event; the view shows only what the store holds.
    assert "[REDACTED]" in shown and "ABCDEFGHIJKLMNOPQRSTUVWXYZ123456" not in shown
    assert "llm_call · single_call · test:echo" in shown


def test_long_values_are_cut_with_a_show_all_control(history):
    from dashboards.span_detail import SpanDetail

    page = _page(task_id=history.markup["id"])
    event = _open_span(page, "llm_call", "[bold]loud")
    detail = SpanDetail(limit=20)
    detail.show(event)
    assert "more characters (press “Show all”)" in detail.body.object and detail.toggle.visible
    assert "[bold]loud[/bold]" not in detail.body.object
    detail.show_all = True
    assert "more characters" not in detail.body.object and "[bold]loud[/bold]" in detail.body.object
    detail.show({**event, "seq": -1})  # another span opens cut again
    assert not detail.show_all and "more characters" in detail.body.object


def test_tool_and_sandbox_spans_show_arguments_results_and_output():
    from dashboards.span_detail import sections

    tool = {"seq": 1, "kind": "tool_call", "agent": "data", "payload": {
        "tool": "duckdb_sql", "arguments": {"sql": "SELECT '<b>x</b>'"}, "result": "[red]1 row[/red]", "refused": False}}
    got = {s.title: s.text for s in sections(tool)}
    assert got["tool"] == "duckdb_sql" and "SELECT '<b>x</b>'" in got["arguments"] and got["result"] == "[red]1 row[/red]"
    assert '"refused": false' in got["other fields"]
    run = {"seq": 2, "kind": "sandbox_run", "error": "exit 1", "payload": {
        "command": ["python3", "x.py"], "stdout_tail": "hello\n", "stderr_tail": "Traceback: boom", "exit_code": 1}}
    got = {s.title: s.text for s in sections(run)}
    assert (got["error"], got["command"], got["stdout"], got["stderr"]) == ("exit 1", "python3 x.py", "hello\n",
                                                                             "Traceback: boom")
    assert '"exit_code": 1' in got["other fields"]


def test_tapping_a_waterfall_bar_opens_its_span(history):
    import holoviews as hv

    page = _page(task_id=history.agents["id"])
    plot = page.waterfall.object
    wf = page.frames["waterfall"]
    bars = next(el for el in plot if isinstance(el, hv.Segments))
    (stream,) = [s for s in hv.streams.Stream.registry.get(bars, []) if isinstance(s, hv.streams.Selection1D)]
    row = int(wf.index[wf["kind"] == "llm_call"][0])
    stream.event(index=[row])
    assert page.span_seq == int(wf["seq"].iloc[row])
    assert page.span.event["kind"] == "llm_call" and "reply (" in page.span.body.object
