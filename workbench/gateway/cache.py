"""Exact-match response cache: same model + messages + options → the stored completion, until its TTL.

    model.complete("hi", cache=False)   # off for one call
    cache.stats()   # hits, misses, hit_rate, saved_usd (what the hits would have cost), entries

A hit is returned with `cached=True`, cost_usd=0.0 and cost_source="cache" (it cost nothing); the money
it saved is the stored completion's own cost. Not cached: calls that sample (temperature > 0 without
a seed: resampling must give new answers), answers that did not finish cleanly, streams that broke or
were stopped early. Hits are reported through attempts.record(outcome="cache_hit").
"""

from __future__ import annotations

import collections
import copy
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from workbench.gateway import attempts
from workbench.gateway.wrapper import WrapperModel
from workbench.messages import Completion, MessagesLike, Stream, normalize_messages

IGNORED = ("timeout",)  # options that cannot change the answer


class ResponseCache:
    def __init__(self, ttl_s: float = 3600.0, max_entries: int = 10000):
        self.ttl_s, self.max_entries = float(ttl_s), int(max_entries)
        self._data: collections.OrderedDict[str, tuple[float, Completion]] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = self.stores = 0
        self.saved_usd = 0.0

    def get(self, key: str) -> Completion | None:
        now = time.monotonic()
        with self._lock:
            item = self._data.get(key)
            if item is not None and item[0] < now:
                del self._data[key]
                item = None
            if item is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            self.saved_usd += item[1].cost_usd or 0.0
        return item[1]

    def put(self, key: str, completion: Completion) -> None:
        stored = clone(completion)
        with self._lock:
            self._data[key] = (time.monotonic() + self.ttl_s, stored)
            self._data.move_to_end(key)
            self.stores += 1
            while len(self._data) > self.max_entries:  # least recently used goes first
                self._data.popitem(last=False)

    def stats(self) -> dict[str, Any]:
        lookups = self.hits + self.misses
        return {"hits": self.hits, "misses": self.misses, "hit_rate": round(self.hits / lookups, 4) if lookups else None,
                "saved_usd": self.saved_usd, "stores": self.stores, "entries": len(self._data), "ttl_s": self.ttl_s}

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = self.stores = 0
            self.saved_usd = 0.0


_SHARED: list[ResponseCache] = []


def shared(ttl_s: float = 3600.0, max_entries: int = 10000) -> ResponseCache:
    """The process-wide cache, with these settings (entries stored before keep their expiry)."""
    if not _SHARED:
        _SHARED.append(ResponseCache(ttl_s, max_entries))
    cache = _SHARED[0]
    cache.ttl_s, cache.max_entries = float(ttl_s), int(max_entries)  # the policy in effect wins
    return cache


def stats() -> dict[str, Any]:
    return shared().stats() if _SHARED else ResponseCache().stats()


def normalized(messages: MessagesLike) -> list[dict[str, str]]:
    """normalize_messages with a fast path for the common plain-prompt call (same result)."""
    if isinstance(messages, str) and messages.strip():
        return [{"role": "user", "content": messages}]
    return normalize_messages(messages)


def key_for(model_id: str, messages: MessagesLike, options: dict[str, Any]) -> str:
    relevant = {k: v for k, v in options.items() if k not in IGNORED and v is not None} if options else {}
    raw = json.dumps([model_id, normalized(messages), relevant], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def clone(c: Completion, **changes: Any) -> Completion:
    """A copy that shares nothing mutable with `c` (dataclasses.replace is several times slower)."""
    new = object.__new__(Completion)
    new.__dict__.update(c.__dict__)
    new.__dict__.update(changes)
    if c.data is not None:
        new.data = copy.deepcopy(c.data)
    return new


def cacheable(options: dict[str, Any]) -> bool:
    temperature = options.get("temperature")
    return not (temperature and options.get("seed") is None)


def _hit(stored: Completion, ms: float) -> Completion:
    return clone(stored, cached=True, cost_usd=0.0, cost_source="cache", duration_ms=ms)


class CacheModel(WrapperModel):
    def __init__(self, wrapped: Any, cache: ResponseCache | None = None):
        super().__init__(wrapped)
        self.cache = cache if cache is not None else shared()

    def _lookup(self, messages: MessagesLike, options: dict, use: Any) -> tuple[str | None, Completion | None]:
        if use is False or not cacheable(options):
            return None, None
        start = time.perf_counter()
        key = key_for(self.model_id, messages, options)
        stored = self.cache.get(key)
        if stored is None:
            return key, None
        hit = _hit(stored, (time.perf_counter() - start) * 1000)
        attempts.record(model=stored.model, outcome="cache_hit", duration_ms=round(hit.duration_ms, 3),
                        saved_usd=stored.cost_usd or 0.0, tokens_in=stored.usage.input_tokens,
                        tokens_out=stored.usage.output_tokens, cost_usd=0.0)
        return key, hit

    def complete(self, messages: MessagesLike, *, cache: Any = True, **options: Any) -> Completion:
        with attempts.scope():
            key, hit = self._lookup(messages, options, cache)
            if hit is not None:
                return hit
            completion = self.wrapped.complete(messages, **options)
        if key is not None and completion.finish_reason != "error":
            self.cache.put(key, completion)
        return completion

    def stream(self, messages: MessagesLike, *, cache: Any = True, **options: Any) -> Stream:
        with attempts.scope():
            key, hit = self._lookup(messages, options, cache)
            if hit is not None:
                return Stream(iter([hit.text]), lambda text: hit)
            inner = self.wrapped.stream(messages, **options)
        done: dict[str, bool] = {}

        def deltas() -> Iterator[str]:
            try:
                yield from inner
            finally:
                inner.close()
            done["all"] = True  # reached only when the stream ran to its end without an error

        def finish(text: str) -> Completion:
            if inner.completion is None:  # closed before it was read
                inner.close()
            completion = inner.completion
            if key is not None and done.get("all") and completion is not None and completion.finish_reason != "error":
                self.cache.put(key, completion)
            return completion

        return Stream(deltas(), finish)
