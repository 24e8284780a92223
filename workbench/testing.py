"""Deterministic models for logic tests and offline notebooks (never a substitute for integration tests).

    fake = FakeModel(); fake.enqueue("hello"); fake.complete("hi").text == "hello"; fake.requests[0]
    FunctionModel(lambda messages, options: messages[-1]["content"].upper())

Both are also reachable by name: `test:echo` (echoes the last user message) and any function added
with `register_function(name, fn)` as `test:NAME`, so a served app can be pointed at one by env var.

`test:segv` echoes too, but from a model host process, exactly as `local:` models run, and its native
code really crashes that process when the prompt says so: SEGV (a NULL read, SIGSEGV) or EXIT (exit
status 3). A stream echoes word by word up to the trigger, so it dies mid-way.
"""

from __future__ import annotations

import collections
import ctypes
import json
import os
import time
from typing import Any, Callable, Iterator

from workbench.errors import ProviderError, WorkbenchError
from workbench.messages import Completion, Usage
from workbench.providers import ProviderEntry, register
from workbench.providers.base import Model, ModelInfo, estimate_tokens
from workbench.providers.hosted import HostedModel

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


def slow(messages: list[dict], options: dict) -> str | dict:
    """`test:echo` after a second (`test:slow`): a task that stays visibly running for a live page to show."""
    time.sleep(1.0)
    return echo(messages, options)


FUNCTIONS: dict[str, Callable[[list[dict], dict], Reply]] = {"echo": echo, "fail": fail, "slow": slow}

# Words in a prompt that make the crash model's native code kill its process.
CRASHES: dict[str, Callable[[], None]] = {
    "SEGV": lambda: ctypes.string_at(0),  # a NULL read in C: a real SIGSEGV, as a bad llama.cpp build gives
    "EXIT": lambda: os._exit(3),
}


class CrashingModel(Model):
    """Runs only inside a model host: echoes the last user message, or crashes on a trigger word."""

    provider = "test"
    structured_output = "grammar"

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def _words(self, messages: list[dict], options: dict) -> Iterator[str]:
        text = json.dumps(echo(messages, options)) if options.get("schema") is not None else echo(messages, options)
        trigger = next((w for w in CRASHES if w in text), None)
        for word in text.split(" "):
            if trigger is not None and trigger in word:
                CRASHES[trigger]()
            yield word

    def _complete(self, messages: list[dict], options: dict) -> Completion:
        return _completion(" ".join(self._words(messages, options)), self.model_id, messages)

    def _stream(self, messages: list[dict], options: dict) -> tuple[Iterator[str], Any]:
        def deltas() -> Iterator[str]:
            for i, word in enumerate(self._words(messages, options)):
                yield word if i == 0 else " " + word

        return deltas(), lambda text: _completion(text, self.model_id, messages)


class HostedTestModel(HostedModel):
    """`test:segv` on the caller's side: the same HostedModel machinery the local llama.cpp model uses."""

    provider = "test"
    structured_output = "grammar"
    host_target = "workbench.testing:CrashingModel"
    crash_where = "native code (the crash-test model, on purpose)"
    crash_advice = "test:segv crashes whenever the prompt contains SEGV or EXIT; other prompts are echoed."


HOSTED: dict[str, type[HostedModel]] = {"segv": HostedTestModel}


def register_function(name: str, fn: Callable[[list[dict], dict], Reply]) -> None:
    FUNCTIONS[name] = fn


def _factory(name: str) -> Model:
    if name in HOSTED:
        return HOSTED[name](name)
    if name not in FUNCTIONS:
        from workbench.errors import UnknownModelError

        raise UnknownModelError(f"test:{name}", [f"test:{n}" for n in [*FUNCTIONS, *HOSTED]])
    return FunctionModel(FUNCTIONS[name], name=name)


def _list() -> list[ModelInfo]:
    return [ModelInfo(name=f"test:{n}", provider="test", source="workbench.testing", usable=True,
                      reason="deterministic", price="free") for n in [*FUNCTIONS, *HOSTED]]


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
