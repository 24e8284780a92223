"""Routes: a model name (`route:NAME`) the gateway resolves on every call from the statistics of past runs.

The policy's `routes:` table names each route's candidates, the first being the default, and whose outcomes
decide (a specialist's: the subtasks it finished or failed on each model, as `workbench memory strategies`
shows them). Each call takes the cheapest candidate whose posterior success rate is as good as the best's
(workbench.memory.strategy: the default until another candidate has 3 outcomes, a little seeded exploration)
and goes through that model's own gateway stack (its failover, retries, cache, budget, price). The choice and
why is one `memory` event (`setting: model`, agent `gateway`) in the caller's trace; the answer names the
model that gave it. Without a store to read the statistics from, the default answers, and the event says so.
"""

from __future__ import annotations

import logging
import random
import threading
from typing import Any

from workbench import telemetry
from workbench.config import get_settings
from workbench.errors import UnknownModelError
from workbench.events import Kind
from workbench.gateway.policy import load
from workbench.memory import strategy
from workbench.messages import Completion, MessagesLike, Stream
from workbench.providers.base import Model, ModelInfo

log = logging.getLogger(__name__)
PREFIX = "route:"
_RNG = random.Random()  # a call has no task to seed by; the exploration rate alone bounds what it tries
_RNG_LOCK = threading.Lock()


def is_route(name: str | None) -> bool:
    return bool(name) and name.startswith(PREFIX)


def routed(name: str) -> RoutedModel:
    """The route `route:NAME` of the gateway policy; UnknownModelError naming the routes there are."""
    routes = load().routes
    route = routes.get(name[len(PREFIX):])
    if route is None:
        raise UnknownModelError(name, [PREFIX + r for r in sorted(routes)])
    return RoutedModel(name[len(PREFIX):], route["candidates"], route["specialist"])


def listed() -> list[ModelInfo]:
    """The policy's routes, for the model listings (`workbench models`, /v1/models)."""
    return [RoutedModel(name, r["candidates"], r["specialist"]).info() for name, r in sorted(load().routes.items())]


class RoutedModel(Model):
    provider = "route"

    def __init__(self, name: str, candidates: list[str], specialist: str):
        super().__init__(name)
        self.candidates, self.specialist = list(candidates), specialist
        self._built: dict[str, Model] = {}
        self._lock = threading.Lock()

    def complete(self, messages: MessagesLike, **options: Any) -> Completion:
        return self._model(self.choose()).complete(messages, **options)

    def stream(self, messages: MessagesLike, **options: Any) -> Stream:
        return self._model(self.choose()).stream(messages, **options)

    def _complete(self, messages: list[dict], options: dict) -> Completion:  # pragma: no cover - complete() above
        return self._model(self.choose())._complete(messages, options)

    def choose(self) -> str:
        """The candidate for this call, from the statistics (the default when they cannot be read)."""
        from workbench.store import current_store

        default, settings = self.candidates[0], get_settings()
        store = current_store()
        if store is None or not settings.strategy:
            why = "no store open to read past outcomes from" if store is None else "WORKBENCH_STRATEGY is off"
            telemetry.emit(Kind.MEMORY, agent="gateway", payload={
                "action": "strategy", "setting": strategy.MODEL, "route": self.model_id, "chose": default,
                "default": default, "explored": False, "why": f"chose the default {default}: {why}"})
            return default
        try:
            with _RNG_LOCK:
                rng = random.Random(_RNG.random())
            return strategy.choose_model(store, specialist=self.specialist, default=default,
                                         candidates=self.candidates[1:], rng=rng,
                                         explore=settings.strategy_explore, agent="gateway").value
        except Exception as exc:  # noqa: BLE001 - the statistics are an aid: unreadable, the default answers
            log.warning("route %s: statistics unreadable, the default %s answers: %s", self.model_id, default, exc)
            return default

    def _model(self, name: str) -> Model:
        """The candidate's own gateway stack, built once per route object."""
        from workbench import gateway, providers

        with self._lock:
            if name not in self._built:
                self._built[name] = gateway.build(providers.get_model(name))
            return self._built[name]

    def info(self) -> ModelInfo:
        return ModelInfo(name=self.model_id, provider=self.provider, source="gateway policy (routes)", usable=True,
                         reason=f"chooses among {', '.join(self.candidates)} by {self.specialist} outcomes")
