"""The `pipeline_runs` table: one row per run, written when it starts and when it ends."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

RUN_COLUMNS = ("id", "pipeline", "trigger", "scheduled_for", "status", "parameters", "started_at", "finished_at",
               "duration_ms", "failed_cell", "error", "workdir", "output_notebook", "output_html")


@dataclass(frozen=True)
class RunStart:
    id: str
    pipeline: str
    trigger: str  # manual | schedule | catch_up
    parameters: dict[str, Any]
    started_at: datetime
    workdir: str
    scheduled_for: datetime | None = None


def insert_start(conn, run: RunStart) -> None:
    conn.execute(
        "INSERT INTO pipeline_runs (id, pipeline, trigger, scheduled_for, status, parameters, started_at, workdir) "
        "VALUES (%s, %s, %s, %s, 'running', %s, %s, %s)",
        (run.id, run.pipeline, run.trigger, run.scheduled_for, json.dumps(run.parameters), run.started_at,
         run.workdir))


def finish(store, run_id: str, *, status: str, finished_at: datetime, duration_ms: float,
           failed_cell: int | None = None, error: str | None = None, output_notebook: str | None = None,
           output_html: str | None = None) -> None:
    with store.connection() as conn:
        conn.execute(
            "UPDATE pipeline_runs SET status = %s, finished_at = %s, duration_ms = %s, failed_cell = %s, "
            "error = %s, output_notebook = %s, output_html = %s WHERE id = %s",
            (status, finished_at, duration_ms, failed_cell, error, output_notebook, output_html, run_id))


def get(store, run_id: str) -> dict[str, Any] | None:
    with store.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT * FROM pipeline_runs WHERE id = %s", (run_id,)).fetchone()


def recent(store, pipeline: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """Newest first."""
    where, params = ("WHERE pipeline = %s", [pipeline]) if pipeline else ("", [])
    with store.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(f"SELECT * FROM pipeline_runs {where} ORDER BY started_at DESC LIMIT %s",
                           [*params, limit]).fetchall()
