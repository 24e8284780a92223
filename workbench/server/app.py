"""create_app(): FastAPI with /health, the API routers and the Panel pages (via bokeh-fastapi).

Lifespan owns the long-lived services: each module in ROUTERS exposes `router` (a FastAPI APIRouter)
and optionally `lifespan(app)` (an async context manager for the services it owns).
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dashboards import load_pages
from workbench import doctor, health
from workbench.config import Settings, get_settings
from workbench.errors import WorkbenchError, field_errors
from workbench.gateway import breaker
from workbench.server import (
    api_admin,
    api_demo,
    api_plans,
    api_v1,
    auth,
    degraded,
    deprecation,
    guards,
    openai_routes,
    schedules,
)

HEAVY_CHECK_TTL_S = 60.0
MAX_BODY_BYTES = 2_000_000  # above the 1 MB prompt limit, so the prompt check can say what is wrong
ROUTERS = (api_v1, api_plans, api_admin, api_demo, openai_routes, schedules)  # lifespans enter in this order


class HealthCache:
    """Light checks run per request; heavy ones (model answers) run in the background and are cached."""

    def __init__(self) -> None:
        self.heavy: list[health.CheckResult] = []
        self.heavy_at = 0.0
        self._task: asyncio.Task | None = None

    async def results(self) -> list[health.CheckResult]:
        light = await asyncio.to_thread(doctor.run_all, False)
        if time.monotonic() - self.heavy_at > HEAVY_CHECK_TTL_S and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._refresh())
        return light + self.heavy

    async def _refresh(self) -> None:
        heavy_names = [c.name for c in health.CHECKS.values() if c.heavy]
        self.heavy = await asyncio.to_thread(doctor.run_all, True, heavy_names)
        self.heavy_at = time.monotonic()


def validation_message(errors) -> str:
    """FastAPI's validation errors as one readable line: where, what is wrong."""
    return "Invalid request — " + field_errors(errors) + ". See /docs for the expected fields."


def create_app(host: str | None = None) -> FastAPI:
    """The served app; `host` is the address it is bound to (allowed as a Host header besides loopback)."""
    settings = get_settings()
    cache = HealthCache()

    components = ROUTERS

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from contextlib import AsyncExitStack

        async with AsyncExitStack() as stack:
            for module in components:
                if hasattr(module, "lifespan"):
                    await stack.enter_async_context(module.lifespan(app))
            await cache.results()  # start the heavy checks (loads the default model) right away
            yield

    app = FastAPI(title="workbench", version="0.1.0", lifespan=lifespan)

    _guard(app, settings, host)
    install_error_handlers(app)

    @app.get("/health")
    async def get_health(request: Request, quick: bool = False) -> JSONResponse:
        if quick:  # liveness only: the CLI uses it to find a running server for this WORKBENCH_HOME
            return JSONResponse({"status": "ok", "home": str(settings.home)})
        results = await cache.results()
        failed = [r.name for r in results if not r.ok]
        if not auth.caller_of(request).may("read"):  # keys are required and none came: no details (paths, versions)
            return JSONResponse({"status": "ok" if not failed else "degraded", "failed": failed,
                                 "details": "send an API key (read scope) for the checks' details"})
        body: dict[str, Any] = {
            "status": "ok" if not failed else "degraded",
            "failed": failed,
            "model": settings.model,
            "degraded": degraded.degraded(results),  # each failing component: detail, fix, what still works
            "checks": [r.as_dict() for r in results],
            "breakers": breaker.snapshot(),  # per deployment: closed / open / half_open, rolling success rate, latency
        }
        return JSONResponse(body)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/chat")

    app.include_router(auth.router)
    for module in components:
        app.include_router(module.router)
    _mount_pages(app)
    return app


def install_error_handlers(app: FastAPI) -> None:
    """One error shape for every 4xx the API sends (documented as `Error`), FastAPI's own ones included.
    (/v1 speaks OpenAI's shape, {"error": {"message", "type"}}, which its SDKs parse.)"""

    @app.exception_handler(WorkbenchError)
    async def workbench_error(request: Request, exc: WorkbenchError):
        return JSONResponse({"error": str(exc), "type": type(exc).__name__}, status_code=exc.http_status)

    def error_response(request: Request, message: str, kind: str, status: int, headers=None) -> JSONResponse:
        return JSONResponse(guards.error_body(request.url.path, message, kind), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        return error_response(request, validation_message(exc.errors()), "InvalidRequest", 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return error_response(request, str(exc.detail), "HTTPError", exc.status_code, getattr(exc, "headers", None))


def _guard(app: FastAPI, settings: Settings, host: str | None) -> None:
    """Every request and WebSocket passes, outermost first: the Host allowlist, the Origin check, the API keys
    and their scopes (when any key exists), the body limit (see guards.py and auth.py)."""
    env_key = settings.api_key.get_secret_value() if settings.api_key is not None else None
    app.state.keyring = auth.KeyRing(env_key)  # the login form checks the same keys
    degraded.install(app)  # innermost: only requests the guards let through reach the store gate
    app.add_middleware(guards.BodyLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(auth.ApiKeyGuard, keyring=app.state.keyring)
    app.add_middleware(guards.OriginGuard, extra_origins=guards.split_list(settings.allowed_origins))
    app.add_middleware(guards.HostGuard, bound_host=host or settings.host,
                       extra=guards.split_list(settings.allowed_hosts))
    app.add_middleware(deprecation.DeprecationHeaders)  # outermost: even a refusal says the route is going


def _mount_pages(app: FastAPI) -> None:
    from panel.io.fastapi import add_application

    for route, (title, factory) in load_pages().items():
        add_application(route, app=app, title=f"workbench · {title}")(factory)
