"""An experiment's result rows: one per case, claimed by a run (`attempt`) and finished by that run only.

The row is inserted `running` with the attempt that will run it before its task is submitted. Only a task
carrying that attempt may finish it (one UPDATE ... WHERE attempt = ... AND status = 'running'); a resumed
run gives unfinished rows a new attempt, so a task left over from the crashed run can neither finish nor
duplicate a case. The primary key (experiment, case) makes a second row impossible.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from psycopg.types.json import Jsonb

FIELDS = ("passed", "score", "tokens_in", "tokens_out", "cost_usd", "duration_ms", "error", "output", "detail")
MAX_OUTPUT_CHARS = 20_000


@dataclass
class CaseResult:
    passed: bool
    score: float
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    duration_ms: float = 0.0
    error: str | None = None
    output: str | None = None
    detail: dict[str, Any] | None = None


def is_current(conn, experiment_id: str, case_id: str, attempt: str) -> bool:
    """Whether `attempt` is still the run that owns this unfinished case."""
    return conn.execute(
        "SELECT 1 FROM experiment_results WHERE experiment_id = %s AND case_id = %s AND attempt = %s "
        "AND status = 'running'", (experiment_id, case_id, attempt)).fetchone() is not None


def finish(conn, experiment_id: str, case_id: str, attempt: str, task_id: str | None, result: CaseResult) -> bool:
    """Record the case's result if `attempt` still owns it; False when another run took it over or did it."""
    values = asdict(result)
    values["output"] = (values["output"] or "")[:MAX_OUTPUT_CHARS] or None
    values["detail"] = Jsonb(values["detail"]) if values["detail"] is not None else None
    cur = conn.execute(
        "UPDATE experiment_results SET status = 'done', finished_at = now(), "
        "task_id = coalesce(%(t)s::uuid, task_id), " + ", ".join(f"{f} = %({f})s" for f in FIELDS) +
        " WHERE experiment_id = %(e)s AND case_id = %(c)s AND attempt = %(a)s AND status = 'running'",
        {**values, "e": experiment_id, "c": case_id, "a": attempt, "t": task_id})
    return cur.rowcount == 1
