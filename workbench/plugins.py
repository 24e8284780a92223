"""Plugins: modules every workbench process imports, so that what they register (model providers, test
functions, specialists, tools) exists in the server, the CLI and every Dask worker alike.

    WORKBENCH_PLUGINS="mypkg.models,/path/to/my_specialists.py" workbench serve

An entry is an importable module name or a path to a .py file (imported under its file stem, so an
agents.yaml `factory: my_specialists:SPEC` line can name it). Loaded once per process, on first use
of the model or specialist registries; a plugin that fails to import is an error that names it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from pathlib import Path

from workbench.errors import ConfigError

_loaded: set[str] = set()
_lock = threading.RLock()


def load_plugins() -> list[str]:
    """Import every plugin in WORKBENCH_PLUGINS not imported yet; returns the ones imported now."""
    from workbench.config import get_settings

    wanted = [p.strip() for p in (get_settings().plugins or "").split(",") if p.strip()]
    fresh = []
    with _lock:
        for entry in wanted:
            if entry in _loaded:
                continue
            _loaded.add(entry)  # first, so a plugin that uses the registries does not import itself again
            try:
                _import(entry)
            except Exception as exc:
                _loaded.discard(entry)
                raise ConfigError(f"Plugin {entry!r} (WORKBENCH_PLUGINS) failed to import: {type(exc).__name__}: "
                                  f"{exc}. Fix the module or remove it from WORKBENCH_PLUGINS.") from exc
            fresh.append(entry)
    return fresh


def _import(entry: str) -> None:
    if entry.endswith(".py"):
        path = Path(entry).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"no file {path}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
    else:
        importlib.import_module(entry)
