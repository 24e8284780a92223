"""Base of every gateway wrapper: behaves exactly like the model it wraps unless it overrides a method."""

from __future__ import annotations

from typing import Any

from workbench.messages import Completion, MessagesLike, Stream
from workbench.providers.base import Model, ModelInfo


class WrapperModel(Model):
    def __init__(self, wrapped: Model):
        super().__init__(wrapped.name)
        self.wrapped = wrapped
        self.provider = wrapped.provider
        self.structured_output = wrapped.structured_output

    def complete(self, messages: MessagesLike, **options: Any) -> Completion:
        return self.wrapped.complete(messages, **options)

    def stream(self, messages: MessagesLike, **options: Any) -> Stream:
        return self.wrapped.stream(messages, **options)

    def _complete(self, messages: list[dict], options: dict) -> Completion:  # pragma: no cover - not reached
        return self.wrapped._complete(messages, options)

    def info(self) -> ModelInfo:
        return self.wrapped.info()

    def unwrap(self) -> Model:
        inner = self.wrapped
        return inner.unwrap() if isinstance(inner, WrapperModel) else inner

    def __getattr__(self, name: str) -> Any:
        # Provider-specific helpers (e.g. LocalModel.count_tokens) stay reachable through the stack.
        return getattr(self.__dict__["wrapped"], name)
