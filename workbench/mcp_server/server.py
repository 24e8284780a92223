"""The MCP server: the workbench's tools over the official SDK, each call checked against the client's profile.

    gateway = McpGateway(profile, catalog())
    server = gateway.server()                  # an SDK `Server`: mcp.Client(server) in tests, stdio or HTTP
    gateway.call("read_file", {"path": "a"})   # what tools/call runs: a CallToolResult, never an exception

Resources and prompts (workbench.mcp_server.context) are answered under the same profile. Every call, allowed or not, is one `tool_call` event with payload {"via": "mcp", "client", "tool", "denied"};
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
from workbench.mcp_server.context import ContextProviders, guarded
from workbench.mcp_server.profiles import Profile, denial
from workbench.tools import Tool

SERVER_NAME = "workbench"
INSTRUCTIONS = ("Tools of the local workbench: files in the configured roots (paths relative to the first root), "
                "the execution log as read-only SQL, code in an isolated sandbox, its task queue and a headless "
                "browser for local pages; resources and prompts give the repository, docs, environment and "
                "the user's preferences.")


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

    def __init__(self, profile: Profile, tools: Mapping[str, Tool], context: ContextProviders | None = None):
        self.profile = profile
        self.tools = dict(tools)
        self.context = context or ContextProviders()

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

        async def list_resources(_ctx: Any, _params: Any) -> types.ListResourcesResult:
            return types.ListResourcesResult(resources=self.context.resources(self.profile))

        async def list_templates(_ctx: Any, _params: Any) -> types.ListResourceTemplatesResult:
            return types.ListResourceTemplatesResult(resource_templates=self.context.templates(self.profile))

        async def read_resource(_ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
            text, mime = await anyio.to_thread.run_sync(
                guarded, self.profile, "resource", params.uri, lambda: self.context.read(self.profile, params.uri))
            return types.ReadResourceResult(contents=[types.TextResourceContents(uri=params.uri, mime_type=mime,
                                                                                 text=text)])

        async def list_prompts(_ctx: Any, _params: Any) -> types.ListPromptsResult:
            return types.ListPromptsResult(prompts=self.context.prompts(self.profile))

        async def get_prompt(_ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
            description, text = await anyio.to_thread.run_sync(
                guarded, self.profile, "prompt", params.name,
                lambda: self.context.prompt(self.profile, params.name, dict(params.arguments or {})))
            return types.GetPromptResult(description=description, messages=[
                types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))])

        def input_schema(name: str) -> dict[str, Any] | None:
            tool = self.tools.get(name)
            return tool.parameters if tool is not None else None

        return Server(SERVER_NAME, version=_version(), instructions=INSTRUCTIONS, get_tool_input_schema=input_schema,
                      on_list_tools=list_tools, on_call_tool=call_tool, on_list_resources=list_resources,
                      on_list_resource_templates=list_templates, on_read_resource=read_resource,
                      on_list_prompts=list_prompts, on_get_prompt=get_prompt)


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
