"""Anomalies: the IsolationForest's flagged calls and tasks, why each is unusual, and a link to its trace.

Training reads the analytics snapshot and stores its scores in Postgres (workbench/analysis/anomaly.py);
this page reads the newest training of the chosen level from Postgres. "Retrain now" trains in a
background thread (one training at a time per process); the served app also retrains by itself after
RETRAIN_NEW_ROWS new rows or RETRAIN_EVERY_S (workbench/services/maintenance.py).
"""

from __future__ import annotations

import html
import threading
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param

from dashboards.layout import (
    DEMO_HINT,
    Dashboard,
    chart_card,
    chart_pane,
    csv_button,
    data_section,
    empty_state,
    served,
)
from dashboards.pages import page
from workbench.analysis import anomaly
from workbench.errors import WorkbenchError

_TRAINING = threading.Lock()  # one training at a time in this process, whichever tab asked


def _no_data(text: str):
    return hv.Text(0, 0, text).opts(height=220, responsive=True, xaxis=None, yaxis=None, toolbar=None)


class AnomaliesPage(Dashboard):
    route = "/anomalies"
    tick_ms = 2000
    max_age_s = 60.0

    level = param.Selector(default="call", objects=list(anomaly.LEVELS), doc="Score model calls or whole tasks")
    retrain = param.Event(doc="Train the detector now on the current history")

    def __init__(self, **params):
        super().__init__(**params)
        self.frames: dict[str, pd.DataFrame] = {"flagged": pd.DataFrame(), "scores": pd.DataFrame()}
        self.model: dict[str, Any] | None = None
        self.status = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.train_note = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.empty = empty_state("")
        self.charts = data_section()
        self.table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, pagination="remote", page_size=12,
                                          sizing_mode="stretch_width", formatters={"trace": {"type": "html"}})
        self.hist = chart_pane()
        self._served = served()
        self._trained_in_background = False
        self._note = ""
        self.reload(force=False)

    def load(self, force: bool) -> dict[str, Any]:
        src, store, level = self.source, self.source.rt.store, self.level

        def read():
            model = anomaly.latest(store, level)
            due = anomaly.should_retrain(store, level)
            return model, anomaly.flagged(store, level), anomaly.scores(store, level), due

        model, flagged, scores, due = src.fetch(("anomalies", level), read, force=force, min_interval=10,
                                                max_age=self.max_age_s)
        return {"model": model, "flagged": flagged, "scores": scores, "due": due}

    def wants_reload(self) -> bool:
        if self._trained_in_background:
            self._trained_in_background = False
            self._force_next = True
            return True
        return super().wants_reload()

    def show(self, data: dict[str, Any]) -> None:
        model, flagged, scores = data["model"], data["flagged"], data["scores"]
        self.model = model
        self.frames.update(flagged=flagged, scores=scores)
        self.train_note.object = self._note  # written by the training thread, shown from the page's own tick
        _, why = data["due"]
        auto = (f"Automatic retraining in the served app: after {anomaly.RETRAIN_NEW_ROWS[self.level]} new rows or "
                f"every {anomaly.RETRAIN_EVERY_S / 3600:g} h when anything new arrived (now: {why}).")
        if model is None:
            self.empty.object = (f"Not trained yet for {self.level}s. Needs at least {anomaly.MIN_ROWS[self.level]} "
                                 f"rows ({why}). Then this page lists the most unusual {self.level}s and their "
                                 f"scores. Press **Retrain now** once there are enough. {DEMO_HINT}")
            self.empty.visible = True
            self.charts.visible = False
            self.status.object = auto
            self.table.value = pd.DataFrame()
            self.hist.object = _no_data("not trained yet")
            return
        self.empty.visible = False
        self.charts.visible = True
        self.status.object = (
            f"**Trained** {str(model['trained_at'])[:19]} ({model['trigger']}) on **{model['rows']:,}** {self.level}s in "
            f"{model['duration_ms'] / 1000:.2f} s · **{model['flagged']:,} flagged** "
            f"({model['params']['contamination']:.0%} contamination) · features: {', '.join(model['features']['names'])}"
            f"\n\n{auto}")
        if self.should_render("scores_chart", model["id"], chart=True):
            self._draw_scores(model, scores)
        if not self.should_render("flagged", (model["id"], flagged[["row_key", "score"]])):
            return  # same training, same flagged rows: nothing to redraw
        if flagged.empty:
            self.table.value = pd.DataFrame()
        else:
            view = pd.DataFrame({
                "score": flagged["score"].round(3),
                "when": flagged["ts"].astype(str).str[:19],
                "task": [html.escape(str(t or "")[:60]) for t in flagged["title"]],
                "why unusual": flagged["why"],
                "trace": [f'<a href="/tasks?id={t}">trace</a>' if t else "(outside a task)" for t in flagged["task_id"]],
            })
            self.table.value = view

    def _draw_scores(self, model: dict[str, Any], scores: pd.DataFrame) -> None:
        if scores.empty:
            self.hist.object = _no_data("no scores")
        else:
            threshold = float(model["params"]["threshold"])
            self.hist.object = (hv.Histogram(np.histogram(scores["score"].astype(float), bins=40),
                                             kdims=["score"], vdims=["rows"])
                * hv.VLine(threshold).opts(color="#d62728", line_dash="dashed")).opts(
                responsive=True, height=240, title="anomaly score distribution (dashed: flag threshold)")

    @param.depends("level", watch=True)
    def _level_changed(self) -> None:
        self.reload(force=False)

    @param.depends("retrain", watch=True)
    def _on_retrain(self) -> None:
        if self._served:  # big histories take seconds: never on the server's event loop
            self.train_note.object = self._note = "_training…_"
            threading.Thread(target=self._train, daemon=True, name="anomaly-retrain").start()
        else:
            self._train()
            self.reload(force=True)

    def _train(self) -> None:
        """Runs in a thread when served: it only sets plain attributes, never touches widgets."""
        if not _TRAINING.acquire(blocking=False):
            self._note = "A training is already running; its result appears here when it ends."
        else:
            try:
                result = anomaly.train(self.source.rt.store, self.level, trigger="manual")
                self._note = (f"Retrained on {result.rows:,} {self.level}s in {result.duration_ms / 1000:.2f} s: "
                              f"{result.flagged} flagged.")
            except WorkbenchError as exc:
                self._note = f"⚠️ {exc}"
            except Exception as exc:  # Postgres down mid-training, etc.: say it, keep the page alive
                self._note = f"⚠️ training failed: {type(exc).__name__}: {exc}"
            finally:
                _TRAINING.release()
        self._trained_in_background = True

    def body(self) -> list:
        self.charts[:] = self._charts()
        return [
            pn.Row(pn.pane.Markdown("## Anomalies"),
                   pn.widgets.RadioButtonGroup.from_param(self.param.level, label="Level", color="light"),
                   pn.widgets.Button.from_param(self.param.retrain, label="Retrain now", color="primary", width=140)),
            self.empty, self.status, self.train_note, self.charts,
        ]

    def _charts(self) -> list:
        return [
            chart_card("Flagged (most unusual first)", self.table,
                       csv_button("anomalies_flagged", lambda: self.frames["flagged"].drop(columns=["features", "reasons"],
                                                                                           errors="ignore"))),
            chart_card("Scores", self.hist, csv_button("anomaly_scores", lambda: self.frames["scores"])),
        ]


@page("/anomalies", "Anomalies")
def anomalies_page():
    return AnomaliesPage()
