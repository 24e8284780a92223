"""Logs every model call as one `llm_call` event (llm's "every call is one row in responses").

The event carries model, tokens in/out, cost_usd, duration_ms, the error text if the call raised (the
exception is re-raised unchanged), and a payload with the messages, the options and the response text.
The call is a span (workbench.telemetry): its event nests under the current span, and every llm_attempt
the wrappers inside record nests under it. Nothing is written (and no database is started) unless a sink,
such as an open store, is registered in this process. Logging never breaks a call: a sink that fails is
counted and logged by telemetry, and the call still returns.
"""

from __future__ import annotations

from typing import Any

from workbench import telemetry
from workbench.events import Kind
from workbench.gateway.wrapper import WrapperModel
from workbench.messages import Completion, Message, MessagesLike, Stream


def _messages(messages: MessagesLike) -> list[Any]:
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    return [m.as_dict() if isinstance(m, Message) else m for m in messages]


class LoggedModel(WrapperModel):
    def complete(self, messages: MessagesLike, **options: Any) -> Completion:
        call = telemetry.start(Kind.LLM_CALL, model=self.model_id)
        msgs = messages if isinstance(messages, (str, list, tuple)) else list(messages)  # a generator is read once
        try:
            with telemetry.use(call.context):  # the attempts inside nest under this call
                completion = self.wrapped.complete(msgs, **options)
        except BaseException as exc:
            self._end(call, msgs, options, error=exc)
            raise
        self._end(call, msgs, options, completion=completion)
        return completion

    def stream(self, messages: MessagesLike, **options: Any) -> Stream:
        call = telemetry.start(Kind.LLM_CALL, model=self.model_id)
        msgs = messages if isinstance(messages, (str, list, tuple)) else list(messages)  # a generator is read once
        try:
            with telemetry.use(call.context):  # the wrappers capture it for the attempts they record later
                inner = self.wrapped.stream(msgs, **options)
        except BaseException as exc:
            self._end(call, msgs, options, error=exc)
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
            self._end(call, msgs, options, completion=completion, error=failure[0] if failure else None, text=text)
            return completion

        return Stream(deltas(), finish)

    def _end(self, call: telemetry.Span, messages: Any, options: dict, *, completion: Completion | None = None,
             error: BaseException | None = None, text: str | None = None) -> None:
        payload: dict[str, Any] = {"messages": _messages(messages), "options": options}
        if completion is not None:
            call.set(model=completion.model or self.model_id, tokens_in=completion.usage.input_tokens,
                     tokens_out=completion.usage.output_tokens, cost_usd=completion.cost_usd)
            payload.update(response=completion.text if text is None else text, finish_reason=completion.finish_reason,
                           cost_source=completion.cost_source, cached=completion.cached,
                           usage_estimated=completion.usage.estimated, cpu_seconds=completion.cpu_seconds,
                           cache_read_tokens=completion.usage.cache_read_tokens,
                           provider_duration_ms=completion.duration_ms)
        if error is not None and text:
            payload["response"] = text
        call.set(payload=payload)
        call.end(error)  # telemetry never raises for a sink: logging cannot break the call
