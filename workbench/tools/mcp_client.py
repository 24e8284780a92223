"""Agents as MCP clients: the tools of external MCP servers, as `Tool`s a specialist may be given.

The servers are configured in WORKBENCH_MCP_SERVERS (default WORKBENCH_HOME/mcp_servers.yaml):

    servers:
      notes:                          # a local program, spoken to over stdio
        command: /usr/bin/python3
        args: [/opt/notes/server.py]
        env: {NOTES_DIR: /srv/notes}  # the child gets these and the SDK's safe defaults, not our environment
        timeout_s: 20                 # one call (start, handshake, call) ends within this, answered or not
      search:                         # a server over streamable HTTP
        url: http://127.0.0.1:9000/mcp
        tools: [find]                 # offer only these of its tools ("*": all, the default)
        permissions: [network]        # what an agent must hold to call them (default [network])

A specialist names them in agents.yaml: `tools: ["mcp:notes"]` (every tool the server lists) or
`"mcp:notes/add"`; its tools are then called `notes__add`. They pass through the same Toolset as the
built-in tools: the agent must hold their permissions, and every call, refusal and failure is a `tool_call`
event. Each call opens its own session (a server that died earlier is simply started again) on a thread of
its own, so a server that hangs or dies mid-call gives a ToolError within its timeout, never a hang.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from workbench.errors import ConfigError, ToolError
from workbench.tools import PERMISSIONS, Tool

PREFIX = "mcp:"
SEPARATOR = "__"
MAX_LIST_TIMEOUT_S = 60
_CLEANUP_GRACE_S = 5  # beyond the timeout, for the SDK to stop the server process


class ExternalServer(BaseModel):
    """One external MCP server: a command (stdio) or a URL (streamable HTTP)."""

    model_config = ConfigDict(extra="forbid")

    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: Path | None = None
    url: str | None = None
    timeout_s: float = Field(20.0, gt=0, le=600)
    tools: list[str] = Field(default_factory=lambda: ["*"])
    permissions: list[str] = Field(default_factory=lambda: ["network"])

    @model_validator(mode="after")
    def _one_transport(self) -> ExternalServer:
        if (self.command is None) == (self.url is None):
            raise ValueError("give exactly one of `command` (a program spoken to over stdio) or `url` (HTTP)")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must be http(s)://..., got {self.url[:100]!r}")
        unknown = set(self.permissions) - set(PERMISSIONS)
        if unknown:
            raise ValueError(f"unknown permission(s) {sorted(unknown)}; use some of {', '.join(PERMISSIONS)}")
        return self

    def target(self) -> Any:
        import mcp

        if self.url is not None:
            return self.url
        return mcp.StdioServerParameters(command=self.command, args=self.args, env=self.env or None,
                                         cwd=str(self.cwd) if self.cwd else None)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    servers: dict[str, ExternalServer] = Field(default_factory=dict)


def servers_file() -> Path:
    from workbench.config import get_settings

    settings = get_settings()
    return settings.mcp_servers or settings.home / "mcp_servers.yaml"


def load_servers(path: Path | None = None) -> dict[str, ExternalServer]:
    """The configured servers (none when the file does not exist); ConfigError saying what is wrong."""
    path = path or servers_file()
    if not path.exists():
        return {}
    try:
        parsed = _File.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except (yaml.YAMLError, ValidationError) as exc:
        first = " ".join(str(exc).splitlines()[:3])
        raise ConfigError(f"The MCP servers file {path} is not valid: {first}. It holds `servers: {{NAME: "
                          f"{{command: ..., args: [...]}} or {{url: http://...}}}}`.") from None
    bad = [n for n in parsed.servers if not n.replace("_", "").replace("-", "").isalnum() or SEPARATOR in n]
    if bad:
        raise ConfigError(f"MCP server name(s) {bad} in {path}: use letters, digits, - and single _ only "
                          f"(the tools are called NAME{SEPARATOR}TOOL).")
    return parsed.servers


# --- one session per call, on a thread of its own ---------------------------------------------------


def _in_session(name: str, server: ExternalServer, action: Callable[[Any], Awaitable[Any]], what: str) -> Any:
    """action(client) in a fresh session with the server, within its timeout; a ToolError on any failure."""
    import anyio
    import mcp

    outcome: dict[str, Any] = {}

    async def main() -> None:
        with anyio.fail_after(server.timeout_s):
            async with mcp.Client(server.target()) as client:
                outcome["value"] = await action(client)

    def work() -> None:
        try:
            anyio.run(main)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below, whatever it is
            outcome["error"] = exc

    thread = threading.Thread(target=work, name=f"mcp-{name}", daemon=True)
    thread.start()
    thread.join(server.timeout_s + _CLEANUP_GRACE_S)
    if thread.is_alive() or isinstance(_leaf(outcome.get("error")), TimeoutError):
        raise ToolError(f"The MCP server {name!r} did not answer {what} within {server.timeout_s:g} s (it hangs or "
                        f"is overloaded); it was stopped. Raise timeout_s in {servers_file()} if it is just slow.")
    if "error" in outcome:
        leaf = _leaf(outcome["error"])
        if isinstance(leaf, ToolError):
            raise leaf
        raise ToolError(f"The MCP server {name!r} failed during {what}: {type(leaf).__name__}: "
                        f"{str(leaf)[:300] or 'the connection closed (the server exited?)'}. Check that "
                        f"{server.command or server.url} runs on its own.")
    return outcome["value"]


def _leaf(exc: BaseException | None) -> BaseException | None:
    """The first real exception inside anyio's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


# --- the servers' tools as Tools -------------------------------------------------------------------


class ExternalTool(Tool):
    """A Tool whose schema is the server's JSON schema: arguments are checked with jsonschema."""

    def validate(self, args: Any) -> dict[str, Any]:
        import jsonschema

        if not isinstance(args, dict):
            raise ToolError(f"Arguments of {self.name} must be a JSON object, got {type(args).__name__}. "
                            f"Call it as {self.signature()}.")
        try:
            jsonschema.validate(args, self.parameters)
        except jsonschema.ValidationError as exc:
            where = ".".join(map(str, exc.absolute_path)) or "arguments"
            raise ToolError(f"Bad arguments for {self.name}: {where}: {exc.message[:200]}. "
                            f"Call it as {self.signature()}.") from None
        except jsonschema.SchemaError:
            pass  # the server's schema is its own business; the server checks the call too
        return dict(args)


def _as_tool(server_name: str, server: ExternalServer, listed: Any) -> Tool:
    remote = listed.name
    hints = listed.annotations
    read_only = bool(hints and hints.read_only_hint)
    # MCP's defaults: a tool not said to be read-only may change things, and destructively unless told not.
    destructive = not read_only and (hints is None or hints.destructive_hint is not False)
    parameters = dict(listed.input_schema or {"type": "object"})
    parameters.setdefault("properties", {})
    parameters.setdefault("required", [])

    def call(**arguments: Any) -> Any:
        async def action(client: Any) -> Any:
            return await client.call_tool(remote, arguments)

        result = _in_session(server_name, server, action, f"the call to {remote}")
        text = "".join(getattr(block, "text", "") for block in result.content)
        if result.is_error:
            raise ToolError(f"{server_name}{SEPARATOR}{remote} answered with an error: {text[:500]}")
        return result.structured_content if result.structured_content is not None else text

    return ExternalTool(name=f"{server_name}{SEPARATOR}{remote}",
                        description=f"[MCP server {server_name}] {listed.description or remote}",
                        parameters=parameters, fn=call, arguments_model=create_model(f"{server_name}_{remote}"),
                        permissions=frozenset(server.permissions), read_only=read_only, destructive=destructive)


_LISTED: dict[tuple[str, str], list[Tool]] = {}
_LISTED_LOCK = threading.Lock()


def server_tools(name: str, servers: dict[str, ExternalServer] | None = None) -> list[Tool]:
    """The tools server `name` offers (those its `tools` entry keeps), listed once per process and config."""
    servers = load_servers() if servers is None else servers
    if name not in servers:
        raise ConfigError(f"No MCP server {name!r} in {servers_file()}; it has {', '.join(servers) or 'none'}. "
                          f"Add it under `servers:` or fix the name in agents.yaml.")
    server = servers[name]
    key = (name, server.model_dump_json())
    with _LISTED_LOCK:
        if key not in _LISTED:
            async def action(client: Any) -> Any:
                return (await client.list_tools()).tools

            try:
                listed = _in_session(name, server, action, "tools/list")
            except ToolError as exc:
                raise ConfigError(f"Cannot list the tools of MCP server {name!r}: {exc}") from None
            keep = server.tools
            _LISTED[key] = [_as_tool(name, server, t) for t in listed if "*" in keep or t.name in keep]
        return _LISTED[key]


def resolve(ref: str) -> list[Tool]:
    """`mcp:SERVER` (all its tools) or `mcp:SERVER/TOOL` -> the Tools."""
    server, _, only = ref.removeprefix(PREFIX).partition("/")
    tools = server_tools(server)
    if not only:
        return tools
    chosen = [t for t in tools if t.name == f"{server}{SEPARATOR}{only}"]
    if not chosen:
        names = ", ".join(t.name.split(SEPARATOR, 1)[1] for t in tools) or "none"
        raise ConfigError(f"MCP server {server!r} has no tool {only!r} (it offers {names}).")
    return chosen


def forget_listings() -> None:
    """Drop the cached tool lists (a server's tools changed)."""
    with _LISTED_LOCK:
        _LISTED.clear()


__all__ = ["ExternalServer", "ExternalTool", "forget_listings", "load_servers", "resolve", "server_tools",
           "servers_file"]
