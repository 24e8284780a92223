"""What the Memory page (and a notebook) reads about memory: what is stored, how often retrieval found
something, and whether the tasks that used memory passed more often than those of the same kind without.

    overview.stored(store)      # Stored: counts by kind and owner, the newest entries (no vectors)
    overview.hit_rates(store)   # one row a day: retrievals, those that used an entry, cache hits
    overview.helped(store)      # one row per task kind: passed/finished with memory and without

Everything here is read from Postgres: `memory_entries` and the `memory` events (workbench.memory.recall
writes one per retrieval, entry used, cache hit, store, merge and feedback), and the tasks' final status.
No embedder is needed; a Postgres without pgvector has no memory table, which `Stored.missing` says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psycopg.rows import dict_row

NEWEST = 20
DAYS = 30
NO_TABLE = ("This Postgres has no memory table (pgvector is missing): use the embedded Postgres (unset "
            "WORKBENCH_POSTGRES_URL) or install pgvector on the server, then run `workbench db migrate`.")


@dataclass
class Stored:
    counts: list[dict[str, Any]] = field(default_factory=list)  # kind, owner, entries, verified, uses, retired
    newest: list[dict[str, Any]] = field(default_factory=list)  # id, kind, owner, scope, text, score, uses, ...
    missing: str | None = None  # why there is no memory table

    @property
    def entries(self) -> int:
        return sum(c["entries"] for c in self.counts)


def stored(store: Any, newest: int = NEWEST, min_score: float | None = None) -> Stored:
    from workbench.memory.store import MIN_SCORE

    floor = MIN_SCORE if min_score is None else min_score
    with store.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        if not cur.execute("SELECT to_regclass('memory_entries') IS NOT NULL AS ok").fetchone()["ok"]:
            return Stored(missing=NO_TABLE)
        counts = cur.execute(
            "SELECT kind, owner, count(*) AS entries, count(*) FILTER (WHERE verified) AS verified, "
            "coalesce(sum(uses), 0)::bigint AS uses, count(*) FILTER (WHERE score < %s) AS retired "
            "FROM memory_entries GROUP BY kind, owner ORDER BY entries DESC, kind, owner", (floor,)).fetchall()
        rows = cur.execute(
            "SELECT id::text, kind, owner, scope, text, body, language, score, uses, successes, failures, merged, "
            "verified, source_task_id::text, created_at FROM memory_entries ORDER BY created_at DESC, id LIMIT %s",
            (newest,)).fetchall()
    return Stored(counts=counts, newest=rows)


def hit_rates(store: Any, days: int = DAYS) -> list[dict[str, Any]]:
    """Per day (UTC), oldest first: `retrievals` (one per recall: a prompt that asked memory), `found` (those
    that used at least one entry), `hit_rate` (found / retrievals), `entries_used` and `cache_hits`."""
    sql = """
        WITH e AS (
            SELECT date_trunc('day', ts AT TIME ZONE 'UTC') AS day, payload->>'action' AS action,
                   payload->>'used' AS used,
                   -- one recall's events share their span and agent: that pair is one retrieval
                   coalesce(parent_span_id, event_id::text) || '/' || coalesce(agent, '') AS recall
            FROM events WHERE kind = 'memory' AND ts >= now() - make_interval(days => %s)
              AND payload->>'action' IN ('retrieve', 'cache_hit'))
        SELECT day::date AS day,
               count(DISTINCT recall) FILTER (WHERE action = 'retrieve') AS retrievals,
               count(DISTINCT recall) FILTER (WHERE action = 'retrieve' AND used IS NOT NULL) AS found,
               count(*) FILTER (WHERE action = 'retrieve' AND used IS NOT NULL) AS entries_used,
               count(*) FILTER (WHERE action = 'cache_hit') AS cache_hits
        FROM e GROUP BY day ORDER BY day"""
    with store.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(sql, (days,)).fetchall()
    for r in rows:
        r["hit_rate"] = r["found"] / r["retrievals"] if r["retrievals"] else None
    return rows


def helped(store: Any) -> list[dict[str, Any]]:
    """Per task kind (the Director's route), finished tasks (completed or failed) that used a memory entry
    (a retrieval that used one, or a cache hit) against those of the same kind that did not: counts, passes
    (completed) and pass rates. Only kinds with at least one task that used memory."""
    sql = """
        WITH used AS (
            SELECT DISTINCT task_id FROM events
            WHERE kind = 'memory' AND task_id IS NOT NULL AND payload->>'action' IN ('retrieve', 'cache_hit')
              AND payload->>'used' IS NOT NULL),
        finished AS (
            SELECT coalesce(t.kind, 'unknown') AS kind, u.task_id IS NOT NULL AS with_memory,
                   t.status = 'completed' AS passed
            FROM tasks t LEFT JOIN used u ON u.task_id = t.id WHERE t.status IN ('completed', 'failed'))
        SELECT kind,
               count(*) FILTER (WHERE with_memory) AS with_n,
               count(*) FILTER (WHERE with_memory AND passed) AS with_passed,
               count(*) FILTER (WHERE NOT with_memory) AS without_n,
               count(*) FILTER (WHERE NOT with_memory AND passed) AS without_passed
        FROM finished GROUP BY kind HAVING count(*) FILTER (WHERE with_memory) > 0 ORDER BY kind"""
    with store.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(sql).fetchall()
    for r in rows:
        r["with_rate"] = r["with_passed"] / r["with_n"] if r["with_n"] else None
        r["without_rate"] = r["without_passed"] / r["without_n"] if r["without_n"] else None
    return rows


__all__ = ["NO_TABLE", "Stored", "helped", "hit_rates", "stored"]
