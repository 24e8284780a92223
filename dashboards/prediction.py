"""Prediction and failure analysis: how well a task's duration and cost can be predicted before it runs
(measured on held-out history), and failed tasks grouped by error signature.

Both read the analytics snapshot (completed and failed tasks with their events). The predictor is the
one the Tasks page's submit form uses (one fit per process, shared, refreshed every 10 minutes or on
"Refit now"); see workbench/analysis/predict.py and failures.py.
"""

from __future__ import annotations

import html
from typing import Any

import holoviews as hv
import hvplot.pandas  # noqa: F401
import pandas as pd
import panel as pn
import param

from dashboards.layout import DEMO_HINT, Dashboard, chart_card, chart_pane, csv_button, data_section, empty_state, money
from dashboards.pages import page
from dashboards.source import analytics_generation
from workbench.analysis import failures, predict
from workbench.errors import WorkbenchError


def _no_data(text: str):
    return hv.Text(0, 0, text).opts(height=220, responsive=True, xaxis=None, yaxis=None, toolbar=None)


def fit_predictor():
    try:
        return predict.fit()
    except WorkbenchError as exc:  # not enough history (or no snapshot yet): the page says which
        return str(exc)


def get_predictor(source, force: bool = False):
    """The process's predictor (or why there is none), shared by every tab: refit every 10 minutes, or
    after 30 s while there is none yet (the history may have just grown past MIN_TASKS)."""
    key = ("predictor",)
    if not force and isinstance(source.peek(key), str) and source.age(key) > 30:
        force = True
    return source.fetch(key, fit_predictor, force=force, max_age=600, min_interval=600, postgres=False)


class PredictionPage(Dashboard):
    route = "/prediction"
    tick_ms = 3000
    max_age_s = 120.0

    refit = param.Event(doc="Refit the duration/cost predictor on the current history")

    def __init__(self, **params):
        super().__init__(**params)
        self.frames: dict[str, pd.DataFrame] = {"report": pd.DataFrame(), "holdout": pd.DataFrame(),
                                                "clusters": pd.DataFrame()}
        self.predictor_status = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.report = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, sizing_mode="stretch_width")
        self.scatter = chart_pane()
        self.failures_empty = empty_state("No failed tasks in the history. (Good.) Failed tasks appear here grouped "
                                          "by error signature.")
        self.predictor_charts = data_section()
        self.failure_charts = data_section()
        self.clusters_chart = chart_pane()
        self.clusters = pn.pane.HTML("", sizing_mode="stretch_width")
        self._generation = None
        self.reload(force=False)

    def wants_reload(self) -> bool:
        return analytics_generation()[0] != self._generation or super().wants_reload()

    def load(self, force: bool) -> dict[str, Any]:
        generation, _ = analytics_generation()
        self._generation = generation
        if generation is None:
            return {"predictor": "No analytics snapshot yet (the server syncs every 2 s). " + DEMO_HINT,
                    "clusters": pd.DataFrame()}
        src = self.source
        predictor = get_predictor(src, force)
        clusters = src.fetch("failures", lambda: failures.clusters(failures.failed_tasks()), version=generation,
                             max_age=self.max_age_s, min_interval=self.max_age_s, postgres=False)
        return {"predictor": predictor, "clusters": clusters}

    def show(self, data: dict[str, Any]) -> None:
        p = data["predictor"]
        if self.should_render("predictor", p if isinstance(p, str) else (p.trained_at, p.trained_on)):
            self._show_predictor(p)
        if self.should_render("scatter", p if isinstance(p, str) else (p.trained_at, p.trained_on), chart=True):
            self._draw_scatter(p)
        if self.should_render("clusters", data["clusters"]):
            self._show_clusters(data["clusters"])
        if self.should_render("clusters_chart", data["clusters"], chart=True):
            self._draw_clusters(data["clusters"])

    def _show_predictor(self, p) -> None:
        if isinstance(p, str):
            self.predictor_status.object = (f"**Predictor not available:** {p} Once enough tasks have completed, "
                                            "this page shows how well their duration and cost are predicted.")
            self.predictor_charts.visible = False
            self.report.value = pd.DataFrame()
            self.frames["report"] = self.frames["holdout"] = pd.DataFrame()
            return
        rows = []
        for target, r in p.report.items():
            fmt = (lambda v: f"{v:.2f} s") if target == "duration_s" else money
            rows.append({"target": target, "held-out tasks": r["test_rows"], "trained on": r["train_rows"],
                         "MAE": fmt(r["mae"]), "median-guess MAE": fmt(r["baseline_mae"]),
                         "median relative error": f"{r['median_relative_error']:.0%}" if pd.notna(r["median_relative_error"]) else "–",
                         "better than guessing": "yes" if r["mae"] < r["baseline_mae"] else "no"})
        report = pd.DataFrame(rows)
        self.frames["report"], self.frames["holdout"] = report, p.holdout
        self.predictor_charts.visible = True
        self.report.value = report
        self.predictor_status.object = (
            f"Random forest on {p.trained_on} completed tasks (features: prompt size and shape, model, approve-plan, "
            f"budget set). Error measured on the newest {predict.HOLDOUT:.0%} of history, which the model did not see; "
            f"the served model is then refit on everything. It is shown on the Tasks page's submit form.")

    def _draw_scatter(self, p) -> None:
        if isinstance(p, str):
            self.scatter.object = _no_data("not enough history")
            return
        h = p.holdout
        plots = []
        for target, unit in (("duration_s", "s"), ("cost_usd", "USD")):
            a, b = f"{target}_actual", f"{target}_predicted"
            top = float(max(h[a].max(), h[b].max(), 1e-12))
            plots.append(h.hvplot.scatter(x=a, y=b, hover_cols=["title"], title=f"{target}: predicted vs actual ({unit})",
                                           responsive=True, height=260, size=60)
                          * hv.Curve([(0, 0), (top, top)]).opts(color="#999", line_dash="dashed"))
        self.scatter.object = hv.Layout(plots).cols(2)

    def _show_clusters(self, clusters: pd.DataFrame) -> None:
        self.frames["clusters"] = clusters
        self.failures_empty.visible = clusters.empty
        self.failure_charts.visible = not clusters.empty
        if clusters.empty:
            self.clusters.object = ""
            return
        rows = []
        for _, r in clusters.iterrows():
            links = " ".join(f'<a href="/tasks?id={t}">{t[:8]}</a>' for t in r["example_task_ids"])
            rows.append(f"<tr><td><code>{html.escape(r['signature'])}</code></td><td>{r['count']}</td>"
                        f"<td>{str(r['first_seen'])[:19]}</td><td>{str(r['last_seen'])[:19]}</td><td>{links}</td>"
                        f"<td>{html.escape(r['example_error'][:200])}</td></tr>")
        self.clusters.object = ("<table style='width:100%;border-collapse:collapse'><tr style='text-align:left'>"
                                "<th>signature</th><th>count</th><th>first</th><th>last</th><th>examples</th><th>example error</th>"
                                "</tr>" + "".join(rows) + "</table>")

    def _draw_clusters(self, clusters: pd.DataFrame) -> None:
        if clusters.empty:
            self.clusters_chart.object = _no_data("no failed tasks")
            return
        c = clusters.assign(label=[s[:50] for s in clusters["signature"]])
        self.clusters_chart.object = c.iloc[::-1].hvplot.barh(x="label", y="count", title="failed tasks by error signature",
                                                              responsive=True, height=60 + 26 * len(c), hover_cols=["signature"])

    @param.depends("refit", watch=True)
    def _on_refit(self) -> None:
        self.reload(force=True)

    def body(self) -> list:
        self.predictor_charts[:] = [
            chart_card("Held-out error", self.report, csv_button("prediction_error", lambda: self.frames["report"])),
            chart_card("Predicted vs actual (held-out tasks)", self.scatter,
                       csv_button("prediction_holdout", lambda: self.frames["holdout"]))]
        self.failure_charts[:] = [
            chart_card("Signatures", self.clusters_chart, csv_button("failure_clusters", lambda: self.frames["clusters"])),
            self.clusters]
        return [
            pn.Row(pn.pane.Markdown("## Prediction and failure analysis"),
                   pn.widgets.Button.from_param(self.param.refit, label="Refit now", color="primary", width=120)),
            self.predictor_status, self.predictor_charts,
            pn.pane.Markdown("### Failures by error signature"), self.failures_empty, self.failure_charts,
        ]


@page("/prediction", "Prediction")
def prediction_page():
    return PredictionPage()
