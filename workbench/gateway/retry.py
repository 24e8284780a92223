"""Retries one deployment with exponential backoff and full jitter, honouring Retry-After.

Retried: 429, 5xx, 408, timeouts, dropped connections, malformed answers (faults.py decides).
Not retried: the caller's own errors (400, 401/missing key, bad schema, unknown model, context too long,
budget) and 402 or an open breaker (asking the same deployment again cannot help; fallback moves on).
The total time spent sleeping is capped: when the next wait (e.g. a long Retry-After) would pass the
cap, the error is raised at once so the fallback layer can fail over instead of waiting.
Streams are retried only before their first delta; after it, a failure is a StreamInterrupted.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import Any

from workbench.gateway import attempts
from workbench.gateway.faults import classify, interrupted
from workbench.gateway.relay import Relay
from workbench.gateway.wrapper import WrapperModel
from workbench.messages import Completion, MessagesLike, Stream

RETRY_AFTER_JITTER = 0.1  # add up to 10 % so clients told the same Retry-After do not return in lockstep


class RetryModel(WrapperModel):
    def __init__(self, wrapped: Any, attempts: int = 3, base_s: float = 0.25, cap_s: float = 8.0,
                 max_wait_s: float = 30.0, sleep: Callable[[float], None] = time.sleep,
                 rand: Callable[[], float] = random.random):
        super().__init__(wrapped)
        self.attempts, self.base_s, self.cap_s, self.max_wait_s = max(1, int(attempts)), base_s, cap_s, max_wait_s
        self.sleep, self.rand = sleep, rand

    def delay(self, exc: BaseException, attempt: int, waited: float) -> float | None:
        """Seconds to wait before attempt+1, or None to give up now."""
        if attempt >= self.attempts or not classify(exc).retry:
            return None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            wait = float(retry_after) * (1 + RETRY_AFTER_JITTER * self.rand())
        else:
            wait = self.rand() * min(self.cap_s, self.base_s * 2 ** (attempt - 1))
        return wait if waited + wait <= self.max_wait_s else None

    def complete(self, messages: MessagesLike, **options: Any) -> Completion:
        with attempts.scope():  # one call id for all attempts
            waited = 0.0
            attempt = 1
            while True:
                try:
                    with attempts.scope(attempt=attempt):
                        return self.wrapped.complete(messages, **options)
                except Exception as exc:
                    wait = self.delay(exc, attempt, waited)
                    if wait is None:
                        raise
                self.sleep(wait)
                waited += wait
                attempt += 1

    def stream(self, messages: MessagesLike, **options: Any) -> Stream:
        ctx = attempts.captured()
        relay = Relay(self.model_id)
        attempt, waited = 1, 0.0
        while True:  # opening is retried too; errors that end it surface from stream() itself
            try:
                first = self._open(ctx, attempt, messages, options)
                break
            except Exception as exc:
                wait = self.delay(exc, attempt, waited)
                if wait is None:
                    raise
            self.sleep(wait)
            waited, attempt = waited + wait, attempt + 1

        def deltas() -> Iterator[str]:
            inner: Stream | None = first
            n, slept = attempt, waited
            while True:
                try:
                    if inner is None:
                        inner = self._open(ctx, n, messages, options)
                    yield from relay.forward(inner)
                    return
                except Exception as exc:
                    if inner is not None and inner.text:  # delivered text can never be shown twice
                        raise interrupted(exc, self.model_id, inner.text)
                    wait = self.delay(exc, n, slept)
                    if wait is None:
                        raise
                inner = None
                self.sleep(wait)
                slept, n = slept + wait, n + 1

        return relay.stream(deltas())

    def _open(self, ctx: dict, attempt: int, messages: MessagesLike, options: dict) -> Stream:
        with attempts.restored(ctx, attempt=attempt):
            return self.wrapped.stream(messages, **options)
