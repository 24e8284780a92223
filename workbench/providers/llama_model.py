"""llama.cpp itself (llama-cpp-python): the Model a model host runs for `local:` models.

Only a model host (host_process.py) imports this module; the caller's process talks to it through
`local.LocalModel`, so a native crash here ends the host, not the caller. One instance per host
process, loaded in the constructor (the host reports `ready` after the load).

Prompt reuse (llama_reuse.py): prompts are evaluated in aligned blocks, so an answer never depends on what
the context held before; with `prompt_cache_mb` > 0 the KV state of evaluated prompts is kept (up to that
many MiB) and restored for later prompts that start the same way, and with `prompt_shelf_mb` > 0 it is
also kept on disk for the next host of the same model (`prompt_shelf`). `Usage.cache_read_tokens` says how
many prompt tokens a call did not evaluate again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from workbench.errors import ConfigError, ContextTooLong, ProviderError
from workbench.messages import Completion, Usage
from workbench.providers.base import Model
from workbench.providers.prompt_cache import PrefixStore, StoreStats
from workbench.providers.prompt_shelf import SnapshotShelf, shelf_directory

DEFAULT_MAX_TOKENS = 1024
MESSAGE_OVERHEAD_TOKENS = 8  # chat-template tokens around each message (role markers, newlines)


class LlamaModel(Model):
    provider = "local"
    structured_output = "grammar"

    def __init__(self, name: str, path: str, n_ctx: int, n_threads: int, prompt_cache_mb: int = 0,
                 prompt_shelf_dir: str | None = None, prompt_shelf_mb: int = 0):
        super().__init__(name)
        try:
            from workbench.providers.llama_reuse import ReusingLlama
        except ImportError as exc:
            raise ConfigError(f"Cannot load local:{name}: llama-cpp-python is not installed in this environment "
                              f"({exc}). Install it with `make venv` (a portable build for this CPU).") from exc
        self.n_ctx = n_ctx
        self.llm = ReusingLlama(model_path=path, n_ctx=n_ctx, n_threads=n_threads, n_batch=512, verbose=False)
        shelf = None
        if prompt_cache_mb > 0 and prompt_shelf_dir and prompt_shelf_mb > 0:
            import llama_cpp

            build = f"{llama_cpp.__version__}|{llama_cpp.llama_print_system_info().decode(errors='replace')}"
            shelf = SnapshotShelf(shelf_directory(prompt_shelf_dir, path, n_ctx, build), prompt_shelf_mb << 20)
        self.prompt_cache = PrefixStore(prompt_cache_mb << 20, shelf=shelf) if prompt_cache_mb > 0 else None
        self.llm.prefix_store = self.prompt_cache

    def host_stats(self) -> dict[str, Any]:
        """The prompt cache: what it holds and did (`capacity_bytes` 0 when it is off)."""
        store = self.prompt_cache
        stats = asdict(store.stats) if store is not None else asdict(StoreStats())
        return {"prompt_cache": {**stats, "capacity_bytes": store.capacity_bytes if store is not None else 0}}

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8", "replace"), add_bos=False, special=False))

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
        self.llm.reused_tokens = 0
        cpu0 = time.process_time()
        try:
            out = self.llm.create_chat_completion(**self._kwargs(messages, options, max_tokens))
        except ValueError as exc:
            raise ProviderError(f"{self.model_id}: {exc}", status=400) from exc
        cpu = time.process_time() - cpu0
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return Completion(
            text=choice["message"].get("content") or "",
            model=self.model_id,
            usage=Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0),
                        cache_read_tokens=self.llm.reused_tokens),
            finish_reason=choice.get("finish_reason"),
            cpu_seconds=cpu,
        )

    def _stream(self, messages: list[dict], options: dict) -> tuple[Iterator[str], Any]:
        prompt_tokens, max_tokens = self._budget(messages, options)
        state: dict[str, Any] = {"cpu": 0.0, "finish": None}

        def deltas() -> Iterator[str]:
            self.llm.reused_tokens = 0
            cpu0 = time.process_time()
            try:
                chunks = self.llm.create_chat_completion(stream=True, **self._kwargs(messages, options, max_tokens))
                while True:
                    try:
                        chunk = next(chunks, None)
                    except ValueError as exc:  # llama.cpp refuses the request's arguments: the caller's error
                        raise ProviderError(f"{self.model_id}: {exc}", status=400) from exc
                    if chunk is None:
                        break
                    choice = chunk["choices"][0]
                    state["finish"] = choice.get("finish_reason") or state["finish"]
                    yield choice.get("delta", {}).get("content") or ""
            finally:
                state["cpu"] = time.process_time() - cpu0

        def finish(text: str) -> Completion:
            return Completion(
                text=text,
                model=self.model_id,
                usage=Usage(prompt_tokens, self.count_tokens(text), cache_read_tokens=self.llm.reused_tokens),
                finish_reason=state["finish"] or "stop",
                cpu_seconds=state["cpu"],
            )

        return deltas(), finish
