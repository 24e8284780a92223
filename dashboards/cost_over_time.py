"""The Tasks page's cost-over-time chart: what the model calls of the listed (filtered) tasks cost, per model,
per day or hour (UTC), as stacked bars. Read from Postgres with the list's own filter
(workbench.tasks.task_filter.cost_over_time), so the chart always describes the tasks the list shows.
"""

from __future__ import annotations

import holoviews as hv
import pandas as pd

from workbench.tasks.task_filter import CostPoint

COLUMNS = ["bucket", "model", "cost_usd", "calls", "priced_calls", "tokens"]


def cost_frame(points: list[CostPoint], bucket: str) -> pd.DataFrame:
    """One row per (bucket, model); `when` is the bucket as a label (the bars' axis)."""
    df = pd.DataFrame([p.model_dump() for p in points], columns=COLUMNS)
    fmt = "%Y-%m-%d" if bucket == "day" else "%Y-%m-%d %H:00"
    df["when"] = [pd.Timestamp(b).strftime(fmt) for b in df["bucket"]]
    return df


def cost_plot(df: pd.DataFrame, bucket: str):
    if df.empty:
        return hv.Text(0, 0, "no model calls in the listed tasks").opts(height=200, responsive=True, xaxis=None,
                                                                          yaxis=None, toolbar=None)
    bars = hv.Bars(df, ["when", "model"], ["cost_usd", "calls", "tokens"]).opts(
        stacked=True, responsive=True, height=260, tools=["hover"], xlabel=f"{bucket} (UTC)", ylabel="cost (USD)",
        legend_position="right", xrotation=30 if df["when"].nunique() > 6 else 0, yformatter="$%.4f",
        title=f"cost per model per {bucket}")
    return bars
