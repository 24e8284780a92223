"""Fails over along a chain of deployments: the first model answers unless it fails with a fault another
model could fix (429, 402, 5xx, timeout, connection error, malformed answer, open breaker — faults.py).
A caller's own error (400, bad schema, missing key of the first model, budget) is raised at once.

Members are skipped, with a record saying why, when offline mode rules out a cloud model, or (after
the first) when they are not usable now (key not set, weights not pulled): a chain written for a fully
configured machine still works on a partly configured one.

Streams: a stream that fails before its first delta fails over like complete(). One that fails after
delivering text ends with StreamInterrupted (the delivered text in `.partial`). We chose that over
continuing on the next model from the emitted prefix: OpenAI-style chat APIs have no assistant
prefill, so the next model would start its answer afresh and the user would see output twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from workbench.config import get_settings
from workbench.errors import ConfigError, ContextTooLong, NeedsKeyError, ProviderError, WeightsError
from workbench.gateway import attempts
from workbench.gateway.availability import available, is_cloud
from workbench.gateway.faults import classify, describe, interrupted
from workbench.gateway.relay import Relay
from workbench.gateway.wrapper import WrapperModel
from workbench.messages import Completion, MessagesLike, Stream
from workbench.providers.base import Model

MEMBER_ERRORS = (ContextTooLong, NeedsKeyError, WeightsError)


class _Run:
    """What happened so far in one call along the chain (for the final error)."""

    def __init__(self, ctx: dict[str, Any] | None):
        self.ctx = ctx
        self.failures: list[tuple[str, Exception]] = []
        self.skipped: list[tuple[str, str]] = []
        self.prev: str | None = None


class FallbackModel(WrapperModel):
    def __init__(self, models: Sequence[Model]):
        if not models:
            raise ConfigError("FallbackModel needs at least one model in its chain.")
        super().__init__(models[0])
        self.models = list(models)

    @property
    def chain(self) -> list[str]:
        return [m.model_id for m in self.models]

    def _skip(self, index: int, model: Model) -> str | None:
        model_id = model.model_id
        if is_cloud(model_id) and get_settings().offline:
            return "offline mode (WORKBENCH_OFFLINE=1)"
        if index > 0:  # the first model's own error (e.g. a missing key) is the caller's to see
            ok, reason = available(model_id, check_breaker=False)  # open breakers fail fast themselves
            if not ok:
                return reason
        return None

    def _candidates(self, start: int, run: _Run) -> Iterator[tuple[int, Model]]:
        for index in range(start, len(self.models)):
            model = self.models[index]
            reason = self._skip(index, model)
            if reason:
                run.skipped.append((model.model_id, reason))
                attempts.record(run.ctx, model=model.model_id, outcome="skipped", reason=reason, position=index)
                continue
            yield index, model

    def _failed(self, run: _Run, model: Model, exc: Exception) -> None:
        # A later member that cannot take this call (prompt too long for it, no key, no weights) is passed
        # over; the first member's own errors go back to the caller, who chose that model.
        member_only = model is not self.models[0] and isinstance(exc, MEMBER_ERRORS)
        if not classify(exc).failover and not member_only:
            raise exc
        run.failures.append((model.model_id, exc))
        run.prev = model.model_id

    def complete(self, messages: MessagesLike, **options: Any) -> Completion:
        with attempts.scope():  # one call id for the whole chain
            run = _Run(None)
            for index, model in self._candidates(0, run):
                try:
                    with attempts.scope(position=index, failover_from=run.prev):
                        return model.complete(messages, **options)
                except Exception as exc:
                    self._failed(run, model, exc)
            raise self._exhausted(run)

    def stream(self, messages: MessagesLike, **options: Any) -> Stream:
        run = _Run(attempts.captured())
        candidates = self._candidates(0, run)
        first = self._open(candidates, run, messages, options)
        relay = Relay(self.model_id)

        def deltas() -> Iterator[str]:
            model, inner = first
            while True:
                try:
                    yield from relay.forward(inner)
                    return
                except Exception as exc:
                    if inner.text:  # delivered text can never be shown twice
                        raise interrupted(exc, model.model_id, inner.text)
                    self._failed(run, model, exc)
                model, inner = self._open(candidates, run, messages, options)

        return relay.stream(deltas())

    def _open(self, candidates: Iterator[tuple[int, Model]], run: _Run, messages: MessagesLike,
              options: dict) -> tuple[Model, Stream]:
        for index, model in candidates:
            try:
                with attempts.restored(run.ctx or {}, position=index, failover_from=run.prev):
                    return model, model.stream(messages, **options)
            except Exception as exc:
                self._failed(run, model, exc)
        raise self._exhausted(run)

    def _exhausted(self, run: _Run) -> Exception:
        if not run.failures:
            skipped = "; ".join(f"{m}: {why}" for m, why in run.skipped)
            return ConfigError(f"No model of the chain {self.chain} could take the call ({skipped}). Add a usable "
                               f"model (e.g. local:qwen2.5-coder-1.5b) to the chain, set the missing keys, or "
                               f"unset WORKBENCH_OFFLINE.")
        if len(run.failures) == 1 and not run.skipped:
            return run.failures[0][1]
        tried = "; ".join(f"{m} → {describe(e)}" for m, e in run.failures)
        skipped = "".join(f"; {m} skipped ({why})" for m, why in run.skipped)
        last = run.failures[-1][1]
        waits = [w for _, e in run.failures if (w := getattr(e, "retry_after", None)) is not None]
        err = ProviderError(f"Every model in the failover chain failed: {tried}{skipped}. Check the providers "
                            f"(`workbench models`, /health) or add a working model to the chain.",
                            status=getattr(last, "status", None) or 503, retry_after=min(waits) if waits else None)
        err.__cause__ = last
        return err

