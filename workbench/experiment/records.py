"""Experiment rows: find the running one to resume or create a new one; look one up by name or id; list."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from workbench.errors import WorkbenchError
from workbench.evals.config import ExperimentConfig
from workbench.evals.datasets import Dataset

_LOCK_SALT = "workbench-experiment:"
COLUMNS = ("id, name, dataset, dataset_version, config_name, config, config_hash, case_limit, cases, status, "
           "created_at, finished_at")


class ExperimentNotFound(WorkbenchError):
    http_status = 404


def _row(r: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, uuid.UUID) else v.isoformat() if hasattr(v, "isoformat") else v)
            for k, v in r.items()}


def start(store, dataset: Dataset, config: ExperimentConfig, limit: int | None) -> tuple[dict[str, Any], bool]:
    """The running experiment with these settings on this dataset version (resumed: True), else a new one
    named CONFIG-DATASET-N."""
    digest = config.digest()
    with store.pool.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_LOCK_SALT + dataset.name,))
        found = cur.execute(
            f"SELECT {COLUMNS} FROM experiments WHERE status = 'running' AND dataset = %s AND dataset_version = %s "
            "AND config_hash = %s AND case_limit IS NOT DISTINCT FROM %s ORDER BY created_at DESC LIMIT 1",
            (dataset.name, dataset.version, digest, limit)).fetchone()
        if found is not None:
            return _row(found), True
        prefix = f"{config.name}-{dataset.name}-"
        taken = {r["name"] for r in cur.execute("SELECT name FROM experiments WHERE name LIKE %s",
                                                 (prefix.replace("_", r"\_") + "%",))}
        number = 1
        while f"{prefix}{number}" in taken:
            number += 1
        row = cur.execute(
            f"INSERT INTO experiments (id, name, dataset, dataset_version, config_name, config, config_hash, "
            f"case_limit, cases, status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'running') RETURNING {COLUMNS}",
            (str(uuid.uuid4()), f"{prefix}{number}", dataset.name, dataset.version, config.name,
             Jsonb(config.model_dump()), digest, limit, len(dataset.cases))).fetchone()
    return _row(row), False


def get(store, ref: str) -> dict[str, Any]:
    """An experiment by name, id, or a unique id prefix of at least 6 characters."""
    with store.pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        rows = cur.execute(f"SELECT {COLUMNS} FROM experiments WHERE name = %s", (ref,)).fetchall()
        if not rows and len(ref) >= 6:
            rows = cur.execute(f"SELECT {COLUMNS} FROM experiments WHERE id::text LIKE %s",
                               (ref.lower().replace("%", "").replace("_", "") + "%",)).fetchall()
    if len(rows) > 1:
        raise ExperimentNotFound(f"{ref!r} matches {len(rows)} experiments; give more of the id or the name "
                                 f"(`workbench experiment list`).")
    if not rows:
        raise ExperimentNotFound(f"No experiment {ref!r}. `workbench experiment list` shows names and ids.")
    return _row(rows[0])


SUMMARY = """
SELECT e.id, e.name, e.dataset, e.dataset_version, e.config_name, e.config->>'model' AS model,
       e.config->>'mode' AS mode, e.config, e.status, e.cases, e.created_at, e.finished_at,
       count(r.case_id) FILTER (WHERE r.status = 'done') AS done,
       count(r.case_id) FILTER (WHERE r.passed) AS passed,
       count(r.case_id) FILTER (WHERE r.error IS NOT NULL) AS errors,
       coalesce(sum(r.cost_usd), 0) AS cost_usd,
       coalesce(sum(r.tokens_in + r.tokens_out), 0) AS tokens,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY r.duration_ms) AS median_ms,
       avg(r.duration_ms) AS mean_ms
FROM experiments e LEFT JOIN experiment_results r ON r.experiment_id = e.id
"""


def summaries(store, ref: str | None = None) -> list[dict[str, Any]]:
    where, args = ("WHERE e.id = %s", [get(store, ref)["id"]]) if ref else ("", [])
    with store.pool.connection() as conn:
        rows = conn.cursor(row_factory=dict_row).execute(
            f"{SUMMARY} {where} GROUP BY e.id ORDER BY e.created_at DESC", args).fetchall()
    out = []
    for r in rows:
        r = _row(r)
        r["pass_rate"] = r["passed"] / r["done"] if r["done"] else None
        out.append(r)
    return out


def results(store, experiment_id: str) -> list[dict[str, Any]]:
    """The result rows in the dataset's case order."""
    with store.pool.connection() as conn:
        rows = conn.cursor(row_factory=dict_row).execute(
            "SELECT r.case_id, r.status, r.passed, r.score, r.tokens_in, r.tokens_out, r.cost_usd, r.duration_ms, "
            "r.error, r.task_id, r.output, r.detail, r.started_at, r.finished_at FROM experiment_results r "
            "JOIN experiments e ON e.id = r.experiment_id LEFT JOIN dataset_cases c ON c.dataset = e.dataset "
            "AND c.version = e.dataset_version AND c.case_id = r.case_id WHERE r.experiment_id = %s "
            "ORDER BY c.position", (experiment_id,)).fetchall()
    return [_row(r) for r in rows]
