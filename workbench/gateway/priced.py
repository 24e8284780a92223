"""Prices every completion: cloud calls from the price table, local calls from measured CPU-seconds."""

from __future__ import annotations

from typing import Any

from workbench.gateway.wrapper import WrapperModel
from workbench.messages import Completion, MessagesLike, Stream
from workbench.prices import price


def _priced(completion: Completion) -> Completion:
    completion.cost_usd, completion.cost_source = price(completion)
    return completion


class PricedModel(WrapperModel):
    def complete(self, messages: MessagesLike, **options: Any) -> Completion:
        return _priced(self.wrapped.complete(messages, **options))

    def stream(self, messages: MessagesLike, **options: Any) -> Stream:
        inner = self.wrapped.stream(messages, **options)
        finish = inner._finish
        inner._finish = lambda text: _priced(finish(text))
        return inner
