"""Provider registry: models are named "provider:model"; short aliases resolve to full names.

Each provider module calls `register()` once; no dispatch chain anywhere.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from workbench.config import get_settings
from workbench.errors import UnknownModelError
from workbench.plugins import load_plugins
from workbench.providers.base import Model, ModelInfo

ALIASES: dict[str, str] = {
    "local": "local:qwen2.5-coder-1.5b",
    "default": "local:qwen2.5-coder-1.5b",
    "qwen-1.5b": "local:qwen2.5-coder-1.5b",
    "qwen-0.5b": "local:qwen2.5-coder-0.5b",
    "smollm2": "local:smollm2-135m",
    "gpt-4o-mini": "openai:gpt-4o-mini",
    "llama-3.1-8b": "groq:llama-3.1-8b-instant",
    "mistral-small": "mistral:mistral-small-latest",
}


@dataclass
class ProviderEntry:
    prefix: str
    factory: Callable[[str], Model]  # model name (after the prefix) -> Model
    list_models: Callable[[], list[ModelInfo]]  # what `workbench models` shows
    open_names: bool = True  # any name passes to the provider (cloud); False: only listed ones
    accepts: Callable[[str], bool] | None = None  # names taken without being listed (local: a GGUF file path)


_PROVIDERS: dict[str, ProviderEntry] = {}
_BUILTIN = ("local", "ollama", "openai", "groq", "mistral")
_EXTRA = ("workbench.testing",)  # test:echo and friends, for served apps pointed at a function model


def register(entry: ProviderEntry) -> None:
    _PROVIDERS[entry.prefix] = entry


def _load_builtins() -> None:
    for name in _BUILTIN:
        if name not in _PROVIDERS:
            importlib.import_module(f"workbench.providers.{name}")
    for module in _EXTRA:
        importlib.import_module(module)


def providers() -> dict[str, ProviderEntry]:
    _load_builtins()
    load_plugins()  # cheap after the first time; picks up WORKBENCH_PLUGINS set at run time (tests)
    return dict(_PROVIDERS)


def resolve(name: str | None) -> str:
    """Full "provider:model" name for a name, an alias or None (the default model)."""
    name = (name or get_settings().model).strip()
    name = ALIASES.get(name, name)
    return name


def get_model(name: str | None = None) -> Model:
    """The raw provider model (no gateway). Most callers want `workbench.get_model` instead."""
    full = resolve(name)
    prefix, _, model_name = full.partition(":")
    entry = providers().get(prefix)
    if entry is None or not model_name:
        raise UnknownModelError(full, available_names())
    if (not entry.open_names and not (entry.accepts and entry.accepts(model_name))
            and model_name not in {i.name.partition(":")[2] for i in entry.list_models()}):
        raise UnknownModelError(full, available_names())
    return entry.factory(model_name)


def list_models() -> list[ModelInfo]:
    out: list[ModelInfo] = []
    for entry in providers().values():
        out.extend(entry.list_models())
    for info in out:
        info.aliases = sorted(a for a, target in ALIASES.items() if target == info.name)
    return out


def available_names() -> list[str]:
    return [info.name for info in list_models()]
