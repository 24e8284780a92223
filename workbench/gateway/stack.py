"""compose(): the whole gateway around a model or a failover chain, built in one place.

Order, outermost first, and why:

    BudgetModel       refuses before anything is spent, cached or retried; charges the real cost after
    CacheModel        a hit skips failover, retries and the provider (cost 0, cached=True); it stores
                      whatever the chain finally answered
    FallbackModel     moves along the chain once a deployment is given up on (only for chains of 2+)
      per deployment, for each model of the chain:
      RetryModel      retries the same deployment first (backoff, Retry-After) — cheaper than failing
                      over to a different (often pricier or weaker) model for a one-off blip
      BreakerModel    sees every real attempt: its own latency and outcome feed the health stats and the
                      breaker, and it reports each attempt; an open breaker fails fast, which the retry
                      layer does not retry and the fallback layer fails over on
      per_model(m)    PricedModel by default: each deployment priced at its own rate before anything
                      above reads cost_usd (budget, cache savings, records); a LoggedModel goes here too
      provider

gateway.build() wraps the stack in the LoggedModel: `LoggedModel(compose(model))` — one llm_call event per
logical call (what was asked and answered, total cost), while every attempt inside it (retries,
failovers, skipped members, cache hits, refusals) is one llm_attempt event from attempts.record().

A single model gets its failover chain from the policy (its `failover:` entries, and the local model
at the end of every cloud chain), so a dead cloud provider ends on the local model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from workbench.errors import ConfigError, UnknownModelError
from workbench.gateway.breaker import BreakerModel
from workbench.gateway.budget import BudgetModel
from workbench.gateway.cache import CacheModel, ResponseCache, shared
from workbench.gateway.fallback import FallbackModel
from workbench.gateway.policy import Policy, load
from workbench.gateway.priced import PricedModel
from workbench.gateway.retry import RetryModel
from workbench.providers.base import Model

ModelLike = Model | str


def compose(model_or_chain: ModelLike | Sequence[ModelLike], *, fallbacks: Sequence[ModelLike] | None = None,
            cache: bool | ResponseCache = True, retry: bool | dict = True, breaker: bool | dict = True,
            budget: bool = True, per_model: Callable[[Model], Model] | None = PricedModel,
            policy: Policy | None = None) -> Model:
    """The gateway stack. `model_or_chain`: a provider model, a name, or an explicit chain (list).
    `fallbacks`: the chain after a single model (None = from the policy, [] = none).
    `retry` / `breaker`: False to leave out, or a dict overriding the policy's settings."""
    policy = policy or load()
    chain = _chain(model_or_chain, fallbacks, policy)
    members = [_deployment(m, retry, breaker, per_model, policy) for m in chain]
    model: Model = members[0] if len(members) == 1 else FallbackModel(members)
    if cache is not False:
        store = cache if isinstance(cache, ResponseCache) else shared(policy.cache["ttl_s"], policy.cache["max_entries"])
        model = CacheModel(model, store)
    if budget:
        model = BudgetModel(model, policy)
    return model


def _deployment(model: Model, retry: bool | dict, breaker: bool | dict, per_model: Callable[[Model], Model] | None,
                policy: Policy) -> Model:
    inner = per_model(model) if per_model else model
    if breaker is not False:
        inner = BreakerModel(inner, **{**policy.breaker, **(breaker if isinstance(breaker, dict) else {})})
    if retry is not False:
        inner = RetryModel(inner, **{**policy.retry, **(retry if isinstance(retry, dict) else {})})
    return inner


def _chain(model_or_chain: Any, fallbacks: Sequence[ModelLike] | None, policy: Policy) -> list[Model]:
    if isinstance(model_or_chain, (list, tuple)):
        if not model_or_chain:
            raise ConfigError("compose() got an empty chain: give at least one model.")
        models = [_resolve(m, policy) for m in model_or_chain]
        return _dedup(models + [_resolve(f, policy) for f in fallbacks or []])
    primary = _resolve(model_or_chain, policy)
    if fallbacks is None:
        rest = [_resolve(name, policy, from_policy=True) for name in policy.chain(primary.model_id)[1:]]
    else:
        rest = [_resolve(f, policy) for f in fallbacks]
    return _dedup([primary, *rest])


def _resolve(model: ModelLike, policy: Policy, from_policy: bool = False) -> Model:
    if isinstance(model, Model):
        return model
    from workbench import providers

    try:
        return providers.get_model(model)
    except UnknownModelError as exc:
        if from_policy:
            raise ConfigError(f"Gateway policy {policy.path}: failover target {model!r} is not a known model "
                              f"({', '.join(exc.available[:8])}, ...). Fix its failover chain or local_model.") from None
        raise


def _dedup(models: list[Model]) -> list[Model]:
    seen: set[str] = set()
    out = []
    for m in models:
        if m.model_id not in seen:
            seen.add(m.model_id)
            out.append(m)
    return out


def layers(model: Model) -> list[Model]:
    """The wrappers of a stack, outermost first, down to the first model that wraps nothing
    (a FallbackModel's members are in its `.models`)."""
    out = [model]
    while hasattr(model, "__dict__") and "wrapped" in model.__dict__ and not isinstance(model, FallbackModel):
        model = model.__dict__["wrapped"]
        out.append(model)
    return out
