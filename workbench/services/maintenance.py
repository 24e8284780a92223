"""Background work of the served app that no browser tab should have to do: sample the Dask workers,
evaluate the alert rules, retrain the anomaly detector when enough new rows arrived or its timer fired.

One daemon thread per server process (`ensure_started()`, idempotent; the first dashboard session starts
it, and so can an app lifespan). Everything it computes is kept here for the pages to read, so ten tabs on
the Monitoring page cost one sampling and one alert evaluation, not ten.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)
TICK_S = 2.0
SAMPLE_EVERY_S = 2.0
PROBE_TIMEOUT_S = 5.0
RETRAIN_CHECK_EVERY_S = 60.0
HISTORY = 1800  # samples kept per worker (1 h at 2 s)


async def _probe(client) -> tuple[dict, dict, dict]:
    """One bounded round trip's worth of scheduler state: a busy or restarting scheduler must not hold the
    pages' loads (they wait on this sampler's lock) for longer than PROBE_TIMEOUT_S."""
    info = await client.scheduler.identity(n_workers=-1)
    processing = await client.scheduler.processing(workers=None)
    queue = await client._run_on_scheduler(_scheduler_queue)
    return info, processing, queue


class DaskSampler:
    """Worker metrics over time, from the scheduler's own heartbeat data (cpu %, memory, tasks)."""

    def __init__(self):
        self.samples: collections.deque[dict[str, Any]] = collections.deque(maxlen=HISTORY * 4)
        self.latest: dict[str, Any] = {}
        self.error: str | None = None
        self._last = 0.0
        self._lock = threading.Lock()

    def sample(self, client, force: bool = False) -> dict[str, Any]:
        with self._lock:
            if not force and time.monotonic() - self._last < SAMPLE_EVERY_S and self.latest:
                return self.latest
            self._last = time.monotonic()
            try:
                # Ask the scheduler directly: Client.scheduler_info() returns a cache that the client's own
                # periodic refresh overwrites with a worker-less summary, so it sometimes shows no workers.
                info, processing, queue = client.sync(_probe, client, callback_timeout=PROBE_TIMEOUT_S)
            except Exception as exc:  # a restarting cluster is reported on the page, not raised
                self.error = f"{type(exc).__name__}: {exc}"
                return self.latest
            self.error = None
            now = pd.Timestamp.now(tz="UTC")
            workers = []
            for address, w in info.get("workers", {}).items():
                metrics = w.get("metrics", {})
                row = {"worker": w.get("name", address), "address": address, "status": w.get("status", "?"),
                       "nthreads": w.get("nthreads"), "cpu_percent": metrics.get("cpu"),
                       "memory_mb": (metrics.get("memory") or 0) / 2**20,
                       "executing": metrics.get("task_counts", {}).get("executing", len(processing.get(address, ()))),
                       "processing": len(processing.get(address, ())), "resources": w.get("resources", {})}
                workers.append(row)
                self.samples.append({"time": now, **{k: row[k] for k in ("worker", "cpu_percent", "memory_mb", "processing")}})
            self.latest = {"time": now, "workers": workers, **queue}
            return self.latest

    def frame(self) -> pd.DataFrame:
        with self._lock:
            return pd.DataFrame(list(self.samples), columns=["time", "worker", "cpu_percent", "memory_mb", "processing"])


def _scheduler_queue(dask_scheduler=None) -> dict[str, int]:
    """Runs on the scheduler: how much is waiting (queued for a slot, unrunnable, processing)."""
    s = dask_scheduler
    return {"queued": len(getattr(s, "queued", ())), "unrunnable": len(getattr(s, "unrunnable", ())),
            "tasks_total": len(s.tasks),
            "processing_total": sum(len(ws.processing) for ws in s.workers.values())}


class Maintenance:
    def __init__(self):
        from workbench.analysis.alerts import AlertManager

        self.sampler = DaskSampler()
        self.alerts: AlertManager | None = None
        self.alerts_error: str | None = None
        try:
            self.alerts = AlertManager.from_settings()
        except Exception as exc:  # a broken rules file is shown on the page, with its fix
            self.alerts_error = str(exc)
        self.retrain: dict[str, str] = {}  # level -> last decision or result
        self._last_alerts = 0.0
        self._last_retrain_check = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="workbench-dashboards-maintenance", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        from workbench.services import runtime

        while not self._stop.wait(TICK_S):
            rt = runtime.current()
            if rt is None:
                continue
            for job in (self._sample, self._alerts, self._retrain):
                try:
                    job(rt)
                except Exception as exc:  # Postgres down, cluster restarting: try again next tick
                    log.debug("maintenance job %s: %s", job.__name__, exc)

    def _sample(self, rt) -> None:
        if rt.client is not None:
            self.sampler.sample(rt.client)

    def _alerts(self, rt) -> None:
        if self.alerts is None or time.monotonic() - self._last_alerts < self.alerts.interval_s:
            return
        self._last_alerts = time.monotonic()
        self.alerts.check(rt.store)

    def _retrain(self, rt) -> None:
        if time.monotonic() - self._last_retrain_check < RETRAIN_CHECK_EVERY_S:
            return
        self._last_retrain_check = time.monotonic()
        retrain_if_due(rt.store, self.retrain)


def retrain_if_due(store, record: dict[str, str]) -> list[str]:
    """Train each level whose rule says so (new rows or timer); returns the levels trained."""
    from workbench.analysis import anomaly

    trained = []
    for level in anomaly.LEVELS:
        due, why = anomaly.should_retrain(store, level)
        if not due:
            record[level] = why
            continue
        try:
            result = anomaly.train(store, level, trigger="first" if why.startswith("first") else
                                   "timer" if why.startswith("timer") else "new_rows")
        except anomaly.NotEnoughData as exc:  # Postgres has the rows, the snapshot not yet: next round
            record[level] = str(exc)
            continue
        record[level] = f"retrained ({why}): {result.rows} rows, {result.flagged} flagged"
        trained.append(level)
    return trained


_MAINTENANCE: Maintenance | None = None
_LOCK = threading.Lock()


def instance() -> Maintenance:
    """The process's Maintenance (created on first use; its thread runs only after ensure_started())."""
    global _MAINTENANCE
    with _LOCK:
        if _MAINTENANCE is None:
            _MAINTENANCE = Maintenance()
        return _MAINTENANCE


def ensure_started() -> Maintenance:
    m = instance()
    with _LOCK:
        if not m._thread.is_alive() and not m._stop.is_set():
            m.start()
    return m


def reset() -> None:
    """Forget the instance (tests switch stores and rule files)."""
    global _MAINTENANCE
    with _LOCK:
        if _MAINTENANCE is not None:
            _MAINTENANCE.stop()
        _MAINTENANCE = None
