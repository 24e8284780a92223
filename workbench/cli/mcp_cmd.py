"""`workbench mcp`: serve the workbench's tools to MCP clients (stdio or streamable HTTP), list them."""

from __future__ import annotations

import json
from pathlib import Path

import typer

mcp_app = typer.Typer(help="The workbench as an MCP server: its tools for MCP clients (editors, assistants).",
                      no_args_is_help=True)

PROFILE_HELP = "Client profile to run as (default WORKBENCH_MCP_PROFILE, 'default')."
ROOT_HELP = "A folder the file tools may reach (repeatable; built-in profile only; default the agents' workspace)."


def register(app: typer.Typer) -> None:
    app.add_typer(mcp_app, name="mcp")


def _gateway(profile: str | None, roots: list[Path] | None, *, store: bool = True):
    from workbench.mcp_server.profiles import configured_profile
    from workbench.mcp_server.server import McpGateway
    from workbench.mcp_server.tools import Services, catalog, no_tasks

    tools = catalog(Services() if store else Services(tasks=no_tasks))
    return McpGateway(configured_profile(profile, list(roots or []), tools), tools)


@mcp_app.command("serve")
def serve(
    http: bool = typer.Option(False, "--http", help="Serve streamable HTTP at /mcp instead of stdio."),
    host: str = typer.Option("127.0.0.1", "--host", help="HTTP bind address; beyond loopback needs WORKBENCH_API_KEY."),
    port: int = typer.Option(5007, "--port", min=1, max=65535, help="HTTP port."),
    profile: str = typer.Option(None, "--profile", help=PROFILE_HELP),
    root: list[Path] = typer.Option(None, "--root", help=ROOT_HELP),
    store: bool = typer.Option(True, "--store/--no-store",
                               help="Record each call in the execution store (--no-store: events are dropped, "
                                    "and the task tools answer that there is no task queue)."),
) -> None:
    """Serve the tools over MCP: stdio for one client (the default), or --http."""
    from workbench.config import get_settings
    from workbench.mcp_server import transports

    gateway = _gateway(profile, root, store=store)

    def open_store() -> None:
        if store:
            from workbench.store import open_store

            open_store()

    if not http:
        transports.serve_stdio(gateway, on_start=open_store)
        return
    api_key = get_settings().api_key
    transports.check_bind(host, api_key)
    open_store()
    transports.serve_http(gateway, host, port, api_key)


@mcp_app.command("tools")
def tools(
    as_json: bool = typer.Option(False, "--json", help="Print the tools as JSON (MCP tools/list shape)."),
    profile: str = typer.Option(None, "--profile", help=PROFILE_HELP),
    root: list[Path] = typer.Option(None, "--root", help=ROOT_HELP),
) -> None:
    """List the MCP tools: schema, read-only/destructive hints, and whether the profile allows each."""
    from rich.console import Console
    from rich.table import Table

    from workbench.mcp_server.profiles import denial
    from workbench.mcp_server.server import describe

    gateway = _gateway(profile, root)
    rows = [(describe(t).model_dump(mode="json", by_alias=True, exclude_none=True),
             denial(gateway.profile, name, t)) for name, t in gateway.tools.items()]
    if as_json:
        print(json.dumps({"profile": gateway.profile.name, "roots": [str(r) for r in gateway.profile.roots],
                          "tools": [{**listing, "allowed": why is None} for listing, why in rows]}, indent=2))
        return
    table = Table(title=f"MCP tools · profile {gateway.profile.name} · roots "
                        f"{', '.join(map(str, gateway.profile.roots)) or '(none)'}")
    for column in ("tool", "arguments", "read-only", "destructive", "allowed"):
        table.add_column(column)
    for listing, why in rows:
        hints = listing.get("annotations", {})
        args = ", ".join(listing["inputSchema"].get("properties", {}))
        table.add_row(listing["name"], args, "yes" if hints.get("readOnlyHint") else "no",
                      "yes" if hints.get("destructiveHint") else "no", "yes" if why is None else "no")
    Console().print(table)
