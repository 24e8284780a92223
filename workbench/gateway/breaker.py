"""A circuit breaker and rolling health per deployment ("provider:model"), in one process-wide registry.

closed ──N consecutive failures──► open ──cooldown──► half-open (one probe) ──ok──► closed
                                     ▲                            │ fails
                                     └────────────────────────────┘
Only faults that say something about the deployment count (429, 402, 5xx, timeouts, dropped
connections, malformed answers); a caller's own error (400, bad schema, missing key) does not.
`snapshot()` is what `workbench models` and `/health` show.

BreakerModel sits innermost in the stack (just around the priced provider), so it sees every real
attempt, measures the deployment's own latency, and reports each attempt through attempts.record().
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from typing import Any

from workbench.errors import BreakerOpen
from workbench.gateway import attempts
from workbench.gateway.faults import classify, describe, interrupted, normalize, partial
from workbench.gateway.wrapper import WrapperModel
from workbench.messages import Completion, MessagesLike, Stream


class Breaker:
    def __init__(self, model_id: str, failures: int = 5, cooldown_s: float = 30.0, window: int = 200):
        self.model_id, self.threshold, self.cooldown_s = model_id, max(1, int(failures)), float(cooldown_s)
        self.state = "closed"
        self.consecutive = 0
        self.opened_at = 0.0
        self.probing = False
        self.last_error = ""
        self.calls: collections.deque[tuple[bool, float]] = collections.deque(maxlen=int(window))  # (ok, ms)
        self.totals = {"ok": 0, "failed": 0, "rejected": 0}
        self._lock = threading.Lock()

    def before(self) -> None:
        """Let a call through, or fail fast with BreakerOpen."""
        with self._lock:
            if self.state == "closed":
                return
            left = self.cooldown_s - (time.monotonic() - self.opened_at)
            if self.state == "open" and left <= 0:
                self.state = "half_open"
            if self.state == "half_open" and not self.probing:
                self.probing = True  # this call is the probe; others fail fast until it reports
                return
            self.totals["rejected"] += 1
            raise BreakerOpen(self.model_id, self.consecutive, max(left, 0.0), self.last_error)

    def success(self, ms: float) -> None:
        with self._lock:
            self.calls.append((True, ms))
            self.totals["ok"] += 1
            self.consecutive, self.state, self.probing = 0, "closed", False

    def failure(self, ms: float, error: str) -> None:
        with self._lock:
            self.calls.append((False, ms))
            self.totals["failed"] += 1
            self.consecutive += 1
            self.last_error = error
            if self.state == "half_open" or self.consecutive >= self.threshold:
                self.state, self.opened_at = "open", time.monotonic()
            self.probing = False

    def neutral(self) -> None:
        """The caller's own error: says nothing about health, but releases a probe slot."""
        with self._lock:
            self.probing = False

    @property
    def is_open(self) -> bool:
        """Open and still cooling down (half-open counts as available: it accepts a probe)."""
        return self.state == "open" and time.monotonic() - self.opened_at < self.cooldown_s

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            calls = list(self.calls)
            state, consecutive = self.state, self.consecutive
            left = self.cooldown_s - (time.monotonic() - self.opened_at) if state == "open" else 0.0
        oks = sorted(ms for ok, ms in calls if ok)
        return {"model": self.model_id, "state": "half_open" if state == "open" and left <= 0 else state,
                "consecutive_failures": consecutive, "open_for_s": round(max(left, 0.0), 3),
                "window_calls": len(calls), "success_rate": round(len(oks) / len(calls), 4) if calls else None,
                "p50_ms": _pct(oks, 0.50), "p95_ms": _pct(oks, 0.95), "last_error": self.last_error, **self.totals}


def _pct(sorted_ms: list[float], q: float) -> float | None:
    if not sorted_ms:
        return None
    return round(sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))], 3)


_REGISTRY: dict[str, Breaker] = {}
_LOCK = threading.Lock()


def get(model_id: str, **config: Any) -> Breaker:
    """The breaker of a deployment (created on first use with `config`: failures, cooldown_s, window)."""
    b = _REGISTRY.get(model_id)
    if b is None:
        with _LOCK:
            b = _REGISTRY.setdefault(model_id, Breaker(model_id, **config))
    elif config:  # a later stack built from an edited policy applies its thresholds
        b.threshold = max(1, int(config.get("failures", b.threshold)))
        b.cooldown_s = float(config.get("cooldown_s", b.cooldown_s))
    return b


def snapshot() -> list[dict[str, Any]]:
    """Every deployment's breaker state and rolling health (success rate, latency p50/p95)."""
    return [b.snapshot() for b in list(_REGISTRY.values())]


def state_of(model_id: str) -> str:
    b = _REGISTRY.get(model_id)
    return b.snapshot()["state"] if b else "closed"


def is_open(model_id: str) -> bool:
    b = _REGISTRY.get(model_id)
    return b is not None and b.is_open


def reset() -> None:
    with _LOCK:
        _REGISTRY.clear()


class BreakerModel(WrapperModel):
    def __init__(self, wrapped: Any, **config: Any):
        super().__init__(wrapped)
        self.breaker = get(wrapped.model_id, **config)

    def _refuse(self, ctx: dict | None = None) -> None:
        try:
            self.breaker.before()
        except BreakerOpen as exc:
            attempts.record(ctx, model=self.model_id, outcome="breaker_open", fault="breaker_open",
                            error=describe(exc), duration_ms=0.0)
            raise

    def _failed(self, exc: Exception, start: float, ctx: dict | None, stream: bool) -> Exception:
        err = normalize(exc, self.model_id)
        fault = classify(err)
        ms = (time.perf_counter() - start) * 1000
        self.breaker.failure(ms, describe(err)) if fault.counts else self.breaker.neutral()
        attempts.record(ctx, model=self.model_id, outcome="error", fault=fault.kind, error=describe(err),
                        status=getattr(err, "status", None), duration_ms=round(ms, 3), stream=stream)
        return err

    def complete(self, messages: MessagesLike, **options: Any) -> Completion:
        self._refuse()
        start = time.perf_counter()
        try:
            completion = self.wrapped.complete(messages, **options)
        except Exception as exc:
            err = self._failed(exc, start, None, False)
            if err is exc:
                raise
            raise err from exc
        ms = (time.perf_counter() - start) * 1000
        self.breaker.success(ms)
        _ok(None, completion, ms, False)
        return completion

    def stream(self, messages: MessagesLike, **options: Any) -> Stream:
        ctx = attempts.captured()
        self._refuse(ctx)
        start = time.perf_counter()
        try:
            inner = self.wrapped.stream(messages, **options)
        except Exception as exc:
            err = self._failed(exc, start, ctx, True)
            if err is exc:
                raise
            raise err from exc

        def deltas() -> Iterator[str]:
            try:
                yield from inner
            except GeneratorExit:  # the consumer stopped reading: not the deployment's fault
                self.breaker.neutral()
                attempts.record(ctx, model=self.model_id, outcome="cancelled", stream=True,
                                duration_ms=round((time.perf_counter() - start) * 1000, 3))
                raise
            except Exception as exc:
                err = self._failed(exc, start, ctx, True)
                if inner.text:  # text already reached the user: end the stream, never resend it
                    raise interrupted(err, self.model_id, inner.text)
                if err is exc:
                    raise
                raise err from exc
            finally:
                inner.close()
            ms = (time.perf_counter() - start) * 1000
            self.breaker.success(ms)
            _ok(ctx, inner.completion, ms, True)

        return Stream(deltas(), lambda text: inner.completion or partial(self.model_id, text))


def _ok(ctx: dict | None, c: Completion | None, ms: float, stream: bool) -> None:
    usage = c.usage if c else None
    attempts.record(ctx, model=c.model if c else "", outcome="ok", duration_ms=round(ms, 3), stream=stream,
                    tokens_in=usage.input_tokens if usage else 0, tokens_out=usage.output_tokens if usage else 0,
                    cost_usd=c.cost_usd if c else None)

