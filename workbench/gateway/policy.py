"""Load and check the gateway policy (policy.yaml, or WORKBENCH_GATEWAY_POLICY).

Checked at load, so a bad file fails once with the fix named instead of misbehaving later: unknown
sections and keys, names that are not "provider:model", and cycles in the failover chains (named,
e.g. "a → b → a").
"""

from __future__ import annotations

import functools
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


# The settings have no values in code: policy.yaml, packaged here, holds them (see SETTINGS).
class RetrySettings(Strict):
    attempts: int
    base_s: float
    cap_s: float
    max_wait_s: float


class BreakerSettings(Strict):
    failures: int
    cooldown_s: float
    window: int


class CacheSettings(Strict):
    ttl_s: float
    max_entries: int


class LocalCost(Strict):
    """A local model's measured CPU-seconds per token: budget checks estimate a call's cost from them."""

    cpu_s_per_input_token: float = Field(ge=0)
    cpu_s_per_output_token: float = Field(ge=0)


class Estimates(Strict):
    output_tokens: int
    local_cost: LocalCost  # a local model that `models:` does not list


class BudgetScopes(Strict):
    """`budgets:` in USD per agent name and per API key name; `default` covers the rest of a scope."""

    agent: dict[str, float | None] = {}
    key: dict[str, float | None] = {}


class Route(Strict):
    """`routes:` one model name the gateway resolves per call, from the statistics of past runs: among its
    candidates (the first is the default), the cheapest whose posterior success rate for `specialist`
    subtasks is as good as the best's (workbench.memory.strategy)."""

    candidates: list[str] = Field(min_length=1)
    specialist: str = "general"


class PolicyFile(Strict):
    """The file's shape, no other sections allowed. Settings it leaves out come from the packaged file
    (filled in before validation, see SETTINGS); tables it leaves out are empty."""

    local_model: str
    models: dict[str, LocalCost] = {}
    failover: dict[str, list[str] | str] = {}
    retry: RetrySettings
    breaker: BreakerSettings
    cache: CacheSettings
    estimates: Estimates
    budgets: BudgetScopes = BudgetScopes()
    rate_limits: dict[str, dict[str, Any]] = {}
    routes: dict[str, Route] = {}


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
    estimates: dict[str, Any] = field(default_factory=dict)
    routes: dict[str, dict[str, Any]] = field(default_factory=dict)

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


SETTINGS = ("local_model", "retry", "breaker", "cache", "estimates")  # left out of a file: the packaged value
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
            _CACHE[key] = parse(read_yaml(file), file)
        policy = _CACHE[key]
    model = settings.model
    if model.startswith("local:") and model != policy.local_model:  # WORKBENCH_MODEL wins when local
        policy = Policy(**{**policy.__dict__, "local_model": model})
    return policy


def read_yaml(file: Path) -> Any:
    """The file's YAML; a syntax error is a ConfigError naming the file, line and column."""
    try:
        return yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"Gateway policy {file} is not UTF-8 text (byte {exc.start}). Save it as UTF-8.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"Gateway policy {file} is not valid YAML{where}: {problem}. Fix the file, or unset "
                          f"WORKBENCH_GATEWAY_POLICY to use the packaged {DEFAULT_FILE.name}.") from None


def parse(data: dict[str, Any], path: Path) -> Policy:
    def bad(msg: str) -> ConfigError:
        return ConfigError(f"Gateway policy {path}: {msg}")

    if not isinstance(data, dict):
        raise bad("the file must be a mapping of sections.")
    if isinstance(data.get("budgets"), dict) and "task" in data["budgets"]:
        raise bad("budgets.task is not read: a task's budget is its own budget_usd (given when the task is "
                  "submitted), checked by the task before each model call. Remove `task:` from budgets.")
    try:
        file = PolicyFile.model_validate(with_packaged_settings(data))
    except ValueError as exc:
        raise bad(describe(exc, PolicyFile)) from None
    for name in [file.local_model, *file.models]:
        _check_name(name, bad)
    failover = {k: v if isinstance(v, list) else [v] for k, v in file.failover.items()}
    for name, targets in failover.items():
        for target in [name, *targets]:
            _check_name(target, bad)
    for route in file.routes.values():
        for candidate in route.candidates:
            _check_name(candidate, bad)
    cycle = find_cycle(failover)
    if cycle:
        raise bad(f"the failover chain has a cycle: {' → '.join(cycle)}. Remove one of these links so every "
                  f"chain ends (the local model is appended to cloud chains automatically).")
    sections = file.model_dump(include={"retry", "breaker", "cache", "estimates", "budgets", "rate_limits", "models",
                                        "routes"})
    return Policy(path=path, local_model=file.local_model, failover=failover, **sections)


def with_packaged_settings(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with each setting it leaves out, or a key of one, taken from the packaged policy.yaml."""
    packaged = _packaged()
    return {**data, **{name: _filled(data.get(name), packaged.get(name)) for name in SETTINGS}}


@functools.cache
def _packaged() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_FILE.read_text())


def _filled(given: Any, default: Any) -> Any:
    if given is None:
        return default
    if isinstance(given, dict) and isinstance(default, dict):
        return {**default, **{k: _filled(v, default.get(k)) for k, v in given.items()}}
    return given  # a wrong type is left for validation to name


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
