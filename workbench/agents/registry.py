"""The specialist registry: register, enable/disable, health, per-agent settings from agents.yaml, and
`run_specialist`, the one call that runs a subtask on its registered specialist (in this process, or
inside a Dask task — it has no cluster dependency).

    registry = default_registry()          # built-ins + agents.yaml (or WORKBENCH_AGENTS_FILE)
    registry.names()                       # enabled specialists: the Director's schema enum
    registry.disable("code"); registry.health()
    result = run_specialist({"id": "s2", "specialist": "code", "instructions": "...", "depends_on": ["s1"]},
                            context={"s1": result_s1}, budget=task_budget.remaining(), task_id="t-1")
    result.ok, result.output, result.data, result.tokens_in, result.cost_usd

The Director builds its prompt and its schema from `registry.specialists()`, so a new specialist is a
`Specialist(...)` plus a `factory:` line in agents.yaml — no Director change.
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from workbench import telemetry
from workbench.agents.guards import Budget
from workbench.agents.specialist import (
    Specialist,
    SpecialistCall,
    Subtask,
    SubtaskResult,
)
from workbench.errors import (
    ConfigError,
    SpecialistDisabled,
    UnknownSpecialist,
    WorkbenchError,
)
from workbench.providers.base import Model
from workbench.schema import Strict, parse

PACKAGED = Path(__file__).with_name("agents.yaml")
BUILTIN = ("workbench.agents.specialists.general", "workbench.agents.specialists.code",
           "workbench.agents.specialists.data")  # each module defines SPECIALIST


class Entry(Strict):
    """One `specialists.NAME:` entry of agents.yaml; a key left out keeps the specialist's own value."""

    enabled: bool = True
    model: str | None = None
    limits: dict[str, Any] | None = None  # checked by Limits.merged, which names the bad key
    options: dict[str, Any] | None = None
    tools: list[str] | None = None
    permissions: list[str] | None = None
    description: str | None = None
    keywords: list[str] | None = None
    system_prompt: str | None = None
    factory: str | None = None


@dataclass
class Health:
    ok: bool
    reason: str


class Registry:
    def __init__(self, config: dict[str, Any] | None = None, source: str = "(in memory)"):
        self.config = config or {}
        self.source = source
        self.director_config: dict[str, Any] = dict(self.config.get("director") or {})
        self._specs: dict[str, Specialist] = {}
        self._enabled: dict[str, bool] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, path: Path | None = None, *, builtins: bool = True) -> Registry:
        """Built-in specialists + those named by `factory:`, each configured by its agents.yaml entry."""
        from workbench.config import get_settings

        path = Path(path or get_settings().agents_file or PACKAGED)
        registry = cls(load_config(path), source=str(path))
        entries = registry.config.get("specialists") or {}
        for module in BUILTIN if builtins else ():
            registry.register(importlib.import_module(module).SPECIALIST)
        for name, entry in entries.items():
            if "factory" in (entry or {}):
                registry.register(import_object(entry["factory"], f"specialists.{name}.factory"))
        unmatched = set(entries) - set(registry._specs)
        if unmatched and builtins:
            raise ConfigError(f"{path} configures specialist(s) {sorted(unmatched)} that are not registered; give "
                              f"each a `factory: package.module:OBJECT` line or fix the name.")
        return registry

    def register(self, spec: Specialist, *, replace: bool = False) -> Specialist:
        """Add a specialist, applying its agents.yaml entry (model, limits, options, enabled, ...)."""
        entry = dict((self.config.get("specialists") or {}).get(spec.name) or {})
        spec = configure(spec, entry, f"{self.source}: specialists.{spec.name}")
        with self._lock:
            if spec.name in self._specs and not replace:
                raise ConfigError(f"A specialist named {spec.name!r} is already registered; "
                                  f"pass replace=True to swap it.")
            self._specs[spec.name] = spec
            self._enabled[spec.name] = bool(entry.get("enabled", True))  # configure() checked the entry
        return spec

    def unregister(self, name: str) -> None:
        with self._lock:
            self.get(name)
            del self._specs[name], self._enabled[name]

    def enable(self, name: str) -> None:
        self.get(name)
        self._enabled[name] = True

    def disable(self, name: str) -> None:
        self.get(name)
        self._enabled[name] = False

    def is_enabled(self, name: str) -> bool:
        return self._enabled.get(name, False)

    def team(self, names: list[str]) -> str:
        """The specialists `names` as the Director's prompts list them, one line each."""
        return "\n".join(f"- {n}: {self.get(n).brief()}" for n in names)

    def get(self, name: str) -> Specialist:
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownSpecialist(name, list(self._specs)) from None

    def require(self, name: str) -> Specialist:
        """The specialist, if registered and enabled now (it may be disabled mid-run)."""
        spec = self.get(name)
        if not self.is_enabled(name):
            raise SpecialistDisabled(name)
        return spec

    def specialists(self, include_disabled: bool = False) -> list[Specialist]:
        return [s for n, s in self._specs.items() if include_disabled or self._enabled[n]]

    def names(self, include_disabled: bool = False) -> list[str]:
        return [s.name for s in self.specialists(include_disabled)]

    def health(self) -> dict[str, Health]:
        """Per specialist: enabled, its model usable (no model is loaded), and its own check."""
        return {spec.name: self._health(spec) for spec in self.specialists(include_disabled=True)}

    def _health(self, spec: Specialist) -> Health:
        if not self.is_enabled(spec.name):
            return Health(False, "disabled")
        try:
            from workbench import providers

            info = providers.get_model(spec.model).info()
            if not info.usable:
                return Health(False, f"model {info.name}: {info.reason}")
            ok, reason = spec.health(spec) if spec.health else (True, "ready")
        except WorkbenchError as exc:
            return Health(False, str(exc))
        return Health(ok, f"{reason} (model {info.name})")


def configure(spec: Specialist, entry: dict[str, Any], where: str) -> Specialist:
    """A copy of `spec` with its agents.yaml entry applied; unknown keys are refused (typos fail loudly)."""
    given = parse(Entry, entry, where)
    changes: dict[str, Any] = {k: getattr(given, k) for k in ("model", "description", "system_prompt")
                               if getattr(given, k)}
    if "limits" in given.model_fields_set:
        changes["limits"] = spec.limits.merged(given.limits, f"{where}.limits")
    if "options" in given.model_fields_set:
        changes["options"] = {**spec.options, **(given.options or {})}
    if "tools" in given.model_fields_set:
        changes["tools"] = tuple(given.tools or ())
    if "permissions" in given.model_fields_set:
        changes["permissions"] = frozenset(given.permissions or ())
    if "keywords" in given.model_fields_set:
        changes["keywords"] = tuple(given.keywords or ())
    spec = dataclasses.replace(spec, **changes)
    spec.agent()  # validates name, permissions and tool names now, not at the first subtask
    return spec


class AgentsFile(Strict):
    """agents.yaml's sections, no others (each section is checked where it is read)."""

    director: dict[str, Any] | None = None
    specialists: dict[str, Any] | None = None


def load_config(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"Agents file {path} does not exist; fix WORKBENCH_AGENTS_FILE or unset it "
                          f"to use the packaged agents.yaml.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"Agents file {path} is not valid YAML: {exc}") from None
    parse(AgentsFile, data, f"Agents file {path}")
    return data


def import_object(ref: str, where: str) -> Any:
    module, _, attr = str(ref).partition(":")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"{where}: cannot import {ref!r} ({exc}); write it as package.module:OBJECT.") from None
    if not isinstance(obj, Specialist):
        raise ConfigError(f"{where}: {ref!r} is a {type(obj).__name__}, not a workbench.agents.Specialist.")
    return obj


_DEFAULT: dict[str, Any] = {"key": None, "registry": None}
_DEFAULT_LOCK = threading.Lock()


def default_registry() -> Registry:
    """The process-wide registry, re-read when agents.yaml changes: disabling a specialist in the file
    takes effect on every worker at its next subtask, without a restart (tests build their own)."""
    from workbench.config import get_settings
    from workbench.plugins import load_plugins

    load_plugins()  # a plugin's specialists are named by agents.yaml `factory:` lines
    path = Path(get_settings().agents_file or PACKAGED)
    try:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = (str(path), None, None)  # Registry.from_config says what is wrong with the path
    with _DEFAULT_LOCK:
        if _DEFAULT["key"] != key or _DEFAULT["registry"] is None:
            _DEFAULT.update(registry=Registry.from_config(path), key=key)
        return _DEFAULT["registry"]


def run_specialist(subtask: Subtask | Mapping[str, Any], context: Mapping[str, SubtaskResult | str] | None = None,
                   *, registry: Registry | None = None, model: Model | str | None = None,
                   budget: Budget | None = None, task_id: str | None = None,
                   options: Mapping[str, Any] | None = None) -> SubtaskResult:
    """Run one subtask on its specialist; every failure comes back as a failed SubtaskResult.

    context: results of the subtask's dependencies ({id: SubtaskResult or text}).
    model: overrides the specialist's configured model (a Model or a name).
    options: override the specialist's options from agents.yaml (e.g. {"snapshot": path} for data).
    """
    registry = registry or default_registry()
    started = time.time()
    subtask = Subtask.coerce(subtask)
    texts = {key: value.as_context() if isinstance(value, SubtaskResult) else str(value)
             for key, value in (context or {}).items()}
    with telemetry.span("subtask", agent=subtask.specialist, task_id=task_id) as span:
        try:
            spec = registry.require(subtask.specialist)
            call = SpecialistCall(subtask, texts, spec.agent(), model if model is not None else spec.model,
                                  budget or Budget(name="task"), task_id, {**spec.options, **(options or {})})
            result = spec.handler(call)
        except WorkbenchError as exc:
            result = SubtaskResult.failed(subtask, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - failure isolation: a handler bug fails only its subtask
            result = SubtaskResult.failed(subtask, f"{subtask.specialist} crashed: {type(exc).__name__}: {exc}")
        result.started_at, result.finished_at = started, time.time()
        result.duration_ms = result.duration_ms or (result.finished_at - started) * 1000
        # Totals stay in the payload: the steps inside already carry tokens and cost in their columns.
        span.set(model=result.model, error=result.error,
                 payload={**result.as_dict(), "output": result.output[:4000], "instructions": subtask.instructions,
                          "depends_on": subtask.depends_on})
    return result


__all__ = ["Entry", "Health", "Registry", "default_registry", "run_specialist"]
