"""Pipelines: each pipeline's schedule with its next and last run, the recent runs, and one run in full:
its parameters, the failing cell and error if it failed, and the rendered notebook.

The rendering is the HTML nbconvert stored next to the executed notebook. It comes from a notebook's
outputs, which can hold anything a cell printed, so it is never put into this page: it is shown in an
iframe with `sandbox=""` (no scripts, no forms, an origin of its own) through `srcdoc`, escaped. Only a
file under WORKBENCH_HOME/pipelines/runs/ is read, whatever path a row names.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import panel as pn
import param

from dashboards.layout import Dashboard, empty_state, served
from dashboards.pages import page
from workbench.config import get_settings
from workbench.pipelines import history, spec

RUNS_LIMIT = 50
MAX_RENDERING_BYTES = 8 * 1024 * 1024  # larger renderings are named, not shipped to every tab
NO_PIPELINES = ("No pipelines: add a `pipelines/NAME.yaml` naming a notebook, its parameters and a cron "
                "`schedule:` (see pipelines/execution_report.yaml).")
NO_RUNS = ("No pipeline runs yet. Run one now with `workbench pipelines run execution_report` (or "
           "`workbench pipelines run NAME -p key=value`); `workbench serve` runs the scheduled ones, and "
           "`workbench pipelines schedule` says when.")
SCHEDULER_OFF = ("The scheduler is off in this server (WORKBENCH_PIPELINES_SCHEDULER=false): no schedule fires. "
                 "Set it to true and restart `workbench serve`, or run a pipeline by hand with "
                 "`workbench pipelines run NAME`.")
PIPELINE_COLUMNS = ["pipeline", "schedule (UTC)", "next run", "last run", "last status", "last duration s",
                    "description"]
RUN_COLUMNS = ["run", "pipeline", "trigger", "status", "started", "duration s", "failed cell", "error"]


def _when(value: Any) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else "-"


def _seconds(ms: float | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.1f}"


def pipelines_frame(pipelines: list[spec.Pipeline], runs: list[dict[str, Any]], now: datetime,
                    scheduler_on: bool = True) -> pd.DataFrame:
    last = {}
    for run in runs:  # newest first
        last.setdefault(run["pipeline"], run)
    rows = []
    for p in pipelines:
        nxt = p.next_runs(now) if p.spec.enabled and scheduler_on else []
        run = last.get(p.name, {})
        rows.append({"pipeline": p.name, "schedule (UTC)": (p.spec.schedule or "manual only")
                     + ("" if p.spec.enabled else " (disabled)"),
                     "next run": _when(nxt[0]) if nxt else "-", "last run": _when(run.get("started_at")),
                     "last status": run.get("status", "never run"),
                     "last duration s": _seconds(run.get("duration_ms")), "description": p.spec.description})
    return pd.DataFrame(rows, columns=PIPELINE_COLUMNS)


def runs_frame(runs: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{"run": str(r["id"]), "pipeline": r["pipeline"], "trigger": r["trigger"], "status": r["status"],
             "started": _when(r["started_at"]), "duration s": _seconds(r["duration_ms"]),
             "failed cell": "-" if r["failed_cell"] is None else str(r["failed_cell"]),
             "error": (r["error"] or "")[:120]} for r in runs]
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def _run_file(path: str, home: Path) -> Path | None:
    """The file, if it lies under WORKBENCH_HOME/pipelines/runs/ (a row's path is never trusted further)."""
    file = Path(path).resolve()
    return file if file.is_relative_to((home / "pipelines" / "runs").resolve()) else None


def failing_source(run: dict[str, Any], home: Path) -> str | None:
    """The source of the cell that failed: the executed notebook's cell with an error output (papermill also
    adds cells of its own, an injected-parameters cell and an error banner, so the index is not used here)."""
    if run.get("failed_cell") is None or not run.get("output_notebook"):
        return None
    file = _run_file(run["output_notebook"], home)
    if file is None:
        return None
    import nbformat

    try:
        cells = nbformat.read(str(file), as_version=4).cells
    except Exception:  # noqa: BLE001 - an unreadable notebook only loses this extra line
        return None
    failed = [c for c in cells if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    return failed[0].source if failed else None


def rendering(path: str | None, home: Path) -> tuple[str | None, str]:
    """(the stored HTML, or None; a line saying why there is none)."""
    if not path:
        return None, "This run stored no HTML rendering (the notebook did not produce an executed copy)."
    file = _run_file(path, home)
    if file is None:
        return None, f"The rendering's path {path} is outside this home's pipelines/runs/; it is not shown."
    try:
        size = file.stat().st_size
        if size > MAX_RENDERING_BYTES:
            return None, f"The rendering is {size / 1e6:.1f} MB, too large to show here: open {file}."
        return file.read_text(encoding="utf-8", errors="replace"), ""
    except OSError as exc:
        return None, f"The rendering {file} cannot be read here ({exc.strerror or exc}): was the run on another machine?"


def sandboxed(document: str) -> str:
    """The rendering in an iframe that runs no script and shares no origin with the page."""
    return (f'<iframe class="notebook" sandbox="" referrerpolicy="no-referrer" srcdoc="{html.escape(document, quote=True)}" '
            f'style="width:100%;height:900px;border:1px solid #ddd"></iframe>')


def run_detail_html(run: dict[str, Any], cell_source: str | None = None) -> str:
    """Status, parameters, the failing cell and its error: every value escaped."""
    params = json.dumps(run["parameters"], indent=2, sort_keys=True, default=str)
    parts = [f"<p><b>{html.escape(run['pipeline'])}</b> run {html.escape(str(run['id']))} · "
             f"{html.escape(run['status'])} · trigger {html.escape(run['trigger'])} · started "
             f"{_when(run['started_at'])} · {_seconds(run['duration_ms'])} s</p>",
             f"<p>parameters:</p><pre class='parameters'>{html.escape(params)}</pre>"]
    if run["status"] == "failed":
        cell = "-" if run["failed_cell"] is None else str(run["failed_cell"])
        parts.append(f"<p style='color:#a00'>failed in cell {cell} (counting the notebook's own cells from 0):</p>"
                     + (f"<pre class='cell' style='white-space:pre-wrap;background:#f6f6f6'>{html.escape(cell_source)}"
                        f"</pre>" if cell_source is not None else "")
                     + f"<pre class='error' style='white-space:pre-wrap;color:#a00'>{html.escape(run['error'] or '')}"
                     f"</pre>")
    return "".join(parts)


class PipelinesPage(Dashboard):
    route = "/pipelines"
    max_age_s = 15.0

    run_id = param.String(default="", doc="The run shown in full (a row of the runs table, or ?run= in the URL)")

    def __init__(self, root: Path | None = None, **params):
        self.root = root
        super().__init__(**params)
        self.empty = empty_state(NO_PIPELINES)
        self.runs_empty = empty_state(NO_RUNS)
        self.scheduler_off = empty_state(SCHEDULER_OFF)
        self.broken = pn.pane.Alert("", alert_type="warning", visible=False, sizing_mode="stretch_width")
        self.pipelines = pn.widgets.Tabulator(pd.DataFrame(columns=PIPELINE_COLUMNS), disabled=True, show_index=False,
                                              sizing_mode="stretch_width")
        self.runs = pn.widgets.Tabulator(pd.DataFrame(columns=RUN_COLUMNS), disabled=True, show_index=False,
                                         height=260, sizing_mode="stretch_width", selectable=1)
        self.runs.on_click(self._clicked)
        self.detail = pn.pane.HTML("", sizing_mode="stretch_width", visible=False)
        self.notebook = pn.pane.HTML("", sizing_mode="stretch_width", visible=False)
        self.notebook_note = pn.pane.Alert("", alert_type="info", visible=False, sizing_mode="stretch_width")
        self.frames: dict[str, pd.DataFrame] = {}
        if served() and pn.state.location is not None and pn.state.location.query_params.get("run"):
            self.run_id = str(pn.state.location.query_params["run"])
        self.reload(force=False)

    def load(self, force: bool) -> dict[str, Any]:
        store, home = self.source.rt.store, Path(get_settings().home)
        pipelines, errors = spec.load_all(self.root)
        runs = self.source.fetch(("pipeline-runs",), lambda: history.recent(store, limit=RUNS_LIMIT), force=force,
                                 max_age=self.max_age_s)
        data: dict[str, Any] = {"pipelines": pipelines, "errors": [str(e) for e in errors], "runs": runs}
        if self.run_id:
            run = next((r for r in runs if str(r["id"]) == self.run_id), None)
            if run is None:
                run = self.source.fetch(("pipeline-run", self.run_id), lambda: _get(store, self.run_id), force=force,
                                        max_age=self.max_age_s)
            data["run"] = run
            data["rendering"] = rendering(run.get("output_html"), home) if run else (None, "")
            data["cell_source"] = failing_source(run, home) if run else None
        return data

    def show(self, data: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        self.empty.visible = not data["pipelines"]
        self.broken.object = "\n\n".join(data["errors"])
        self.broken.visible = bool(data["errors"])
        scheduler_on = get_settings().pipelines_scheduler
        self.scheduler_off.visible = not scheduler_on
        self.pipelines.value = pipelines_frame(data["pipelines"], data["runs"], now, scheduler_on)
        self.frames["runs"] = runs_frame(data["runs"])
        if self.should_render("runs", self.frames["runs"]):
            self.runs.value = self.frames["runs"]
        self.runs_empty.visible = not data["runs"]
        self._show_run(data)

    def _show_run(self, data: dict[str, Any]) -> None:
        run = data.get("run")
        if not self.run_id:
            self.detail.visible = self.notebook.visible = self.notebook_note.visible = False
            return
        if run is None:
            self.detail.object = f"<p>No pipeline run {html.escape(self.run_id)}: choose one in the table above.</p>"
            self.detail.visible, self.notebook.visible, self.notebook_note.visible = True, False, False
            return
        self.detail.object = run_detail_html(run, data.get("cell_source"))
        self.detail.visible = True
        document, why = data["rendering"]
        if self.should_render("notebook", (self.run_id, len(document or ""), why)):
            self.notebook.object = sandboxed(document) if document is not None else ""
        self.notebook.visible = document is not None
        self.notebook_note.object, self.notebook_note.visible = why, document is None

    def _clicked(self, event) -> None:
        frame = self.frames.get("runs")
        if frame is not None and event.row is not None and event.row < len(frame):
            self.run_id = str(frame["run"].iloc[event.row])

    @param.depends("run_id", watch=True)
    def _run_changed(self) -> None:
        if served() and pn.state.location is not None:
            pn.state.location.update_query(run=self.run_id)
        self.reload(force=False)

    def body(self) -> list:
        return [pn.pane.Markdown("## Pipelines"), self.empty, self.broken, self.scheduler_off, self.pipelines,
                pn.pane.Markdown("### Recent runs (click one to see it in full)"), self.runs_empty, self.runs,
                self.detail, self.notebook_note, self.notebook]


def _get(store, run_id: str) -> dict[str, Any] | None:
    import uuid

    try:
        uuid.UUID(run_id)
    except ValueError:
        return None  # not a run id at all: nothing to look up
    return history.get(store, run_id)


@page("/pipelines", "Pipelines")
def pipelines_page():
    return PipelinesPage()
