"""Every tool an agent may name in agents.yaml: the file tools, the browser and http tools and the tools of the
external MCP servers configured for this workbench (WORKBENCH_HOME/mcp_servers.yaml)."""

from __future__ import annotations

from workbench.errors import ConfigError
from workbench.tools import BUILTIN_TOOLS, Tool, mcp_client
from workbench.tools.browser import BROWSER_TOOLS
from workbench.tools.fetch import HTTP_TOOLS

NATIVE_TOOLS: dict[str, Tool] = {**BUILTIN_TOOLS, **BROWSER_TOOLS, **HTTP_TOOLS}


def resolve(names: list[str | Tool] | tuple[str | Tool, ...], where: str) -> list[Tool]:
    """The Tools of the names (an `mcp:SERVER[/TOOL]` name gives an external server's tools), or a
    ConfigError naming the unknown ones and the known."""
    unknown = [t for t in names if isinstance(t, str) and t not in NATIVE_TOOLS and not t.startswith(mcp_client.PREFIX)]
    if unknown:
        raise ConfigError(f"{where}: unknown tool(s) {unknown}; the tools are {', '.join(NATIVE_TOOLS)} and "
                          f"mcp:SERVER[/TOOL] for a server in {mcp_client.servers_file()} (pass Tool objects for "
                          f"your own).")
    tools: list[Tool] = []
    for name in names:
        if isinstance(name, Tool):
            tools.append(name)
        elif name.startswith(mcp_client.PREFIX):
            try:
                tools += mcp_client.resolve(name)
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None
        else:
            tools.append(NATIVE_TOOLS[name])
    return tools
