"""Memory on the analytics side: the sync copies memory entries, with their embeddings, from the real
embedded Postgres into DuckDB and the published Parquet, exactly once (a crash before the commit copies
them again, never twice), follows their changes and deletions, and a notebook finds an entry by brute-force
cosine similarity."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import duckdb
import pytest
from helpers import require

from workbench.memory import embedder as embedder_mod
from workbench.memory.store import MemoryStore, NewEntry
from workbench.store import Store, analytics
from workbench.store import postgres as embedded
from workbench.store.sync import Syncer

REVERSE = "Write a Python function reverse_words(s) in words.py that reverses the order of the words in s."
MEDIAN = "Compute the median cost per model from the execution log."


@pytest.fixture(scope="module")
def store():
    root = Path(tempfile.mkdtemp(prefix="wb-memory-sync-"))
    home = root / "home"
    home.mkdir()
    s = Store.open(home, url="")
    yield s
    s.close()
    embedded.stop(home / "postgres")
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def mem(store):
    require(embedder_mod.available(), "the embedder is not installed: run `make venv`")
    return MemoryStore(store, embedder_mod.Embedder(embedder_mod.find_model()))


def _duck(syncer: Syncer, sql: str):
    con = duckdb.connect(str(syncer.duckdb_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_memory_entries_reach_duckdb_once_follow_changes_and_are_searchable(store, mem):
    solution = mem.add(NewEntry(kind="solution", owner="ana", text=REVERSE, language="python", verified=True,
                                body={"files": {"words.py": "def reverse_words(s): ..."}, "language": "python"})).id
    note = mem.add(NewEntry(kind="failure_note", owner="bob", text=MEDIAN, body={"note": "timed out"})).id
    syncer = Syncer(store)

    def crash(stage):
        if stage == "memory_inserted":
            raise RuntimeError("crash before the memory commit")

    syncer.failpoint = crash
    with pytest.raises(RuntimeError):
        syncer.sync_once()
    assert _duck(syncer, "SELECT count(*) FROM memory") == [(0,)]  # neither the rows nor the watermark
    syncer.failpoint = None
    first = syncer.sync_once()
    assert first.memory_copied == 2
    assert _duck(syncer, "SELECT count(*), count(DISTINCT id) FROM memory") == [(2, 2)]
    assert syncer.sync_once().memory_copied == 0  # nothing changed: nothing copied again

    # A notebook: brute-force cosine search over the published snapshot, with the query embedded the same way.
    vector = mem.embedder.embed_one("reverse the words of a sentence").tolist()
    con = analytics.connect(store.home)
    rows = con.execute("SELECT id::text, owner, array_cosine_similarity(embedding, ?::FLOAT[384]) AS sim FROM memory "
                       "WHERE model = ? ORDER BY sim DESC", [vector, mem.embedder.model_id]).fetchall()
    con.close()
    assert [r[0] for r in rows] == [solution, note] and rows[0][1] == "ana" and rows[0][2] > 0.6 > rows[1][2]

    mem.feedback([note], ok=False)  # an update: copied again, replacing the old row
    assert syncer.sync_once().memory_copied == 1
    assert _duck(syncer, f"SELECT count(*), max(failures) FROM memory WHERE id = '{note}'") == [(1, 1)]
    with store.connection() as conn:
        conn.execute("DELETE FROM memory_entries WHERE id = %s", (note,))
    assert syncer.sync_once().memory_deleted == 1
    assert [r[0] for r in analytics.query("SELECT id::text AS id FROM memory", home=store.home).itertuples(
        index=False)] == [solution]
