"""The execution store: Postgres is the system of record for tasks and events.

    from workbench.store import open_store, close_store
    store = open_store()                     # embedded Postgres under WORKBENCH_HOME/postgres, or
                                             # WORKBENCH_POSTGRES_URL; migrations applied; writer started;
                                             # registered as the telemetry sink of this process, so
    telemetry.emit("tool_call", payload={...})   # is queued for its writer
    store.flush()                            # everything emitted so far is committed
    with store.connection() as conn: ...     # pooled psycopg 3 connection (for tasks, queries)
    close_store()                            # flush, close the pool, stop the server if we were its last user

One Store per process is the normal case (`get_store()`); `Store.open()` builds independent ones (tests,
tools). Closing stops only what this process started or attached to, and only when no other live process
still holds the embedded server. `open_store()` also installs a SIGTERM handler that closes the store first,
because an owner killed without one leaves Postgres running.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import re
import select
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from workbench import telemetry
from workbench.errors import StoreError
from workbench.events import Event
from workbench.store import migrations
from workbench.store import postgres as embedded
from workbench.store.writer import EventWriter

log = logging.getLogger(__name__)
MIN_SERVER_VERSION = 130000  # xid8, pg_current_xact_id(), built-in gen_random_uuid()


def mask_url(url: str) -> str:
    """A connection URL safe to print: the password is replaced by ****."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1****@", url)


class Store:
    """A connection pool and an event writer on one Postgres database (embedded or external)."""

    def __init__(self, conninfo: str, *, home: Path, pgdata: Path | None, started_here: bool,
                 pool_size: int = 8, writer: bool = True):
        from psycopg_pool import ConnectionPool

        self.conninfo = conninfo
        self.home = home
        self.pgdata = pgdata  # None for an external server
        self.started_here = started_here
        self.pool = ConnectionPool(conninfo, min_size=1, max_size=pool_size, open=True, name="workbench",
                                   kwargs={"application_name": "workbench"}, timeout=30,
                                   # a restarted Postgres leaves dead connections in every worker's pool:
                                   # checked at checkout and replaced instead of failing a task
                                   check=check_idle_connection)
        self.writer = EventWriter(conninfo, home=home) if writer else None
        self.background_sync = None  # serve_store's DuckDB sync (its last error feeds the duckdb health check)
        self.closed = False

    # --- opening ---------------------------------------------------------------------------------

    @classmethod
    def open(cls, home: Path | None = None, url: str | None = None, *, migrate: bool = True,
             pool_size: int = 8, writer: bool = True) -> Store:
        """Start/attach the embedded server (or use `url`), check it, apply migrations, start the writer.

        Defaults come from the settings: WORKBENCH_HOME and WORKBENCH_POSTGRES_URL.
        """
        from workbench.config import get_settings

        settings = get_settings()
        home = Path(home) if home is not None else settings.home
        if url is None and settings.postgres_url is not None:  # url="" forces the embedded server
            url = settings.postgres_url.get_secret_value()
        pgdata = None
        started_here = False
        if url:
            conninfo = url
        else:
            pgdata = (home / "postgres").expanduser().resolve()
            server = embedded.acquire(pgdata)
            conninfo, started_here = server.uri, server.started_here
        try:
            _check(conninfo, migrate)
            return cls(conninfo, home=home, pgdata=pgdata, started_here=started_here,
                       pool_size=pool_size, writer=writer)
        except BaseException:
            if pgdata is not None:
                embedded.release(pgdata)
            raise

    # --- using -----------------------------------------------------------------------------------

    @property
    def where(self) -> str:
        """Human description of the server (no secrets)."""
        if self.pgdata is None:
            return f"external {mask_url(self.conninfo)}"
        return f"embedded {self.pgdata}"

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A pooled connection; the block is one transaction (committed on success, rolled back on error)."""
        self._check_open()
        with self.pool.connection() as conn:
            yield conn

    def ping(self, timeout: float) -> None:
        """One round trip on a pooled connection the pool must give within `timeout` seconds; raises the
        driver's or the pool's error (OperationalError, PoolTimeout) when Postgres does not answer."""
        self._check_open()
        with self.pool.connection(timeout=timeout) as conn:
            conn.execute("SELECT 1").fetchone()

    def connect(self, autocommit: bool = True, **kwargs: Any) -> psycopg.Connection:
        """A dedicated connection outside the pool (LISTEN, long-lived sessions); the caller closes it."""
        self._check_open()
        return psycopg.connect(self.conninfo, autocommit=autocommit, **kwargs)

    def record(self, event: Event) -> None:
        """The telemetry sink: queue an event; once the store is closed, save it to the spill file instead
        (the next store opened on this home writes it). EventNotKept if neither is possible."""
        if self.writer is None:
            return
        if self.closed:
            self.writer.keep(event)
        else:
            self.writer.write(event)

    def flush(self, timeout: float = 30.0) -> None:
        """Block until every event emitted so far in this process is committed (StoreError on timeout)."""
        if self.writer is not None:
            self.writer.flush(timeout)

    def commit_with_events(self, fn: Callable[[psycopg.Connection], Any], timeout: float = 30.0) -> Any:
        """Run `fn(conn)` in the transaction that commits every event this process emitted before the call
        (a record that must never outlive the events leading to it); fn's result. Without a writer, a
        pooled connection's own transaction."""
        if self.writer is None:
            with self.connection() as conn:
                return fn(conn)
        return self.writer.transact(fn).result(timeout)

    def migrate(self) -> list[str]:
        with self.connection() as conn:
            return migrations.migrate(conn)

    def migration_status(self) -> dict[str, list[str]]:
        with self.connection() as conn:
            return migrations.status(conn)

    def instance_id(self) -> str:
        with self.connection() as conn:
            return conn.execute("SELECT value FROM _workbench_meta WHERE key = 'instance_id'").fetchone()[0]

    def counts(self) -> dict[str, int]:
        with self.connection() as conn:
            tasks = conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
            events, max_seq = conn.execute("SELECT count(*), coalesce(max(seq), 0) FROM events").fetchone()
        return {"tasks": tasks, "events": events, "max_seq": max_seq}

    def events(self, task_id: str | None = None, *, trace_id: str | None = None, after_seq: int = 0,
               kinds: list[str] | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Events in seq order (payload parsed), optionally of one task/trace, after a seq, of some kinds."""
        where, params = ["seq > %s"], [after_seq]
        if task_id is not None:
            where.append("task_id = %s")
            params.append(str(task_id))
        if trace_id is not None:
            where.append("trace_id = %s")
            params.append(trace_id)
        if kinds:
            where.append("kind = ANY(%s)")
            params.append(list(kinds))
        sql = f"SELECT * FROM events WHERE {' AND '.join(where)} ORDER BY seq LIMIT %s"
        with self.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            try:
                return cur.execute(sql, [*params, limit]).fetchall()
            except psycopg.errors.InvalidTextRepresentation:
                raise StoreError(f"Task id {task_id!r} is not a UUID.") from None

    def listen(self, timeout: float | None = None, stop_after: int | None = None) -> Iterator[dict[str, Any]]:
        """Yield {"task_id", "max_seq", "n"} for every committed batch of events (LISTEN/NOTIFY).

        Read the new rows with `events(task_id, after_seq=last_seen)`. Ends after `timeout` seconds
        without a notification or after `stop_after` notifications. (An async server can LISTEN on
        `self.conninfo` with psycopg.AsyncConnection the same way.)
        """
        conn = self.connect(autocommit=True)
        try:
            conn.execute(f"LISTEN {migrations.EVENTS_CHANNEL}")
            for note in conn.notifies(timeout=timeout, stop_after=stop_after):
                yield json.loads(note.payload)
        finally:
            conn.close()

    def server_info(self) -> dict[str, Any]:
        with self.connection() as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        info: dict[str, Any] = {"mode": "external" if self.pgdata is None else "embedded", "where": self.where,
                                "version": version, "backend_pid": backend}
        if self.pgdata is not None:
            info.update(pgdata=str(self.pgdata), postmaster_pid=embedded.postmaster_pid(self.pgdata),
                        started_by_this_process=self.started_here)
        return info

    # --- closing ---------------------------------------------------------------------------------

    def close(self, timeout: float = 30.0) -> None:
        """Flush the writer, close the pool, release the embedded server (stopped if we were the last)."""
        if self.closed:
            return
        self.closed = True
        error: StoreError | None = None
        try:
            if self.writer is not None:
                self.writer.close(timeout)
        except StoreError as exc:
            error = exc
        finally:
            self.pool.close()
            if self.pgdata is not None:
                embedded.release(self.pgdata)
        if error is not None:
            raise error

    def _check_open(self) -> None:
        if self.closed:
            raise StoreError("This store is closed: call workbench.store.open_store() again.")

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Store {self.where}{' closed' if self.closed else ''}>"


def check_idle_connection(conn: psycopg.Connection) -> None:
    """The pool's checkout check without a round trip in the usual case: an idle connection has nothing to
    read. A server that ended the session (restart, pg_terminate_backend, crash) leaves its notice or the
    end of the stream on the socket, so a readable socket gets the full check (a query), which raises
    for a dead connection and the pool replaces it."""
    from psycopg_pool import ConnectionPool

    try:
        readable = bool(select.select([conn.fileno()], [], [], 0)[0])
    except (OSError, ValueError, psycopg.Error):
        readable = True
    if readable:
        ConnectionPool.check_connection(conn)


def _check(conninfo: str, migrate: bool) -> None:
    """Connect once with a clear error, check the server version, apply or check migrations."""
    try:
        conn = psycopg.connect(conninfo, connect_timeout=10, application_name="workbench")
    except psycopg.Error as exc:
        raise StoreError(
            f"Cannot connect to Postgres at {mask_url(conninfo)}: {' '.join(str(exc).split())} Check that the server "
            f"is running and WORKBENCH_POSTGRES_URL is right, or unset it to use the embedded server."
        ) from None
    with conn:
        if conn.info.server_version < MIN_SERVER_VERSION:
            raise StoreError(f"Postgres {conn.info.server_version // 10000} is too old: workbench needs 13 or "
                             f"newer. Upgrade the server, or unset WORKBENCH_POSTGRES_URL for the embedded one.")
        if migrate:
            ran = migrations.migrate(conn)
            if ran:
                log.info("applied migrations: %s", ", ".join(ran))
        state = migrations.status(conn)
        if state["unknown"]:
            raise StoreError(f"The database has migrations this workbench does not know ({', '.join(state['unknown'])}): "
                             f"it was written by a newer version. Upgrade workbench.")


# --- the process-wide store ------------------------------------------------------------------------

_STORE: Store | None = None
_STORE_PID: int | None = None
_LOCK = threading.RLock()
_PREVIOUS_SIGTERM: Any = None


def current_store() -> Store | None:
    """The store open in this process, or None (a forked child does not inherit its parent's store)."""
    if _STORE is None or _STORE_PID != os.getpid() or _STORE.closed:
        return None
    return _STORE


def open_store(home: Path | None = None, url: str | None = None, *, migrate: bool = True) -> Store:
    """Open the process-wide store (idempotent: returns the open one)."""
    global _STORE, _STORE_PID
    with _LOCK:
        store = current_store()
        if store is not None:
            if home is not None and Path(home) != store.home:
                raise StoreError(f"A store for {store.home} is already open in this process; call "
                                 f"workbench.store.close_store() before opening one for {home}.")
            return store
        _STORE = Store.open(home, url, migrate=migrate)
        _STORE_PID = os.getpid()
        telemetry.add_sink(_STORE.record)
        atexit.unregister(_close_at_exit)  # once, however often a store is reopened
        atexit.register(_close_at_exit)
        _install_sigterm()
        return _STORE


def get_store() -> Store:
    """The process-wide store, opened on first use from the settings."""
    return current_store() or open_store()


def close_store(timeout: float = 30.0) -> None:
    """Close the process-wide store (flush events, release the server). No-op when none is open."""
    global _STORE
    with _LOCK:
        store = current_store()
        _STORE = None
        if store is not None:
            telemetry.remove_sink(store.record)
            store.close(timeout)


def _close_at_exit() -> None:
    try:
        close_store(timeout=10)
    except StoreError as exc:  # at exit there is nobody left to raise to: say where the events went
        log.error("%s", exc)


def _install_sigterm() -> None:
    """Close the store on SIGTERM, then let the previous handler (or the default: exit) run."""
    global _PREVIOUS_SIGTERM
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers (e.g. a Dask worker thread): atexit still closes
    previous = signal.getsignal(signal.SIGTERM)
    if previous is _on_sigterm:
        return
    _PREVIOUS_SIGTERM = previous
    signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: Any) -> None:
    try:
        close_store(timeout=5)
    except Exception as exc:  # a signal handler must not fail before the process exits
        log.error("closing the store on SIGTERM: %s", exc)
    previous = _PREVIOUS_SIGTERM
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


@contextlib.contextmanager
def serve_store(sync_interval_s: float | None = 2.0) -> Iterator[Store]:
    """For a long-running server: the process-wide store plus the continuous DuckDB sync, both stopped on exit."""
    store = open_store()
    background = None
    if sync_interval_s:
        from workbench.store.sync import start_background_sync

        background = start_background_sync(store, interval_s=sync_interval_s)
        store.background_sync = background
    try:
        yield store
    finally:
        if background is not None:
            try:
                store.flush()  # so the final sync round sees every event emitted before shutdown
            except StoreError as exc:
                log.error("%s", exc)
            background.stop()
        close_store()


__all__ = [
    "Store",
    "StoreError",
    "close_store",
    "current_store",
    "get_store",
    "mask_url",
    "open_store",
    "serve_store",
]
