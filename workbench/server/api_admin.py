"""Admin routes under /api/v1 (the `admin` scope, see auth.SCOPE_RULES): the API keys and the effective
configuration. Keys are created with `workbench keys create` only, so a secret is never sent over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from workbench.config import get_settings
from workbench.server.api_v1 import ERRORS
from workbench.store import api_keys, get_store

router = APIRouter(prefix="/api/v1", tags=["admin"])


@router.get("/keys", responses=ERRORS)
async def list_keys() -> list[dict[str, Any]]:
    """Every key: name, key_id (its public part), scope, created_at, revoked_at. No secret, no hash."""
    return await asyncio.to_thread(api_keys.listing, get_store())


@router.delete("/keys/{name}", status_code=204, responses=ERRORS)
async def revoke_key(name: str, request: Request) -> None:
    """Revoke a key now; its sessions end with it."""
    await asyncio.to_thread(api_keys.revoke, get_store(), name)
    request.app.state.keyring.refresh_soon()


@router.get("/config", responses=ERRORS)
async def config() -> dict[str, Any]:
    """The effective settings, every secret masked (as `workbench config` prints them)."""
    return get_settings().masked()
