"""Logs every model call as one `llm_call` event (llm's "every call is one row in responses").

The event carries model, tokens in/out, cost_usd, duration_ms, the error text if the call raised (the
exception is re-raised unchanged), and a payload with the messages, the options and the response text.
It goes through `workbench.store.emit_event`, so nothing is logged (and no database is started) unless a
store is open in this process; the event nests under the current span (workbench.store.context).
Logging never breaks a call: if the event cannot be queued, the call still returns and the failure is logged.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from workbench.gateway.wrapper import WrapperModel
from workbench.messages import Completion, Message, MessagesLike, Stream

log = logging.getLogger(__name__)


def _messages(messages: MessagesLike) -> list[Any]:
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    return [m.as_dict() if isinstance(m, Message) else m for m in messages]


class LoggedModel(WrapperModel):
    def complete(self, messages: MessagesLike, **options: Any) -> Completion:
        from workbench.store.context import current, new_span_id

        ctx, span_id, start = current(), new_span_id(), time.perf_counter()
        msgs = messages if isinstance(messages, (str, list, tuple)) else list(messages)  # a generator is read once
        try:
            completion = self.wrapped.complete(msgs, **options)
        except BaseException as exc:
            self._log(ctx, span_id, start, msgs, options, error=exc)
            raise
        self._log(ctx, span_id, start, msgs, options, completion=completion)
        return completion

    def stream(self, messages: MessagesLike, **options: Any) -> Stream:
        from workbench.store.context import current, new_span_id

        ctx, span_id, start = current(), new_span_id(), time.perf_counter()
        msgs = messages if isinstance(messages, (str, list, tuple)) else list(messages)  # a generator is read once
        try:
            inner = self.wrapped.stream(msgs, **options)
        except BaseException as exc:
            self._log(ctx, span_id, start, msgs, options, error=exc)
            raise
        failure: list[BaseException] = []

        def deltas():
            try:
                yield from inner
            except GeneratorExit:  # the consumer stopped early: not an error, the partial answer is logged
                raise
            except BaseException as exc:
                failure.append(exc)
                raise

        def finish(text: str) -> Completion:
            if inner.completion is None:
                inner.close()
            completion = inner.completion
            self._log(ctx, span_id, start, msgs, options, completion=completion,
                      error=failure[0] if failure else None, text=text)
            return completion

        return Stream(deltas(), finish)

    def _log(self, ctx: dict, span_id: str, start: float, messages: Any, options: dict, *,
             completion: Completion | None = None, error: BaseException | None = None, text: str | None = None) -> None:
        from workbench.store import emit_event

        fields: dict[str, Any] = {
            "span_id": span_id, "parent_span_id": ctx["parent_span_id"], "task_id": ctx["task_id"],
            "trace_id": ctx["trace_id"], "agent": ctx["agent"], "model": self.model_id,
            "duration_ms": (time.perf_counter() - start) * 1000,
        }
        payload: dict[str, Any] = {"messages": _messages(messages), "options": options}
        if completion is not None:
            fields.update(model=completion.model or self.model_id, tokens_in=completion.usage.input_tokens,
                          tokens_out=completion.usage.output_tokens, cost_usd=completion.cost_usd)
            payload.update(response=completion.text if text is None else text, finish_reason=completion.finish_reason,
                           cost_source=completion.cost_source, cached=completion.cached,
                           usage_estimated=completion.usage.estimated, cpu_seconds=completion.cpu_seconds,
                           provider_duration_ms=completion.duration_ms)
        if error is not None:
            fields["error"] = f"{type(error).__name__}: {error}"
            if text:
                payload["response"] = text
        fields["payload"] = payload
        try:
            emit_event("llm_call", **fields)
        except Exception as exc:  # a full queue or a closed store must not fail the model call itself
            log.warning("llm_call event not logged: %s", exc)
