"""The gateway: thin wrappers around a model, each one file, composed by `build()`.

Today: pricing. The gateway issue adds retry, fallback, breaker, cache, budget and logging here,
each as another wrapper in the same stack.
"""

from __future__ import annotations

from workbench.gateway.priced import PricedModel
from workbench.gateway.wrapper import WrapperModel
from workbench.providers.base import Model


def build(model: Model) -> Model:
    """Wrap a provider model with every cross-cutting behaviour, innermost first."""
    return PricedModel(model)


__all__ = ["build", "WrapperModel", "PricedModel"]
