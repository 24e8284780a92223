"""Gateway budgets (USD) and rate limits per agent and per API key, checked before a call is made.

Who is calling comes from attempts.caller(agent=..., api_key=...), else the agent from the telemetry
context (workbench.telemetry). Limits come from the policy (`budgets:`, `rate_limits:`) and from code:
set_limit("agent" | "key", name, usd). A task's own budget is not kept here: it is the task's
`budget_usd`, held by workbench.agents.guards.Budget and checked by the task around each of its calls.
Before a call, its cost is estimated (prompt tokens from the model's own tokenizer when it has one, else
chars/4 flagged estimated; output = max_tokens or the policy's default; cloud price from prices.yaml,
local from expected CPU-seconds) and reserved; afterwards the reservation is replaced by the
completion's real cost. A call that would pass a budget is refused with BudgetExceeded naming it; a
budget of 0 refuses every call.

Where spend is kept: in the store's spend ledger (Postgres) whenever this process has the store open, and
always for cloud calls (workbench.gateway.shared_spend: shared by the server and every Dask worker, per UTC
day, plus the task's budget_usd, each key's own limits and the daily cloud budget); else, for local calls
only, in this process (`Budgets` below: restart = fresh budgets), which is also the fallback for local calls
while Postgres is unreachable. A cloud call without a price, or while the ledger cannot be read, is refused.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from workbench.config import get_settings
from workbench.errors import BudgetExceeded, RateLimited, SpendLedgerUnavailable, UnpricedCloudModel
from workbench.gateway import attempts, shared_spend
from workbench.gateway.cache import normalized
from workbench.gateway.policy import Policy
from workbench.gateway.wrapper import WrapperModel
from workbench.messages import Completion, MessagesLike, Stream
from workbench.prices import cloud_price
from workbench.providers.base import estimate_tokens

log = logging.getLogger(__name__)
FIELDS = {"agent": "agent", "key": "key"}  # budget scope -> field of the caller context
MESSAGE_OVERHEAD_TOKENS = 8  # chat-template tokens around each message


class TokenBucket:
    def __init__(self, per_minute: float, burst: float | None = None):
        self.per_minute, self.rate = float(per_minute), float(per_minute) / 60.0
        self.capacity = float(burst or max(1.0, self.rate))
        self.tokens, self.last = self.capacity, time.monotonic()

    def take(self) -> float:
        """0.0 when a call may go now, else the seconds until one may."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate if self.rate > 0 else float("inf")


class Budgets:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget spend, limits set in code and the loaded policy (tests)."""
        self.policy_limits: dict[str, dict[str, float | None]] = {}
        self.policy_rates: dict[str, dict[str, Any]] = {}
        self.limits: dict[tuple[str, str], float | None] = {}  # set in code; wins over the policy
        self.spent: collections.defaultdict[tuple[str, str], float] = collections.defaultdict(float)
        self.buckets: dict[tuple[str, str], TokenBucket] = {}
        self.loaded: str | None = None
        self.active = False

    def configure(self, policy: Policy) -> None:
        stamp = repr((str(policy.path), policy.budgets, policy.rate_limits))
        if stamp == self.loaded:
            return
        with self._lock:
            self.policy_limits = {s: dict(v or {}) for s, v in policy.budgets.items()}
            self.policy_rates = {s: dict(v or {}) for s, v in policy.rate_limits.items()}
            self.buckets.clear()
            self.loaded = stamp
        self._refresh()

    def _refresh(self) -> None:
        self.active = bool(self.limits
                           or any(v is not None for t in self.policy_limits.values() for v in t.values())
                           or any(v for t in self.policy_rates.values() for v in t.values()))

    def set_limit(self, scope: str, name: str, usd: float | None) -> None:
        """A budget in USD for one agent / API key fingerprint (None removes it)."""
        if scope not in FIELDS:
            raise ValueError(f"budget scope must be one of {sorted(FIELDS)}, not {scope!r}")
        self.limits[(scope, name)] = usd
        self._refresh()

    def limit_for(self, scope: str, name: str) -> float | None:
        if (scope, name) in self.limits:
            return self.limits[(scope, name)]
        table = self.policy_limits.get(scope, {})
        return table.get(name, table.get("default"))

    def rate_rule(self, scope: str, name: str) -> dict[str, Any] | None:
        table = self.policy_rates.get(scope, {})
        return table.get(name, table.get("default"))

    def _bucket(self, scope: str, name: str) -> TokenBucket | None:
        rule = self.rate_rule(scope, name)
        if not rule:
            return None
        if (scope, name) not in self.buckets:
            self.buckets[(scope, name)] = TokenBucket(rule["per_minute"], rule.get("burst"))
        return self.buckets[(scope, name)]

    def admit(self, ctx: dict[str, Any], estimate: Callable[[], tuple[float, dict]]) -> tuple[list, float]:
        """Check every budget and rate limit that applies; reserve the estimate. Raises when refused."""
        applies = [(s, ctx[f], lim) for s, f in FIELDS.items() if ctx.get(f) and (lim := self.limit_for(s, ctx[f])) is not None]
        for scope, name, limit in applies:
            if limit <= 0:
                raise _refused(f"The {scope} budget for {name!r} is $0, so every call is refused. Give it a "
                               f"positive amount (budgets.{scope}.{name} in the gateway policy, or "
                               f"workbench.gateway.budget.set_limit({scope!r}, {name!r}, usd)).", scope, name)
        usd, detail = estimate() if applies else (0.0, {})
        with self._lock:
            for scope, name, limit in applies:
                left = limit - self.spent[(scope, name)]
                if usd > left:
                    raise _refused(
                        f"This call to {detail['model']} would cost about ${usd:.6f} ({detail['how']}), but the "
                        f"{scope} budget {name!r} has ${max(left, 0):.6f} left of ${limit:g}. Raise the budget, lower "
                        f"max_tokens, or use a cheaper model.", scope, name)
            for scope, field in (("key", "key"), ("agent", "agent")):
                name = ctx.get(field)
                bucket = self._bucket(scope, name) if name else None
                wait = bucket.take() if bucket else 0.0
                if wait:
                    raise RateLimited(scope, name, bucket.per_minute, wait)
            held = [(s, n) for s, n, _ in applies]
            for k in held:
                self.spent[k] += usd
        return held, usd

    def settle(self, held: list, reserved: float, actual: float) -> None:
        with self._lock:
            for k in held:
                self.spent[k] += actual - reserved

    def report(self) -> list[dict[str, Any]]:
        return [{"scope": s, "name": n, "spent_usd": round(v, 9), "limit_usd": self.limit_for(s, n)}
                for (s, n), v in sorted(self.spent.items())]


_refused = shared_spend.refused


BUDGETS = Budgets()
set_limit, report = BUDGETS.set_limit, BUDGETS.report


def estimate(model: Any, messages: MessagesLike, options: dict, policy: Policy,
             count: Callable[[str], int] | None | bool = False) -> tuple[float, dict]:
    """Pre-call cost estimate in USD, with how it was made. `count`: the model's tokenizer, if known."""
    msgs = normalized(messages)
    if count is False:
        count = getattr(model, "count_tokens", None)
    if count is not None:
        tokens_in, estimated = sum(count(m["content"]) + MESSAGE_OVERHEAD_TOKENS for m in msgs), False
    else:
        tokens_in, estimated = sum(estimate_tokens(m["content"]) + MESSAGE_OVERHEAD_TOKENS for m in msgs), True
    tokens_out = int(options.get("max_tokens") or policy.estimates["output_tokens"])
    model_id = model.model_id
    detail = {"model": model_id, "tokens_in": tokens_in, "tokens_out": tokens_out, "estimated": estimated}
    if model_id.startswith("local:"):
        rate = policy.models.get(model_id) or policy.estimates["local_cost"]
        cpu = tokens_in * rate["cpu_s_per_input_token"] + tokens_out * rate["cpu_s_per_output_token"]
        usd, how = cpu * get_settings().local_cpu_second_usd, f"~{cpu:.1f} CPU-s expected"
    elif (price := cloud_price(model_id)) is not None:
        usd = (tokens_in * price["input"] + tokens_out * price["output"]) / 1_000_000
        how = "price table"
    else:
        usd, how = 0.0, "unpriced"
    detail["how"] = f"{tokens_in}{' estimated' if estimated else ''} prompt + up to {tokens_out} output tokens, {how}"
    return usd, detail


class BudgetModel(WrapperModel):
    def __init__(self, wrapped: Any, policy: Policy, budgets: Budgets | None = None):
        super().__init__(wrapped)
        self.policy, self.budgets = policy, budgets or BUDGETS
        self.budgets.configure(policy)
        self.count_tokens_fn = getattr(wrapped, "count_tokens", None)  # looked up once: walks the whole stack
        self.cloud_members = shared_spend.cloud_members(wrapped)  # the cloud models this stack may call

    def _cloud_in_reach(self) -> list[str]:
        """The cloud models this call may spend on: a cloud model without its API key (or offline) cannot
        be called, so a call that can reach none of them is no cloud spend."""
        return shared_spend.reachable(self.cloud_members) if self.cloud_members else []

    def _checked(self, cloud: list[str]) -> bool:
        """Whether this call must be admitted at all (else it goes straight through: nothing can limit it)."""
        if cloud or self.budgets.active:
            return True
        from workbench.store import current_store

        return current_store() is not None

    def _admit(self, cloud: list[str], messages: MessagesLike, options: dict) -> Callable[[float], None]:
        """Check and reserve; returns settle(actual_usd)."""
        who = attempts.who()

        def cost() -> tuple[float, dict]:
            return estimate(self.wrapped, messages, options, self.policy, self.count_tokens_fn)

        try:
            for model_id in cloud:
                shared_spend.check_priced(model_id)
            store = shared_spend.ledger_store(bool(cloud), who, self.budgets.active)
            if store is not None:
                try:
                    return shared_spend.admit(store, who, self.budgets, bool(cloud), cost)
                except SpendLedgerUnavailable:
                    if cloud:
                        raise
                    log.warning("spend ledger unreachable: %s is local, so it runs under this process's budgets",
                                self.model_id)
            held, reserved = self.budgets.admit(who, cost)
            return lambda actual: self.budgets.settle(held, reserved, actual)
        except (BudgetExceeded, RateLimited, SpendLedgerUnavailable, UnpricedCloudModel) as exc:
            attempts.record(model=self.model_id, outcome="refused", fault=type(exc).__name__, error=str(exc)[:300])
            raise

    def complete(self, messages: MessagesLike, **options: Any) -> Completion:
        cloud = self._cloud_in_reach()
        if not self._checked(cloud):  # no limit anywhere: nothing to check or count
            return self.wrapped.complete(messages, **options)
        with attempts.scope():
            settle = self._admit(cloud, messages, options)
            try:
                completion = self.wrapped.complete(messages, **options)
            except BaseException:
                settle(0.0)
                raise
        settle(completion.cost_usd or 0.0)
        return completion

    def stream(self, messages: MessagesLike, **options: Any) -> Stream:
        cloud = self._cloud_in_reach()
        if not self._checked(cloud):
            return self.wrapped.stream(messages, **options)
        with attempts.scope():
            settle = self._admit(cloud, messages, options)
            try:
                inner = self.wrapped.stream(messages, **options)
            except BaseException:
                settle(0.0)
                raise
        finish = inner._finish

        def settled(text: str) -> Completion:
            completion = finish(text)
            settle((completion.cost_usd or 0.0) if completion else 0.0)
            return completion

        inner._finish = settled
        return inner
