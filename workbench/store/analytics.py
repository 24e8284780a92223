"""Analytics for notebooks and dashboards: DuckDB over the Parquet snapshots the sync publishes.

    from workbench.store import analytics
    analytics.query("SELECT * FROM cost_daily ORDER BY day")          # -> pandas.DataFrame
    con = analytics.connect(); con.sql("SELECT * FROM latency_by_model").df()

Works while `workbench serve` (or `workbench db sync --watch`) is syncing: it never opens the DuckDB file the
sync writes (DuckDB would refuse, or block the sync), only the published Parquet files. `connect()` is a
snapshot as of the call (the files it lists stay readable for GC_GRACE_S, 10 minutes); `query()` always
reads the latest snapshot. Tables: events, tasks, memory (workbench.memory's entries with their embeddings,
FLOAT[384]: search them by brute force with array_cosine_similarity; see workbench.store.sync_memory). Views: llm_calls, cost_daily, latency_by_model,
failure_rates, tokens_per_task (defined once here, also created inside workbench.duckdb by the sync).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from workbench import events
from workbench.errors import StoreError
from workbench.store.sync_memory import DIMENSIONS, MEMORY_DDL

MANIFEST = "manifest.json"

EVENTS_DDL = events.duckdb_ddl()
TASKS_DDL = """
CREATE TABLE IF NOT EXISTS tasks (
    id UUID NOT NULL, title VARCHAR, prompt VARCHAR, kind VARCHAR, language VARCHAR, complexity SMALLINT,
    summary VARCHAR, status VARCHAR, priority INTEGER, model VARCHAR, budget_usd DOUBLE, parent_id UUID,
    result JSON, error VARCHAR, attempts INTEGER, created_at TIMESTAMPTZ, started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ, updated_at TIMESTAMPTZ
)"""

VIEWS = {
    "llm_calls": "SELECT * FROM events WHERE kind = 'llm_call'",
    # Cost per day, model and agent (roll up with GROUP BY for per-model or per-agent totals).
    "cost_daily": """
        SELECT date_trunc('day', ts) AS day, coalesce(model, '(none)') AS model, coalesce(agent, '(none)') AS agent,
               count(*) AS calls, sum(tokens_in) AS tokens_in, sum(tokens_out) AS tokens_out,
               coalesce(sum(cost_usd), 0) AS cost_usd, count(*) - count(cost_usd) AS unpriced_calls
        FROM events WHERE kind = 'llm_call' GROUP BY ALL""",
    "latency_by_model": """
        SELECT coalesce(model, '(none)') AS model, count(*) AS calls, avg(duration_ms) AS mean_ms,
               quantile_cont(duration_ms, 0.5) AS p50_ms, quantile_cont(duration_ms, 0.9) AS p90_ms,
               quantile_cont(duration_ms, 0.95) AS p95_ms, quantile_cont(duration_ms, 0.99) AS p99_ms,
               max(duration_ms) AS max_ms
        FROM events WHERE kind = 'llm_call' AND duration_ms IS NOT NULL GROUP BY ALL""",
    "failure_rates": """
        SELECT kind, coalesce(model, '(none)') AS model, count(*) AS total, count(error) AS failed,
               count(error) / count(*) AS failure_rate
        FROM events GROUP BY ALL""",
    "tokens_per_task": """
        SELECT e.task_id, any_value(t.title) AS title, any_value(t.status) AS status,
               count(*) FILTER (WHERE e.kind = 'llm_call') AS llm_calls, count(*) AS events,
               -- only llm_call rows: agent steps and subtask spans carry copies of the tokens of their calls
               coalesce(sum(e.tokens_in) FILTER (WHERE e.kind = 'llm_call'), 0) AS tokens_in,
               coalesce(sum(e.tokens_out) FILTER (WHERE e.kind = 'llm_call'), 0) AS tokens_out,
               coalesce(sum(e.cost_usd) FILTER (WHERE e.kind = 'llm_call'), 0) AS cost_usd,
               min(e.ts) AS first_ts, max(e.ts) AS last_ts
        FROM events e LEFT JOIN tasks t ON t.id = e.task_id
        WHERE e.task_id IS NOT NULL GROUP BY e.task_id""",
}


def create_views(con: duckdb.DuckDBPyConnection) -> None:
    for name, sql in VIEWS.items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")


def analytics_dir(home: Path | None = None) -> Path:
    if home is None:
        from workbench.config import get_settings

        home = get_settings().home
    return Path(home) / "analytics"


def read_manifest(root: Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(root) / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:  # written atomically, so this means someone edited it
        raise StoreError(f"{Path(root) / MANIFEST} is not valid JSON ({exc}). Delete it and run "
                         f"`workbench db sync` to publish a fresh one.") from None


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def connect(home: Path | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the analytics tables and views over the latest Parquet snapshot."""
    root = analytics_dir(home)
    manifest = read_manifest(root)
    if manifest is None:
        raise StoreError(f"No analytics published under {root} yet: run `workbench db sync` (or "
                         f"`workbench serve`, which syncs continuously).")
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    files = [root / p["file"] for p in manifest["events"]]
    if files:
        con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet([{', '.join(map(_quote, files))}])")
    else:
        con.execute(EVENTS_DDL)
    if manifest.get("tasks"):
        con.execute(f"CREATE VIEW tasks AS SELECT * FROM read_parquet({_quote(root / manifest['tasks'])})")
    else:
        con.execute(TASKS_DDL)
    if manifest.get("memory"):
        # Parquet keeps the vectors as plain lists: the view gives them back their fixed size (what
        # array_cosine_similarity needs).
        con.execute(f"CREATE VIEW memory AS SELECT * REPLACE (embedding::FLOAT[{DIMENSIONS}] AS embedding) "
                    f"FROM read_parquet({_quote(root / manifest['memory'])})")
    else:
        con.execute(MEMORY_DDL)
    create_views(con)
    return con


def query(sql: str, params: list | None = None, home: Path | None = None):
    """Run one SQL query on the latest snapshot and return a pandas DataFrame."""
    con = connect(home)
    try:
        return con.execute(sql, params or []).df()
    finally:
        con.close()


def snapshot_info(home: Path | None = None) -> dict[str, Any] | None:
    """The manifest of the latest snapshot (generation, published_at, watermarks, parts) or None."""
    return read_manifest(analytics_dir(home))
