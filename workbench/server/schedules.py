"""The pipeline scheduler of the served app: started with it (after api_v1's lifespan opened the store and
the Dask client), stopped with it. WORKBENCH_PIPELINES_SCHEDULER=0 turns it off (e.g. for a second server
that should only serve). The policy for missed runs is in workbench.pipelines.scheduler."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter, FastAPI

from workbench.config import get_settings

log = logging.getLogger(__name__)
router = APIRouter()  # no routes: ROUTERS modules bring a router, this one only a lifespan


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    from workbench import cluster
    from workbench.pipelines.runner import PipelineRunner
    from workbench.pipelines.scheduler import Scheduler
    from workbench.store import get_store

    settings = get_settings()
    if not settings.pipelines_scheduler:
        yield
        return
    store = get_store()
    client = await asyncio.to_thread(cluster.get_client)
    scheduler = Scheduler(store, PipelineRunner(store, client, settings.home))
    scheduler.start()
    app.state.pipeline_scheduler = scheduler
    try:
        yield
    finally:
        await asyncio.to_thread(scheduler.stop)
