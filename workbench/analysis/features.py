"""Feature tables over the execution log, read from the analytics snapshot (DuckDB over Parquet).

Per call: one row per `llm_call` event. Per task: one row per finished task with its events rolled up
(rounds = model calls, agent steps, retries = runner attempts + gateway re-tries).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

CALL_FEATURES = ["duration_ms", "tokens_in", "tokens_out", "cost_usd", "error", "ms_per_token"]
TASK_FEATURES = ["duration_s", "llm_calls", "agent_steps", "tokens", "cost_usd", "errors", "retries"]
MAX_ROWS = 500_000

_CALLS = f"""
SELECT seq, event_id::VARCHAR AS row_key, task_id::VARCHAR AS task_id, ts, model, agent,
       coalesce(duration_ms, 0) AS duration_ms, coalesce(tokens_in, 0) AS tokens_in,
       coalesce(tokens_out, 0) AS tokens_out, coalesce(cost_usd, 0) AS cost_usd,
       CASE WHEN error IS NULL THEN 0 ELSE 1 END AS error, error AS error_text
FROM events WHERE kind = 'llm_call' ORDER BY seq DESC LIMIT {MAX_ROWS}
"""

_TASKS = f"""
WITH ev AS (
    SELECT task_id,
           count(*) FILTER (WHERE kind = 'llm_call') AS llm_calls,
           count(*) FILTER (WHERE kind = 'agent_step') AS agent_steps,
           coalesce(sum(tokens_in), 0) + coalesce(sum(tokens_out), 0) AS tokens,
           coalesce(sum(cost_usd), 0) AS cost_usd,
           count(error) AS errors,
           count(*) FILTER (WHERE kind = 'llm_attempt'
                            AND try_cast(json_extract_string(payload, '$.attempt') AS INTEGER) > 1) AS gateway_retries,
           max(seq) AS seq
    FROM events WHERE task_id IS NOT NULL GROUP BY task_id)
SELECT t.id::VARCHAR AS row_key, t.id::VARCHAR AS task_id, t.title, t.status, t.model, t.kind,
       t.finished_at AS ts, ev.seq,
       date_diff('millisecond', t.started_at, t.finished_at) / 1000.0 AS duration_s,
       ev.llm_calls, ev.agent_steps, ev.tokens, ev.cost_usd, ev.errors,
       coalesce(t.attempts, 0) + ev.gateway_retries AS retries
FROM tasks t JOIN ev ON ev.task_id = t.id
WHERE t.status IN ('completed', 'failed', 'cancelled') AND t.started_at IS NOT NULL AND t.finished_at IS NOT NULL
ORDER BY t.finished_at DESC LIMIT {MAX_ROWS}
"""


def call_rows(home: Path | None = None) -> pd.DataFrame:
    from workbench.store import analytics

    df = analytics.query(_CALLS, home=home)
    df["ms_per_token"] = df["duration_ms"] / np.maximum(df["tokens_out"].astype(float), 1.0)
    return df


def task_rows(home: Path | None = None) -> pd.DataFrame:
    from workbench.store import analytics

    return analytics.query(_TASKS, home=home)


def rows(level: str, home: Path | None = None) -> pd.DataFrame:
    return {"call": call_rows, "task": task_rows}[level](home)


FEATURES = {"call": CALL_FEATURES, "task": TASK_FEATURES}
