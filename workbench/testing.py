"""Deterministic models for logic tests and offline notebooks (never a substitute for integration tests).

    fake = FakeModel(); fake.enqueue("hello"); fake.complete("hi").text == "hello"; fake.requests[0]
    FunctionModel(lambda messages, options: messages[-1]["content"].upper())

Both are also reachable by name: `test:echo` (echoes the last user message) and any function added
with `register_function(name, fn)` as `test:NAME`, so a served app can be pointed at one by env var.
"""

from __future__ import annotations

import collections
import json
from typing import Any, Callable

from workbench.errors import ProviderError, WorkbenchError
from workbench.messages import Completion, Usage
from workbench.providers import ProviderEntry, register
from workbench.providers.base import Model, ModelInfo, estimate_tokens

Reply = str | Completion | Exception | dict


def _completion(reply: Reply, model_id: str, messages: list[dict]) -> Completion:
    if isinstance(reply, Exception):
        raise reply
    if isinstance(reply, Completion):
        return reply
    text = json.dumps(reply) if isinstance(reply, dict) else str(reply)
    prompt = sum(estimate_tokens(m["content"]) for m in messages)
    return Completion(text=text, model=model_id, usage=Usage(prompt, estimate_tokens(text)), finish_reason="stop",
                      cpu_seconds=0.0)


class FakeModel(Model):
    """Answers with enqueued replies in order; records every request it was sent."""

    provider = "test"
    structured_output = "grammar"

    def __init__(self, name: str = "fake", replies: list[Reply] | None = None):
        super().__init__(name)
        self.queue: collections.deque[Reply] = collections.deque(replies or [])
        self.requests: list[tuple[list[dict], dict]] = []

    def enqueue(self, *replies: Reply) -> "FakeModel":
        self.queue.extend(replies)
        return self

    def _complete(self, messages: list[dict], options: dict) -> Completion:
        self.requests.append((messages, options))
        if not self.queue:
            raise WorkbenchError("FakeModel has no reply queued: call fake.enqueue('...') before using it.")
        return _completion(self.queue.popleft(), self.model_id, messages)


class FunctionModel(Model):
    """Answers with fn(messages, options) -> str | dict | Completion."""

    provider = "test"
    structured_output = "grammar"

    def __init__(self, fn: Callable[[list[dict], dict], Reply], name: str | None = None):
        super().__init__(name or getattr(fn, "__name__", "function"))
        self.fn = fn
        self.requests: list[tuple[list[dict], dict]] = []

    def _complete(self, messages: list[dict], options: dict) -> Completion:
        self.requests.append((messages, options))
        return _completion(self.fn(messages, options), self.model_id, messages)


def echo(messages: list[dict], options: dict) -> str | dict:
    """Echo the last user message (deterministic; `test:echo`). With a schema: the smallest answer that
    satisfies it, strings filled from the message, so schema-constrained callers work too."""
    text = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    if options.get("schema") is not None:
        return example_for(options["schema"], text)
    return text


def example_for(schema: dict, text: str = "") -> object:
    """A deterministic instance of a (simple) JSON schema: enums take their first value, numbers their
    minimum, strings the given text cut to maxLength, arrays minItems items, objects their required keys."""
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: example_for(props.get(k, {}), text) for k in schema.get("required", list(props))}
    if kind == "array":
        return [example_for(schema.get("items", {}), text) for _ in range(schema.get("minItems", 0))]
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    if kind == "string":
        return text[: schema.get("maxLength", len(text))] or "x"
    return None


def fail(messages: list[dict], options: dict) -> str:
    """Always fail like an overloaded server (`test:fail`)."""
    raise ProviderError("test:fail always fails (HTTP 503)", status=503)


FUNCTIONS: dict[str, Callable[[list[dict], dict], Reply]] = {"echo": echo, "fail": fail}


def register_function(name: str, fn: Callable[[list[dict], dict], Reply]) -> None:
    FUNCTIONS[name] = fn


def _factory(name: str) -> Model:
    if name not in FUNCTIONS:
        from workbench.errors import UnknownModelError

        raise UnknownModelError(f"test:{name}", [f"test:{n}" for n in FUNCTIONS])
    return FunctionModel(FUNCTIONS[name], name=name)


def _list() -> list[ModelInfo]:
    return [ModelInfo(name=f"test:{n}", provider="test", source="workbench.testing", usable=True,
                      reason="deterministic", price="free") for n in FUNCTIONS]


register(ProviderEntry("test", _factory, _list, open_names=False))


# --- recorded events --------------------------------------------------------------------------------


class MemorySink:
    """Every event emitted in this process while installed, in memory (no store):

        with MemorySink() as events:
            model.complete("hi")
        events.of("llm_attempt")[0]["outcome"]      # columns and payload fields by name
    """

    def __init__(self) -> None:
        from workbench.events import Event

        self.events: list[Event] = []

    def __call__(self, event: Any) -> None:
        self.events.append(event)

    def of(self, kind: str | None = None, **match: Any) -> list[Any]:
        """Events of `kind` (any kind: None) whose columns or payload fields equal `match`, oldest first."""
        return [e for e in self.events if (kind is None or e.kind == kind)
                and all(e.get(k) == v for k, v in match.items())]

    def clear(self) -> None:
        self.events.clear()

    def __enter__(self) -> MemorySink:  # noqa: PYI034 - never subclassed
        from workbench import telemetry

        telemetry.add_sink(self)
        return self

    def __exit__(self, *exc: object) -> None:
        from workbench import telemetry

        telemetry.remove_sink(self)
