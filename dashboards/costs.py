"""Cost analytics: cost and tokens by model, agent, task kind and day; local versus cloud; cost per
successful task; budget burn; the most expensive tasks. Every chart has a CSV download of its own data
(PNG: the chart toolbar's save tool, rendered by the browser, offline).

All numbers come from the analytics snapshot (DuckDB over the Parquet files the server's sync publishes
every 2 s from Postgres), so this page never loads Postgres however long the history is. The cache key is
the snapshot generation: every tab re-reads only after a new snapshot.
"""

from __future__ import annotations

from typing import Any

import holoviews as hv
import hvplot.pandas  # noqa: F401
import pandas as pd
import panel as pn
import param

from dashboards.layout import DEMO_HINT, Dashboard, chart_card, chart_pane, csv_button, data_section, empty_state, money
from dashboards.pages import page
from dashboards.source import analytics_generation

_WHERE = "ts >= now() - to_days(CAST(? AS INTEGER))"
_ORIGIN = ("CASE WHEN model LIKE 'local:%' THEN 'local (CPU-seconds)' WHEN model LIKE 'test:%' THEN 'test (deterministic)'"
           " WHEN model IS NULL THEN '(unknown)' ELSE 'cloud (price table)' END")
QUERIES = {
    "by_model": f"""SELECT coalesce(model, '(none)') AS model, count(*) AS calls, coalesce(sum(tokens_in), 0) AS tokens_in,
        coalesce(sum(tokens_out), 0) AS tokens_out, coalesce(sum(cost_usd), 0) AS cost_usd,
        count(*) - count(cost_usd) AS unpriced_calls FROM llm_calls WHERE {_WHERE} GROUP BY 1 ORDER BY cost_usd DESC""",
    "by_agent": f"""SELECT coalesce(agent, '(none)') AS agent, count(*) AS calls,
        coalesce(sum(tokens_in), 0) + coalesce(sum(tokens_out), 0) AS tokens, coalesce(sum(cost_usd), 0) AS cost_usd
        FROM llm_calls WHERE {_WHERE} GROUP BY 1 ORDER BY cost_usd DESC""",
    "by_kind": f"""SELECT CASE WHEN e.task_id IS NULL THEN '(outside tasks)' ELSE coalesce(t.kind, '(unclassified)') END AS kind,
        count(DISTINCT e.task_id) AS tasks, count(*) AS calls,
        coalesce(sum(e.tokens_in), 0) + coalesce(sum(e.tokens_out), 0) AS tokens, coalesce(sum(e.cost_usd), 0) AS cost_usd
        FROM llm_calls e LEFT JOIN tasks t ON t.id = e.task_id WHERE e.{_WHERE} GROUP BY 1 ORDER BY cost_usd DESC""",
    "by_day": f"""SELECT date_trunc('day', ts) AS day, count(*) AS calls,
        coalesce(sum(tokens_in), 0) + coalesce(sum(tokens_out), 0) AS tokens, coalesce(sum(cost_usd), 0) AS cost_usd
        FROM llm_calls WHERE {_WHERE} GROUP BY 1 ORDER BY 1""",
    "origin": f"""SELECT {_ORIGIN} AS origin, count(*) AS calls,
        coalesce(sum(tokens_in), 0) + coalesce(sum(tokens_out), 0) AS tokens, coalesce(sum(cost_usd), 0) AS cost_usd
        FROM llm_calls WHERE {_WHERE} GROUP BY 1 ORDER BY cost_usd DESC""",
    "per_success": f"""WITH c AS (SELECT task_id, coalesce(sum(cost_usd), 0) AS cost_usd FROM llm_calls
            WHERE task_id IS NOT NULL AND {_WHERE} GROUP BY 1)
        SELECT coalesce(t.kind, '(unclassified)') AS kind, count(*) AS completed_tasks, sum(c.cost_usd) AS total_cost_usd,
               avg(c.cost_usd) AS cost_per_successful_task_usd, median(c.cost_usd) AS median_cost_usd
        FROM c JOIN tasks t ON t.id = c.task_id WHERE t.status = 'completed' GROUP BY ROLLUP (1) ORDER BY 2 DESC""",
    "tasks": f"""SELECT t.id::VARCHAR AS task_id, t.title, t.status, coalesce(t.kind, '') AS kind, count(*) AS calls,
        coalesce(sum(e.tokens_in), 0) + coalesce(sum(e.tokens_out), 0) AS tokens, coalesce(sum(e.cost_usd), 0) AS cost_usd
        FROM llm_calls e JOIN tasks t ON t.id = e.task_id WHERE e.{_WHERE}
        GROUP BY ALL ORDER BY cost_usd DESC, tokens DESC LIMIT 20""",
    "budget": """WITH spent AS (SELECT task_id, coalesce(sum(cost_usd), 0) AS spent_usd FROM llm_calls GROUP BY 1)
        SELECT t.id::VARCHAR AS task_id, t.title, t.status, t.budget_usd, coalesce(s.spent_usd, 0) AS spent_usd,
               coalesce(s.spent_usd, 0) / nullif(t.budget_usd, 0) AS burn
        FROM tasks t LEFT JOIN spent s ON s.task_id = t.id
        WHERE t.budget_usd IS NOT NULL AND t.created_at >= now() - to_days(CAST(? AS INTEGER))
        ORDER BY burn DESC NULLS LAST LIMIT 30""",
}
CHARTS = ("by_model", "by_agent", "by_kind", "by_day", "origin", "per_success", "tasks", "budget")


def read_costs(days: int) -> dict[str, pd.DataFrame]:
    from workbench.store import analytics

    con = analytics.connect()
    try:
        return {name: con.execute(sql, [days]).df() for name, sql in QUERIES.items()}
    finally:
        con.close()


def _no_data(text: str):
    return hv.Text(0, 0, text).opts(height=220, responsive=True, xaxis=None, yaxis=None, toolbar=None)


class CostsPage(Dashboard):
    route = "/costs"
    tick_ms = 2000
    max_age_s = 60.0

    days = param.Selector(default=30, objects=[1, 7, 30, 90, 3650], doc="Look-back (days)")

    def __init__(self, **params):
        super().__init__(**params)
        self.frames: dict[str, pd.DataFrame] = {name: pd.DataFrame() for name in CHARTS}
        self.summary = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.empty = empty_state("")
        self.charts = data_section()
        self.plots = {name: chart_pane() for name in CHARTS}
        self.task_table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, height=260,
                                               sizing_mode="stretch_width", formatters={"open": {"type": "html"}})
        self.downloads = {name: csv_button(f"cost_{name}", lambda name=name: self.frames[name]) for name in CHARTS}
        self._generation = None
        self.reload(force=False)

    def wants_reload(self) -> bool:
        # A new snapshot (every sync that copied something) is the only thing that changes this page.
        return analytics_generation()[0] != self._generation or super().wants_reload()

    def load(self, force: bool) -> dict[str, Any]:
        generation, published = analytics_generation()
        self._generation = generation
        if generation is None:
            return {"generation": None, "published": ""}
        days = int(self.days)
        frames = self.source.fetch(("costs", days), lambda: read_costs(days), force=force, version=generation,
                                   max_age=self.max_age_s, min_interval=self.max_age_s, postgres=False)
        return {"generation": generation, "published": published, "frames": frames}

    def show(self, data: dict[str, Any]) -> None:
        if data["generation"] is None:
            self.empty.object = ("No analytics snapshot yet: the served app syncs Postgres to DuckDB every 2 s "
                                 "(`workbench db sync` does it by hand). " + DEMO_HINT)
            self.empty.visible = True
            self.charts.visible = self.summary.visible = False
            return
        f = data["frames"]
        self.frames.update(f)
        calls = int(f["by_model"]["calls"].sum()) if not f["by_model"].empty else 0
        self.empty.object = f"No model calls in the last {self.days} day(s). {DEMO_HINT}"
        self.empty.visible = calls == 0
        self.charts.visible = self.summary.visible = calls > 0
        total = float(f["by_model"]["cost_usd"].sum()) if calls else 0.0
        tokens = int(f["by_model"][["tokens_in", "tokens_out"]].sum().sum()) if calls else 0
        unpriced = int(f["by_model"]["unpriced_calls"].sum()) if calls else 0
        overall = f["per_success"][f["per_success"]["kind"].isna()] if not f["per_success"].empty else f["per_success"]
        per_task = money(overall["cost_per_successful_task_usd"].iloc[0]) if not overall.empty else "–"
        self.summary.object = (
            f"**{money(total)}** spent on **{calls:,}** model calls ({tokens:,} tokens) in the last {self.days} day(s)"
            f" · cost per successful task **{per_task}**"
            + (f" · ⚠️ {unpriced} unpriced call(s) (model missing from prices.yaml)" if unpriced else "")
            + f"\n\n_analytics snapshot {data['generation']} published {data['published']} (UTC)_")
        self._charts(f)

    def _charts(self, f: dict[str, pd.DataFrame]) -> None:
        for name in CHARTS:
            if self.should_render(name, f[name], chart=True):  # a new snapshot with the same numbers redraws nothing
                self.plots[name].object = self._chart(name, f[name])
        tasks = f["tasks"]
        if self.should_render("task_table", tasks):
            self.task_table.value = tasks.assign(
                open=[f'<a href="/tasks?id={i}">trace</a>' for i in tasks["task_id"]],
                cost_usd=[money(c) for c in tasks["cost_usd"]]) if not tasks.empty else tasks

    @staticmethod
    def _chart(name: str, df: pd.DataFrame):
        if name == "per_success":
            df = df.dropna(subset=["kind"]) if not df.empty else df  # the ROLLUP total is in the summary line
        if df.empty:
            return _no_data({"tasks": "no task has model calls yet", "budget": "no task had a budget in this period",
                             "per_success": "no completed tasks with model calls"}.get(name, "no data"))
        common = {"responsive": True, "hover_cols": "all"}
        bars = {"by_model": ("model", "cost (USD) by model"), "by_agent": ("agent", "cost (USD) by agent"),
                "by_kind": ("kind", "cost (USD) by task kind"), "origin": ("origin", "local vs cloud: cost (USD)")}
        if name in bars:
            x, title = bars[name]
            return df.hvplot.bar(x=x, y="cost_usd", title=title, height=260, rot=15, **common)
        if name == "by_day":
            # Days as labels: on a datetime axis one day is a single bar across the plot, ticked in milliseconds.
            d = df.assign(day=pd.to_datetime(df["day"]).dt.strftime("%Y-%m-%d"))
            return (d.hvplot.bar(x="day", y="cost_usd", title="cost (USD) per day", height=260, **common)
                    + d.hvplot.bar(x="day", y="tokens", title="tokens per day", height=260, color="#ff7f0e", **common))
        if name == "per_success":
            return df.hvplot.bar(x="kind", y="cost_per_successful_task_usd", height=260,
                                 title="cost per successful task (USD) by kind", **common)
        if name == "tasks":
            t = df.assign(task=[f"{str(ti)[:40]} ({i[:8]})" for ti, i in zip(df["title"], df["task_id"])])
            return t.iloc[::-1].hvplot.barh(x="task", y="cost_usd", title="cost (USD) per task",
                                            height=60 + 24 * len(t), **common)
        # Short labels, as for the tasks chart: full titles squeeze a half-width card's plot to a sliver.
        b = df.assign(task=[f"{str(ti)[:40]} ({i[:8]})" for ti, i in zip(df["title"], df["task_id"])])
        return b.iloc[::-1].hvplot.barh(x="task", y="burn", title="budget burn (spent / budget)",
                                        height=60 + 24 * len(b), **common)

    @param.depends("days", watch=True)
    def _days_changed(self) -> None:
        self.reload(force=False)

    def body(self) -> list:
        def card(name, title, note=""):
            return chart_card(title, self.plots[name], self.downloads[name], note)

        self.charts[:] = [
            pn.Row(card("by_model", "By model"), card("by_agent", "By agent"), sizing_mode="stretch_width"),
            pn.Row(card("by_kind", "By task kind"),
                   card("origin", "Local vs cloud", "local calls are priced from measured CPU-seconds; cloud calls "
                                                    "from workbench/prices.yaml"), sizing_mode="stretch_width"),
            card("by_day", "By day"),
            pn.Row(card("per_success", "Cost per successful task"), card("budget", "Budget burn"),
                   sizing_mode="stretch_width"),
            card("tasks", "Most expensive tasks"), self.task_table,
        ]
        return [
            pn.Row(pn.pane.Markdown("## Cost analytics"), pn.widgets.Select.from_param(self.param.days, label="Days",
                                                                                       width=120)),
            self.empty, self.summary, self.charts,
        ]


@page("/costs", "Costs")
def costs_page():
    return CostsPage()
