"""Load and check the gateway policy (policy.yaml, or WORKBENCH_GATEWAY_POLICY).

Checked at load, so a bad file fails once with the fix named instead of misbehaving later: unknown
sections and keys, names that are not "provider:model", and cycles in the failover chains (named,
e.g. "a → b → a").
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from workbench.config import get_settings
from workbench.errors import ConfigError
from workbench.schema import Strict, describe

DEFAULT_FILE = Path(__file__).with_name("policy.yaml")


class RetrySettings(Strict):
    attempts: int = 3
    base_s: float = 0.25
    cap_s: float = 8.0
    max_wait_s: float = 30.0


class BreakerSettings(Strict):
    failures: int = 5
    cooldown_s: float = 30.0
    window: int = 200


class CacheSettings(Strict):
    ttl_s: float = 3600.0
    max_entries: int = 10000


class Estimates(Strict):
    output_tokens: int = 512


class LocalCost(Strict):
    """A local model's measured CPU-seconds per token: budget checks estimate a call's cost from them."""

    cpu_s_per_input_token: float = Field(0.023, ge=0)
    cpu_s_per_output_token: float = Field(0.082, ge=0)


class BudgetScopes(Strict):
    """`budgets:` in USD per agent name and per API key fingerprint; `default` covers the rest of a scope."""

    agent: dict[str, float | None] = {}
    key: dict[str, float | None] = {}


class PolicyFile(Strict):
    """The file's shape: every section optional, no others allowed."""

    local_model: str = "local:qwen2.5-coder-1.5b"
    models: dict[str, LocalCost] = {}
    failover: dict[str, list[str] | str] = {}
    retry: RetrySettings = RetrySettings()
    breaker: BreakerSettings = BreakerSettings()
    cache: CacheSettings = CacheSettings()
    estimates: Estimates = Estimates()
    budgets: BudgetScopes = BudgetScopes()
    rate_limits: dict[str, dict[str, Any]] = {}


@dataclass
class Policy:
    path: Path
    local_model: str
    models: dict[str, dict[str, Any]]
    failover: dict[str, list[str]]
    retry: dict[str, float]
    breaker: dict[str, float]
    cache: dict[str, float]
    budgets: dict[str, dict[str, float | None]] = field(default_factory=dict)
    rate_limits: dict[str, dict[str, Any]] = field(default_factory=dict)
    estimates: dict[str, float] = field(default_factory=dict)

    def chain(self, model_id: str) -> list[str]:
        """model_id, then its failover targets depth-first (deduplicated); cloud chains end on local_model."""
        out: list[str] = []

        def visit(name: str) -> None:
            if name in out:
                return
            out.append(name)
            for nxt in self.failover.get(name, []):
                visit(nxt)

        visit(model_id)
        if model_id.partition(":")[0] in CLOUD and self.local_model not in out:
            out.append(self.local_model)
        return out


CLOUD = {"openai", "groq", "mistral"}  # providers that leave this machine (offline mode skips them)
_CACHE: dict[tuple[str, int], Policy] = {}
_LOCK = threading.Lock()


def load(path: Path | str | None = None) -> Policy:
    """The policy in effect (cached per file and modification time)."""
    settings = get_settings()
    file = Path(path or settings.gateway_policy or DEFAULT_FILE)
    try:
        key = (str(file), file.stat().st_mtime_ns)
    except OSError as exc:
        raise ConfigError(f"Gateway policy {file} cannot be read ({exc.strerror}). Fix WORKBENCH_GATEWAY_POLICY "
                          f"or unset it to use the packaged {DEFAULT_FILE.name}.") from None
    with _LOCK:
        if key not in _CACHE:
            _CACHE.clear()
            _CACHE[key] = parse(yaml.safe_load(file.read_text()) or {}, file)
        policy = _CACHE[key]
    model = settings.model
    if model.startswith("local:") and model != policy.local_model:  # WORKBENCH_MODEL wins when local
        policy = Policy(**{**policy.__dict__, "local_model": model})
    return policy


def parse(data: dict[str, Any], path: Path) -> Policy:
    def bad(msg: str) -> ConfigError:
        return ConfigError(f"Gateway policy {path}: {msg}")

    if not isinstance(data, dict):
        raise bad("the file must be a mapping of sections.")
    if isinstance(data.get("budgets"), dict) and "task" in data["budgets"]:
        raise bad("budgets.task is not read: a task's budget is its own budget_usd (given when the task is "
                  "submitted), checked by the task before each model call. Remove `task:` from budgets.")
    try:
        file = PolicyFile.model_validate(data)
    except ValueError as exc:
        raise bad(describe(exc, PolicyFile)) from None
    for name in [file.local_model, *file.models]:
        _check_name(name, bad)
    failover = {k: v if isinstance(v, list) else [v] for k, v in file.failover.items()}
    for name, targets in failover.items():
        for target in [name, *targets]:
            _check_name(target, bad)
    cycle = find_cycle(failover)
    if cycle:
        raise bad(f"the failover chain has a cycle: {' → '.join(cycle)}. Remove one of these links so every "
                  f"chain ends (the local model is appended to cloud chains automatically).")
    sections = file.model_dump(include={"retry", "breaker", "cache", "estimates", "budgets", "rate_limits", "models"})
    return Policy(path=path, local_model=file.local_model, failover=failover, **sections)


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A cycle as a path that returns to its start, e.g. ["a", "b", "a"]; None when there is none."""
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        # graphlib reads graph[node] as the node's predecessors, so it reports the path backwards
        return list(reversed(exc.args[1]))
    return None


def _check_name(name: str, bad: Any) -> None:
    provider, _, model = name.partition(":")
    if not provider or not model:
        raise bad(f"{name!r} is not a \"provider:model\" name (e.g. openai:gpt-4o-mini).")
