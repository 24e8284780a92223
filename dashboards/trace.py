"""A task's trace as a waterfall: one bar per span from its events' span/parent ids, end time and duration.

The tree is workbench.traces.build_tree's (the one `workbench trace` prints): a span's event is written
when it ends, so `ts` is its end and `ts - duration_ms` its start; children are drawn under their parent
(depth first, by start time). Events without a duration (status changes, messages) are points.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import holoviews as hv
import pandas as pd

from workbench import traces

KIND_COLORS = {"llm_call": "#1f77b4", "agent_step": "#2ca02c", "tool_call": "#ff7f0e", "sandbox_run": "#9467bd",
               "status": "#7f7f7f", "message": "#17becf", "llm_attempt": "#aec7e8", "alert": "#d62728"}
MAX_ROWS = 300
COLUMNS = ["row", "start_s", "end_s", "depth", "kind", "label", "agent", "model", "tokens", "cost_usd", "duration_ms",
           "error", "seq", "span_id", "parent_span_id"]


def _label(e: dict[str, Any], depth: int) -> str:
    payload = e.get("payload") or {}
    if e["kind"] == "status":
        what = f"status → {payload.get('to')}"
    else:
        what = " · ".join(str(p) for p in (e["kind"], e.get("agent"), e.get("model")) if p)
    return f"{'  ' * depth}{what} #{e['seq']}"


def waterfall_frame(events: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows in drawing order (the span tree of workbench.traces, depth first); times in seconds from the
    first span's start."""
    if not events:
        return pd.DataFrame(columns=COLUMNS)
    tree = traces.build_tree(events)
    ordered: list[tuple[traces.Node, int]] = []

    def visit(node: traces.Node, depth: int) -> None:
        ordered.append((node, depth))
        for child in node.children:
            visit(child, depth + 1)

    for root in tree:
        visit(root, 0)
    t0 = min(n.start for n, _ in ordered)
    rows = []
    for i, (n, depth) in enumerate(ordered[-MAX_ROWS:]):
        e = n.event
        rows.append({"row": i, "start_s": n.start - t0, "end_s": n.end - t0, "depth": depth, "kind": e["kind"],
                     "label": _label(e, depth), "agent": e.get("agent") or "", "model": e.get("model") or "",
                     "tokens": (e.get("tokens_in") or 0) + (e.get("tokens_out") or 0), "cost_usd": e.get("cost_usd"),
                     "duration_ms": float(e.get("duration_ms") or 0.0), "error": e.get("error") or "",
                     "seq": e["seq"], "span_id": e.get("span_id") or "", "parent_span_id": e.get("parent_span_id") or ""})
    return pd.DataFrame(rows, columns=COLUMNS)


def waterfall_plot(df: pd.DataFrame, on_tap: Callable[[int], None] | None = None):
    """The waterfall of `waterfall_frame`'s rows; with `on_tap`, clicking a bar or point calls it with the
    span's event seq (the Tasks page opens that span)."""
    if df.empty:
        return hv.Text(0, 0, "no events yet").opts(height=120, responsive=True, xaxis=None, yaxis=None)
    color = hv.dim("kind").categorize(KIND_COLORS, default="#bcbd22")
    vdims = ["kind", "label", "agent", "model", "tokens", "duration_ms", "error", "seq"]
    tools = ["hover", "tap"] if on_tap else ["hover"]
    instant = df[df["duration_ms"] <= 0]
    bars = hv.Segments(df, ["start_s", "row", "end_s", "row"], vdims).opts(
        color=color, line_width=9, tools=tools)
    points = hv.Scatter(instant, "start_s", ["row", *vdims]).opts(
        color=color, size=9, marker="diamond", tools=tools)
    if on_tap:
        for element, rows in ((bars, df), (points, instant)):
            _on_select(element, rows["seq"].tolist(), on_tap)
    ticks = [(int(r), str(lbl)) for r, lbl in zip(df["row"], df["label"])]
    return (bars * points).opts(
        hv.opts.Overlay(responsive=True, height=min(900, 60 + 22 * len(df)), invert_yaxis=True, yticks=ticks,
                        xlabel="seconds since the task's first span started", ylabel="", show_legend=False,
                        title="trace waterfall"))


def _on_select(element, seqs: list[int], on_tap: Callable[[int], None]) -> hv.streams.Selection1D:
    """Call `on_tap(seq)` when a glyph of `element` is tapped (its index is a row of `seqs`)."""
    stream = hv.streams.Selection1D(source=element)

    def tapped(index: list[int]) -> None:
        if index and 0 <= index[0] < len(seqs):
            on_tap(int(seqs[index[0]]))

    stream.add_subscriber(tapped)
    return stream
