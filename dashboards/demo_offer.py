"""The first-run offer every page shows while the store has no tasks: what the seeded demo is, a button
that starts it in the background on this server (workbench.services.demo), the equivalent CLI line, and
then its progress (tasks done / total) until it has finished.

The button and `POST /api/v1/demo` share one service, so a click while a demo runs (here, in another tab,
or through the API) starts nothing and says so.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import panel as pn

from workbench.errors import WorkbenchError
from workbench.services import demo

if TYPE_CHECKING:
    from dashboards.source import Source

SHOW_FINISHED_S = 600.0  # how long the "demo finished" line stays after the demo ended
OFFER = (
    "<b>This workbench has no tasks yet</b>, so the dashboards have nothing to show. Start the seeded demo: "
    f"{demo.DEFAULT_TASKS} short real tasks on the local model and one deliberate failure, run in the "
    "background on this server. Their titles start with <code>demo:</code>, so analyses can leave them out. "
    f"Or run <code>{demo.CLI_LINE}</code> in a terminal."
)


@dataclass(frozen=True)
class OfferState:
    tasks: int | None  # tasks in the store; None: unknown (Postgres unreachable)
    progress: demo.DemoProgress

    @property
    def visible(self) -> bool:
        p = self.progress
        recent = p.state == "finished" and p.finished_at is not None and time.time() - p.finished_at < SHOW_FINISHED_S
        return self.tasks == 0 or p.state == "running" or recent


class DemoOffer(pn.viewable.Viewer):
    """The banner: offer and button on an empty store, progress while the demo runs."""

    def __init__(self, source: Source | None):
        super().__init__()
        self.source = source
        self.text = pn.pane.HTML(OFFER, sizing_mode="stretch_width")
        self.button = pn.widgets.Button(label="Start the demo", color="primary", width=160)
        self.button.on_click(lambda _: self.start())
        self.progress_bar = pn.indicators.Progress(value=0, max=1, visible=False, width=300)
        self.status = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["demo-status"])
        self.layout = pn.Column(
            pn.pane.HTML("<b>Demo data</b>", margin=(0, 5)), self.text,
            pn.Row(self.button, self.progress_bar), self.status, visible=False, sizing_mode="stretch_width",
            styles={"background": "#eef6ff", "border-left": "4px solid #1f77b4", "padding": "4px 8px"},
            css_classes=["demo-offer"], margin=(0, 0, 6, 0))
        self._shown: tuple | None = None

    def read(self) -> OfferState:
        """What to show (a cached count of tasks, shared by every tab); runs in a thread when served."""
        count = None
        if self.source is not None:
            try:
                count = self.source.fetch(("demo_offer", "tasks"), lambda: self.source.tasks.list(None, 1).total,
                                          max_age=30.0, min_interval=2.0)
            except WorkbenchError:  # the page's own banner says Postgres is down
                count = None
        return OfferState(count, demo.progress())

    def changed(self) -> bool:
        """True when the demo's progress differs from what is shown (the tick then reloads)."""
        p = demo.progress()
        return self._shown is not None and (p.state, p.done) != self._shown[1:]

    def show(self, state: OfferState) -> None:
        p = state.progress
        self._shown = (state.tasks, p.state, p.done)
        self.layout.visible = state.visible
        running = p.state == "running"
        self.button.disabled = running
        self.button.visible = p.state != "running" and state.tasks == 0
        self.text.visible = state.tasks == 0 or running
        self.progress_bar.visible = p.state != "idle"
        self.progress_bar.max = max(p.total, 1)
        self.progress_bar.value = min(p.done, p.total)
        self.status.object = "" if p.state == "idle" else html.escape(p.line) + (
            " The pages fill as each task finishes." if running else "")

    def start(self) -> None:
        if self.source is None:
            return
        refused = None
        try:
            demo.start(self.source.rt.tasks)
        except WorkbenchError as exc:  # already running, or no runner here: say so on the page
            refused = str(exc)
        self.show(OfferState(self.read().tasks, demo.progress()))
        if refused:
            self.status.object = html.escape(refused)

    def __panel__(self):
        return self.layout
