"""Memory: what is stored (counts by kind and owner, the newest entries), how often retrieval found
something and the execution cache answered, what helped (tasks that used memory against the same kinds
without), the strategy statistics, and a search box.

The numbers come from workbench.memory.overview and workbench.memory.strategy (what `workbench memory
strategies` prints); the search is `MemoryStore.search` with the arguments `workbench memory search` uses
(not counted as a use). Stored requests and solutions are model output or user input: every value put
into markup here is escaped, so an entry of `<script>…` shows those characters.
"""

from __future__ import annotations

import asyncio
import html
from typing import Any

import hvplot.pandas  # noqa: F401
import pandas as pd
import panel as pn
import param

from dashboards.layout import Dashboard, chart_card, chart_pane, csv_button, empty_state, served
from dashboards.pages import page
from workbench.errors import WorkbenchError
from workbench.memory import overview, strategy

EMPTY_HINT = ("Memory is empty. It fills as tasks finish with memory on (WORKBENCH_MEMORY=auto and the embedder "
              "installed by `make venv`): a code result whose tests passed becomes a verified solution, any other a "
              "failure note, a plan that finished a plan. Run the same request twice (`workbench run \"Write a "
              "Python function is_prime(n)\"`): the second is answered from memory and shows up here. "
              "`workbench memory import FILE` loads entries another workbench exported.")
SEARCH_LIMIT = 10
SEARCH_MIN_SIMILARITY = 0.3  # as `workbench memory search`
TEXT_CHARS = 300
CODE_CHARS = 600
COUNT_COLUMNS = ["kind", "owner", "entries", "verified", "uses", "retired"]
RATE_COLUMNS = ["day", "retrievals", "found", "hit rate", "entries used", "cache hits"]
HELPED_COLUMNS = ["task kind", "with memory", "pass rate with", "without memory", "pass rate without", "difference"]
STRATEGY_COLUMNS = ["kind", "specialist", "model", "settings", "passed", "mean", "95% interval", "cost $", "tokens"]


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def counts_frame(stored: overview.Stored) -> pd.DataFrame:
    return pd.DataFrame([[c["kind"], c["owner"], c["entries"], c["verified"], c["uses"], c["retired"]]
                         for c in stored.counts], columns=COUNT_COLUMNS)


def rates_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([[str(r["day"]), r["retrievals"], r["found"], _pct(r["hit_rate"]), r["entries_used"],
                          r["cache_hits"]] for r in rows], columns=RATE_COLUMNS)


def rates_chart(rows: list[dict[str, Any]]):
    """Per day: retrievals that used an entry, those that found none, and cache hits, stacked."""
    d = pd.DataFrame([{"day": str(r["day"]), "used an entry": r["found"], "found none": r["retrievals"] - r["found"],
                       "cache hits": r["cache_hits"]} for r in rows])
    return d.hvplot.bar(x="day", y=["used an entry", "found none", "cache hits"], stacked=True, height=260,
                        responsive=True, legend="top_left", ylabel="count", title="memory lookups per day")


def helped_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    out = []
    for r in rows:
        diff = (None if r["with_rate"] is None or r["without_rate"] is None
                else f"{100 * (r['with_rate'] - r['without_rate']):+.1f} points")
        out.append([r["kind"], f"{r['with_passed']}/{r['with_n']}", _pct(r["with_rate"]),
                    f"{r['without_passed']}/{r['without_n']}", _pct(r["without_rate"]), diff or "-"])
    return pd.DataFrame(out, columns=HELPED_COLUMNS)


def strategy_frame(arms: list[strategy.Arm]) -> pd.DataFrame:
    rows = []
    for a in arms:
        low, high = a.interval
        rows.append([a.kind, a.specialist, a.model or "-", a.settings, f"{a.successes}/{a.trials}", f"{a.mean:.2f}",
                     f"[{low:.2f}, {high:.2f}]", f"{a.cost_usd:.6f}", f"{a.tokens:.0f}"])
    return pd.DataFrame(rows, columns=STRATEGY_COLUMNS)


def _pre(text: Any, limit: int) -> str:
    text = "" if text is None else str(text)
    shown = text[:limit] + ("…" if len(text) > limit else "")
    return f'<pre style="white-space:pre-wrap;margin:0;max-width:640px">{html.escape(shown)}</pre>'


def _content(kind: str, body: Any) -> str:
    """What an entry holds, as text: a solution's code, a failure note, a plan's steps."""
    body = body if isinstance(body, dict) else {}
    if kind == "solution":
        files = body.get("files") if isinstance(body.get("files"), dict) else {}
        return "\n\n".join(f"# {name}\n{src}" for name, src in files.items())
    if kind == "failure_note":
        return str(body.get("note", ""))
    if kind == "plan":
        return "\n".join(f"- {s.get('specialist')}: {s.get('instructions')}" for s in body.get("subtasks") or []
                         if isinstance(s, dict))
    return str(body.get("summary", ""))


def entries_html(rows: list[dict[str, Any]], *, similarity: bool = False) -> str:
    """Entries as an HTML table, every value escaped (requests and code are data, never markup)."""
    heads = (["similarity"] if similarity else []) + ["kind", "owner", "score", "uses", "request", "content", "id"]
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{h}</th>" for h in heads)
    body = []
    for r in rows:
        cells = ([f"{r['similarity']:.2f}"] if similarity else []) + [
            html.escape(str(r["kind"])), html.escape(str(r["owner"])), f"{float(r['score']):.2f}", str(r["uses"]),
            _pre(" ".join(str(r["text"]).split()), TEXT_CHARS), _pre(_content(r["kind"], r.get("body")), CODE_CHARS),
            html.escape(str(r["id"])[:8])]
        body.append("<tr>" + "".join(f"<td style='vertical-align:top;padding:2px 8px'>{c}</td>" for c in cells)
                    + "</tr>")
    return f"<table class='memory-entries'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def search_entries(store: Any, query: str, owner: str) -> list[dict[str, Any]]:
    """`workbench memory search QUERY --owner OWNER`: the entries most like QUERY that OWNER may see, best
    first, not counted as uses. MemoryInputError (a bad query) or MemoryUnavailable/EmbedderMissing (no
    memory here) say what to do."""
    from workbench.memory import get_memory
    from workbench.memory.store import KINDS, check_query

    check_query(query)
    mem = get_memory(store, required=True)
    return [h.as_dict() for h in mem.search(query, owner=owner, kinds=KINDS, limit=SEARCH_LIMIT,
                                            min_similarity=SEARCH_MIN_SIMILARITY, count_use=False)]


def _table(columns: list[str], height: int | None = None) -> pn.widgets.Tabulator:
    return pn.widgets.Tabulator(pd.DataFrame(columns=columns), disabled=True, show_index=False, height=height,
                                sizing_mode="stretch_width")


class MemoryPage(Dashboard):
    route = "/memory"
    max_age_s = 30.0

    query = param.String(default="", doc="What to look for in memory, in words")
    owner = param.String(default="", doc="Whose memory (empty: WORKBENCH_MEMORY_OWNER)")
    search = param.Event(doc="Run the search")

    def __init__(self, **params):
        super().__init__(**params)
        self.empty = empty_state(EMPTY_HINT)
        self.status = pn.pane.Markdown("", styles={"color": "#555"})
        self.counts = _table(COUNT_COLUMNS)
        self.newest = pn.pane.HTML("", sizing_mode="stretch_width")
        self.rates = _table(RATE_COLUMNS)
        self.rates_plot = chart_pane()
        self.rates_card = chart_card("Lookups per day", self.rates_plot,
                                     csv_button("memory_hit_rates", lambda: rates_frame(self.data.get("rates", []))))
        self.helped = _table(HELPED_COLUMNS)
        self.strategies = _table(STRATEGY_COLUMNS)
        self.search_note = pn.pane.Alert("", alert_type="info", visible=False, sizing_mode="stretch_width")
        self.results = pn.pane.HTML("", sizing_mode="stretch_width", visible=False)
        self.hits: list[dict[str, Any]] = []
        self.data: dict[str, Any] = {}
        self.reload(force=False)

    def load(self, force: bool) -> dict[str, Any]:
        store = self.source.rt.store

        def read() -> dict[str, Any]:
            return {"stored": overview.stored(store), "rates": overview.hit_rates(store),
                    "helped": overview.helped(store), "arms": strategy.table(store)}

        return self.source.fetch(("memory-page",), read, force=force, max_age=self.max_age_s)

    def show(self, data: dict[str, Any]) -> None:
        from workbench import memory
        from workbench.config import get_settings

        self.data = data
        stored: overview.Stored = data["stored"]
        anything = stored.entries or data["rates"] or data["arms"]
        self.empty.visible = not anything
        settings = get_settings()
        on = memory.enabled()
        self.status.object = (stored.missing or
                              f"{stored.entries} entr{'y' if stored.entries == 1 else 'ies'} · memory is {'on' if on else 'off'} here "
                              f"(WORKBENCH_MEMORY={settings.memory}"
                              f"{'' if memory.available() else '; the embedder is not installed: run `make venv`'})"
                              f" · strategy choices {'on' if settings.strategy else 'off'}")
        for pane, frame in ((self.counts, counts_frame(stored)), (self.rates, rates_frame(data["rates"])),
                            (self.helped, helped_frame(data["helped"])), (self.strategies, strategy_frame(data["arms"]))):
            if self.should_render(f"table-{id(pane)}", frame):
                pane.value = frame
        self.rates_card.visible = bool(data["rates"])
        if data["rates"] and self.should_render("rates-chart", rates_frame(data["rates"]), chart=True):
            self.rates_plot.object = rates_chart(data["rates"])
        self.newest.object = entries_html(stored.newest) if stored.newest else "<p>No entries yet.</p>"

    def _run_search(self) -> tuple[list[dict[str, Any]], str | None, str]:
        """(hits, note, note kind): reads only, so a served tab runs it in a thread (the first search loads
        the embedding model, which takes seconds)."""
        from workbench.config import get_settings

        owner = self.owner.strip() or get_settings().memory_owner
        try:
            hits = search_entries(self.source.rt.store, self.query, owner)
        except WorkbenchError as exc:  # a bad query, no embedder, no memory table: the fix, in one line
            return [], str(exc), "warning"
        if not hits:
            return [], f"No entry of owner {owner} within similarity {SEARCH_MIN_SIMILARITY:.2f}.", "info"
        return hits, None, "info"

    def _show_search(self, result: tuple[list[dict[str, Any]], str | None, str]) -> None:
        self.hits, note, kind = result
        if note is not None:
            self._note(note, kind)
            return
        self.search_note.visible = False
        self.results.object = entries_html(self.hits, similarity=True)
        self.results.visible = True

    @param.depends("search", watch=True)
    def _search(self) -> None:
        self._show_search(self._run_search())

    async def _search_served(self, _event: Any) -> None:
        self._note("Searching…", "info")
        self._show_search(await asyncio.to_thread(self._run_search))

    def _note(self, text: str, kind: str) -> None:
        self.results.visible = False
        self.search_note.object, self.search_note.alert_type, self.search_note.visible = text, kind, True

    def body(self) -> list:
        run = self._search_served if served() else lambda _: self.param.trigger("search")
        button = pn.widgets.Button(name="Search", button_type="primary", width=100)
        button.on_click(run)
        query = pn.widgets.TextInput(name="Search memory", value=self.query, width=520,
                                     placeholder="e.g. reverse the words of a sentence")
        # as typed (value itself changes only on Enter or leaving the box): the button reads what is shown
        query.param.watch(lambda e: setattr(self, "query", e.new or ""), "value_input")
        query.param.watch(run, "enter_pressed")
        return [
            pn.pane.Markdown("## Memory"), self.status, self.empty,
            pn.pane.Markdown("### Search"),
            pn.Row(query, pn.widgets.TextInput.from_param(self.param.owner, name="Owner", width=160), button),
            self.search_note, self.results,
            pn.pane.Markdown("### What is stored"), self.counts,
            pn.pane.Markdown("#### Newest entries"), self.newest,
            pn.pane.Markdown("### Hit rates (last 30 days; a retrieval is one prompt that asked memory)"),
            self.rates_card, self.rates,
            pn.pane.Markdown("### What helped: tasks that used a memory entry against the same kinds without"),
            self.helped,
            pn.pane.Markdown("### Strategies: which settings delivered, per kind (Beta posterior of the success rate)"),
            self.strategies,
        ]


@page("/memory", "Memory")
def memory_page():
    return MemoryPage()
