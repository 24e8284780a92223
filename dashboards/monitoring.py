"""Live monitoring: running tasks and agent activity, the Dask cluster, event and error rates, latency
percentiles per model, and the alert rules.

Unfinished tasks and the newest events come live from the task API (Postgres). Rates and latency
percentiles over the look-back window are aggregates, read from the analytics snapshot (DuckDB, published
by the server's sync every 2 s), so window scans stay off Postgres while it writes events. Worker
CPU/memory/queue come from the Dask scheduler's own heartbeat metrics, sampled every 2 s by the server's
maintenance thread (workbench/services/maintenance.py) and kept for an hour; alert states are that
thread's evaluations of workbench/alerts.yaml (or WORKBENCH_ALERTS_FILE).
"""

from __future__ import annotations

import html
import time
from typing import Any

import holoviews as hv
import hvplot.pandas  # noqa: F401  (registers .hvplot on DataFrames)
import pandas as pd
import panel as pn
import param

from dashboards.layout import DEMO_HINT, Dashboard, chart_card, chart_pane, csv_button, data_section, empty_state, frame
from dashboards.pages import page
from dashboards.source import analytics_generation
from workbench.services import maintenance
from workbench.tasks.overview import ActiveTask, Activity

RUNNING_LIMIT = 100
ACTIVITY_LIMIT = 30
_RATES = """
SELECT date_trunc('minute', ts) AS minute, count(*) AS events, count(error) AS errors,
       count(*) FILTER (WHERE kind = 'llm_call') AS llm_calls, count(error) FILTER (WHERE kind = 'llm_call') AS llm_errors
FROM events WHERE ts > now() - to_minutes(CAST(? AS INTEGER)) GROUP BY 1 ORDER BY 1
"""
_LATENCY = """
SELECT coalesce(model, '(none)') AS model, count(*) AS calls, count(error) AS errors,
       quantile_cont(duration_ms, 0.5) AS p50_ms, quantile_cont(duration_ms, 0.9) AS p90_ms,
       quantile_cont(duration_ms, 0.95) AS p95_ms, quantile_cont(duration_ms, 0.99) AS p99_ms
FROM llm_calls WHERE duration_ms IS NOT NULL AND ts > now() - to_minutes(CAST(? AS INTEGER))
GROUP BY 1 ORDER BY calls DESC
"""


def read_window(minutes: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rates per minute, latency percentiles per model) over the last `minutes`, from the analytics snapshot;
    empty before the first one is published."""
    from workbench.store import analytics

    if analytics_generation()[0] is None:
        return pd.DataFrame(), pd.DataFrame()
    con = analytics.connect()
    try:
        return con.execute(_RATES, [minutes]).df(), con.execute(_LATENCY, [minutes]).df()
    finally:
        con.close()


def _worker_overlay(data: pd.DataFrame, column: str, workers: tuple[str, ...]):
    """One curve per worker."""
    curves = {w: hv.Curve(data[data["worker"] == w], "time", column, label=w) for w in workers}
    return hv.NdOverlay(curves, kdims="worker").opts(
        hv.opts.Curve(framewise=True, tools=["hover"]), hv.opts.NdOverlay(responsive=True, height=220, framewise=True))


def _no_data(text: str):
    return hv.Text(0, 0, text).opts(height=200, responsive=True, xaxis=None, yaxis=None, toolbar=None)


class MonitoringPage(Dashboard):
    route = "/monitoring"
    tick_ms = 1000
    max_age_s = 10.0  # worker metrics change without events: look again every 10 s (cache hits, no queries)

    window_min = param.Selector(default=60, objects=[15, 60, 360, 1440], doc="Look-back window (minutes)")

    def __init__(self, **params):
        super().__init__(**params)
        self.frames: dict[str, pd.DataFrame] = {}
        self.alerts_view: list[dict[str, Any]] = []
        self.empty = empty_state("No events in this window: running tasks, agent activity, event and error rates and "
                                 f"latency per model appear here as tasks run. Submit a task on the Tasks page, or: {DEMO_HINT}")
        self.event_charts = data_section()
        self.running = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, pagination="remote", page_size=6,
                                            sizing_mode="stretch_width", formatters={"open": {"type": "html"}})
        self.running_info = pn.pane.Markdown("")
        self.activity = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, height=240,
                                             sizing_mode="stretch_width")
        self.cluster = pn.pane.Markdown("")
        self.workers = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, height=120,
                                            sizing_mode="stretch_width")
        self.alerts = pn.pane.HTML("", sizing_mode="stretch_width")
        self.rate_plot = chart_pane()
        self.error_plot = chart_pane()
        self.latency_plot = chart_pane()
        self.cpu_plot = chart_pane()
        self.mem_plot = chart_pane()
        self.reload(force=False)

    def load(self, force: bool) -> dict[str, Any]:
        src, rt, window = self.source, self.source.rt, int(self.window_min)
        data: dict[str, Any] = {
            "running": src.fetch("mon:running", lambda: frame(src.tasks.active(RUNNING_LIMIT), ActiveTask), force=force),
            "activity": src.fetch("mon:activity", lambda: frame(src.tasks.activity(ACTIVITY_LIMIT), Activity),
                                  force=force),
        }
        # The snapshot changes with each sync (every 2 s while events come in): read at most every 5 s.
        data["rates"], data["latency"] = src.fetch(("mon:window", window), lambda: read_window(window), force=force,
                                                   min_interval=5, max_age=self.max_age_s, postgres=False)
        m = maintenance.instance()
        data["dask"] = m.sampler.sample(rt.client) if rt.client is not None else {}
        data["dask_error"] = m.sampler.error if rt.client is not None else "no Dask client in this process"
        data["dask_history"] = m.sampler.frame()
        if m.alerts is not None:
            # The maintenance thread evaluates on its own schedule; a page opened before its first round
            # (or a test) evaluates once, shared by every tab.
            fresh = m.alerts.last_check and time.time() - m.alerts.last_check < m.alerts.interval_s
            if force or not fresh:
                src.fetch("mon:alerts", lambda: m.alerts.check(rt.store), force=force, max_age=m.alerts.interval_s,
                          min_interval=m.alerts.interval_s)
            data["alerts"] = [s for s in m.alerts.states.values()]
        data["alerts_error"] = m.alerts_error
        return data

    def show(self, data: dict[str, Any]) -> None:
        running, rates, latency = data["running"], data["rates"], data["latency"]
        self.frames.update(running=running, activity=data["activity"], rates=rates, latency=latency,
                           dask_history=data["dask_history"])
        self.empty.visible = rates.empty and running.empty
        self.event_charts.visible = not self.empty.visible
        if self.should_render("running", running):
            shown = running.assign(open=[f'<a href="/tasks?id={i}">trace</a>' for i in running["id"]],
                                   id=[i[:8] for i in running["id"]]) if not running.empty else running
            for col in ("created_at", "started_at", "last_event_at"):
                if col in shown:
                    shown[col] = shown[col].astype(str).str[:19]
            self.running.value = shown
            n_proc = int((running["status"] == "processing").sum()) if not running.empty else 0
            self.running_info.object = f"**{len(running)}** unfinished task(s), **{n_proc}** processing"
        if self.should_render("activity", data["activity"]):
            activity = data["activity"].copy()
            if not activity.empty:
                activity["ts"] = activity["ts"].astype(str).str[11:23]
                activity["duration_ms"] = activity["duration_ms"].astype(float).round(1)
                activity["task_id"] = activity["task_id"].fillna("").str[:8]
            self.activity.value = activity
        self._show_cluster(data)
        self._show_alerts(data)
        self._show_charts(rates, latency, data["dask_history"])

    def _show_charts(self, rates: pd.DataFrame, latency: pd.DataFrame, hist: pd.DataFrame) -> None:
        window = f"last {self.window_min} min"
        if self.should_render("rates", (window, rates), chart=True):
            if rates.empty:
                for pane in (self.rate_plot, self.error_plot):
                    pane.object = _no_data(f"no events in the {window}")
            else:
                r = rates.assign(error_rate=(rates["llm_errors"] / rates["llm_calls"].where(rates["llm_calls"] > 0)).fillna(0))
                self.frames["rates"] = r
                self.rate_plot.object = r.hvplot.line(x="minute", y=["events", "errors"], ylabel="per minute",
                                                      responsive=True, height=230, title=f"event rate ({window})")
                self.error_plot.object = r.hvplot.line(x="minute", y="error_rate", ylabel="share of model calls failing",
                                                       responsive=True, height=230, color="#d62728",
                                                       title=f"model-call error rate ({window})")
        if self.should_render("latency", (window, latency), chart=True):
            if latency.empty:
                self.latency_plot.object = _no_data(f"no model calls in the {window}")
            else:
                long = latency.melt(id_vars=["model"], value_vars=["p50_ms", "p90_ms", "p95_ms", "p99_ms"],
                                    var_name="percentile", value_name="ms")
                self.latency_plot.object = long.hvplot.bar(x="model", y="ms", by="percentile", responsive=True,
                                                           height=260, rot=20,
                                                           title=f"latency percentiles per model ({window})")
        # Worker samples change every 2 s: redraw those two charts at most every 10 s. (A DynamicMap fed by a
        # Pipe would update in place, but one added to a live page breaks Bokeh's patch: "reference isn't known".)
        if not self.should_render("workers_history", hist, every_s=10.0, chart=True):
            return
        workers = tuple(sorted(hist["worker"].unique())) if not hist.empty else ()
        for column, pane, title in (("cpu_percent", self.cpu_plot, "CPU % per worker"),
                                    ("memory_mb", self.mem_plot, "memory (MiB) per worker")):
            pane.object = (_worker_overlay(hist, column, workers).opts(hv.opts.NdOverlay(title=title)) if workers
                           else _no_data("waiting for the first worker samples (every 2 s)"))

    def _show_cluster(self, data: dict[str, Any]) -> None:
        dask = data["dask"] or {}
        workers = pd.DataFrame(dask.get("workers") or [])
        if not workers.empty:
            workers = workers.drop(columns=["address"]).assign(
                resources=[", ".join(f"{k}={v}" for k, v in (r or {}).items()) for r in workers["resources"]],
                memory_mb=workers["memory_mb"].round(0))
        self.frames["workers"] = workers
        if self.should_render("workers", workers):
            self.workers.value = workers
        err = f" · ⚠️ {data['dask_error']}" if data.get("dask_error") else ""
        self.cluster.object = (f"**Dask** · {len(workers)} worker(s) · queue depth **{dask.get('queued', 0)}** queued, "
                               f"{dask.get('unrunnable', 0)} unrunnable, {dask.get('processing_total', 0)} processing"
                               f"{err}") if dask else f"**Dask** · no sample yet{err}"

    def _show_alerts(self, data: dict[str, Any]) -> None:
        if data.get("alerts_error"):
            self.alerts.object = f"<b>Alert rules could not be loaded:</b> {html.escape(str(data['alerts_error']))}"
            return
        rows = []
        self.alerts_view = []
        for s in data.get("alerts", []):
            value = "–" if s.value is None else f"{s.value:,.4g}"
            state = "FIRING" if s.firing else "ok"
            color = "#d62728" if s.firing else "#2ca02c"
            since = time.strftime("%H:%M:%S", time.localtime(s.since)) if s.since else "–"
            self.alerts_view.append({"rule": s.rule.name, "state": state, "value": s.value, "count": s.count})
            cells = [html.escape(str(c)) for c in (s.rule.name, s.rule.describe(), s.webhook or "")]
            rows.append(f"<tr><td>{cells[0]}</td><td>{cells[1]}</td><td>{value} (n={s.count})</td>"
                        f"<td style='color:{color};font-weight:700'>{state}</td><td>{since}</td><td>{cells[2]}</td></tr>")
        html_table = ("<table style='width:100%;border-collapse:collapse'><tr style='text-align:left'>"
                      "<th>rule</th><th>condition</th><th>value</th><th>state</th><th>since</th><th>webhook</th></tr>"
                      + "".join(rows) + "</table>") if rows else "no alert rules configured"
        if self.should_render("alerts", html_table):
            self.alerts.object = html_table

    @param.depends("window_min", watch=True)
    def _window_changed(self) -> None:
        self.reload(force=False)

    def body(self) -> list:
        frames = self.frames
        self.event_charts[:] = [
            pn.Row(chart_card("Event rate", self.rate_plot, csv_button("event_rate", lambda: frames["rates"])),
                   chart_card("Error rate", self.error_plot), sizing_mode="stretch_width"),
            chart_card("Latency percentiles per model", self.latency_plot,
                       csv_button("latency_by_model", lambda: frames["latency"])),
        ]
        return [
            pn.Row(pn.pane.Markdown("## Live monitoring"), pn.widgets.Select.from_param(self.param.window_min,
                                                                                        label="Window (min)", width=140)),
            self.empty,
            pn.Row(pn.Column(pn.pane.Markdown("#### Running tasks"), self.running_info, self.running,
                             sizing_mode="stretch_width"),
                   pn.Column(pn.pane.Markdown("#### Alerts"), self.alerts, sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            pn.Column(pn.pane.Markdown("#### Agent activity (newest events)"), self.activity, sizing_mode="stretch_width"),
            pn.Column(self.cluster, self.workers, sizing_mode="stretch_width"),
            pn.Row(chart_card("CPU per worker", self.cpu_plot, csv_button("worker_metrics", lambda: frames["dask_history"])),
                   chart_card("Memory per worker", self.mem_plot), sizing_mode="stretch_width"),
            self.event_charts,
        ]


@page("/monitoring", "Monitoring")
def monitoring_page():
    return MonitoringPage()
