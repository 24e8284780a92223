"""The services the served process owns, reachable from Panel pages (which do not see FastAPI's app.state)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any


@dataclass
class Runtime:
    store: Any  # workbench.store.Store
    tasks: Any  # workbench.tasks.service.TaskService
    runner: Any  # workbench.tasks.runner.TaskRunner
    hub: Any  # workbench.services.live.EventHub
    client: Any  # distributed.Client
    loop: asyncio.AbstractEventLoop


_current: Runtime | None = None


def set_runtime(runtime: Runtime | None) -> None:
    global _current
    _current = runtime


def current() -> Runtime | None:
    """The running server's services, or None outside `workbench serve` (e.g. a notebook)."""
    return _current
