"""The specialist registry: register, enable/disable, health, and per-agent settings from agents.yaml.

    registry = default_registry()          # built-ins + agents.yaml (or WORKBENCH_AGENTS_FILE)
    registry.names()                       # enabled specialists: the Director's schema enum
    registry.disable("code"); registry.health()

The Director builds its prompt and its schema from `registry.specialists()`, so a new specialist is a
`Specialist(...)` plus a `factory:` line in agents.yaml — no Director change.
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from workbench.agents.agent import Limits
from workbench.agents.specialist import Specialist
from workbench.errors import ConfigError, SpecialistDisabled, UnknownSpecialist, WorkbenchError

PACKAGED = Path(__file__).with_name("agents.yaml")
BUILTIN = ("workbench.agents.specialists.general", "workbench.agents.specialists.code",
           "workbench.agents.specialists.data")  # each module defines SPECIALIST
ENTRY_KEYS = {"enabled", "model", "limits", "options", "tools", "permissions", "description", "keywords",
              "system_prompt", "factory"}


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
            self._enabled[spec.name] = bool(entry.get("enabled", True))
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
    unknown = set(entry) - ENTRY_KEYS
    if unknown:
        raise ConfigError(f"Unknown key(s) {sorted(unknown)} in {where}; use some of: {', '.join(sorted(ENTRY_KEYS))}.")
    changes: dict[str, Any] = {k: entry[k] for k in ("model", "description", "system_prompt") if entry.get(k)}
    if "limits" in entry:
        changes["limits"] = spec.limits.merged(entry["limits"], f"{where}.limits")
    if "options" in entry:
        changes["options"] = {**spec.options, **(entry["options"] or {})}
    if "tools" in entry:
        changes["tools"] = tuple(entry["tools"] or ())
    if "permissions" in entry:
        changes["permissions"] = frozenset(entry["permissions"] or ())
    if "keywords" in entry:
        changes["keywords"] = tuple(entry["keywords"] or ())
    spec = dataclasses.replace(spec, **changes)
    spec.agent()  # validates name, permissions and tool names now, not at the first subtask
    return spec


def load_config(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"Agents file {path} does not exist; fix WORKBENCH_AGENTS_FILE or unset it "
                          f"to use the packaged agents.yaml.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"Agents file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or set(data) - {"director", "specialists"}:
        raise ConfigError(f"Agents file {path} must be a mapping with `director:` and `specialists:` only.")
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


def reset_default_registry() -> None:
    with _DEFAULT_LOCK:
        _DEFAULT.update(key=None, registry=None)


__all__ = ["Health", "Limits", "Registry", "default_registry", "reset_default_registry"]
