"""The gateway: thin wrappers around a model, each one file, composed by `build()`.

Pricing, logging, retry, breaker, fallback, cache and budget: each one file, one wrapper.
"""

from __future__ import annotations

from workbench.gateway.logged import LoggedModel
from workbench.gateway.priced import PricedModel
from workbench.gateway.wrapper import WrapperModel
from workbench.providers.base import Model


def build(model: Model, *, cache: bool = True) -> Model:
    """Wrap a provider model with every cross-cutting behaviour (see stack.compose for the order):
    budget → cache → fallback → per model: retry → breaker → priced; LoggedModel outside all of it
    writes one llm_call event per logical call (each attempt inside is an llm_attempt event).
    cache=False leaves the response cache out (benchmarks: every mode pays for its own calls)."""
    from workbench.gateway.stack import compose

    return LoggedModel(compose(model, cache=cache))


__all__ = ["build", "WrapperModel", "PricedModel", "LoggedModel"]
