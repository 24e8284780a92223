"""The data every dashboard tab reads, shared by all tabs of the served process.

Why a shared layer: a hundred open tabs must not mean a hundred queries per second. Every read goes
through `Source.fetch(key, fn)`, which is single-flight (one query per key at a time, the other tabs wait
for its answer) and cached until something changed:

* live state (Postgres) is re-read only after the EventHub woke us (one LISTEN connection for the
  whole process, see workbench/services/live.py) and at most once per `min_interval`;
* history (DuckDB over the Parquet snapshots) is read again when the snapshot generation the sync
  publishes changes: the generation is the entry's `version`, not part of its key, so one entry per key
  however many snapshots pass.

At most MAX_ENTRIES keys are kept (least recently used dropped first): keys carry user input (a search,
a task id in the URL), so an unbounded cache would grow for as long as the server runs.

When Postgres is unreachable the layer says so once (`StoreUnavailable`, shown as a banner by every page)
and probes it at most every PROBE_EVERY_S for the whole process, instead of each tab waiting on its own
connection timeout; the first successful probe clears the banner everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.services.runtime import Runtime

PROBE_EVERY_S = 3.0
MAX_ENTRIES = 256
CONNECT_TIMEOUT_S = 2.0
T = TypeVar("T")


class StoreUnavailable(WorkbenchError):
    """Postgres cannot be reached; the message says what happened and how to get it back."""

    http_status = 503


class NotServed(WorkbenchError):
    """A page was built outside `workbench serve` without services to read from."""


def _db_errors() -> tuple[type[BaseException], ...]:
    import psycopg
    from psycopg_pool import PoolTimeout

    from workbench.errors import StoreError

    return psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout, StoreError


@dataclass
class _Entry:
    started: float  # monotonic time the query that produced `value` began
    value: Any
    version: Any = None  # what it was read from (an analytics snapshot's generation), if that matters


class Source:
    """Cached, single-flight reads for one runtime (store, task API, hub, Dask client)."""

    def __init__(self, rt: Runtime):
        self.rt = rt
        # The pages' way to tasks: a pooled connection that does not come within CONNECT_TIMEOUT_S means
        # Postgres is down (the banner), not a page waiting on the pool's own, longer timeout.
        self.tasks = rt.tasks.with_connect_timeout(CONNECT_TIMEOUT_S)
        self.generation = 0  # number of hub wake-ups seen (any task)
        self.last_wake = 0.0  # monotonic time of the newest wake-up
        self.queries = 0  # database/analytics round trips actually made (tests, the many-tabs check)
        self.down: str | None = None  # why Postgres is considered unreachable, None when it answers
        self._last_probe = 0.0
        self._entries: OrderedDict[Any, _Entry] = OrderedDict()  # least recently used first
        self._locks: dict[Any, threading.Lock] = {}
        self._guard = threading.Lock()
        self._all = None
        self._queue = None
        if rt.hub is not None:
            from workbench.services.live import ALL

            self._all = rt.hub.subscribe(ALL)
            self._queue = self._all.__enter__()

    # --- live wake-ups ---------------------------------------------------------------------------

    def poll(self) -> int:
        """Drain the process-wide wake-up queue (cheap, in memory); returns the generation."""
        queue = self._queue
        if queue is None:
            return self.generation
        drained = 0
        while True:
            try:
                queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            drained += 1
        if drained:
            self.generation += drained
            self.last_wake = time.monotonic()
        return self.generation

    def subscribe(self, task_id: str):
        """A context manager giving a queue woken on new events of one task (None when not served)."""
        hub = self.rt.hub
        if hub is None:
            return contextlib.nullcontext(None)
        return hub.subscribe(task_id)

    # --- Postgres health -------------------------------------------------------------------------

    def postgres_ok(self) -> tuple[bool, str]:
        """(up, reason) from what is already known in memory: no query is made here."""
        hub = self.rt.hub
        if self.down:
            return False, self.down
        if hub is not None and not hub.connected.is_set():
            return False, "the live-update connection to Postgres is lost (reconnecting)"
        return True, ""

    def unavailable_message(self, reason: str) -> str:
        """The banner's text: Postgres is unreachable because of `reason`, and how to get it back."""
        where = self.rt.store.where
        return (f"Postgres is unreachable ({where}): {reason}. Live task data is paused; charts from the "
                f"analytics snapshot still show the last synced state. Start the database again (restart "
                f"`workbench serve`, or bring WORKBENCH_POSTGRES_URL's server back): this page recovers "
                f"by itself within a few seconds. `workbench doctor` says what is wrong.")

    def _gate(self) -> None:
        """Refuse at once while Postgres is known to be down, except for one probe every PROBE_EVERY_S."""
        up, reason = self.postgres_ok()
        if up:
            return
        with self._guard:
            now = time.monotonic()
            if now - self._last_probe < PROBE_EVERY_S:
                raise StoreUnavailable(self.unavailable_message(reason))
            self._last_probe = now
        try:
            self.rt.store.ping(CONNECT_TIMEOUT_S)
        except _db_errors() as exc:
            self._mark_down(exc)
            raise StoreUnavailable(self.unavailable_message(self.down or reason)) from None
        self.down = None

    def _mark_down(self, exc: BaseException) -> None:
        self.down = " ".join(str(exc).split())[:300] or type(exc).__name__
        # Broken connections stay in the pool until used; drop them now so recovery needs one probe.
        with contextlib.suppress(Exception):
            self.rt.store.pool.check()

    # --- reads -----------------------------------------------------------------------------------

    def fetch(self, key: Any, fn: Callable[[], Any], *, max_age: float = 30.0, min_interval: float = 1.0,
              after: float | None = None, force: bool = False, postgres: bool = True, version: Any = None) -> Any:
        """`fn()`'s value for `key`, shared by every tab.

        Reused while it is younger than `max_age`, was started after `after` (a tab's own wake-up), was read
        from the same `version` (one entry per key however many versions pass), and either no wake-up
        arrived since it started or it is younger than `min_interval` (rate limit). `postgres=False`: `fn`
        reads no Postgres (the analytics snapshot, the doctor), so a down Postgres does not refuse it.
        """
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        with lock:
            entry = self._entries.get(key)
            now = time.monotonic()
            if entry is not None and not force and entry.version == version:
                age = now - entry.started
                if (age < max_age and (after is None or entry.started >= after)
                        and (entry.started >= self.last_wake or age < min_interval)):
                    return entry.value
            started = time.monotonic()
            self.queries += 1
            value = self._on_postgres(fn) if postgres else fn()
            with self._guard:
                self._entries[key] = _Entry(started, value, version)
                self._entries.move_to_end(key)
                self._evict()
            return value

    def _evict(self) -> None:
        """Drop the least recently used entries beyond MAX_ENTRIES, with their locks (under _guard)."""
        while len(self._entries) > MAX_ENTRIES:
            key, _ = self._entries.popitem(last=False)
            lock = self._locks.get(key)
            # A held lock stays: its reader is about to store a value. At worst a dropped, idle lock costs
            # one duplicate query for that key, never a wrong value.
            if lock is not None and not lock.locked():
                del self._locks[key]
        for key in [k for k, lock in self._locks.items() if k not in self._entries and not lock.locked()]:
            del self._locks[key]

    def __len__(self) -> int:
        return len(self._entries)

    def write(self, fn: Callable[[], T]) -> T:
        """`fn()`, a change made from a page (a submit, a cancel, an approval): refused at once with
        StoreUnavailable while Postgres is known to be down, as reads are; never cached."""
        return self._on_postgres(fn)

    def _on_postgres(self, fn: Callable[[], T]) -> T:
        self._gate()
        try:
            value = fn()
        except _db_errors() as exc:
            self._mark_down(exc)
            raise StoreUnavailable(self.unavailable_message(self.down or str(exc))) from None
        self.down = None
        return value

    def age(self, key: Any) -> float:
        """Seconds since the cached value for `key` was read (infinite when there is none)."""
        entry = self._entries.get(key)
        return float("inf") if entry is None else time.monotonic() - entry.started

    def peek(self, key: Any) -> Any:
        """The cached value for `key` (None if never fetched): lets a fetch extend its previous result."""
        entry = self._entries.get(key)
        return None if entry is None else entry.value

    def close(self) -> None:
        if self._all is not None:
            self._all.__exit__(None, None, None)
            self._all = self._queue = None


_SOURCE: Source | None = None
_SOURCE_LOCK = threading.Lock()


def get_source() -> Source:
    """The Source of the running server (or of the runtime a test installed)."""
    from workbench.services import runtime

    global _SOURCE
    rt = runtime.current()
    if rt is None:
        raise NotServed("The dashboards read the served workbench's store: run `workbench serve` and open "
                        "http://127.0.0.1:5006, or install a runtime with workbench.services.runtime.set_runtime().")
    with _SOURCE_LOCK:
        if _SOURCE is None or _SOURCE.rt is not rt:
            if _SOURCE is not None:
                _SOURCE.close()
            _SOURCE = Source(rt)
        return _SOURCE


def analytics_generation() -> tuple[Any, str]:
    """(generation, published_at) of the newest Parquet snapshot, (None, "") before the first sync."""
    from workbench.store import analytics

    info = analytics.snapshot_info()
    if not info:
        return None, ""
    return info.get("generation"), str(info.get("published_at") or "")
