"""A small execution log (DuckDB file and Parquet folder) for the agent tests; columns follow the events table."""

from __future__ import annotations

from pathlib import Path

import duckdb

COLUMNS = ("seq BIGINT, ts TIMESTAMP, task_id VARCHAR, agent VARCHAR, model VARCHAR, kind VARCHAR, "
           "tokens_in INTEGER, tokens_out INTEGER, cost_usd DOUBLE, duration_ms DOUBLE, error VARCHAR")
MODELS = ("local:qwen2.5-coder-0.5b", "local:qwen2.5-coder-1.5b")
AGENTS = ("director", "general", "code", "data")


def rows(n: int = 24) -> list[tuple]:
    """Deterministic rows: model i%2, agent i%4, cost grows with i, every 7th row an error."""
    return [(i, f"2026-11-01 10:{i:02d}:00", f"t-{i % 3}", AGENTS[i % 4], MODELS[i % 2],
             ("llm_call", "agent_step")[i % 2], 100 + i, 20 + i, round(0.0001 * (i + 1), 6), 50.0 * (i + 1),
             "timeout" if i % 7 == 6 else None) for i in range(n)]


def make_events_db(path: Path) -> Path:
    con = duckdb.connect(str(path))
    con.execute(f"CREATE TABLE events ({COLUMNS})")
    con.executemany(f"INSERT INTO events VALUES ({', '.join('?' * 11)})", rows())
    con.close()
    return path


def make_parquet_dir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    db = make_events_db(folder.parent / "for-parquet.duckdb")
    con = duckdb.connect(str(db))
    con.execute(f"COPY events TO '{folder / 'events.parquet'}' (FORMAT parquet)")
    con.close()
    return folder
