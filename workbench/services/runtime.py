"""The services the served process owns, reachable from Panel pages (which do not see FastAPI's app.state)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for the annotations: this registry must not load Dask or the store when imported
    from distributed import Client

    from workbench.services.live import EventHub
    from workbench.store import Store
    from workbench.tasks.api import TaskApi


@dataclass
class Runtime:
    store: Store
    tasks: TaskApi  # the one way to tasks: create and submit, cancel, approve, read
    hub: EventHub | None  # the LISTEN fan-out of new events; None: pages are not woken, they poll
    client: Client | None  # the Dask client; None: no cluster in this process
    loop: asyncio.AbstractEventLoop


_current: Runtime | None = None


def set_runtime(runtime: Runtime | None) -> None:
    global _current
    _current = runtime


def current() -> Runtime | None:
    """The running server's services, or None outside `workbench serve` (e.g. a notebook)."""
    return _current
