"""Load and check the gateway policy (policy.yaml, or WORKBENCH_GATEWAY_POLICY).

Checked at load, so a bad file fails once with the fix named instead of misrouting calls later:
unknown sections, tiers outside 1-5, missing complexity levels, names that are not "provider:model",
and cycles in the failover chains (named, e.g. "a → b → a").
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from workbench.config import get_settings
from workbench.errors import ConfigError

DEFAULT_FILE = Path(__file__).with_name("policy.yaml")
SECTIONS = {"local_model", "models", "complexity", "failover", "overrides", "retry", "breaker", "cache", "budgets",
            "rate_limits", "estimates"}
DEFAULTS: dict[str, Any] = {
    "retry": {"attempts": 3, "base_s": 0.25, "cap_s": 8.0, "max_wait_s": 30.0},
    "breaker": {"failures": 5, "cooldown_s": 30.0, "window": 200},
    "cache": {"ttl_s": 3600.0, "max_entries": 10000},
    "estimates": {"output_tokens": 512},
}


@dataclass
class Policy:
    path: Path
    local_model: str
    models: dict[str, dict[str, Any]]
    complexity: dict[int, dict[str, float]]
    failover: dict[str, list[str]]
    overrides: dict[str, dict[str, str]]
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
    unknown = set(data) - SECTIONS
    if unknown:
        raise bad(f"unknown section(s) {sorted(unknown)}; allowed: {', '.join(sorted(SECTIONS))}.")
    local = str(data.get("local_model") or "local:qwen2.5-coder-1.5b")
    models = {str(k): dict(v or {}) for k, v in (data.get("models") or {}).items()}
    for name, entry in models.items():
        _check_name(name, bad)
        tier = entry.get("tier")
        if not isinstance(tier, int) or not 1 <= tier <= 5:
            raise bad(f"models.{name}.tier must be an integer 1-5 (got {tier!r}).")
    complexity = {int(k): dict(v) for k, v in (data.get("complexity") or {}).items()}
    missing = [c for c in range(1, 6) if c not in complexity]
    if missing:
        raise bad(f"complexity needs levels 1-5; missing {missing}.")
    for level, rule in complexity.items():
        if not 1 <= int(rule.get("min_tier", 0)) <= 5 or float(rule.get("max_usd_per_mtok", -1)) < 0:
            raise bad(f"complexity.{level} needs min_tier 1-5 and max_usd_per_mtok >= 0 (got {rule}).")
    failover = {str(k): [str(t) for t in (v if isinstance(v, list) else [v])]
                for k, v in (data.get("failover") or {}).items()}
    for name, targets in failover.items():
        for target in [name, *targets]:
            _check_name(target, bad)
    cycle = find_cycle(failover)
    if cycle:
        raise bad(f"the failover chain has a cycle: {' → '.join(cycle)}. Remove one of these links so every "
                  f"chain ends (the local model is appended to cloud chains automatically).")
    overrides = {scope: {str(k): str(v) for k, v in ((data.get("overrides") or {}).get(scope) or {}).items()}
                 for scope in ("agents", "tasks")}
    for scope, table in overrides.items():
        for name, target in table.items():
            _check_name(target, lambda m, where=f"overrides.{scope}.{name}": bad(f"{where}: {m}"))
    sections = {}
    for name, defaults in DEFAULTS.items():
        given = dict(data.get(name) or {})
        if set(given) - set(defaults):
            raise bad(f"unknown key(s) {sorted(set(given) - set(defaults))} in {name}; allowed: {', '.join(defaults)}.")
        sections[name] = {**defaults, **given}
    return Policy(path=path, local_model=local, models=models, complexity=complexity, failover=failover,
                  overrides=overrides, budgets=dict(data.get("budgets") or {}),
                  rate_limits=dict(data.get("rate_limits") or {}), **sections)


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A cycle as a path that returns to its start, e.g. ["a", "b", "a"]; None when there is none."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in graph:
        if state.get(start) is None:
            found = visit(start)
            if found:
                return found
    return None


def _check_name(name: str, bad: Any) -> None:
    provider, _, model = name.partition(":")
    if not provider or not model:
        raise bad(f"{name!r} is not a \"provider:model\" name (e.g. openai:gpt-4o-mini).")
