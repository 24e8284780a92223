"""Every tool an agent may name in agents.yaml: the file tools, the browser tools and the tools of the
external MCP servers configured for this workbench (WORKBENCH_HOME/mcp_servers.yaml)."""

from __future__ import annotations

from workbench.errors import ConfigError
from workbench.tools import BUILTIN_TOOLS, Tool
from workbench.tools.browser import BROWSER_TOOLS

NATIVE_TOOLS: dict[str, Tool] = {**BUILTIN_TOOLS, **BROWSER_TOOLS}


def resolve(names: list[str | Tool] | tuple[str | Tool, ...], where: str) -> list[Tool]:
    """The Tool of each name (or the Tool given), or a ConfigError naming the unknown ones and the known."""
    unknown = [t for t in names if isinstance(t, str) and t not in NATIVE_TOOLS]
    if unknown:
        raise ConfigError(f"{where}: unknown tool(s) {unknown}; the tools are {', '.join(NATIVE_TOOLS)} "
                          f"(pass Tool objects for your own).")
    return [NATIVE_TOOLS[t] if isinstance(t, str) else t for t in names]
