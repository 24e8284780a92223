"""The served app while a component is down: fast 503s for the tasks API instead of a 30 s hang, and the
`degraded` list of /health (which component, why, what still works).

- `StoreGate` wraps the app: a request under /api/ is answered 503 (JSON, Retry-After) at once while the
  store does not answer. Whether it answers is a ping (PING_TIMEOUT_S) made at most every PROBE_EVERY_S
  seconds, so a stopped Postgres is noticed within about a second and its return just as fast. /v1 model
  calls, the pages and /health are not gated: they work without Postgres (events wait in the spill file).
- `store_errors` turns a driver or pool error that escapes a route anyway into the same 503.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from workbench.health import CheckResult
from workbench.server.guards import ASGIApp, Receive, Scope, Send, error_body, refuse

log = logging.getLogger(__name__)
PROBE_EVERY_S = 1.0
PING_TIMEOUT_S = 1.0
RETRY_AFTER_S = 5
GATED_PREFIXES = ("/api/",)
UNGATED_PREFIXES = ("/api/v1/gateway/",)  # the gateway's state lives in this process, not in the store


def unavailable_message(why: str) -> str:
    return (f"The store (Postgres) is not answering ({why}); tasks cannot be read or changed until it is back. "
            f"/health shows its state; retry in a few seconds.")


class StoreGate:
    """503 at once for /api/ while the store is down (see the module docstring)."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.ok, self.why = True, ""
        self.checked_at = float("-inf")
        self._lock = asyncio.Lock()

    def mark_down(self, why: str) -> None:
        self.ok, self.why, self.checked_at = False, why, time.monotonic()

    def _ping(self) -> tuple[bool, str]:
        from workbench.store import current_store

        store = current_store()
        if store is None:  # no store in this process: nothing to gate
            return True, ""
        try:
            store.ping(PING_TIMEOUT_S)
        except Exception as exc:  # OperationalError, PoolTimeout, a closed store
            return False, f"{type(exc).__name__}: {str(exc).strip()[:160]}"
        return True, ""

    async def available(self) -> bool:
        if time.monotonic() - self.checked_at >= PROBE_EVERY_S:
            async with self._lock:
                if time.monotonic() - self.checked_at >= PROBE_EVERY_S:
                    was = self.ok
                    self.ok, self.why = await asyncio.to_thread(self._ping)
                    self.checked_at = time.monotonic()
                    if was != self.ok:
                        log.warning("the store is %s", "back" if self.ok else f"unreachable: {self.why}")
        return self.ok

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        gated = path.startswith(GATED_PREFIXES) and not path.startswith(UNGATED_PREFIXES)
        if scope["type"] == "http" and gated and not await self.available():
            await refuse(scope, send, 503, unavailable_message(self.why), "StoreUnavailable",
                         [(b"retry-after", str(RETRY_AFTER_S).encode())])
            return
        await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    """The gate (outermost of the app's own layers, inside the guards) and the error handler."""
    app.add_middleware(StoreGate)

    @app.exception_handler(psycopg.OperationalError)
    async def store_errors(request: Request, exc: psycopg.OperationalError) -> JSONResponse:
        why = f"{type(exc).__name__}: {str(exc).strip()[:160]}"
        gate = _gate(request.app)
        if gate is not None:
            gate.mark_down(why)
        return JSONResponse(error_body(request.url.path, unavailable_message(why), "StoreUnavailable"),
                            status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


def _gate(app: FastAPI) -> StoreGate | None:
    stack = getattr(app, "middleware_stack", None)
    while stack is not None:
        if isinstance(stack, StoreGate):
            return stack
        stack = getattr(stack, "app", None)
    return None


def degraded(results: list[CheckResult]) -> list[dict[str, Any]]:
    """/health's `degraded` list: each failing component, why, how to fix it and what still works."""
    return [{"component": r.name, "detail": r.detail, "fix": r.fix, "impact": r.impact}
            for r in results if r.status == "fail"]
