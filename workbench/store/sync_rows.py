"""Copying a Postgres table whose rows change and are deleted (tasks, memory entries) to DuckDB, exactly once.

Rows whose last writer (`row_xid`) is older than the oldest running transaction are final: they are
upserted, the table's watermark (a `_sync_state` key) moves to that horizon, and both commit in one DuckDB
transaction. Rows gone from Postgres are deleted from the copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import pyarrow as pa


@dataclass(frozen=True)
class ChangingTable:
    copy: str  # the DuckDB table
    source: str  # the Postgres table
    watermark: str  # its key in _sync_state
    select: str  # the source's rows with watermark <= row_xid < horizon, in `arrow`'s columns
    insert: str  # INSERT INTO copy ... FROM batch
    arrow: pa.Schema


def copy_changed(con: duckdb.DuckDBPyConnection, store, table: ChangingTable, fail: Callable[[str], None],
                 present: Callable[[object], bool] | None = None) -> tuple[int, int]:
    """Upsert the rows changed since the watermark and delete those gone; returns (copied, deleted). A source
    that is not `present` (read in the same snapshot) copies nothing. `fail(stage)` lets tests stop midway."""
    watermark = con.execute("SELECT value FROM _sync_state WHERE key = ?", [table.watermark]).fetchall()[0][0]
    with store.connection() as pg:
        pg.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        if present is not None and not present(pg):
            return 0, 0
        horizon = pg.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text").fetchone()[0]
        rows = pg.execute(table.select, (watermark, horizon)).fetchall()
        ids = [r[0] for r in pg.execute(f"SELECT id::text FROM {table.source}")]
    con.execute("BEGIN")
    try:
        if rows:
            batch = pa.Table.from_arrays([pa.array(col, t.type) for col, t in zip(zip(*rows), table.arrow)],
                                         schema=table.arrow)
            con.register("batch", batch)
            con.execute(f"DELETE FROM {table.copy} WHERE id IN (SELECT id::UUID FROM batch)")
            con.execute(table.insert)
            con.unregister("batch")
        deleted = 0
        if con.execute(f"SELECT count(*) FROM {table.copy}").fetchall()[0][0] != len(ids):  # some were deleted
            con.register("live", pa.table({"id": pa.array(ids, pa.string())}))
            deleted = con.execute(f"DELETE FROM {table.copy} WHERE id NOT IN (SELECT id::UUID FROM live)"
                                  ).fetchall()[0][0]
            con.unregister("live")
        fail(f"{table.copy}_inserted")
        con.execute("UPDATE _sync_state SET value = ? WHERE key = ?", [horizon, table.watermark])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return len(rows), deleted
