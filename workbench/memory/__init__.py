"""Memory: what past tasks taught, retrieved by meaning, kept only when verified, and visible when used.

    from workbench import memory
    mem = memory.get_memory()      # MemoryStore on the process's store, or None (off, or not installed)
    recall = memory.recall("Write reverse(s) ...", owner="ana", kinds=("solution", "failure_note"))
    recall.prompt                  # the entries for a prompt, within the token budget ("" when none)
    memory.remember_code(request, "python", code_result, owner="ana", task_id=...)   # the quality gate

Every retrieval, cache hit and store is one `memory` event (workbench.events.Kind.MEMORY) in the task's
trace: {"action": "retrieve", "used": id, "similarity": 0.83, "why": ...}.

Whether memory is on: WORKBENCH_MEMORY (auto: on when the embedder is installed), and per task (a task's
`memory: false`). When the embedder or pgvector is missing, one line says how to fix it and the
workbench runs without memory.
"""

from __future__ import annotations

from workbench.memory.access import enabled, forget_instances, get_memory
from workbench.memory.embedder import EmbedderMissing, available, get_embedder
from workbench.memory.recall import Recall, cached_solution, recall, remember_code, remember_plan, settle
from workbench.memory.store import Hit, MemoryInputError, MemoryStore, MemoryUnavailable, NewEntry

__all__ = [
    "EmbedderMissing", "Hit", "MemoryInputError", "MemoryStore", "MemoryUnavailable", "NewEntry", "Recall",
    "available", "cached_solution", "enabled", "forget_instances", "get_embedder", "get_memory", "recall",
    "remember_code", "remember_plan", "settle",
]
