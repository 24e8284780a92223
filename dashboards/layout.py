"""What every dashboard page shares: the navigation header, the Postgres banner, the line naming the
optional components that are unavailable here, empty states, CSV export buttons, and `Dashboard`, the
base Viewer that loads data through the shared Source and keeps itself live.

A page subclasses Dashboard and implements `load(force)` (read; may raise StoreUnavailable) and
`show(data)` (update panes). Unit tests drive it with `page.param.trigger("refresh")`; in the served app
a periodic callback per tab checks in-memory wake-ups (no query unless something changed).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import io
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import holoviews.plotting.bokeh  # noqa: F401  (registers the Bokeh renderer: charts can take options)
import pandas as pd
import panel as pn
import param
from pydantic import BaseModel

from dashboards.demo_offer import DemoOffer, OfferState
from dashboards.source import NotServed, Source, StoreUnavailable, get_source

log = logging.getLogger(__name__)
NAV_ORDER = ("/tasks", "/monitoring", "/costs", "/anomalies", "/prediction", "/models", "/experiments", "/pipelines",
             "/chat")
CHARTS_PER_TICK = 2
DEMO_HINT = ("Press **Start the demo** at the top of the page, or run `workbench demo`, to fill the store with a small "
             "real workload on the local model.")

pn.extension("tabulator", notifications=False)


def served() -> bool:
    """True inside a live browser session. (`pn.state.served` stays False under bokeh-fastapi.)"""
    doc = pn.state.curdoc
    return doc is not None and getattr(doc, "session_context", None) is not None


def _connected() -> bool:
    """False once the browser tab is gone: skip work nobody will see.

    bokeh-fastapi 0.1.8 never notices a closed tab: its receive loop gets Starlette's disconnect message,
    fails on the next receive and ends without calling `client_lost`, so the session would stay
    "connected" and its periodic callbacks would run forever. Here a connection whose WebSocket is
    DISCONNECTED is reported lost, which lets Bokeh discard the session (and stop its callbacks).
    """
    doc = pn.state.curdoc
    session = getattr(getattr(doc, "session_context", None), "_session", None)
    if session is None:  # not a server session (tests, notebooks)
        return True
    live = 0
    for conn in list(getattr(session, "_subscribed_connections", ())):
        handler = getattr(conn, "_socket", None)
        state = getattr(getattr(handler, "_socket", None), "client_state", None)
        if getattr(state, "name", "") == "DISCONNECTED":
            with contextlib.suppress(Exception):  # best effort: a later tick tries again
                handler.application.client_lost(conn)
        else:
            live += 1
    return live > 0


def nav(current: str) -> pn.pane.HTML:
    from dashboards.pages import PAGES

    routes = [r for r in NAV_ORDER if r in PAGES] + sorted(r for r in PAGES if r not in NAV_ORDER)
    links = []
    for route in routes:
        title = html.escape(PAGES[route][0])
        style = "font-weight:700;color:#111;border-bottom:2px solid #1f77b4" if route == current else "color:#1f5f99"
        links.append(f'<a href="{route}" style="margin-right:18px;text-decoration:none;{style}">{title}</a>')
    return pn.pane.HTML(
        '<div style="display:flex;align-items:center;padding:6px 4px;border-bottom:1px solid #ddd">'
        '<span style="font-weight:800;margin-right:28px;font-size:1.1em">workbench</span>'
        + "".join(links) + "</div>", sizing_mode="stretch_width", margin=(0, 0, 6, 0))


def components_note() -> pn.pane.HTML:
    """One line naming the optional components this machine lacks (the sandbox, its runtimes, the browser)
    with the command that installs each, or nothing. Plain text: the line quotes paths and tool output, so
    it is escaped, never rendered as HTML or Markdown."""
    try:
        from workbench.sandbox.components import unavailable_line

        text = unavailable_line()
    except Exception:  # a status line must never break the page it sits on
        log.exception("checking the optional components failed")
        text = ""
    return pn.pane.HTML(
        f'<div style="padding:4px 8px;background:#fff8e1;border-left:3px solid #f0ad4e;font-size:0.9em">'
        f"{html.escape(text)}</div>" if text else "", visible=bool(text), sizing_mode="stretch_width",
        margin=(0, 0, 6, 0))


def empty_state(text: str) -> pn.pane.Alert:
    return pn.pane.Alert(text, alert_type="info", sizing_mode="stretch_width")


def data_section() -> pn.Column:
    """Where a page's charts go: hidden while the page has no data (its empty state says what will appear
    there and how to fill it), so an empty store never shows blank charts or "drawing…" cards."""
    return pn.Column(sizing_mode="stretch_width", visible=False, css_classes=["data-section"])


def money(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    return f"${float(value):,.6f}"


def frame(rows: Sequence[BaseModel], model: type[BaseModel]) -> pd.DataFrame:
    """Typed rows as a table with the model's columns, also when there are no rows."""
    return pd.DataFrame([r.model_dump() for r in rows], columns=list(model.model_fields))


def csv_button(name: str, frame: Callable[[], pd.DataFrame]) -> pn.widgets.FileDownload:
    """A download of the chart's own data; the frame is read when clicked, so it is always current."""

    def payload() -> io.StringIO:
        return io.StringIO(frame().to_csv(index=False))

    return pn.widgets.FileDownload(callback=payload, filename=f"{name}.csv", label=f"CSV: {name}",
                                   color="light", width=220, embed=False)


class ChartSlot(pn.viewable.Viewer):
    """Where a chart goes. It starts as a line of text and becomes a HoloViews pane when first drawn:
    a page's first render then ships no Bokeh plot at all (a placeholder plot costs as much as a real one),
    and the charts follow on the tab's first tick."""

    def __init__(self, placeholder: str = "drawing…"):
        super().__init__()
        self._pane: pn.pane.HoloViews | None = None
        self._layout = pn.Column(pn.pane.Markdown(f"_{placeholder}_", styles={"color": "#888"}),
                                 sizing_mode="stretch_width")

    @property
    def object(self) -> Any:
        return None if self._pane is None else self._pane.object

    @object.setter
    def object(self, value: Any) -> None:
        if self._pane is None:
            # linked_axes=False: the pages' charts share no axes, and linking them costs time on every redraw.
            self._pane = pn.pane.HoloViews(value, sizing_mode="stretch_width", linked_axes=False)
            self._layout[:] = [self._pane]
        else:
            self._pane.object = value

    def __panel__(self):
        return self._layout


def chart_pane(obj: Any = None) -> ChartSlot:
    slot = ChartSlot()
    if obj is not None:
        slot.object = obj
    return slot


def chart_card(title: str, plot: pn.viewable.Viewable, download: pn.widgets.FileDownload | None = None,
               note: str = "") -> pn.Column:
    # PNG export is the chart toolbar's own save tool (Bokeh renders the canvas in the browser: offline).
    header = [pn.pane.Markdown(f"#### {title}", margin=(0, 5))]
    if download is not None:
        header.append(download)
    parts: list[Any] = [pn.Row(*header)]
    if note:
        parts.append(pn.pane.Markdown(note, styles={"color": "#666", "font-size": "0.9em"}, margin=(0, 5)))
    parts.append(plot)
    return pn.Column(*parts, sizing_mode="stretch_width", styles={"border": "1px solid #e3e3e3", "border-radius": "6px"},
                     margin=(6, 6))


def fingerprint(obj: Any) -> str:
    """A cheap content hash of what a chart or table shows (the frames are small: aggregates, top-N)."""
    if isinstance(obj, (tuple, list)):
        text = "|".join(fingerprint(o) for o in obj)
    elif isinstance(obj, pd.DataFrame):
        text = ",".join(map(str, obj.columns)) + "\n" + obj.to_csv(index=False)
    else:
        text = repr(obj)
    return hashlib.md5(text.encode("utf-8", "replace"), usedforsecurity=False).hexdigest()


class Dashboard(pn.viewable.Viewer):
    """Base of every page: shared Source, banner, refresh event, live tick."""

    refresh = param.Event(doc="Re-read everything now (tests trigger it; so does the Refresh button).")

    route: ClassVar[str] = "/"
    tick_ms: ClassVar[int] = 1000  # how often a tab checks its in-memory wake-ups
    max_age_s: ClassVar[float] = 30.0  # re-read at least this often even without events

    def __init__(self, **params):
        super().__init__(**params)
        self.banner = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self.updated = pn.pane.Markdown("", styles={"color": "#888", "font-size": "0.85em"}, margin=(0, 8))
        self.refresh_button = pn.widgets.Button(label="Refresh", color="light", width=90)
        self.refresh_button.on_click(lambda _: self.param.trigger("refresh"))
        self._seen_generation = -1
        self._loaded_at = 0.0
        self._busy = False
        self._force_next = False  # a subclass sets it when it knows cached data is stale (e.g. after training)
        self._first_tick = True  # parts deferred from the first render (slow fits, checks) load on it
        self._fingerprints: dict[str, str] = {}
        self._rendered_at: dict[str, float] = {}
        self._pending: dict[str, float] = {}  # chart key -> when its held-back redraw is due
        # A served tab's first render ships text and tables only; charts (the expensive Bokeh models) follow
        # on its first tick, a moment later. Tests and notebooks draw everything at once.
        self.charts_on = not served()
        self._chart_budget: float = float("inf")  # charts a served tick may (re)draw; the rest wait a tick
        self.source: Source | None
        try:
            self.source = get_source()
        except NotServed as exc:
            self.source = None
            self._set_banner(str(exc))
        self.offer = DemoOffer(self.source)  # every page offers the seeded demo while the store is empty
        self._offer_state: OfferState | None = None
        if served():
            from workbench.services import maintenance

            maintenance.ensure_started()
            pn.state.add_periodic_callback(self._tick, period=self.tick_ms)

    # --- for subclasses ------------------------------------------------------------------------------

    def load(self, force: bool) -> Any:
        raise NotImplementedError

    def show(self, data: Any) -> None:
        raise NotImplementedError

    def wants_reload(self) -> bool:
        """Called each tick: new events anywhere (default), a held-back chart is due, or too old."""
        generation = self.source.poll()
        now = time.monotonic()
        return (generation != self._seen_generation or now - self._loaded_at > self.max_age_s
                or any(due <= now for due in self._pending.values()) or self.offer.changed())

    def body(self) -> list:
        raise NotImplementedError

    def should_render(self, key: str, data: Any, every_s: float = 0.0, chart: bool = False) -> bool:
        """True when `data` differs from what `key` shows now (and, with every_s, it was drawn long enough
        ago; with chart, once charts are on). Rebuilding a Bokeh chart costs the server real time per tab:
        only do it when it shows news. A held-back redraw is remembered and done by a later tick."""
        fp = fingerprint(data)
        if self._fingerprints.get(key) == fp:
            self._pending.pop(key, None)
            return False
        now = time.monotonic()
        if chart and (not self.charts_on or self._chart_budget <= 0):
            self._pending[key] = now
            return False
        if every_s and now - self._rendered_at.get(key, 0.0) < every_s:
            self._pending[key] = self._rendered_at[key] + every_s
            return False
        self._fingerprints[key] = fp
        self._rendered_at[key] = now
        self._pending.pop(key, None)
        if chart:
            self._chart_budget -= 1
        return True

    # --- machinery -----------------------------------------------------------------------------------

    def _set_banner(self, text: str | None) -> None:
        self.banner.object = text or ""
        self.banner.visible = bool(text)

    def _load(self, force: bool) -> tuple[bool, Any]:
        """(ok, data or message). Runs in a thread when served."""
        if self.source is None:
            return False, self.banner.object
        generation = self.source.poll()
        try:
            data = self.load(force)
        except StoreUnavailable as exc:
            return False, str(exc)
        self._seen_generation = generation
        self._loaded_at = time.monotonic()
        self._offer_state = self.offer.read()
        return True, data

    def _apply(self, result: tuple[bool, Any]) -> None:
        ok, data = result
        if not ok:
            self._set_banner(data)
            return
        up, reason = self.source.postgres_ok()
        self._set_banner(None if up else self.source.unavailable_message(reason))
        self.show(data)
        if self._offer_state is not None:
            self.offer.show(self._offer_state)
        self.updated.object = f"updated {time.strftime('%H:%M:%S')}"

    def reload(self, force: bool = True) -> None:
        """Load and show synchronously (tests, first render)."""
        self._apply(self._load(force))

    @param.depends("refresh", watch=True)
    def _on_refresh(self) -> None:
        self.reload(force=True)

    async def _tick(self) -> None:
        if self._busy or self.source is None or not _connected():
            return
        up, reason = self.source.postgres_ok()
        if not up and not self.banner.visible:
            self._set_banner(self.source.unavailable_message(reason))
        if not (self.wants_reload() or self.banner.visible or self._first_tick):
            return
        self._first_tick = False
        self.charts_on = True
        self._busy = True
        force, self._force_next = self._force_next, False
        try:
            result = await asyncio.to_thread(self._load, force)
            # Building a chart holds the event loop (every tab's, the API's): draw at most CHARTS_PER_TICK per
            # tick, so the first chart shows soon and the others follow tick by tick.
            self._chart_budget = CHARTS_PER_TICK
            self._apply(result)
            self._chart_budget = float("inf")
        except Exception as exc:  # a failing refresh must not kill the tab's callback
            log.exception("refreshing %s failed", type(self).__name__)
            self._set_banner(f"Refreshing this page failed: {type(exc).__name__}: {exc}")
        finally:
            self._busy = False

    def __panel__(self):
        return pn.Column(nav(self.route), self.banner, components_note(), self.offer, *self.body(),
                         pn.Row(self.refresh_button, self.updated), sizing_mode="stretch_width")
