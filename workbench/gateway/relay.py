"""One outer Stream made of inner streams tried in turn (retry's attempts, fallback's members).

The outer stream's completion is the one of the inner stream that finished, or that the consumer
stopped reading early: the provider's own count (usage, CPU time, so its price), not an estimate.
An inner stream that failed leaves nothing behind; if the outer stream ends in that failure, its
completion is what was delivered, marked finish_reason="error".
"""

from __future__ import annotations

from collections.abc import Iterator

from workbench.gateway.faults import partial
from workbench.messages import Completion, Stream


class Relay:
    def __init__(self, model_id: str):
        self.model_id = model_id
        self.kept: Completion | None = None

    def forward(self, inner: Stream) -> Iterator[str]:
        """`inner`'s deltas; its completion is kept when it ends or the consumer stops reading."""
        try:
            yield from inner
        except GeneratorExit:  # closing `inner` first makes the provider stop and count what it produced
            inner.close()
            self.kept = inner.completion
            raise
        finally:
            inner.close()
        self.kept = inner.completion

    def stream(self, deltas: Iterator[str]) -> Stream:
        """The outer Stream over `deltas` (a generator that forwards inner streams)."""
        return Stream(deltas, lambda text: self.kept or partial(self.model_id, text))
