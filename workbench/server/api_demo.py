"""The seeded demo over HTTP: `POST /api/v1/demo` starts it in the background on this server (409 while one
runs), `GET /api/v1/demo` shows its progress. The guards and the API key cover these routes as every other
(see app._guard); the dashboards' offer calls the same service (workbench.services.demo)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from workbench.server.api_v1 import ERRORS
from workbench.services import demo

router = APIRouter(prefix="/api/v1", tags=["demo"])


class DemoRequest(BaseModel):
    tasks: int = Field(demo.DEFAULT_TASKS, ge=1, le=50, description="How many tasks to run (cycles the prompts).")
    model: str | None = Field(None, description="Model for the tasks (default: the server's WORKBENCH_MODEL).")
    failures: bool = Field(True, description=f"Also run one task on {demo.FAILING_MODEL} (a real failing run).")
    max_tokens: int = Field(demo.DEFAULT_MAX_TOKENS, ge=8, le=2048, description="Answer length cap per task.")


class DemoStatus(BaseModel):
    state: str
    total: int
    done: int
    completed: int
    task_ids: list[str]
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    line: str


def _status(progress: demo.DemoProgress) -> DemoStatus:
    return DemoStatus(**progress.as_dict(), line=progress.line)


@router.post("/demo", status_code=202, response_model=DemoStatus, responses=ERRORS)
async def start_demo(request: Request, body: DemoRequest | None = None) -> DemoStatus:
    body = body or DemoRequest()
    items = await asyncio.to_thread(demo.plan, body.tasks, body.model, body.failures)
    run = demo.start(request.app.state.tasks, items, body.max_tokens)
    return _status(run.progress)


@router.get("/demo", response_model=DemoStatus, responses=ERRORS)
async def demo_progress() -> DemoStatus:
    return _status(demo.progress())
