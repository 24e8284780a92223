"""`postgres` health check for `workbench doctor` and `/health`.

Uses the store already open in this process (the served app) when there is one. Otherwise it starts or
attaches to the embedded server only for the check and releases it afterwards, so a doctor run never
leaves a Postgres behind (a server some other process holds keeps running).
"""

from __future__ import annotations

import threading

from workbench.health import Outcome, check

_lock = threading.Lock()  # two concurrent checks must not start and stop the same server under each other


@check("postgres", heavy=True)
def _postgres() -> Outcome:
    from workbench.errors import StoreError
    from workbench.store import Store, current_store

    with _lock:
        store = current_store()
        temporary = store is None
        try:
            if temporary:
                store = Store.open(migrate=False, pool_size=1, writer=False)
        except StoreError as exc:
            return "fail", str(exc), "check WORKBENCH_HOME is writable, or WORKBENCH_POSTGRES_URL is reachable"
        try:
            with store.connection() as conn:
                conn.execute("SELECT 1").fetchone()
            state = store.migration_status()
            info = store.server_info()
        finally:
            if temporary:
                store.close()
    how = "started for this check" if temporary and store.started_here else "running"
    detail = f"Postgres {info['version']} {store.where} ({how}); {len(state['applied'])} migrations applied"
    if state["unknown"]:
        return "fail", f"{detail}; unknown migrations {state['unknown']}", "upgrade workbench (the database is newer)"
    if state["pending"]:  # not a fault: opening the store applies them (a fresh clone has all of them pending)
        detail += f", {len(state['pending'])} pending (applied when the store opens, or `workbench db migrate`)"
    return "ok", detail, ""
