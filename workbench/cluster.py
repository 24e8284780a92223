"""Where work runs: a Dask LocalCluster of worker processes, or the scheduler at WORKBENCH_DASK_SCHEDULER.

Local-model generation is scarce (memory, cores), so workers declare an `LLM` resource and model-bound
tasks ask for one slot: the default cluster has ONE slot in total on this 2-core machine. External
workers declare their own slots (`dask worker ... --resources LLM=1`, see docker-compose.yml).
"""

from __future__ import annotations

import threading
from typing import Any

import dask

from workbench.config import get_settings
from workbench.errors import WorkbenchError

LLM = "LLM"
_lock = threading.Lock()
_state: dict[str, Any] = {"client": None, "cluster": None}


class ClusterError(WorkbenchError):
    http_status = 503


class ClusterLost(ClusterError):
    """A running task lost its footing in the cluster: Dask took one of its steps away (the scheduler, or this
    worker's connection to it, was lost) or its worker is shutting down. The run stops without recording an
    end, so the task runs again from its checkpoints instead of failing for a reason that is not its own."""

    def __init__(self, task_id: str, why: str):
        super().__init__(f"Task {task_id}: {why}; this run stops and the task runs again from its checkpoints.")


def _configure() -> None:
    import os

    # Spawned workers read this at import, before any Nanny `env` applies: worker INFO chatter would
    # drown the CLI's output.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")
    # Read when the scheduler starts: a worker death surfaces at once as KilledWorker to the task runner.
    dask.config.set({
        "distributed.scheduler.allowed-failures": 0,  # retries are the task runner's job (it counts attempts)
        "distributed.worker.daemon": False,  # workers may start sandbox subprocesses
        "distributed.admin.tick.limit": "30s",
        "logging.distributed": "error",
    })


def start_local_cluster(n_workers: int | None = None, llm_slots: int | None = None, dashboard: str | None = None):
    """A SpecCluster of Nanny-managed worker processes (1 thread each); the first `llm_slots` get LLM=1."""
    from distributed import Nanny, Scheduler, SpecCluster

    settings = get_settings()
    n_workers = n_workers or settings.dask_workers
    slots = settings.llm_slots if llm_slots is None else llm_slots
    _configure()
    workers = {
        f"worker-{i}": {"cls": Nanny, "options": {
            "nthreads": 1, "host": "127.0.0.1", "resources": {LLM: 1} if i < slots else {},
            "memory_limit": 0, "env": _worker_env(),
        }}
        for i in range(n_workers)
    }
    options = {"host": "127.0.0.1", "dashboard": dashboard is not None}
    if dashboard is not None:
        options["dashboard_address"] = dashboard
    scheduler = {"cls": Scheduler, "options": options}
    return SpecCluster(scheduler=scheduler, workers=workers, name="workbench", silence_logs=40)


def _worker_env() -> dict[str, str]:
    """Workers must see the same settings as this process (tests change them at run time)."""
    import os

    return {k: v for k, v in os.environ.items() if k.startswith("WORKBENCH_")}


def closed_for_good(client) -> bool:
    """A client that will not come back by itself (closed on purpose, or its scheduler stayed away past its
    reconnect window); one that is "connecting" still may."""
    return client.status in ("closing", "closed")


def get_client(connect_timeout: float | None = None):
    """The process-wide Dask client: external scheduler if configured, else a LocalCluster we own. A client
    that is reconnecting by itself is returned as it is; one closed for good (its scheduler stayed away
    longer than WORKBENCH_DASK_TIMEOUT_S) is replaced by a new one."""
    from distributed import Client

    with _lock:
        if _state["client"] is not None and not closed_for_good(_state["client"]):
            return _state["client"]
        settings = get_settings()
        address = settings.dask_scheduler
        connect_timeout = settings.dask_timeout_s if connect_timeout is None else connect_timeout
        try:
            if address:
                _state["client"] = Client(address, timeout=connect_timeout, set_as_default=False)
            else:
                _state["cluster"] = start_local_cluster()
                _state["client"] = Client(_state["cluster"], set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(
                f"Cannot reach the Dask scheduler at {address} within {connect_timeout:g} s ({exc}). "
                f"Start it (`dask scheduler`) or unset WORKBENCH_DASK_SCHEDULER to use a local cluster."
            ) from exc
        return _state["client"]


class NothingToReconnect(ClusterError):
    """The client was closed on purpose, or the cluster was this process's own: a task runner stops."""


def reconnect():
    """A new client for a task runner whose client closed by itself: its external scheduler stayed away past
    WORKBENCH_DASK_TIMEOUT_S. ClusterError when there is nothing to reconnect to: the client was closed on
    purpose (close_client: the process is shutting its cluster down) or the cluster was this process's own."""
    with _lock:
        lost = _state["client"] is not None and closed_for_good(_state["client"])
    if not lost or not get_settings().dask_scheduler:
        raise NothingToReconnect("The Dask client was closed on purpose (or the cluster was this process's own): "
                           "nothing to reconnect to; start a new task runner.")
    return get_client()


def current_client():
    """The process's Dask client if one was made (running or not), else None; never starts one."""
    return _state["client"]


def health() -> tuple[bool, str]:
    """(ok, detail) of this process's cluster. A client whose scheduler went away is no longer `running` (its
    connection closed) and keeps trying to reconnect by itself (distributed's reconnect loop) for
    WORKBENCH_DASK_TIMEOUT_S; after that the task runner's watchdog makes a new one, so a scheduler back at
    the same address is picked up without restarting the server however long it was away."""
    client = current_client()
    if client is None:
        return True, "no client in this process"
    address = get_settings().dask_scheduler or "the local cluster"
    if client.status != "running":
        return False, f"the Dask scheduler at {address} is lost (client {client.status})"
    info = client.scheduler_info(n_workers=-1)
    return True, f"scheduler {info.get('address', address)}, {len(info.get('workers', {}))} worker(s)"


def close_client() -> None:
    with _lock:
        if _state["client"] is not None:
            _state["client"].close()
        if _state["cluster"] is not None:
            _state["cluster"].close()
        _state.update(client=None, cluster=None)


def llm_slots(client) -> int:
    """Total LLM slots the workers currently declare."""
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    return int(sum(w.get("resources", {}).get(LLM, 0) for w in workers))


def require_llm_slot(client) -> dict[str, int]:
    """Resources to submit a model-bound task with; refuses (instead of waiting forever) when no worker has one."""
    if llm_slots(client) < 1:
        raise ClusterError(
            "No Dask worker declares an LLM slot, so a model-bound task would wait forever. "
            "Start workers with `--resources LLM=1` (docker-compose does) or set WORKBENCH_LLM_SLOTS>=1."
        )
    return {LLM: 1}
