"""Whether memory is on, and the process's MemoryStore on a workbench store (None when it cannot be)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from workbench.memory.embedder import available, get_embedder
from workbench.memory.store import MemoryStore, MemoryUnavailable

log = logging.getLogger(__name__)
_MEMORY: dict[int, MemoryStore] = {}
_OFF: dict[int, str] = {}
_LOCK = threading.Lock()


def enabled(task_setting: Any = None) -> bool:
    """Memory for this use: off when the task says so; else WORKBENCH_MEMORY (auto: on when the embedder is
    installed); a task asking for it gets it whenever the embedder is installed."""
    from workbench.config import get_settings

    if task_setting is False:
        return False
    if task_setting is True:
        return available()
    mode = get_settings().memory
    return mode == "on" or (mode == "auto" and available())


def get_memory(store: Any = None, *, required: bool = False) -> MemoryStore | None:
    """The memory on `store` (default: the process's store), or None when the embedder or the memory table
    is missing (logged once, with the fix). `required` raises instead (the CLI)."""
    from workbench.config import get_settings

    if store is None:
        from workbench.store import get_store

        store = get_store()
    key = id(store)
    with _LOCK:
        mem = _MEMORY.get(key)
        if mem is not None and mem.store is store and not getattr(store, "closed", False):
            return mem
        if key in _OFF and not required:
            return None
        embedder = get_embedder(required=required)
        if embedder is None:
            _OFF[key] = "embedder missing"
            return None
        settings = get_settings()
        try:
            mem = MemoryStore(store, embedder, min_similarity=settings.memory_min_similarity)
        except MemoryUnavailable as exc:
            if required:
                raise
            log.warning("%s", exc)
            _OFF[key] = str(exc)
            return None
        _MEMORY[key] = mem
        return mem


def forget_instances() -> None:
    """Drop the cached MemoryStores (tests that open and close stores)."""
    with _LOCK:
        _MEMORY.clear()
        _OFF.clear()
