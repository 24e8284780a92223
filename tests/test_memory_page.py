"""The Memory page driven through its parameters against the real embedded store and embedder: the empty
state, what is stored (escaped, never markup), hit rates and what helped from the real `memory` events, the
strategy table, and the search (the CLI's search, owner by owner). Tests run in file order: the first sees
the empty store."""

from __future__ import annotations

import asyncio
import html

import pytest
from helpers import require
from psycopg.types.json import Jsonb
from test_store import pg_home, store  # noqa: F401  (module fixtures: the embedded Postgres home and store)

from workbench import memory, telemetry
from workbench.memory.store import MemoryStore, NewEntry

pytestmark = pytest.mark.timeout(300)
REQUEST = "Write reverse_words(s) that reverses the order of the words <script>alert(1)</script>"
CODE = "def reverse_words(s):\n    return ' '.join(reversed(s.split()))  # <b>not bold</b>\n"


@pytest.fixture
def runtime(store):  # noqa: F811
    from dashboards import source
    from workbench.services import runtime as rt
    from workbench.tasks.api import TaskApi
    from workbench.tasks.service import TaskService

    rt.set_runtime(rt.Runtime(store, TaskApi(TaskService(store)), None, None, asyncio.new_event_loop()))
    yield store
    rt.set_runtime(None)
    if source._SOURCE is not None:
        source._SOURCE.close()
        source._SOURCE = None


@pytest.fixture(scope="module")
def mem(store):  # noqa: F811
    from workbench.memory import embedder as embedder_mod

    require(embedder_mod.available(), "the embedder is not installed: run `make venv`")
    return MemoryStore(store, embedder_mod.Embedder(embedder_mod.find_model()))


def _page():
    import dashboards  # noqa: F401  (the pages' Markdown policy)
    from dashboards.memory import MemoryPage

    return MemoryPage()


def test_the_empty_page_says_how_memory_fills_and_a_bad_query_gets_one_line(runtime):
    page = _page()
    assert not page.banner.visible, page.banner.object
    assert page.empty.visible and "Run the same request twice" in page.empty.object
    assert page.counts.value.empty and page.rates.value.empty and page.strategies.value.empty
    assert not page.rates_card.visible  # no blank chart on an empty store
    page.query = "   "
    page.param.trigger("search")
    assert page.search_note.visible and "The memory query is empty" in page.search_note.object
    assert not page.results.visible


def _task(store, kind: str, status: str) -> str:  # noqa: F811
    with store.connection() as conn:
        return str(conn.execute("INSERT INTO tasks (prompt, kind, status) VALUES ('x', %s, %s) RETURNING id",
                                (kind, status)).fetchone()[0])


def test_the_page_shows_what_is_stored_hit_rates_what_helped_and_strategies(runtime, mem):
    store = runtime  # noqa: F811  (the same store, as the page sees it)
    solution = mem.add(NewEntry(kind="solution", owner="ana", text=REQUEST, language="python", verified=True,
                                body={"files": {"words.py": CODE}, "solution_file": "words.py"}))
    mem.add(NewEntry(kind="failure_note", owner="bob", text="Parse a date in ISO format",
                     body={"note": "the code loop stopped (max_rounds) with 1/3 tests passing"}))
    note = mem.add(NewEntry(kind="failure_note", owner="ana", text="Reverse a linked list in place",
                            body={"note": "the code loop stopped (max_rounds) with 2/4 tests passing"}))
    helped_task, lone_task, other = (_task(store, "code", "completed"), _task(store, "code", "failed"),
                                     _task(store, "code", "completed"))
    telemetry.add_sink(store.record)
    try:
        with telemetry.task(helped_task, agent="code"), telemetry.span("subtask", agent="code"):
            found = memory.recall("reverse the order of words in a sentence", owner="ana",  # two entries used
                                  kinds=("solution", "failure_note"), agent="code", memory=mem, min_similarity=0.0)
            cached = memory.cached_solution(REQUEST, owner="ana", language="python", agent="code", memory=mem)
        with telemetry.task(lone_task, agent="code"), telemetry.span("subtask", agent="code"):
            missed = memory.recall("compute the shortest path in a weighted graph", owner="ana", kinds=("solution",),
                                   agent="code", memory=mem)
    finally:
        store.flush()
        telemetry.remove_sink(store.record)
    assert found.ids == [solution.id, note.id] and cached is not None and not missed.hits
    with store.connection() as conn:  # a finished code subtask for the strategy table
        conn.execute("INSERT INTO task_subtasks (task_id, plan_version, subtask_id, specialist, status, result) "
                     "VALUES (%s, 1, 's1', 'code', 'done', %s)",
                     (other, Jsonb({"data": {"language": "python", "max_rounds": 2}, "model": "fake:m",
                                    "cost_usd": 0.002, "tokens_in": 10, "tokens_out": 5})))

    page = _page()
    assert not page.empty.visible and "3 entries" in page.status.object
    counts = {(r.kind, r.owner): r.entries for r in page.counts.value.itertuples()}
    assert counts == {("solution", "ana"): 1, ("failure_note", "bob"): 1, ("failure_note", "ana"): 1}
    newest = page.newest.object
    assert "<script" not in newest and "<b>" not in newest  # stored requests and code are text
    assert html.escape("<script>alert(1)</script>") in newest and "reversed(s.split())" in newest
    [day] = page.rates.value.to_dict("records")
    # one retrieval used two entries (two events, one retrieval), one found nothing
    assert (day["retrievals"], day["found"], day["hit rate"], day["entries used"], day["cache hits"]) == (
        2, 1, "50.0%", 2, 1)
    assert page.rates_card.visible and page.rates_plot.object is not None
    [code] = page.helped.value.to_dict("records")
    assert code["with memory"] == "1/1" and code["without memory"] == "1/2" and code["difference"] == "+50.0 points"
    [arm] = page.strategies.value.to_dict("records")
    assert (arm["kind"], arm["settings"], arm["passed"], arm["mean"]) == ("code:python", "max_rounds=2", "1/1",
                                                                          "0.67")


def test_search_finds_the_owners_entries_only(runtime, mem):
    page = _page()
    page.query, page.owner = "reverse the words of a sentence", "ana"
    page.param.trigger("search")
    assert page.results.visible and not page.search_note.visible
    assert {h["owner"] for h in page.hits} == {"ana"} and page.hits[0]["kind"] == "solution"
    assert html.escape("<script>") in page.results.object and "<script" not in page.results.object
    page.owner = "carol"  # nobody else sees ana's entry
    page.param.trigger("search")
    assert not page.results.visible and "No entry of owner carol" in page.search_note.object
