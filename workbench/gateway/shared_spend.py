"""Budgets and rate limits shared by every process, kept in the store's spend ledger (workbench.store.spend).

The BudgetModel asks here before each call. Which limits apply to a call:

- key: the caller's API key, by the key's stored *name* (the server puts it in the caller scope; the Bearer
  string is never a budget name, so a rotated key keeps its spend). Limit per UTC day and calls per minute:
  the key's own (`workbench keys limit`), else the policy's `budgets.key` / `rate_limits.key`.
- agent: the policy's `budgets.agent` / `rate_limits.agent`, per UTC day.
- task: the task's own `budget_usd` (tasks table), over the task's whole life, whichever process calls.
- day: every cloud call together, WORKBENCH_DAILY_CLOUD_BUDGET_USD per UTC day.

A cloud model without a price is refused before the call (its cost could not be counted). When the ledger
cannot be read, a cloud call is refused (fail closed); a local call falls back to the per-process budgets,
because the free local model must keep working while Postgres is down. `clock` is what "today" and "this
minute" are read from (tests replace it).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from workbench import telemetry
from workbench.config import get_settings
from workbench.errors import BudgetExceeded, RateLimited, SpendLedgerUnavailable, UnpricedCloudModel
from workbench.gateway.policy import CLOUD
from workbench.hosts import is_loopback_url
from workbench.prices import cloud_price
from workbench.store import spend

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 2.0  # a ledger that does not answer within this refuses cloud calls instead of hanging them


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


clock: Callable[[], datetime] = _utc_now


def refused(message: str, scope: str, name: str) -> BudgetExceeded:
    err = BudgetExceeded(message)
    err.budget = f"{scope}:{name}"  # type: ignore[attr-defined]
    return err


def is_cloud(model_id: str) -> bool:
    """A model of a cloud provider (openai, groq, mistral), unless that provider is pointed at a server on this
    machine (WORKBENCH_OPENAI_BASE_URL=http://127.0.0.1:...): a server of your own is not cloud spend."""
    provider, _, _ = model_id.partition(":")
    if provider not in CLOUD:
        return False  # local, ollama, test models and plugins
    base = getattr(get_settings(), f"{provider}_base_url", None)
    return not (base and is_loopback_url(base))


def cloud_members(model: Any) -> list[str]:
    """The cloud models a gateway stack may call: its own, or each member of its failover chain."""
    from workbench.gateway.fallback import FallbackModel

    while True:
        if isinstance(model, FallbackModel):
            return [m for m in model.chain if is_cloud(m)]
        inner = model.__dict__.get("wrapped") if hasattr(model, "__dict__") else None
        if inner is None:
            return [model.model_id] if is_cloud(model.model_id) else []
        model = inner


def reachable(model_ids: list[str]) -> list[str]:
    """Those of `model_ids` a call could reach now (key set, not offline, network allowed): the ones a call may
    spend on."""
    from workbench.gateway.availability import available

    if not get_settings().allow_network:  # WORKBENCH_ALLOW_NETWORK=0: the providers refuse to leave the machine
        return []
    return [m for m in model_ids if available(m, check_breaker=False)[0]]


def check_priced(model_id: str) -> None:
    if cloud_price(model_id) is None:
        provider, _, name = model_id.partition(":")
        raise UnpricedCloudModel(
            f"{model_id} has no price, so no budget could count its cost: refused before the call. Price it in a "
            f"YAML file named by WORKBENCH_PRICES_FILE, e.g. `{provider}: {{{name}: {{input: 1.0, output: 4.0}}}}` "
            f"(USD per million tokens).")


def ledger_store(cloud: bool, ctx: Mapping[str, Any], limited: bool) -> Any:
    """The store whose ledger this call counts in, or None for the per-process budgets (a local call with no
    store open in this process). A cloud call opens the store if needed; SpendLedgerUnavailable if it cannot."""
    from workbench.store import current_store, get_store

    store = current_store()
    if store is not None:
        return store if (cloud or limited or ctx.get("key") or _task_id(ctx)) else None
    if not cloud:
        return None
    try:
        return get_store()
    except Exception as exc:
        raise unavailable(exc) from None


def unavailable(exc: BaseException) -> SpendLedgerUnavailable:
    return SpendLedgerUnavailable(
        f"The spend ledger in Postgres cannot be read ({type(exc).__name__}), so cloud calls are refused until it "
        f"is back: no budget may be passed unseen. Local models still run. Check the store with `workbench doctor` "
        f"(or WORKBENCH_POSTGRES_URL).")


def _task_id(ctx: Mapping[str, Any]) -> str | None:
    return ctx.get("task_id") or telemetry.current().task_id


def _per_minute(rule: Any) -> int | None:
    return None if not rule else max(int(math.ceil(rule["per_minute"])), 0)


def admit(store: Any, ctx: Mapping[str, Any], budgets: Any, cloud: bool,
          estimate: Callable[[], tuple[float, dict]]) -> Callable[[float], None]:
    """Reserve the call's estimate in every limit that applies; returns settle(actual_usd). Raises
    BudgetExceeded, RateLimited, or SpendLedgerUnavailable when the ledger does not answer."""
    import psycopg
    from psycopg_pool import PoolTimeout

    now = clock()
    today = spend.day(now)
    try:
        with store.pool.connection(timeout=CONNECT_TIMEOUT_S) as conn:
            claims, rates = _limits(conn, ctx, budgets, cloud, today)
            for c in claims:
                if c.limit_usd <= 0:
                    raise refused(_zero(c), c.scope, c.name)
            if not claims and not rates:
                return lambda actual: None
            usd, detail = estimate() if claims else (0.0, {})
            try:
                hold = spend.reserve(conn, claims, usd, rates, now)
            except spend.OverLimit as over:
                raise refused(_over(over, usd, detail), over.claim.scope, over.claim.name) from None
            except spend.RateFull as full:
                raise RateLimited(full.rate.scope, full.rate.name, full.rate.per_minute, full.retry_after) from None
    except (psycopg.Error, PoolTimeout, OSError) as exc:
        raise unavailable(exc) from None
    if not hold.claims:
        return lambda actual: None
    return lambda actual: _settle(store, hold, actual)


def _limits(conn: Any, ctx: Mapping[str, Any], budgets: Any, cloud: bool,
            today: str) -> tuple[list[spend.Claim], list[spend.Rate]]:
    claims: list[spend.Claim] = []
    rates: list[spend.Rate] = []
    if key := ctx.get("key"):
        usd, per_minute = spend.key_limits(conn, key)
        usd = usd if usd is not None else budgets.limit_for("key", key)
        per_minute = per_minute if per_minute is not None else _per_minute(budgets.rate_rule("key", key))
        if usd is not None:
            claims.append(spend.Claim("key", key, today, usd))
        if per_minute is not None:
            rates.append(spend.Rate("key", key, per_minute))
    if agent := ctx.get("agent"):
        if (usd := budgets.limit_for("agent", agent)) is not None:
            claims.append(spend.Claim("agent", agent, today, usd))
        if (per_minute := _per_minute(budgets.rate_rule("agent", agent))) is not None:
            rates.append(spend.Rate("agent", agent, per_minute))
    if (task := _task_id(ctx)) and (usd := spend.task_budget(conn, task)) is not None:
        claims.append(spend.Claim("task", task, spend.WHOLE_LIFE, usd))
    if cloud:
        claims.append(spend.Claim("day", "cloud", today, get_settings().daily_cloud_budget_usd))
    return claims, rates


def _settle(store: Any, hold: spend.Hold, actual: float) -> None:
    try:
        with store.pool.connection(timeout=CONNECT_TIMEOUT_S * 5) as conn:
            spend.settle(conn, hold, actual)
    except Exception as exc:  # the reservation stays counted: the ledger errs towards spent, never towards free
        log.warning("could not settle a call's cost in the spend ledger (%s); its reservation of $%.6f stays "
                    "counted", type(exc).__name__, hold.usd)


def _how_to_raise(scope: str, name: str) -> str:
    return {"key": f"`workbench keys limit {name} --usd-per-day N` (or budgets.key in the gateway policy)",
            "agent": f"budgets.agent.{name} in the gateway policy",
            "task": "the task's budget_usd",
            "day": "WORKBENCH_DAILY_CLOUD_BUDGET_USD"}[scope]


def _label(claim: spend.Claim) -> str:
    if claim.scope == "day":
        return f"daily cloud budget of {claim.period} (UTC)"
    period = "" if claim.period == spend.WHOLE_LIFE else f" for {claim.period} (UTC)"
    return f"{claim.scope} budget {claim.name!r}{period}"


def _zero(claim: spend.Claim) -> str:
    return (f"The {_label(claim)} is $0, so every call is refused. Give it a positive amount with "
            f"{_how_to_raise(claim.scope, claim.name)}.")


def _over(over: spend.OverLimit, usd: float, detail: dict) -> str:
    c = over.claim
    return (f"This call to {detail.get('model')} would cost about ${usd:.6f} ({detail.get('how')}), but the "
            f"{_label(c)} has ${over.left:.6f} left of ${c.limit_usd:g} (counted across every process). Raise "
            f"{_how_to_raise(c.scope, c.name)}, lower max_tokens, or use a cheaper or local model.")


def report() -> dict[str, Any]:
    """Today's shared spend (for /gateway/health): every ledger row of today's UTC day and the tasks', or
    why it cannot be read."""
    from workbench.store import current_store

    today = spend.day(clock())
    out: dict[str, Any] = {"day": today, "daily_cloud_budget_usd": get_settings().daily_cloud_budget_usd}
    store = current_store()
    if store is None:
        return {**out, "rows": [], "error": "no store open in this process"}
    try:
        with store.pool.connection(timeout=CONNECT_TIMEOUT_S) as conn:
            return {**out, "rows": spend.rows(conn, today)}
    except Exception as exc:
        return {**out, "rows": [], "error": f"the spend ledger cannot be read ({type(exc).__name__})"}
