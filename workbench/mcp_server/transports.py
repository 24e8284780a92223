"""How clients reach the MCP server: stdio (one client, the default) or streamable HTTP on a port.

HTTP binds to 127.0.0.1 unless told otherwise, and refuses any other address without WORKBENCH_API_KEY;
with a key set (or a named key stored, when the store is open), every request must carry one (X-API-Key or
Authorization: Bearer), checked as the workbench server checks its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from mcp.server.stdio import stdio_server
from pydantic import SecretStr

from workbench.errors import ConfigError
from workbench.mcp_server.server import McpGateway
from workbench.server.auth import ApiKeyGuard, KeyRing
from workbench.server.guards import is_loopback

MCP_PATH = "/mcp"


def serve_stdio(gateway: McpGateway, on_start: Callable[[], None] = lambda: None) -> None:
    """Serve one client over stdin/stdout until it closes them."""

    async def main() -> None:
        # The SDK points fd 1 at stderr while serving: start-up output cannot corrupt the protocol.
        async with stdio_server() as (read, write):
            await anyio.to_thread.run_sync(on_start)
            server = gateway.server()
            await server.run(read, write, server.create_initialization_options())

    anyio.run(main)


def check_bind(host: str, api_key: SecretStr | None) -> None:
    if not is_loopback(host) and api_key is None:
        raise ConfigError(f"Binding the MCP server to {host} exposes the workbench's tools beyond this machine: set "
                          f"WORKBENCH_API_KEY to a non-empty secret first (then every request must send it), "
                          f"or bind to 127.0.0.1.")


def http_app(gateway: McpGateway, host: str, api_key: SecretStr | None) -> Any:
    """The streamable-HTTP ASGI app at /mcp, behind the API keys: WORKBENCH_API_KEY and, when this process has
    the store open, the named keys of `workbench keys` (POST /mcp needs the submit scope)."""
    check_bind(host, api_key)
    app = gateway.server().streamable_http_app(streamable_http_path=MCP_PATH, host=host)
    return ApiKeyGuard(app, KeyRing(api_key.get_secret_value() if api_key is not None else None))


def serve_http(gateway: McpGateway, host: str, port: int, api_key: SecretStr | None) -> None:
    import uvicorn

    app = http_app(gateway, host, api_key)
    print(f"workbench MCP server on http://{host}:{port}{MCP_PATH}  (profile {gateway.profile.name})", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
