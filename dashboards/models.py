"""Models and health: `workbench doctor` results, every model with whether it is usable, a switcher for
the served default model, and provider health over time.

Doctor results are the same checks `workbench doctor` and /health run (workbench/health.py); each run
started here is recorded as a `health_check` event, so their history is in the store, and the page reads
it from the analytics snapshot (it shows a run once the next sync has published it, within seconds).
Provider health over time is every model call in the analytics snapshot, per provider and hour: calls,
error rate, median latency.
"""

from __future__ import annotations

import html
import os
import threading
from typing import Any

import holoviews as hv
import hvplot.pandas  # noqa: F401
import pandas as pd
import panel as pn
import param

from dashboards.layout import Dashboard, chart_card, chart_pane, csv_button, data_section, empty_state, served
from dashboards.pages import page
from dashboards.source import analytics_generation
from workbench.errors import WorkbenchError

_PROVIDER_HEALTH = """
SELECT date_trunc('hour', ts) AS hour, split_part(coalesce(model, '?'), ':', 1) AS provider, count(*) AS calls,
       count(error) AS errors, count(error) / count(*) AS error_rate, quantile_cont(duration_ms, 0.5) AS p50_ms
FROM llm_calls GROUP BY ALL ORDER BY hour
"""
_DOCTOR_HISTORY = """
SELECT ts, payload->>'scope' AS scope, CAST(payload->>'failed' AS INTEGER) AS failed,
       CAST(payload->>'checks' AS INTEGER) AS checks, payload->>'failed_names' AS failed_names
FROM events WHERE kind = 'health_check' ORDER BY seq DESC LIMIT 20
"""
_DOCTOR = threading.Lock()


def _set_model_env(name: str) -> str:
    """Runs on each Dask worker: tasks without an explicit model use the new default from now on."""
    from workbench.config import reload_settings

    os.environ["WORKBENCH_MODEL"] = name
    return reload_settings().model


def switch_default(name: str, client=None) -> str:
    """Make `name` the served default model (this process and its current Dask workers); recorded as an event."""
    from workbench import providers, telemetry
    from workbench.config import get_settings, reload_settings

    full = providers.resolve(name)
    providers.get_model(full)  # UnknownModelError lists the available names
    old = get_settings().model
    os.environ["WORKBENCH_MODEL"] = full
    reload_settings()
    if client is not None:
        client.run(_set_model_env, full)
    telemetry.emit("config", agent="dashboard", payload={"setting": "model", "from": old, "to": full})
    return full


_LAST_RECORDED: dict[str, tuple[str, ...]] = {}


def run_doctor(heavy: bool) -> pd.DataFrame:
    """Run the checks; record a `health_check` event for every full run and whenever the light checks'
    failures changed (a page open all day must not write an identical event every minute)."""
    from workbench import doctor, telemetry

    results = doctor.run_all(include_heavy=heavy)
    df = pd.DataFrame([r.as_dict() for r in results], columns=["name", "status", "detail", "fix", "duration_ms"])
    failed = tuple(df[df["status"] == "fail"]["name"])
    scope = "full" if heavy else "light"
    if heavy or _LAST_RECORDED.get(scope) != failed:
        _LAST_RECORDED[scope] = failed
        telemetry.emit("health_check", agent="doctor", payload={
            "scope": scope, "checks": len(df), "failed": len(failed), "failed_names": ", ".join(failed),
            "results": df.to_dict("records")})
    return df


class ModelsPage(Dashboard):
    route = "/models"
    tick_ms = 3000
    max_age_s = 120.0

    default_model = param.Selector(default=None, objects=[], doc="Model to serve by default")
    make_default = param.Event(doc="Switch the served default to the chosen model")
    full_doctor = param.Event(doc="Run every check, including the ones that load the model")

    def __init__(self, **params):
        from dashboards.chat import usable_models

        models = usable_models()
        self.param.default_model.objects = models
        params.setdefault("default_model", models[0])
        super().__init__(**params)
        self.frames: dict[str, pd.DataFrame] = {"doctor": pd.DataFrame(), "models": pd.DataFrame(),
                                                "provider_health": pd.DataFrame(), "doctor_history": pd.DataFrame()}
        self.current = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.switch_note = pn.pane.Markdown("")
        self.doctor = pn.pane.HTML("", sizing_mode="stretch_width")
        self.doctor_note = pn.pane.Markdown("")
        self.doctor_history = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, height=180,
                                                   sizing_mode="stretch_width")
        self.models = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, height=260,
                                           sizing_mode="stretch_width")
        self.health_empty = empty_state("No model calls recorded yet: provider health (success rate and latency "
                                        "per provider over time) appears after the first calls.")
        self.health_charts = data_section()
        self.health_plot = chart_pane()
        self._served = served()
        self._doctor_result: pd.DataFrame | None = None
        self._doctor_done = False
        self._note = ""
        self._generation = None  # of the analytics snapshot last read
        self.reload(force=False)

    def load(self, force: bool) -> dict[str, Any]:
        from workbench import providers
        from workbench.config import get_settings

        src = self.source
        data: dict[str, Any] = {"default": get_settings().model}
        if self._doctor_result is not None:
            data["doctor"] = self._doctor_result
        elif not self._served or self._loaded_at:  # a served tab runs them on its first tick: quick first render
            # The light checks, shared by all tabs for a minute.
            data["doctor"] = src.fetch("doctor:light", lambda: run_doctor(False), max_age=60, min_interval=60,
                                       postgres=False, force=force)
        data["models"] = src.fetch("models:list", lambda: pd.DataFrame(
            [{"name": i.name, "provider": i.provider, "usable": i.usable, "reason": i.reason, "context": i.context,
              "price": i.price, "aliases": ", ".join(i.aliases), "source": i.source} for i in providers.list_models()]),
            max_age=60, min_interval=60, postgres=False, force=force)
        generation, _ = analytics_generation()
        self._generation = generation
        if generation is not None:
            from workbench.store import analytics

            for name, sql in (("doctor_history", _DOCTOR_HISTORY), ("provider_health", _PROVIDER_HEALTH)):
                data[name] = src.fetch(name, lambda sql=sql: analytics.query(sql), version=generation, force=force,
                                       max_age=self.max_age_s, min_interval=self.max_age_s, postgres=False)
        else:
            data["doctor_history"] = data["provider_health"] = pd.DataFrame()
        return data

    def wants_reload(self) -> bool:
        if self._doctor_done:
            self._doctor_done = False
            self._force_next = True
            return True
        # A new snapshot may hold a doctor run or model calls this page has not shown yet.
        return analytics_generation()[0] != self._generation or super().wants_reload()

    def show(self, data: dict[str, Any]) -> None:
        self.frames.update({k: data[k] for k in ("models", "provider_health", "doctor_history")})
        self.current.object = f"**Served default model:** `{data['default']}` (new tasks and chats use it)"
        self.doctor_note.object = self._note
        doc = data.get("doctor")
        if doc is None:
            self.doctor.object = "<i>running the checks…</i>"
            doc = pd.DataFrame(columns=["name", "status", "detail", "fix", "duration_ms"])
        self.frames["doctor"] = doc
        rows = []
        for _, r in doc.iterrows():
            color = {"ok": "#2ca02c", "fail": "#d62728", "unavailable": "#d68a00"}.get(r["status"], "#888")
            # details quote stderr, paths and model names: text, never markup
            cells = [html.escape(str(r[k] or "")) for k in ("name", "status", "detail", "fix")]
            rows.append(f"<tr><td>{cells[0]}</td><td style='color:{color};font-weight:700'>{cells[1]}</td>"
                        f"<td>{cells[2]}</td><td>{cells[3]}</td><td>{r['duration_ms']:.0f} ms</td></tr>")
        if rows and self.should_render("doctor", doc):
            self.doctor.object = ("<table style='width:100%;border-collapse:collapse'><tr style='text-align:left'><th>check</th>"
                                  "<th>status</th><th>detail</th><th>fix</th><th>took</th></tr>" + "".join(rows) + "</table>")
        if self.should_render("models", data["models"]):
            self.models.value = data["models"]
        hist = data["doctor_history"].copy()
        if not hist.empty:
            hist["ts"] = hist["ts"].astype(str).str[:19]
        if self.should_render("doctor_history", hist):
            self.doctor_history.value = hist
        ph = data["provider_health"]
        self.health_empty.visible = ph.empty
        self.health_charts.visible = not ph.empty
        if not self.should_render("provider_health", ph, chart=True):
            return
        if ph.empty:
            self.health_plot.object = hv.Text(0, 0, "no model calls yet").opts(height=200, responsive=True)
        else:
            self.health_plot.object = (
                ph.hvplot.line(x="hour", y="error_rate", by="provider", title="error rate per provider and hour",
                               responsive=True, height=240, ylim=(0, 1.05), hover_cols=["calls", "errors"])
                + ph.hvplot.line(x="hour", y="p50_ms", by="provider", title="median latency (ms) per provider and hour",
                                 responsive=True, height=240, hover_cols=["calls"])).cols(2)

    @param.depends("make_default", watch=True)
    def _on_make_default(self) -> None:
        rt = self.source.rt if self.source is not None else None
        try:
            full = switch_default(self.default_model, getattr(rt, "client", None))
        except WorkbenchError as exc:
            self.switch_note.object = f"⚠️ {exc}"
            return
        self.switch_note.object = f"The served default is now `{full}`."
        self.reload(force=False)

    @param.depends("full_doctor", watch=True)
    def _on_full_doctor(self) -> None:
        if self._served:  # the heavy checks load the model: seconds, never on the event loop
            self.doctor_note.object = self._note = "_running every check (loads the default model)…_"
            threading.Thread(target=self._doctor, daemon=True, name="doctor").start()
        else:
            self._doctor()
            self.reload(force=True)

    def _doctor(self) -> None:
        """May run in a thread: sets plain attributes only; the tick shows them."""
        with _DOCTOR:
            try:
                self._doctor_result = run_doctor(True)
                note = "Full doctor run finished."
            except Exception as exc:  # the store may be down: the checks still report in the table
                note = f"⚠️ doctor failed: {type(exc).__name__}: {exc}"
        self._note = note
        self._doctor_done = True

    def body(self) -> list:
        self.health_charts[:] = [chart_card("Provider health over time", self.health_plot,
                                            csv_button("provider_health", lambda: self.frames["provider_health"]))]
        return [
            pn.pane.Markdown("## Models and health"),
            self.current,
            pn.Row(pn.widgets.Select.from_param(self.param.default_model, label="Default model", width=320),
                   pn.widgets.Button.from_param(self.param.make_default, label="Make default", color="primary",
                                                width=130, margin=(22, 5)), self.switch_note),
            chart_card("Doctor", pn.Column(self.doctor, self.doctor_note, sizing_mode="stretch_width"),
                       csv_button("doctor", lambda: self.frames["doctor"])),
            pn.Row(pn.widgets.Button.from_param(self.param.full_doctor, label="Run full doctor", color="light",
                                                width=160)),
            chart_card("Doctor runs (recorded in the store)", self.doctor_history,
                       csv_button("doctor_runs", lambda: self.frames["doctor_history"])),
            chart_card("Models", self.models, csv_button("models", lambda: self.frames["models"])),
            self.health_empty, self.health_charts,
        ]


@page("/models", "Models")
def models_page():
    return ModelsPage()
