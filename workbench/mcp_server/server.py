"""The MCP server: the workbench's tools over the official SDK, each call checked against the client's profile.

    gateway = McpGateway(profile, catalog())
    server = gateway.server()                  # an SDK `Server`: mcp.Client(server) in tests, stdio or HTTP
    gateway.call("read_file", {"path": "a"})   # what tools/call runs: a CallToolResult, never an exception

Every call, allowed or not, is one `tool_call` event with payload {"via": "mcp", "client", "tool", "denied"};
the arguments and the result stay out of it (file contents, SQL literals and code are the client's data).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server

from workbench import telemetry
from workbench.errors import ToolError, ToolRefused, WorkbenchError
from workbench.mcp_server.profiles import Profile, denial
from workbench.tools import Tool

SERVER_NAME = "workbench"
INSTRUCTIONS = ("Tools of the local workbench: files in the configured roots (paths relative to the first root), "
                "the execution log as read-only SQL, code in an isolated sandbox, and its task queue.")


def describe(tool: Tool) -> types.Tool:
    """The MCP listing of one Tool: its name, description, argument schema and read-only/destructive hints."""
    return types.Tool(
        name=tool.name,
        description=tool.description,
        input_schema=tool.parameters,
        annotations=types.ToolAnnotations(read_only_hint=tool.read_only, destructive_hint=tool.destructive,
                                          open_world_hint=False),
    )


class McpGateway:
    """One client's view of the tools: its profile decides what it may list and call."""

    def __init__(self, profile: Profile, tools: Mapping[str, Tool]):
        self.profile = profile
        self.tools = dict(tools)

    def listed(self) -> list[types.Tool]:
        """The tools this profile may call (a refused tool is not offered, and is refused if called anyway)."""
        return [describe(t) for name, t in self.tools.items() if denial(self.profile, name, t) is None]

    def call(self, name: str, arguments: Any) -> types.CallToolResult:
        start = time.perf_counter()
        tool = self.tools.get(name)
        denied = denial(self.profile, name, tool)
        error: str | None = None
        value: Any = None
        if denied is None and tool is not None:
            try:
                value = tool.call(arguments if arguments is not None else {}, workspace=self.profile.roots)
            except ToolRefused as exc:  # a path outside the roots, a secret, a link: a denial like the above
                denied = str(exc)
            except (ToolError, WorkbenchError) as exc:
                error = str(exc)
        self._record(name, denied, error or denied, (time.perf_counter() - start) * 1000)
        if denied or error:
            return types.CallToolResult(content=[types.TextContent(type="text", text=denied or error or "")],
                                        is_error=True)
        return _result(value)

    def _record(self, name: str, denied: str | None, error: str | None, duration_ms: float) -> None:
        telemetry.emit("tool_call", duration_ms=duration_ms, error=error,
                       payload={"via": "mcp", "client": self.profile.name, "tool": name[:100],
                                "denied": denied, "refused": denied is not None})

    def server(self) -> Server[Any]:
        """An SDK server whose tools/list and tools/call are this gateway's."""

        async def list_tools(_ctx: Any, _params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
            return types.ListToolsResult(tools=self.listed())

        async def call_tool(_ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
            # Tools block (files, DuckDB, the sandbox, Postgres): a worker thread keeps the loop answering.
            return await anyio.to_thread.run_sync(self.call, params.name, params.arguments)

        def input_schema(name: str) -> dict[str, Any] | None:
            tool = self.tools.get(name)
            return tool.parameters if tool is not None else None

        return Server(SERVER_NAME, version=_version(), instructions=INSTRUCTIONS, get_tool_input_schema=input_schema,
                      on_list_tools=list_tools, on_call_tool=call_tool)


def _result(value: Any) -> types.CallToolResult:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    structured = value if isinstance(value, dict) else {"result": value}
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)],
                                structured_content=json.loads(json.dumps(structured, default=str)))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("workbench")
    except PackageNotFoundError:
        return "0"
