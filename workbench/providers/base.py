"""The one model interface every provider and every gateway wrapper implements."""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Iterator

from workbench.errors import SchemaError
from workbench.json_schemas import check_schema
from workbench.messages import Completion, MessagesLike, Stream, normalize_messages

# Options every provider understands; anything else is refused (a typo must not pass silently).
# "cache" (True/False) is read by the gateway's cache wrapper; providers ignore it.
OPTIONS = ("temperature", "max_tokens", "seed", "stop", "schema", "timeout", "cache")

# Structured-output capabilities a provider declares (not guessed per call):
#   "json_schema"  - OpenAI-style response_format={"type": "json_schema", ...}
#   "json_object_schema" - llama.cpp server style {"type": "json_object", "schema": ...}
#   "grammar"      - in-process JSON-schema grammar (llama.cpp)
#   "format_schema" - Ollama's `format=<schema>`


@dataclass
class ModelInfo:
    """What `workbench models` shows for one model."""

    name: str
    provider: str
    source: str
    context: int | None = None
    usable: bool = False
    reason: str = ""
    price: str = ""
    aliases: list[str] = field(default_factory=list)


class Model(ABC):
    """A model: `complete()` for one answer, `stream()` for text deltas. Names are "provider:model"."""

    provider: str = ""
    structured_output: str = "none"

    def __init__(self, name: str):
        self.name = name

    @property
    def model_id(self) -> str:
        return f"{self.provider}:{self.name}"

    def complete(self, messages: MessagesLike, **options: Any) -> Completion:
        msgs, opts = self._prepare(messages, options)
        start = time.perf_counter()
        completion = self._complete(msgs, opts)
        completion.duration_ms = (time.perf_counter() - start) * 1000
        if opts.get("schema") is not None:
            completion.data = parse_json(completion.text, self.model_id, completion.finish_reason)
        return completion

    def stream(self, messages: MessagesLike, **options: Any) -> Stream:
        msgs, opts = self._prepare(messages, options)
        start = time.perf_counter()
        deltas, finish = self._stream(msgs, opts)

        def done(text: str) -> Completion:
            completion = finish(text)
            completion.duration_ms = (time.perf_counter() - start) * 1000
            return completion

        return Stream(deltas, done)

    def _prepare(self, messages: MessagesLike, options: dict[str, Any]) -> tuple[list[dict], dict]:
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise SchemaError(f"Unknown option(s) {sorted(unknown)}; supported: {', '.join(OPTIONS)}.")
        opts = {k: v for k, v in options.items() if v is not None}
        if isinstance(opts.get("stop"), str):
            opts["stop"] = [opts["stop"]]
        if opts.get("schema") is not None:
            check_schema(opts["schema"])  # the caller's error, before any attempt
        return normalize_messages(messages), opts

    @abstractmethod
    def _complete(self, messages: list[dict], options: dict) -> Completion: ...

    def _stream(self, messages: list[dict], options: dict) -> tuple[Iterator[str], Any]:
        """Default streaming: one delta with the whole answer (providers override for real streams)."""
        completion = self._complete(messages, options)

        def deltas() -> Iterator[str]:
            yield completion.text

        return deltas(), lambda text: completion

    def info(self) -> ModelInfo:
        return ModelInfo(name=self.model_id, provider=self.provider, source=self.provider)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.model_id}>"


def parse_json(text: str, model_id: str, finish_reason: str | None = None) -> Any:
    """The JSON of a schema-constrained answer. Not JSON: the provider's fault (status None: retried), unless the
    answer was cut off at the caller's max_tokens (status 400: asking again would cut it off again)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        from workbench.errors import ProviderError

        if finish_reason == "length":
            raise ProviderError(
                f"{model_id} returned malformed JSON for a schema-constrained call: the answer was cut off at "
                f"max_tokens ({exc.msg} at {exc.pos}). Raise max_tokens.", status=400) from exc
        raise ProviderError(
            f"{model_id} returned malformed JSON for a schema-constrained call ({exc.msg} at {exc.pos}). "
            f"Raise max_tokens if the answer was cut off."
        ) from exc


def estimate_tokens(text: str) -> int:
    """Rough count (chars/4) used only where no tokenizer is available; flagged `estimated`."""
    return max(1, len(text) // 4) if text else 0


def listed_cloud_models(provider: str, key_set: bool, variable: str) -> list[ModelInfo]:
    """Models of a cloud provider named in the price table, usable when its key is set."""
    from workbench.config import get_settings
    from workbench.prices import describe, listed_models

    offline = get_settings().offline
    reason = "offline mode" if offline else ("key set" if key_set else f"{variable} not set")
    return [
        ModelInfo(
            name=f"{provider}:{name}",
            provider=provider,
            source=f"{provider} API",
            context=int(entry.get("context", 0)) or None,
            usable=key_set and not offline,
            reason=reason,
            price=describe(f"{provider}:{name}"),
        )
        for name, entry in listed_models(provider).items()
    ]
