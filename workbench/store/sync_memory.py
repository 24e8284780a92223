"""Memory entries (workbench.memory) copied to the analytics side, so notebooks can search them by brute force:

    from workbench.store import analytics
    con = analytics.connect()
    con.execute("SELECT text, array_cosine_similarity(embedding, ?::FLOAT[384]) AS sim FROM memory "
                "WHERE model = ? ORDER BY sim DESC LIMIT 5", [vector, model]).df()

Entries change (uses, successes, merges) and are deleted (`workbench memory prune`), so they are copied as
tasks are: rows whose last writer (`row_xid`) is older than the oldest running transaction are final and
upserted, the watermark is that horizon, and both commit in one DuckDB transaction (exactly once); rows gone
from Postgres are deleted. A Postgres without pgvector has no memory table: the copy stays empty.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from workbench.store.sync_rows import ChangingTable, copy_changed

DIMENSIONS = 384  # all-MiniLM-L6-v2 (workbench.memory.embedder); the Postgres column is vector(384) too
MEMORY_DDL = f"""
CREATE TABLE IF NOT EXISTS memory (
    id UUID NOT NULL, kind VARCHAR, owner VARCHAR, scope VARCHAR, text VARCHAR, language VARCHAR,
    model VARCHAR, embedding FLOAT[{DIMENSIONS}], source_task_id UUID, verified BOOLEAN, uses INTEGER,
    successes INTEGER, failures INTEGER, merged INTEGER, score DOUBLE, body JSON, created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ, last_used_at TIMESTAMPTZ
)"""
_TS = pa.timestamp("us", tz="UTC")
_ARROW = pa.schema([
    ("id", pa.string()), ("kind", pa.string()), ("owner", pa.string()), ("scope", pa.string()),
    ("text", pa.string()), ("language", pa.string()), ("model", pa.string()), ("embedding", pa.list_(pa.float32())),
    ("source_task_id", pa.string()), ("verified", pa.bool_()), ("uses", pa.int32()), ("successes", pa.int32()),
    ("failures", pa.int32()), ("merged", pa.int32()), ("score", pa.float64()), ("body", pa.string()),
    ("created_at", _TS), ("updated_at", _TS), ("last_used_at", _TS),
])


def _us(col: str) -> str:
    return f"(extract(epoch FROM {col}) * 1000000)::bigint"


_SELECT = (
    "SELECT id::text, kind, owner, scope, text, language, model, embedding::real[], source_task_id::text, verified,"
    f" uses, successes, failures, merged, score, body::text, {_us('created_at')}, {_us('updated_at')},"
    f" {_us('last_used_at')} FROM memory_entries WHERE row_xid >= %s::text::xid8 AND row_xid < %s::text::xid8"
)
_INSERT = (
    f"INSERT INTO memory SELECT id::UUID, kind, owner, scope, text, language, model, embedding::FLOAT[{DIMENSIONS}],"
    " source_task_id::UUID, verified, uses, successes, failures, merged, score, body::JSON, created_at, updated_at,"
    " last_used_at FROM batch"
)


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    """The memory table and its watermark (an older copy without them gets both, without a rebuild)."""
    con.execute(MEMORY_DDL)
    con.execute("INSERT INTO _sync_state SELECT 'memory_xid', '0' WHERE NOT EXISTS "
                "(SELECT 1 FROM _sync_state WHERE key = 'memory_xid')")


def _has_table(pg) -> bool:
    return pg.execute("SELECT to_regclass('memory_entries') IS NOT NULL AND EXISTS (SELECT 1 FROM "
                      "information_schema.columns WHERE table_name = 'memory_entries' AND column_name = 'row_xid')"
                      ).fetchone()[0]


TABLE = ChangingTable(copy="memory", source="memory_entries", watermark="memory_xid", select=_SELECT,
                      insert=_INSERT, arrow=_ARROW)


def copy(con: duckdb.DuckDBPyConnection, store, fail=lambda stage: None) -> tuple[int, int]:
    """Upsert the entries changed since the watermark and delete those gone; returns (copied, deleted)."""
    return copy_changed(con, store, TABLE, fail, present=_has_table)
