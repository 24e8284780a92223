"""`postgres` health check for `workbench doctor` and `/health`.

Uses the store already open in this process (the served app) when there is one: a round trip that must
answer within PING_TIMEOUT_S, so a stopped Postgres shows on /health at once instead of after the pool's
30 s. Otherwise it starts or attaches to the embedded server only for the check and releases it afterwards,
so a doctor run never leaves a Postgres behind (a server some other process holds keeps running).
"""

from __future__ import annotations

import threading

from workbench.health import Outcome, check

_lock = threading.Lock()  # two concurrent checks must not start and stop the same server under each other
PING_TIMEOUT_S = 2.0
IMPACT = ("the tasks API answers 503 and no task starts or finishes; /v1 model calls still answer, their events "
          "wait in the spill file and are written when Postgres is back")


@check("postgres", impact=IMPACT)
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
            try:
                store.ping(PING_TIMEOUT_S)
            except Exception as exc:  # OperationalError, PoolTimeout: down or not answering
                return "fail", (f"Postgres ({store.where}) does not answer within {PING_TIMEOUT_S:g} s: "
                                f"{type(exc).__name__}: {str(exc).strip()[:200]}"), \
                    "start it again (embedded: restart `workbench serve`; external: check the server)"
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
