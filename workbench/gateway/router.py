"""Routing: pick the cheapest available model whose tier fits a task, with its failover chain.

    route = router.route(complexity=3, agent="coder")   # Route(model, chain, reason, ...)
    model = router.get_routed(complexity=3, agent="coder")   # the composed gateway stack for it

Order of decisions: local-only mode (WORKBENCH_OFFLINE=1, or every cloud breaker open) → explicit
`model=` → the policy's task override → its agent override → complexity routing. "Available" means
usable right now: cloud key set and not offline, local weights verified, breaker not open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.config import get_settings
from workbench.gateway import breaker
from workbench.gateway.policy import CLOUD, Policy, load
from workbench.prices import cloud_price


@dataclass
class Route:
    model: str
    chain: list[str]
    reason: str
    complexity: int | None = None
    tier: int | None = None
    usd_per_mtok: float | None = None
    local_only: bool = False
    skipped: dict[str, str] = field(default_factory=dict)  # candidate -> why it was not picked


def is_cloud(model_id: str) -> bool:
    return model_id.partition(":")[0] in CLOUD


def local_only() -> tuple[bool, str]:
    """(True, why) when calls must stay on the local model."""
    if get_settings().offline:
        return True, "offline mode (WORKBENCH_OFFLINE=1)"
    cloud = [s for s in breaker.snapshot() if is_cloud(s["model"])]
    if cloud and all(s["state"] == "open" for s in cloud):
        return True, "every cloud provider's breaker is open"
    return False, ""


def available(model_id: str, check_breaker: bool = True) -> tuple[bool, str]:
    """Can this model take a call now? (ok, reason when not)."""
    provider, _, name = model_id.partition(":")
    settings = get_settings()
    if provider in CLOUD:
        if settings.offline:
            return False, "offline mode"
        if getattr(settings, f"{provider}_api_key", None) is None:
            return False, f"{provider.upper()}_API_KEY not set"
    elif provider == "local":
        from workbench import weights

        try:
            ok, why = weights.status(name)
        except Exception as exc:  # unknown local model name: not available, and say why
            return False, str(exc)
        if not ok:
            return False, why
    elif provider == "ollama" and settings.ollama_host is None:
        return False, "OLLAMA_HOST not set"
    if check_breaker and breaker.is_open(model_id):
        return False, "breaker open"
    return True, ""


def usd_per_mtok(model_id: str, policy: Policy) -> float | None:
    """Mean of input and output price per million tokens; local models from expected CPU-seconds."""
    entry = policy.models.get(model_id, {})
    if model_id.startswith("local:"):
        cpu = (float(entry.get("cpu_s_per_input_token", 0.023)) + float(entry.get("cpu_s_per_output_token", 0.082))) / 2
        return cpu * 1_000_000 * get_settings().local_cpu_second_usd
    price = cloud_price(model_id)
    return None if price is None else (price["input"] + price["output"]) / 2


def route(complexity: int = 2, *, agent: str | None = None, task_id: str | None = None, model: str | None = None,
          max_usd_per_mtok: float | None = None, policy: Policy | None = None) -> Route:
    policy = policy or load()
    offline, why = local_only()
    if offline:
        return _fixed(policy.local_model, policy, f"local-only: {why}", local=True)
    explicit = model or policy.overrides["tasks"].get(task_id or "") or policy.overrides["agents"].get(agent or "")
    if explicit:
        source = "explicit model" if model else ("task override" if task_id in policy.overrides["tasks"]
                                                   else "agent override")
        return _fixed(explicit, policy, source)
    level = min(5, max(1, int(complexity)))
    rule = policy.complexity[level]
    ceiling = float(max_usd_per_mtok if max_usd_per_mtok is not None else rule["max_usd_per_mtok"])
    best: tuple[float, int, int, str] | None = None
    skipped: dict[str, str] = {}
    for order, (name, entry) in enumerate(policy.models.items()):
        tier, price = int(entry["tier"]), usd_per_mtok(name, policy)
        if tier < rule["min_tier"]:
            continue
        if price is None or price > ceiling:
            skipped[name] = "no price" if price is None else f"${price:.3g}/Mtok over the ${ceiling:g} ceiling"
            continue
        ok, reason = available(name)
        if not ok:
            skipped[name] = reason
            continue
        candidate = (price, tier, order, name)  # cheapest, then lowest tier that fits, then file order
        best = candidate if best is None or candidate < best else best
    if best is None:
        route = _fixed(policy.local_model, policy, f"no available model of tier >= {rule['min_tier']} within "
                                                     f"${ceiling:g}/Mtok; using the local model")
    else:
        price, tier, _, name = best
        route = Route(name, policy.chain(name), f"cheapest available of tier >= {rule['min_tier']} within "
                                                 f"${ceiling:g}/Mtok", tier=tier, usd_per_mtok=price)
    route.complexity, route.skipped = level, skipped
    return route


def _fixed(model_id: str, policy: Policy, reason: str, local: bool = False) -> Route:
    from workbench.providers import resolve

    model_id = resolve(model_id)
    tier = policy.models.get(model_id, {}).get("tier")
    return Route(model_id, policy.chain(model_id), reason, tier=tier, usd_per_mtok=usd_per_mtok(model_id, policy),
                 local_only=local)


def get_routed(complexity: int = 2, **kwargs: Any) -> Any:
    """The composed gateway model for a route (see stack.compose); `.route` says why it was picked."""
    from workbench.gateway.stack import compose

    r = route(complexity, **{k: v for k, v in kwargs.items() if k in ("agent", "task_id", "model",
                                                                       "max_usd_per_mtok", "policy")})
    model = compose(r.chain, **{k: v for k, v in kwargs.items() if k not in ("agent", "task_id", "model",
                                                                             "max_usd_per_mtok", "policy")})
    model.route = r
    return model
