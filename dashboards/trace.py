"""A task's trace as a waterfall: one bar per span from its events' span/parent ids, end time and duration.

Spans emit their event when they end (workbench.store.context), so an event's `ts` is the span's end and
`ts - duration_ms` its start; children are drawn under their parent (depth-first, by start time). Events
without a duration (status changes, messages) are points.
"""

from __future__ import annotations

from typing import Any

import holoviews as hv
import pandas as pd

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
    """Rows in drawing order; times in seconds from the first span's start."""
    if not events:
        return pd.DataFrame(columns=COLUMNS)
    spans: dict[str, dict] = {}
    for e in events:
        end = pd.Timestamp(e["ts"])
        duration = float(e.get("duration_ms") or 0.0)
        spans_key = e.get("span_id") or f"seq-{e['seq']}"
        spans[spans_key] = {**e, "_key": spans_key, "_end": end, "_start": end - pd.Timedelta(milliseconds=duration),
                            "_duration": duration}
    children: dict[str | None, list[dict]] = {}
    for s in spans.values():
        parent = s.get("parent_span_id")
        children.setdefault(parent if parent in spans and parent != s["_key"] else None, []).append(s)
    t0 = min(s["_start"] for s in spans.values())
    ordered: list[tuple[dict, int]] = []
    seen: set[str] = set()

    def visit(node: dict, depth: int) -> None:
        if node["_key"] in seen:  # malformed parent links must not loop
            return
        seen.add(node["_key"])
        ordered.append((node, depth))
        for child in sorted(children.get(node["_key"], []), key=lambda c: (c["_start"], c["seq"])):
            visit(child, depth + 1)

    for root in sorted(children.get(None, []), key=lambda c: (c["_start"], c["seq"])):
        visit(root, 0)
    ordered = ordered[-MAX_ROWS:]
    rows = []
    for i, (s, depth) in enumerate(ordered):
        tokens = (s.get("tokens_in") or 0) + (s.get("tokens_out") or 0)
        rows.append({"row": i, "start_s": (s["_start"] - t0).total_seconds(), "end_s": (s["_end"] - t0).total_seconds(),
                     "depth": depth, "kind": s["kind"], "label": _label(s, depth), "agent": s.get("agent") or "",
                     "model": s.get("model") or "", "tokens": tokens, "cost_usd": s.get("cost_usd"),
                     "duration_ms": s["_duration"], "error": s.get("error") or "", "seq": s["seq"],
                     "span_id": s.get("span_id") or "", "parent_span_id": s.get("parent_span_id") or ""})
    return pd.DataFrame(rows, columns=COLUMNS)


def waterfall_plot(df: pd.DataFrame):
    if df.empty:
        return hv.Text(0, 0, "no events yet").opts(height=120, responsive=True, xaxis=None, yaxis=None)
    color = hv.dim("kind").categorize(KIND_COLORS, default="#bcbd22")
    vdims = ["kind", "label", "agent", "model", "tokens", "duration_ms", "error"]
    bars = hv.Segments(df, ["start_s", "row", "end_s", "row"], vdims).opts(
        color=color, line_width=9, tools=["hover"])
    points = hv.Scatter(df[df["duration_ms"] <= 0], "start_s", ["row", *vdims]).opts(
        color=color, size=9, marker="diamond", tools=["hover"])
    ticks = [(int(r), str(lbl)) for r, lbl in zip(df["row"], df["label"])]
    return (bars * points).opts(
        hv.opts.Overlay(responsive=True, height=min(900, 60 + 22 * len(df)), invert_yaxis=True, yticks=ticks,
                        xlabel="seconds since the task's first span started", ylabel="", show_legend=False,
                        title="trace waterfall"))
