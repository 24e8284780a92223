"""Tasks page: submit form (with a predicted duration and cost), filterable list, live detail view.

Everything about tasks goes through the task API (`Source.tasks`): the live list, the task and its events,
submit, cancel and approve. The detail view subscribes to its task on the server's EventHub and re-reads
only that task's new events when woken, so it follows a running task without reloading the page.
`/tasks?id=<task id>` opens a task directly (links from the other pages use it); the list's filters
(dashboards/task_filters.py) and the opened span (`span=<seq>`) are kept in the URL's query too, so a view can
be shared and reloaded. The cost-over-time chart covers the filtered tasks; clicking a span in the events
table or the waterfall shows its full input and output as text (dashboards/span_detail.py).
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pandas as pd
import panel as pn
import param

from dashboards.cost_over_time import cost_frame, cost_plot
from dashboards.layout import (
    DEMO_HINT,
    Dashboard,
    chart_card,
    chart_pane,
    csv_button,
    empty_state,
    frame,
    money,
    served,
)
from dashboards.pages import page
from dashboards.source import StoreUnavailable
from dashboards.span_detail import SpanDetail
from dashboards.task_filters import FILTER_PARAMS, FilterControls
from dashboards.trace import waterfall_frame, waterfall_plot
from workbench.errors import WorkbenchError
from workbench.tasks.overview import TaskLine
from workbench.tasks.records import NewTask, Task
from workbench.tasks.states import TERMINAL
from workbench.tasks.task_filter import FilterError

STATUS_COLORS = {"completed": "#2ca02c", "failed": "#d62728", "cancelled": "#8c564b", "processing": "#1f77b4",
                 "queued": "#9467bd", "pending": "#7f7f7f", "awaiting_approval": "#e377c2"}
LIST_LIMIT = 200
EVENTS_LIMIT = 20_000
COSTS_EVERY_S = 5.0  # the cost-over-time chart is re-read at most this often while events keep arriving

def badge(status: str) -> str:
    color = STATUS_COLORS.get(status, "#333")
    return (f'<span style="background:{color};color:white;padding:2px 8px;border-radius:10px;'
            f'font-weight:600">{html.escape(status)}</span>')


def _answer_text(result: Any) -> str:
    if not isinstance(result, dict):
        return ""
    answer = result.get("answer")
    if isinstance(answer, dict):
        return str(answer.get("text") or "")
    return str(answer or "")


def _fence(text: str, lang: str = "") -> str:
    return f"```{lang}\n{str(text).replace('```', '` ` `')}\n```"


class TasksPage(FilterControls, Dashboard):
    route = "/tasks"
    tick_ms = 150  # the detail view should follow a running task closely; a tick is in-memory only
    # Charts wait until Panel says the tab has loaded (pn.state.onload): a chart drawn by a tick before that
    # is scheduled for later by Panel and, measured here, often never reached the browser ("drawing…" for
    # good); with this page's fast tick the first tick nearly always comes that early.

    # submit form
    prompt = param.String(default="", doc="What the task should do")
    model = param.Selector(default=None, objects=[], doc="Model (the served default first)")
    priority = param.Integer(default=0, bounds=(-1000, 1000), doc="Higher runs first")
    budget_usd = param.Number(default=None, allow_None=True, doc="Cost budget in USD (empty: none)")
    approve_plan = param.Boolean(default=False, doc="Stop for approval after planning")
    submit = param.Event(doc="Create the task and run it")
    # list: the filter parameters come from FilterControls
    # detail
    task_id = param.String(default="", doc="Task shown in the detail view")
    span_seq = param.Integer(default=None, allow_None=True, doc="Event (span) of the task opened in the span view")
    cancel = param.Event(doc="Cancel the shown task")
    approve = param.Event(doc="Approve the shown task's proposed plan and run it")

    def __init__(self, **params):
        from dashboards.chat import usable_models

        models = usable_models()
        self.param.model.objects = models
        params.setdefault("model", models[0])
        self._ready = False  # filter watchers wait until the panes exist and the URL's filters are applied
        super().__init__(**params)
        self.filter_note = pn.pane.Alert("", alert_type="warning", visible=False, sizing_mode="stretch_width")
        self.no_match = empty_state("No task matches these filters. Widen them, or press **Clear filters**.")
        self.no_match.visible = False
        self.cost_chart = chart_pane()
        self.span = SpanDetail()
        self.form_error = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self.form_note = pn.pane.Markdown("", margin=(0, 5))
        self.prediction = pn.pane.Markdown("_prediction: loading…_", styles={"color": "#555"}, margin=(0, 5))
        self.list_empty = empty_state(f"No tasks yet. Submit one with the form, or: {DEMO_HINT}")
        self.list_info = pn.pane.Markdown("", margin=(0, 5))
        # Remote pagination: only the visible page of rows is sent to the browser, on load and on every update.
        self.table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, pagination="remote", page_size=8,
                                          sizing_mode="stretch_width", selectable=False,
                                          formatters={"open": {"type": "html"}})
        self.table.on_click(self._clicked)
        self.detail_head = pn.pane.HTML("", sizing_mode="stretch_width")
        self.detail_numbers = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.detail_error = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self.answer = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.plan = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.code = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.messages = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.waterfall = chart_pane()
        self.events_table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, pagination="remote",
                                                 page_size=10, selectable=False,
                                                 sizing_mode="stretch_width")
        self.events_table.on_click(self._event_clicked)
        self.cancel_button = pn.widgets.Button(label="Cancel task", color="warning", width=120, visible=False)
        self.cancel_button.on_click(lambda _: self.param.trigger("cancel"))
        self.approve_button = pn.widgets.Button(label="Approve plan", color="success", width=120, visible=False)
        self.approve_button.on_click(lambda _: self.param.trigger("approve"))
        self.detail = pn.Column(visible=False, sizing_mode="stretch_width")
        self.frames: dict[str, pd.DataFrame] = {}
        self.task: Task | None = None
        self.events: list[dict] = []
        self._sub = None
        self._queue = None
        self._woken = 0.0
        self._predictor = None
        self._served = served()
        self._page_loaded = not self._served
        if self._served:
            pn.state.onload(self._loaded_in_browser)
            query = pn.state.location.query_params if pn.state.location else {}
            self._show_problems(self.apply_query(query))
            if query.get("span") and str(query["span"]).isdigit():
                self.span_seq = int(query["span"])
            if query.get("id"):
                self.task_id = str(query["id"])
            pn.state.on_session_destroyed(lambda _ctx: self._unsubscribe())
        self._ready = True
        self._subscribe()
        self.reload(force=False)

    # --- data ------------------------------------------------------------------------------------------

    def load(self, force: bool) -> dict[str, Any]:
        src = self.source
        # The choices and the cost chart are history: re-read at most every few seconds however busy the
        # store is (each scans events); the list follows every wake-up.
        data: dict[str, Any] = {"choices": src.fetch(("task-filter-choices",), src.tasks.filter_choices,
                                                     max_age=self.max_age_s, min_interval=self.max_age_s)}
        try:
            f = self.task_filter()
        except FilterError as exc:  # e.g. a minimum above the maximum: say so, list nothing
            data["list"], data["costs"], data["filter_problem"] = (frame([], TaskLine), 0), [], str(exc)
        else:
            key, bucket = f.model_dump_json(), self.cost_bucket

            def read_list():
                lines = src.tasks.find(f, LIST_LIMIT)
                return frame(lines.items, TaskLine), lines.total

            data["list"] = src.fetch(("tasks", key), read_list, force=force, max_age=self.max_age_s)
            data["costs"] = src.fetch(("task-costs", key, bucket), lambda: src.tasks.cost_over_time(f, bucket),
                                      force=force, max_age=self.max_age_s, min_interval=COSTS_EVERY_S)
        if self.task_id:
            data["detail"] = self._read_detail(self.task_id, force)
        # The first render must be quick: a served tab fits (or fetches) the predictor on its first tick.
        ready = self._predictor is not None and not isinstance(self._predictor, str)
        if (not ready and (not self._served or self._loaded_at)) or force:
            data["predictor"] = self._load_predictor()
        return data

    def _read_detail(self, task_id: str, force: bool) -> tuple[Task, list[dict]] | str:
        src = self.source
        key = ("task", task_id)

        def read():
            previous = src.peek(key)
            task = src.tasks.get(task_id)
            if isinstance(previous, tuple) and previous[0].id == task.id:
                events = previous[1] + src.tasks.events(task_id, previous[1][-1]["seq"] if previous[1] else 0, EVENTS_LIMIT)
            else:
                events = src.tasks.events(task_id, 0, EVENTS_LIMIT)
            return task, events

        try:
            return src.fetch(key, read, after=self._woken or None, min_interval=0.0, max_age=5.0, force=force)
        except StoreUnavailable:
            raise
        except WorkbenchError as exc:  # unknown id in the URL: say so in the detail view
            return str(exc)

    def _load_predictor(self):
        from dashboards.prediction import get_predictor

        return get_predictor(self.source)

    def wants_reload(self) -> bool:
        if isinstance(self._predictor, str) and self.source.age(("predictor",)) > 30:
            return True  # "not enough history" may no longer be true
        if self._queue is not None and not self._queue.empty():
            while not self._queue.empty():
                self._queue.get_nowait()
            self._woken = time.monotonic()
            return True
        return super().wants_reload()

    # --- showing ---------------------------------------------------------------------------------------

    def _loaded_in_browser(self) -> None:
        self._page_loaded = True

    def show(self, data: dict[str, Any]) -> None:
        if not self._page_loaded:
            self.charts_on = False  # held back, drawn by the first tick after the tab has loaded
        frame, total = data["list"]
        self.frames["tasks"] = frame
        self.set_choices(data["choices"])
        filtering = self.filtering()
        self.list_empty.visible = total == 0 and not filtering
        self.no_match.visible = total == 0 and filtering
        problem = data.get("filter_problem")
        if problem or self.filter_note.alert_type == "danger":
            self.filter_note.object, self.filter_note.alert_type = problem or "", "danger"
            self.filter_note.visible = bool(problem)
        costs = cost_frame(data["costs"], self.cost_bucket)
        self.frames["costs"] = costs
        if self.should_render("costs", (costs, self.cost_bucket), chart=True):
            self.cost_chart.object = cost_plot(costs, self.cost_bucket)
        if "predictor" in data:
            self._predictor = data["predictor"]
            self._predict()
        if "detail" in data and (self.should_render("detail", self._detail_key(data["detail"]))
                                 or "waterfall" in self._pending):  # a held-back waterfall is due
            self._show_detail(data["detail"])
        if not self.should_render("tasks", (frame, total)):
            return
        shown = frame.assign(
            open=[f'<a href="/tasks?id={i}">open</a>' for i in frame["id"]],
            cost_usd=[money(c) for c in frame["cost_usd"]],
            created_at=[str(c)[:19] for c in frame["created_at"]],
            duration_s=frame["duration_s"].astype(float).round(2),
            id=[i[:8] for i in frame["id"]],
        ) if not frame.empty else frame
        self.table.value = shown
        self.list_info.object = f"{len(frame)} of {total} task(s)" if total else ""

    @staticmethod
    def _detail_key(detail) -> str:
        """What the detail view depends on: the task row and how far its events go."""
        if isinstance(detail, str):
            return detail
        task, events = detail
        return task.model_dump_json() + f"|{len(events)}|{events[-1]['seq'] if events else 0}"

    def _show_detail(self, detail) -> None:
        self.detail.visible = True
        if isinstance(detail, str):
            self.detail_head.object = f"<h3>Task {html.escape(self.task_id)}</h3>"
            self.detail_error.object, self.detail_error.visible = detail, True
            return
        task, events = detail
        self.task, self.events = task, events
        calls = [e for e in events if e["kind"] == "llm_call"]
        tokens_in = sum(e.get("tokens_in") or 0 for e in calls)
        tokens_out = sum(e.get("tokens_out") or 0 for e in calls)
        cost = sum(e.get("cost_usd") or 0 for e in calls)
        unpriced = sum(e.get("cost_usd") is None for e in calls)
        duration = ""
        if task.started_at and task.finished_at:
            seconds = (pd.Timestamp(task.finished_at) - pd.Timestamp(task.started_at)).total_seconds()
            duration = f" · ran {seconds:.1f} s"
        self.detail_head.object = (
            f"<h3 style='margin:4px 0'>{html.escape(task.title)}</h3>"
            f"<div>Status: {badge(task.status)} "
            f"<span style='color:#666'>id {task.id} · model {html.escape(task.model or '(default)')}"
            f" · priority {task.priority} · attempts {task.attempts}"
            f"{' · kind ' + html.escape(task.kind) if task.kind else ''}"
            f"{' · complexity ' + str(task.complexity) if task.complexity else ''}"
            f" · created {task.created_at[:19]}{duration}</span></div>")
        self.detail_numbers.object = (
            f"**tokens** {tokens_in:,} in → {tokens_out:,} out · **cost** {money(cost)}"
            f"{f' ({unpriced} unpriced call(s))' if unpriced else ''} · **model calls** {len(calls)}"
            f" · **events** {len(events):,}" + (f" · budget {money(task.budget_usd)}" if task.budget_usd else ""))
        self.detail_error.object = f"**error:** {task.error}" if task.error else ""
        self.detail_error.visible = bool(task.error)
        answer = _answer_text(task.result)
        self.answer.object = f"#### Final answer\n{answer}" if answer else (
            "#### Final answer\n_not yet_" if task.status not in TERMINAL else "")
        self.plan.object = self._plan_markdown(task.result, task.plan)
        self.code.object = self._code_markdown(task.result, events)
        self.messages.object = self._messages_markdown(events)
        wf = waterfall_frame(events)
        self.frames["waterfall"] = wf
        # The waterfall is the costly part of a live update: text follows every event, the chart at most
        # every 2 s (a held-back redraw is done by a later tick).
        if self.should_render("waterfall", wf[["row", "start_s", "end_s", "kind"]], every_s=2.0, chart=True):
            self.waterfall.object = waterfall_plot(wf, on_tap=self._span_tapped)
        table = pd.DataFrame(events[-200:])
        if not table.empty:
            table = table[["seq", "ts", "kind", "agent", "model", "tokens_in", "tokens_out", "cost_usd", "duration_ms",
                           "error"]].iloc[::-1].reset_index(drop=True)
            table["ts"] = table["ts"].astype(str).str[11:23]
        self.events_table.value = table
        self._show_span()
        self.cancel_button.visible = task.status not in TERMINAL
        self.approve_button.visible = task.status == "awaiting_approval" and self.source.tasks.runs_tasks

    @staticmethod
    def _plan_markdown(result: Any, proposed: Any = None) -> str:
        """The plan with each subtask's outcome (or, while it waits for approval, the proposed plan)."""
        result = result if isinstance(result, dict) else {}
        plan = result.get("plan") if isinstance(result.get("plan"), dict) else proposed
        if not isinstance(plan, dict):
            return ""
        results = result.get("subtasks") or result.get("results") or {}
        lines = ["#### Plan", str(plan.get("reasoning") or ""), "",
                 "| subtask | agent | instructions | after | status | tokens | cost |", "|---|---|---|---|---|---|---|"]
        for s in plan.get("subtasks") or []:
            r = results.get(s.get("id"), {}) if isinstance(results, dict) else {}
            tokens = (r.get("tokens_in") or 0) + (r.get("tokens_out") or 0)
            cells = [s.get("id"), s.get("specialist"), str(s.get("instructions", ""))[:160].replace("|", "/"),
                     ", ".join(s.get("depends_on") or []) or "–", r.get("status", "pending"), f"{tokens:,}",
                     money(r.get("cost_usd")) if r else "–"]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        return "\n".join(lines)

    @staticmethod
    def _code_markdown(result: Any, events: list[dict]) -> str:
        parts = []
        results = (result.get("subtasks") or result.get("results")) if isinstance(result, dict) else None
        for sid, r in (results.items() if isinstance(results, dict) else []):
            data = (r or {}).get("data") or {}
            if data.get("code"):
                parts.append(f"**{sid}** code ({data.get('language') or '?'})\n" + _fence(data["code"], data.get("language") or ""))
            for key in ("tests", "test_output", "output", "stdout", "stderr", "note"):
                if data.get(key):
                    parts.append(f"**{sid}** {key}\n" + _fence(str(data[key])[:4000]))
        for e in events:
            if e["kind"] == "sandbox_run":
                p = e.get("payload") or {}
                out = "\n".join(str(p.get(k) or "") for k in ("stdout", "output", "logs", "stderr") if p.get(k))
                parts.append(f"**sandbox run #{e['seq']}** ({'ok' if not e.get('error') else e['error']})\n" + _fence(out[:4000]))
        return ("#### Code and test output\n" + "\n\n".join(parts)) if parts else ""

    @staticmethod
    def _messages_markdown(events: list[dict]) -> str:
        parts = []
        for e in events[-400:]:
            p = e.get("payload") or {}
            if e["kind"] == "llm_call":
                msgs = p.get("messages") or []
                asked = next((m.get("content") for m in reversed(msgs) if isinstance(m, dict) and m.get("role") == "user"), "")
                who = " · ".join(x for x in (e.get("agent"), e.get("model")) if x)
                parts.append(f"**→ {who or 'model'}** (#{e['seq']}): {str(asked)[:300]}\n\n"
                             f"**← reply:** {str(p.get('response') or e.get('error') or '')[:600]}")
            elif e["kind"] == "message":
                text = p.get("text") or p.get("content") or json.dumps(p)[:600]
                parts.append(f"**{e.get('agent') or 'message'}** (#{e['seq']}): {str(text)[:600]}")
        return ("#### Messages\n" + "\n\n---\n\n".join(parts[-20:])) if parts else ""

    def _predict(self) -> None:
        p = self._predictor
        if p is None:
            self.prediction.object = "_prediction: loading…_"
        elif isinstance(p, str):
            self.prediction.object = f"_prediction unavailable: {p}_"
        else:
            est = p.predict(self.prompt or "", self.model, self.approve_plan, self.budget_usd)
            r = p.report
            verdict = "beats" if r["duration_s"]["mae"] < r["duration_s"]["baseline_mae"] else "does not beat"
            self.prediction.object = (
                f"**predicted:** ~{est['duration_s']:.1f} s, ~{money(est['cost_usd'])} · measured on "
                f"{r['duration_s']['test_rows']} held-out tasks: duration MAE {r['duration_s']['mae']:.1f} s "
                f"({verdict} the median guess, {r['duration_s']['baseline_mae']:.1f} s), cost MAE "
                f"{money(r['cost_usd']['mae'])} · [details](/prediction)")

    # --- actions ---------------------------------------------------------------------------------------

    @param.depends("prompt", "model", "approve_plan", "budget_usd", watch=True)
    def _form_changed(self) -> None:
        if self._predictor is not None:
            self._predict()

    @param.depends("submit", watch=True)
    def _on_submit(self) -> None:
        self.form_note.object = ""
        try:
            new = NewTask.of(prompt=self.prompt or "", model=self.model, priority=int(self.priority),
                             budget_usd=None if self.budget_usd is None else float(self.budget_usd),
                             approve_plan=bool(self.approve_plan))
            task = self.source.write(lambda: self.source.tasks.create_and_submit(new))
        except WorkbenchError as exc:  # a bad field, Postgres down (StoreUnavailable), Dask refusing it
            self.form_error.object, self.form_error.visible = str(exc), True
            return
        self.form_error.visible = False
        note = f"Created task `{task.id}`."
        if task.status == "pending":
            note += " No task runner in this process: it stays pending until `workbench serve` runs it."
        self.form_note.object = note
        self.prompt = ""
        self.task_id = task.id

    @param.depends("cancel", watch=True)
    def _on_cancel(self) -> None:
        self._act(lambda: self.source.tasks.cancel(self.task_id, reason="cancelled from the dashboard"))

    @param.depends("approve", watch=True)
    def _on_approve(self) -> None:
        self._act(lambda: self.source.tasks.approve(self.task_id, None, by="dashboard"))

    def _act(self, change: Callable[[], Task]) -> None:
        """A change to the shown task; what refused it (finished already, Postgres down) shows in the detail."""
        try:
            self.source.write(change)
        except WorkbenchError as exc:
            self.detail_error.object, self.detail_error.visible = str(exc), True
            return
        self.reload(force=True)

    @param.depends(*FILTER_PARAMS, watch=True)
    def _filters_changed(self) -> None:
        if not self._ready:
            return
        if self.filter_note.alert_type == "warning":  # the URL's ignored values: the user has moved on
            self.filter_note.visible = False
        self.reload(force=False)
        self._sync_url()

    @param.depends("clear_filters", watch=True)
    def _on_clear_filters(self) -> None:
        self.reset_filters()

    def _show_problems(self, problems: list[str]) -> None:
        self.filter_note.alert_type = "warning"
        self.filter_note.object = "Some filters in the link were ignored: " + "; ".join(problems) if problems else ""
        self.filter_note.visible = bool(problems)

    def _sync_url(self) -> None:
        """Keep the URL's query the view's: the task, its opened span and the filters (shareable, reloadable)."""
        if not (self._ready and self._served and pn.state.location is not None):
            return  # while the page is built from the URL, the URL is already right
        query = {**({"id": self.task_id} if self.task_id else {}), **self.filter_query(),
                 **({"span": str(self.span_seq)} if self.task_id and self.span_seq is not None else {})}
        search = ("?" + urlencode(query)) if query else ""
        if pn.state.location.search != search:
            pn.state.location.search = search

    # --- span drill-down ---------------------------------------------------------------------------------

    def _event_clicked(self, event) -> None:
        table = self.events_table.value
        if table is not None and event.row is not None and event.row < len(table):
            self.span_seq = int(table["seq"].iloc[event.row])

    def _span_tapped(self, seq: int) -> None:
        self.span_seq = seq

    @param.depends("span_seq", watch=True)
    def _span_changed(self) -> None:
        self._show_span()
        self._sync_url()

    def _show_span(self) -> None:
        found = next((e for e in self.events if e["seq"] == self.span_seq), None) if self.span_seq is not None else None
        if found is not None or self.span.event is not None:
            self.span.show(found)

    @param.depends("task_id", watch=True)
    def _task_changed(self) -> None:
        self._fingerprints.pop("detail", None)
        self._fingerprints.pop("waterfall", None)
        self._rendered_at.pop("waterfall", None)
        self.events = []
        if self._ready:
            self.span_seq = None  # a span of the task shown before
        self._subscribe()
        self._sync_url()
        self.reload(force=True)

    def _clicked(self, event) -> None:
        frame = self.frames.get("tasks")
        if frame is not None and event.row is not None and event.row < len(frame):
            self.task_id = str(frame["id"].iloc[event.row])

    def _subscribe(self) -> None:
        self._unsubscribe()
        if self.task_id and self.source is not None:
            self._sub = self.source.subscribe(self.task_id)
            self._queue = self._sub.__enter__()

    def _unsubscribe(self) -> None:
        if self._sub is not None:
            self._sub.__exit__(None, None, None)
        self._sub = self._queue = None

    def body(self) -> list:
        form = pn.Column(
            pn.pane.Markdown("### New task"),
            pn.widgets.TextAreaInput.from_param(self.param.prompt, label="Prompt", height=120, sizing_mode="stretch_width",
                                                placeholder="Describe the task…"),
            pn.Row(pn.widgets.Select.from_param(self.param.model, label="Model", width=260),
                   pn.widgets.IntInput.from_param(self.param.priority, label="Priority", width=100)),
            pn.Row(pn.widgets.FloatInput.from_param(self.param.budget_usd, label="Budget (USD)", width=160),
                   pn.widgets.Checkbox.from_param(self.param.approve_plan, label="Approve plan before running")),
            pn.widgets.Button.from_param(self.param.submit, label="Submit task", color="primary", width=160),
            self.form_error, self.form_note, self.prediction, width=480)
        tasks = pn.Column(
            pn.pane.Markdown("### Tasks"), self.filter_widgets(), self.filter_note,
            self.list_empty, self.no_match, self.list_info, self.table, sizing_mode="stretch_width")
        costs = chart_card("Cost over time per model (the listed tasks)", self.cost_chart,
                           csv_button("task_costs", lambda: self.frames.get("costs", pd.DataFrame())),
                           note="Model-call cost of every task the filters match, per model, in UTC days or hours.")
        self.detail[:] = [pn.Row(self.detail_head, self.approve_button, self.cancel_button), self.detail_numbers, self.detail_error,
                          self.answer, self.plan, self.code, self.waterfall, self.messages,
                          pn.pane.Markdown("#### Events (newest first) · click one to open its span"),
                          pn.Row(self.events_table, self.span, sizing_mode="stretch_width")]
        return [pn.Row(form, tasks, sizing_mode="stretch_width"),
                pn.Row(pn.widgets.RadioButtonGroup.from_param(self.param.cost_bucket, name="per"), costs,
                       sizing_mode="stretch_width"), self.detail]


@page("/tasks", "Tasks")
def tasks_page():
    return TasksPage()
