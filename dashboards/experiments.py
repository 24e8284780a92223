"""Experiments: every experiment with its progress, pass rate (Wilson 95 % interval), cost and time; two of
them side by side.

The comparison is `workbench.experiment.compare.compare`, the code `workbench experiment compare` prints,
formatted by the same helpers: the page and the CLI cannot disagree. The per-case diff lists the flipped
cases with each arm's task (a link to its trace on the Tasks page) and its output. Model output is data:
every value put into markup here is escaped, so a reply of `<script>…` shows those characters.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd
import panel as pn
import param

from dashboards.layout import Dashboard, empty_state, served
from dashboards.pages import page
from workbench.errors import WorkbenchError
from workbench.evals import stats
from workbench.experiment import compare as comparing
from workbench.experiment import records

RUN_HINT = ("No experiments yet. Run one: `workbench datasets import FILE.jsonl --name NAME`, then "
            "`workbench experiment run --dataset NAME --config a.yaml --config b.yaml`; this page lists it as "
            "its cases finish.")
PICK_HINT = "Choose two experiments of the same dataset version as A and B to compare them case by case."
OUTPUT_CHARS = 400  # of each arm's output in the per-case diff; the whole reply is in the task's trace
LIST_COLUMNS = ["name", "dataset", "config", "status", "done", "pass rate", "95% CI", "cost $", "mean ms",
                "median ms"]
ARM_COLUMNS = ["", "experiment", "model", "mode", "passed", "pass rate", "95% CI", "cost $", "tokens", "median ms",
               "total s"]


def _config_text(config: dict[str, Any] | None) -> str:
    """The settings that tell configurations apart, as one line (the full config is in `experiment show`)."""
    config = config or {}
    return ", ".join(f"{k}={v}" for k, v in config.items() if v is not None and k != "name")


def list_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per experiment, newest first: what `workbench experiment list` shows, plus the pass rate's
    Wilson interval over the finished cases and the mean case time."""
    out = []
    for r in rows:
        low, high = stats.wilson(r["passed"], r["done"]) if r["done"] else (None, None)
        out.append({
            "name": r["name"], "dataset": f"{r['dataset']} v{r['dataset_version']}",
            "config": _config_text(r.get("config")), "status": r["status"], "done": f"{r['done']}/{r['cases']}",
            "pass rate": comparing.pct(r["pass_rate"]),
            "95% CI": "-" if low is None else f"[{comparing.pct(low)}, {comparing.pct(high)}]",
            "cost $": f"{r['cost_usd']:.6f}",
            "mean ms": "-" if r.get("mean_ms") is None else f"{r['mean_ms']:.0f}",
            "median ms": "-" if r["median_ms"] is None else f"{r['median_ms']:.0f}"})
    return pd.DataFrame(out, columns=LIST_COLUMNS)


def arms_frame(c: comparing.Comparison) -> pd.DataFrame:
    """The two arms, cell for cell as `workbench experiment compare` prints them."""
    rows = []
    for label, arm in (("A", c.a), ("B", c.b)):
        rows.append([label, arm.name, arm.model or "default", arm.mode, f"{arm.passed}/{arm.cases}",
                     comparing.pct(arm.rate), f"[{comparing.pct(arm.interval[0])}, {comparing.pct(arm.interval[1])}]",
                     f"{arm.cost_usd:.6f}", str(arm.tokens),
                     "-" if arm.duration_ms_median is None else f"{arm.duration_ms_median:.0f}",
                     f"{arm.duration_ms_total / 1000:.1f}"])
    return pd.DataFrame(rows, columns=ARM_COLUMNS)


def difference_line(c: comparing.Comparison) -> str:
    return (f"difference B-A: {comparing.points(c.diff)} points, 95% CI [{comparing.points(c.diff_interval[0])}, "
            f"{comparing.points(c.diff_interval[1])}]; exact McNemar p = {c.p_value:.4g} "
            f"({len(c.fixed)} flipped to pass, {len(c.broken)} to fail)")


def _trace_link(task_id: str | None) -> str:
    if not task_id:
        return "-"
    quoted = html.escape(task_id, quote=True)
    return f'<a href="/tasks?id={quoted}">{html.escape(task_id[:8])}</a>'


def _output(text: str | None) -> str:
    text = text or ""
    shown = text[:OUTPUT_CHARS] + ("…" if len(text) > OUTPUT_CHARS else "")
    return f'<pre style="white-space:pre-wrap;margin:0;max-width:420px">{html.escape(shown)}</pre>'


def flips_html(c: comparing.Comparison, rows_a: dict[str, dict], rows_b: dict[str, dict]) -> str:
    """The flipped cases as an HTML table: every value escaped, the task ids linking to their traces."""
    if not c.fixed and not c.broken:
        return "<p>No case flipped: both experiments passed and failed the same cases.</p>"
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{h}</th>" for h in (
        "case", "flip", "task A", "output A", "task B", "output B"))
    body = []
    for flip, cases in (("fail→pass in B", c.fixed), ("pass→fail in B", c.broken)):
        for case in cases:
            a, b = rows_a.get(case, {}), rows_b.get(case, {})
            cells = [html.escape(case), flip, _trace_link(a.get("task_id")), _output(a.get("output")),
                     _trace_link(b.get("task_id")), _output(b.get("output"))]
            body.append("<tr>" + "".join(f"<td style='vertical-align:top;padding:2px 8px'>{x}</td>" for x in cells)
                        + "</tr>")
    return f"<table class='flips'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def read_comparison(store, a: str, b: str) -> dict[str, Any]:
    """compare()'s result and both arms' result rows (for the flipped cases' tasks and outputs), or the
    refusal's message (different datasets, an experiment that is gone)."""
    try:
        c = comparing.compare(store, a, b)
    except WorkbenchError as exc:
        return {"error": str(exc)}
    return {"comparison": c,
            "rows_a": {r["case_id"]: r for r in records.results(store, c.a.id)},
            "rows_b": {r["case_id"]: r for r in records.results(store, c.b.id)}}


class ExperimentsPage(Dashboard):
    route = "/experiments"
    max_age_s = 30.0

    a = param.Selector(default="", objects=[""], doc="Experiment A (the baseline)")
    b = param.Selector(default="", objects=[""], doc="Experiment B")

    def __init__(self, **params):
        super().__init__(**params)
        self.empty = empty_state(RUN_HINT)
        self.table = pn.widgets.Tabulator(pd.DataFrame(columns=LIST_COLUMNS), disabled=True, show_index=False,
                                          height=280, sizing_mode="stretch_width")
        self.compare_note = empty_state(PICK_HINT)
        self.arms = pn.widgets.Tabulator(pd.DataFrame(columns=ARM_COLUMNS), disabled=True, show_index=False,
                                         sizing_mode="stretch_width", visible=False)
        self.difference = pn.pane.HTML("", sizing_mode="stretch_width", visible=False)
        self.flips = pn.pane.HTML("", sizing_mode="stretch_width", visible=False)
        self.summaries: list[dict[str, Any]] = []
        self.comparison: comparing.Comparison | None = None
        if served() and pn.state.location is not None:
            query = pn.state.location.query_params
            self._wanted = (str(query.get("a") or ""), str(query.get("b") or ""))
        else:
            self._wanted = ("", "")
        self.reload(force=False)

    def load(self, force: bool) -> dict[str, Any]:
        store = self.source.rt.store
        data: dict[str, Any] = {"list": self.source.fetch(("experiments",), lambda: records.summaries(store),
                                                          force=force, max_age=self.max_age_s)}
        a, b = self.a or self._wanted[0], self.b or self._wanted[1]
        if a and b:
            data["pair"] = self.source.fetch(("experiments-compare", a, b), lambda: read_comparison(store, a, b),
                                             force=force, max_age=self.max_age_s)
        return data

    def show(self, data: dict[str, Any]) -> None:
        self.summaries = data["list"]
        names = [""] + [r["name"] for r in self.summaries]
        self.empty.visible = not self.summaries
        if self.should_render("list", list_frame(self.summaries)):
            self.table.value = list_frame(self.summaries)
        with param.parameterized.discard_events(self):  # setting the options is not a new choice
            self.param.a.objects = names
            self.param.b.objects = names
            for which, wanted in zip(("a", "b"), self._wanted):
                if wanted in names and not getattr(self, which):
                    setattr(self, which, wanted)
        self._show_pair(data.get("pair"))

    def _show_pair(self, pair: dict[str, Any] | None) -> None:
        shown = pair is not None and "comparison" in pair
        for pane in (self.arms, self.difference, self.flips):
            pane.visible = shown
        if pair is None:
            self.comparison = None
            self.compare_note.object, self.compare_note.alert_type = PICK_HINT, "info"
            self.compare_note.visible = True
            return
        if not shown:
            self.comparison = None
            self.compare_note.object, self.compare_note.alert_type = pair["error"], "warning"
            self.compare_note.visible = True
            return
        c = self.comparison = pair["comparison"]
        self.compare_note.visible = False
        self.arms.value = arms_frame(c)
        self.difference.object = (
            f"<p>dataset {html.escape(c.dataset)} v{c.dataset_version} · {c.paired_cases} cases finished by both</p>"
            f"<p class='difference'><b>{html.escape(difference_line(c))}</b></p>"
            f"<p style='color:#666;font-size:0.9em'>method: {html.escape(c.method)}</p>")
        self.flips.object = flips_html(c, pair["rows_a"], pair["rows_b"])

    @param.depends("a", "b", watch=True)
    def _pair_changed(self) -> None:
        self._wanted = (self.a, self.b)  # the user's choice now, not the address it was opened with
        if served() and pn.state.location is not None:
            pn.state.location.update_query(a=self.a, b=self.b)
        self.reload(force=False)

    def body(self) -> list:
        return [
            pn.pane.Markdown("## Experiments"), self.empty, self.table,
            pn.pane.Markdown("### Compare two experiments"),
            pn.Row(pn.widgets.Select.from_param(self.param.a, name="A", width=320),
                   pn.widgets.Select.from_param(self.param.b, name="B", width=320)),
            self.compare_note, self.arms, self.difference,
            pn.pane.Markdown("#### Flipped cases (each task opens its trace)"), self.flips,
        ]


@page("/experiments", "Experiments")
def experiments_page():
    return ExperimentsPage()
