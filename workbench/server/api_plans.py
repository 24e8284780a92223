"""Plan approval under /api/v1: a task submitted with approve_plan stops in `awaiting_approval` after
planning; POST its approval (optionally with an edited plan) to run it. GET /tasks/{id} shows the plan.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from workbench.server.api_v1 import ERRORS
from workbench.tasks.records import Task

router = APIRouter(prefix="/api/v1", tags=["tasks"])


class Approval(BaseModel):
    plan: dict[str, Any] | None = Field(
        None, description="An edited plan ({reasoning, subtasks: [{id, specialist, instructions, depends_on}]}); "
                          "omit to approve the proposed plan as it is.")
    by: str = Field("api", max_length=100, description="Who approves (recorded with the plan).")


@router.post("/tasks/{task_id}/approve", response_model=Task, responses=ERRORS)
async def approve(task_id: str, body: Approval, request: Request) -> Task:
    return await asyncio.to_thread(request.app.state.tasks.approve, task_id, body.plan, by=body.by)
