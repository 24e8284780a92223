"""Can a model take a call now? The failover layer asks before it tries a member of a chain.

"Available" means usable right now: cloud key set and not offline, local weights verified, breaker
not open. `local_only()` says when every call must stay on the local model (WORKBENCH_OFFLINE=1, or
every cloud provider's breaker open).
"""

from __future__ import annotations

from workbench.config import get_settings
from workbench.gateway import breaker
from workbench.gateway.policy import CLOUD
from workbench.providers.local import status as local_status


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
        try:
            ok, why = local_status(name)  # the catalog's weights, or a GGUF file the user brought
        except Exception as exc:  # unknown local model name: not available, and say why
            return False, str(exc)
        if not ok:
            return False, why
    elif provider == "ollama" and settings.ollama_host is None:
        return False, "OLLAMA_HOST not set"
    if check_breaker and breaker.is_open(model_id):
        return False, "breaker open"
    return True, ""
