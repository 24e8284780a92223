"""REST + WebSocket API under /api/v1: tasks and their events, live.

The server process owns the store, the Dask client and the task runner (see `lifespan`); handlers reach
tasks only through the task API (`TaskApi`) and run its blocking calls in threads, so the event loop stays
free for WebSockets and Panel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field

from workbench import events
from workbench.server import auth
from workbench.store import api_keys, get_store
from workbench.tasks import states
from workbench.tasks.api import TaskApi
from workbench.tasks.records import NewTask, Task, TaskPage
from workbench.tasks.service import TaskService

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["tasks"])


class TaskPatch(BaseModel):
    priority: int = Field(..., ge=-1000, le=1000)


Event = events.api_model()


class Error(BaseModel):
    error: str
    type: str


# 400 (bad Host), 401 (API key), 403 (cross-site), 413 (body size) and 415 (not JSON) come from the guards.
ERRORS = {status: {"model": Error} for status in (400, 401, 403, 404, 409, 413, 415, 422)}


def _tasks(request_or_ws) -> TaskApi:
    return request_or_ws.app.state.tasks


@router.post("/tasks", status_code=201, response_model=Task, responses=ERRORS)
async def create_task(body: NewTask, request: Request) -> Task:
    task = await asyncio.to_thread(_tasks(request).create_and_submit, body.owned_by(auth.owner_of(request)))
    caller = auth.caller_of(request)
    if caller.authenticated:  # who submitted it: a submit key may cancel only its own tasks
        await asyncio.to_thread(api_keys.set_owner, get_store(), task.id, caller.name)
    return task


@router.get("/tasks", response_model=TaskPage, responses=ERRORS)
async def list_tasks(request: Request, status: states.Status | None = None, limit: int = Query(50, ge=1, le=500),
                     offset: int = Query(0, ge=0, le=10_000_000)) -> TaskPage:
    return await asyncio.to_thread(_tasks(request).list, status, limit, offset)


@router.get("/tasks/{task_id}", response_model=Task, responses=ERRORS)
async def get_task(task_id: str, request: Request) -> Task:
    return await asyncio.to_thread(_tasks(request).get, task_id)


@router.patch("/tasks/{task_id}", response_model=Task, responses=ERRORS)
async def update_task(task_id: str, body: TaskPatch, request: Request) -> Task:
    return await asyncio.to_thread(_tasks(request).set_priority, task_id, body.priority)


@router.post("/tasks/{task_id}/cancel", response_model=Task, responses=ERRORS)
async def cancel_task(task_id: str, request: Request) -> Task:
    caller = auth.caller_of(request)
    if not caller.may("admin"):
        await asyncio.to_thread(_tasks(request).get, task_id)  # 404 for an unknown task, as for everyone
        owner = await asyncio.to_thread(api_keys.owner, get_store(), task_id)
        if owner != caller.name:
            reason = f"key {caller.name!r} may cancel only its own tasks; task {task_id} is {owner or 'nobody'}'s"
            auth.record_denial(request.scope, 403, reason, caller, "admin")
            raise HTTPException(403, "This task was not submitted with your key: cancelling another key's task "
                                     "needs the admin scope.")
    return await asyncio.to_thread(_tasks(request).cancel, task_id)


@router.delete("/tasks/{task_id}", status_code=204, responses=ERRORS)
async def delete_task(task_id: str, request: Request) -> None:
    await asyncio.to_thread(_tasks(request).delete, task_id)


@router.get("/tasks/{task_id}/events", response_model=list[Event], responses=ERRORS)
async def task_events(task_id: str, request: Request, after: int = Query(0, ge=0, le=2**62),
                      limit: int = Query(10_000, ge=1, le=100_000)) -> list[dict]:
    tasks = _tasks(request)
    await asyncio.to_thread(tasks.get, task_id)  # 404 for an unknown task
    return await asyncio.to_thread(tasks.events, task_id, after, limit)


@router.websocket("/tasks/{task_id}/stream")
async def stream_task(websocket: WebSocket, task_id: str, after: int = 0) -> None:
    """Every event of the task in order (replayed from `after`, then live), then closes when it finishes."""
    tasks = _tasks(websocket)
    hub = websocket.app.state.hub
    await websocket.accept()
    try:
        await asyncio.to_thread(tasks.get, task_id)
    except Exception as exc:
        await websocket.send_json({"error": str(exc)})
        await websocket.close(code=4404)
        return
    last = after
    with hub.subscribe(task_id) as wakeups:
        try:
            while True:
                events = await asyncio.to_thread(tasks.events, task_id, last)
                for event in events:
                    await websocket.send_json({"type": "event", "event": event})
                    last = event["seq"]
                    if event["kind"] == "status" and event["payload"].get("to") in states.RESTING:
                        await websocket.close()
                        return
                with contextlib.suppress(asyncio.TimeoutError):
                    # Woken by NOTIFY; the timeout only guards against a missed notification.
                    await asyncio.wait_for(wakeups.get(), timeout=5)
        except WebSocketDisconnect:
            return


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    """The served app owns: the store (embedded Postgres or external) with its continuous DuckDB sync,
    the Dask client, the task runner (recovering unfinished tasks) behind the task API, and the LISTEN hub."""
    from workbench import cluster
    from workbench.services import runtime
    from workbench.services.live import EventHub
    from workbench.store import serve_store
    from workbench.tasks.runner import TaskRunner

    with contextlib.ExitStack() as stack:
        store = await asyncio.to_thread(stack.enter_context, serve_store())
        client = await asyncio.to_thread(cluster.get_client)
        stack.callback(cluster.close_client)
        runner = TaskRunner(client, TaskService(store), reconnect=cluster.reconnect)
        app.state.tasks = TaskApi(runner.service, runner)
        app.state.hub = EventHub(store.conninfo)
        await app.state.hub.start()
        runtime.set_runtime(runtime.Runtime(store, app.state.tasks, app.state.hub, client,
                                            asyncio.get_running_loop()))
        recovered = await asyncio.to_thread(runner.recover)
        if recovered:
            log.warning("recovered %d unfinished task(s)", len(recovered))
        try:
            yield
        finally:
            runtime.set_runtime(None)
            await app.state.hub.stop()
