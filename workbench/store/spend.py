"""The spend ledger: reservations, settled costs and call counts per scope, in Postgres, shared by every process.

The gateway (workbench.gateway.shared_spend) reserves a call's estimated cost before the call and settles it
with the real cost afterwards, as the in-process budgets always did; here the numbers live in one table, so
the server and every Dask worker count against the same limits.

    hold = reserve(conn, [Claim("key", "ci", "2026-12-05", 1.0)], usd=0.002, rates=[Rate("key", "ci", 60)], now=t)
    settle(conn, hold, actual=0.0015)

Why it holds under concurrency: a reservation is one conditional UPDATE per scope,
`SET reserved = reserved + cost WHERE settled + reserved + cost <= limit`. The row lock it takes makes a
second process's UPDATE on the same row wait, and Postgres re-evaluates the second one's WHERE on the row as
the first left it (READ COMMITTED), so two processes can never both pass a limit. All scopes of one call are
reserved in one transaction, in a fixed order (no deadlock); a refusal rolls back what that call had taken.
Rate limits are fixed one-minute windows counted the same way (INSERT ... ON CONFLICT DO UPDATE ... WHERE
calls < limit).

Each reservation is also a row in spend_holds with a lease (HOLD_LEASE_S): settling deletes the row, and a
process killed between reserve and settle leaves its row behind, which the next reservation anywhere
releases once the lease is over (`release_expired`, run when a call would be refused), so a crash never
keeps money reserved for ever. Release and settle both delete the row first, so exactly one of them gives
the reservation back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg

from workbench.ids import task_id_or_none

EPSILON = 1e-12  # float sums of many small costs: a call that lands exactly on the limit passes
WHOLE_LIFE = "all"  # the period of a task's budget: it never resets
HOLD_LEASE_S = 900.0  # longer than any call may run (the slowest local generations take minutes)

# A ledger commit does not wait for its WAL flush (about 10 ms of fsync a call on this disk otherwise, twice a
# call). Locks and visibility are unchanged, so limits hold between processes exactly as before; only a crash
# of Postgres itself may forget the last fraction of a second of ledger changes.
_NO_FSYNC_WAIT = "SET LOCAL synchronous_commit = off"
_RESERVE = """
UPDATE spend_ledger SET reserved_usd = reserved_usd + %(usd)s, updated_at = now()
WHERE scope = %(scope)s AND name = %(name)s AND period = %(period)s
  AND settled_usd + reserved_usd + %(usd)s <= %(limit)s + %(eps)s
RETURNING settled_usd, reserved_usd
"""
_SETTLE = """
UPDATE spend_ledger SET reserved_usd = greatest(reserved_usd - %(reserved)s, 0),
                        settled_usd = settled_usd + %(actual)s, calls = calls + %(calls)s, updated_at = now()
WHERE scope = %(scope)s AND name = %(name)s AND period = %(period)s
"""
_SETTLE_HELD = """
UPDATE spend_ledger SET reserved_usd = greatest(reserved_usd - CASE WHEN %(hold)s::uuid IS NULL
                          OR EXISTS (SELECT 1 FROM spend_holds WHERE hold_id = %(hold)s::uuid)
                          THEN %(reserved)s ELSE 0 END, 0),
                        settled_usd = settled_usd + %(actual)s, calls = calls + %(calls)s, updated_at = now()
WHERE scope = %(scope)s AND name = %(name)s AND period = %(period)s
"""
_RATE = """
INSERT INTO rate_windows AS w (scope, name, window_start, calls) VALUES (%(scope)s, %(name)s, %(start)s, 1)
ON CONFLICT (scope, name, window_start) DO UPDATE SET calls = w.calls + 1 WHERE w.calls < %(limit)s
RETURNING calls
"""


@dataclass(frozen=True, order=True)
class Claim:
    """One limit a call counts against: scope (key, task, agent, day), the name in it, the period, the limit."""

    scope: str
    name: str
    period: str
    limit_usd: float


@dataclass(frozen=True, order=True)
class Rate:
    scope: str
    name: str
    per_minute: int


@dataclass(frozen=True)
class Hold:
    """What a call reserved: settle it with the real cost (or 0 when the call failed)."""

    claims: tuple[Claim, ...]
    usd: float
    hold_id: str | None = None  # its spend_holds row (None when nothing was reserved)


class OverLimit(Exception):
    def __init__(self, claim: Claim, settled: float, reserved: float):
        self.claim, self.settled, self.reserved = claim, settled, reserved
        self.left = max(claim.limit_usd - settled - reserved, 0.0)
        super().__init__(f"{claim.scope} {claim.name!r}: ${self.left:.6f} left of ${claim.limit_usd:g}")


class RateFull(Exception):
    def __init__(self, rate: Rate, retry_after: float):
        self.rate, self.retry_after = rate, retry_after
        super().__init__(f"{rate.scope} {rate.name!r}: {rate.per_minute} calls this minute")


def day(now: datetime) -> str:
    """The UTC day a moment falls on: the period of the daily scopes."""
    return now.astimezone(timezone.utc).date().isoformat()


def reserve(conn: psycopg.Connection, claims: list[Claim], usd: float, rates: list[Rate] = (),
            now: datetime | None = None, lease_s: float | None = None) -> Hold:
    """Count one call against every rate and reserve `usd` in every claim, all or nothing (one transaction).
    Raises RateFull or OverLimit, having taken nothing. A call refused for money tries once more after
    releasing the holds of dead processes (so the usual path costs no extra query)."""
    now = now or datetime.now(timezone.utc)
    lease_s = HOLD_LEASE_S if lease_s is None else lease_s
    claims = sorted(set(claims))
    try:
        return _reserve(conn, claims, usd, rates, now, lease_s)
    except OverLimit:
        if not release_expired(conn, now):
            raise
        return _reserve(conn, claims, usd, rates, now, lease_s)


def _reserve(conn: psycopg.Connection, claims: list[Claim], usd: float, rates: list[Rate], now: datetime,
             lease_s: float) -> Hold:
    """Every statement goes out in one pipeline (one round trip, in the same order as before: rates, then
    claims, sorted, so concurrent calls lock rows alike); the answers are read after, and a refusal rolls
    the whole transaction back."""
    start = now.astimezone(timezone.utc).replace(second=0, microsecond=0)
    rates = sorted(set(rates))
    for rate in rates:
        if rate.per_minute <= 0:
            raise RateFull(rate, _until_next_minute(start, now))
    with conn.pipeline() as pipe, conn.transaction():
        conn.execute(_NO_FSYNC_WAIT)
        taken = [(rate, conn.execute(_RATE, {"scope": rate.scope, "name": rate.name, "start": start,
                                             "limit": rate.per_minute})) for rate in rates]
        held = []
        for claim in claims:
            key = {"scope": claim.scope, "name": claim.name, "period": claim.period}
            conn.execute("INSERT INTO spend_ledger (scope, name, period) VALUES (%(scope)s, %(name)s, %(period)s) "
                         "ON CONFLICT DO NOTHING", key)
            held.append((claim, key, conn.execute(_RESERVE, {**key, "usd": usd, "limit": claim.limit_usd,
                                                              "eps": EPSILON})))
        hold = conn.execute(
            "INSERT INTO spend_holds (claims, usd, expires_at) VALUES (%s, %s, %s) RETURNING hold_id::text",
            (json.dumps([[c.scope, c.name, c.period] for c in claims]), usd,
             now + timedelta(seconds=lease_s))) if claims else None
        pipe.sync()
        for rate, cursor in taken:
            row = cursor.fetchone()
            if row is None:
                raise RateFull(rate, _until_next_minute(start, now))  # leaving the block rolls everything back
            if row[0] == 1:  # the first call of a new window: forget this scope's old windows
                conn.execute("DELETE FROM rate_windows WHERE scope = %s AND name = %s AND window_start < %s",
                             (rate.scope, rate.name, start))
        for claim, key, cursor in held:
            if cursor.fetchone() is None:
                settled, reserved = conn.execute(
                    "SELECT settled_usd, reserved_usd FROM spend_ledger "
                    "WHERE scope = %(scope)s AND name = %(name)s AND period = %(period)s", key).fetchone()
                raise OverLimit(claim, settled, reserved)
        hold_id = hold.fetchone()[0] if hold is not None else None
    return Hold(tuple(claims), usd, hold_id)


def _until_next_minute(start: datetime, now: datetime) -> float:
    return max((start + timedelta(minutes=1) - now).total_seconds(), 0.001)


def release_expired(conn: psycopg.Connection, now: datetime | None = None) -> int:
    """Give back the reservations whose lease is over (their process died before settling); how many."""
    now = now or datetime.now(timezone.utc)
    with conn.transaction():
        conn.execute(_NO_FSYNC_WAIT)
        expired = conn.execute("DELETE FROM spend_holds WHERE expires_at < %s RETURNING claims, usd",
                               (now,)).fetchall()
        for claims, usd in expired:
            for scope, name, period in claims:
                conn.execute(_SETTLE, {"scope": scope, "name": name, "period": period, "reserved": usd,
                                       "actual": 0.0, "calls": 0})
    return len(expired)


def settle(conn: psycopg.Connection, hold: Hold, actual: float) -> None:
    """Replace the reservation by the real cost (0 for a call that failed before costing anything). A hold
    already released (its lease ran out first) adds only the real cost. One round trip: the hold's row is
    locked first, so a release running at the same moment waits and then finds it gone (exactly one of them
    gives the reservation back), and deleted last."""
    params = {"hold": hold.hold_id, "reserved": hold.usd, "actual": max(actual, 0.0), "calls": 1}
    with conn.pipeline(), conn.transaction():
        conn.execute(_NO_FSYNC_WAIT)
        if hold.hold_id is not None:
            conn.execute("SELECT 1 FROM spend_holds WHERE hold_id = %s FOR UPDATE", (hold.hold_id,))
        for claim in hold.claims:
            conn.execute(_SETTLE_HELD, {**params, "scope": claim.scope, "name": claim.name, "period": claim.period})
        if hold.hold_id is not None:
            conn.execute("DELETE FROM spend_holds WHERE hold_id = %s", (hold.hold_id,))


def key_limits(conn: psycopg.Connection, key_name: str) -> tuple[float | None, int | None]:
    """(USD per day, calls per minute) set on an active stored key; (None, None) when unset or no such key."""
    row = conn.execute("SELECT budget_usd_per_day, rate_per_minute FROM api_keys "
                       "WHERE name = %s AND revoked_at IS NULL", (key_name,)).fetchone()
    return (row[0], row[1]) if row else (None, None)


def task_budget(conn: psycopg.Connection, task_id: str) -> float | None:
    """The task's budget_usd (None: no limit, or no such task in the store)."""
    task_id = task_id_or_none(task_id)
    if task_id is None:
        return None
    row = conn.execute("SELECT budget_usd FROM tasks WHERE id = %s", (task_id,)).fetchone()
    return row[0] if row else None


def set_key_limits(conn: psycopg.Connection, key_name: str, usd_per_day: float | None,
                   per_minute: int | None) -> bool:
    """Set (None: clear) a stored key's daily budget and rate; False when no active key has that name."""
    return bool(conn.execute("UPDATE api_keys SET budget_usd_per_day = %s, rate_per_minute = %s "
                             "WHERE name = %s AND revoked_at IS NULL", (usd_per_day, per_minute, key_name)).rowcount)


def rows(conn: psycopg.Connection, period: str | None = None) -> list[dict[str, Any]]:
    """The ledger (one period, or all), for reports: scope, name, period, settled, reserved, calls."""
    sql = "SELECT scope, name, period, settled_usd, reserved_usd, calls FROM spend_ledger"
    found = conn.execute(sql + (" WHERE period IN (%s, 'all')" if period else "") + " ORDER BY scope, name, period",
                         (period,) if period else ()).fetchall()
    return [{"scope": s, "name": n, "period": p, "settled_usd": st, "reserved_usd": r, "calls": c}
            for s, n, p, st, r, c in found]
