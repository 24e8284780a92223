"""Agents as MCP clients: an external MCP server (tests/mcp_tiny_server.py, a real stdio child process) configured
in WORKBENCH_HOME/mcp_servers.yaml gives a specialist tools, under the same permission and logging rules; a
server that hangs or dies mid-call gives a clear tool error within its timeout."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers import REPO

from workbench.agents.registry import Registry, run_specialist
from workbench.config import reload_settings
from workbench.errors import ConfigError
from workbench.testing import FunctionModel, MemorySink
from workbench.tools import Toolset
from workbench.tools.mcp_client import forget_listings, load_servers, server_tools

TINY = str(REPO / "tests" / "mcp_tiny_server.py")
TIMEOUT_S = 3


def configure(servers: dict) -> Path:
    path = Path(os.environ["WORKBENCH_HOME"]) / "mcp_servers.yaml"
    path.write_text(yaml.safe_dump({"servers": servers}))
    forget_listings()
    return path


@pytest.fixture
def tiny() -> dict:
    configure({"tiny": {"command": sys.executable, "args": [TINY], "timeout_s": TIMEOUT_S}})
    return load_servers()


def agents_file(tmp_path: Path, tools: list[str], permissions: list[str]) -> Path:
    path = tmp_path / "agents.yaml"
    path.write_text(yaml.safe_dump({"specialists": {"general": {
        "tools": tools, "permissions": permissions, "options": {"browser": False},
        "limits": {"max_steps": 3}}}}))
    return path


def test_a_specialist_uses_a_tool_of_an_external_server_and_the_call_is_an_event(tiny, tmp_path):
    replies = [{"thought": "add on the server", "tool": "tiny__add", "arguments": {"a": 2, "b": 40}}]
    seen: list[str] = []

    def model(messages: list[dict], options: dict) -> dict:
        seen.append(messages[-1]["content"])
        if replies:
            return replies.pop(0)
        return {"thought": "done", "tool": "final_answer", "arguments": {"answer": f"The sum is {seen[-1][-40:]}"}}

    registry = Registry.from_config(agents_file(tmp_path, ["mcp:tiny/add"], ["network"]))
    with MemorySink() as events:
        result = run_specialist({"id": "s1", "specialist": "general", "instructions": "Add 2 and 40 with the tool."},
                                registry=registry, model=FunctionModel(model), task_id="t-mcp")
    assert result.ok, result.error
    assert "42" in seen[-1]  # the server's answer came back as the observation
    [call] = events.of("tool_call", tool="tiny__add")
    assert call.agent == "general" and call.task_id == "t-mcp" and not call.get("refused")
    assert json.loads(call.get("result")) == {"result": 42}


def test_the_same_permission_rule_applies(tiny):
    tools = server_tools("tiny")
    assert {t.name: (t.read_only, t.destructive) for t in tools} == {
        "tiny__add": (True, False), "tiny__note": (False, True), "tiny__hang": (False, True),
        "tiny__die": (False, True)}  # the server's own annotations; MCP's cautious defaults without them
    with MemorySink() as events:
        refused = Toolset(tools, permissions=frozenset(), agent="general").call("tiny__add", {"a": 1, "b": 2})
        bad = Toolset(tools, permissions={"network"}, agent="general").call("tiny__add", {"a": "one"})
    assert refused.refused and "needs the permission(s) network" in refused.error
    assert "Bad arguments for tiny__add" in bad.error
    assert [e.get("refused") for e in events.of("tool_call", tool="tiny__add")] == [True, False]


@pytest.mark.parametrize("tool, message", [
    ("tiny__hang", f"did not answer the call to hang within {TIMEOUT_S} s"),
    ("tiny__die", "failed during the call to die"),
])
def test_a_server_that_hangs_or_dies_mid_call_is_a_tool_error_within_the_timeout(tiny, tool, message):
    toolset = Toolset(server_tools("tiny"), permissions={"network"}, agent="general")
    started = time.monotonic()
    with MemorySink() as events:
        record = toolset.call(tool, {})
    elapsed = time.monotonic() - started
    assert record.error and message in record.error and not record.refused
    assert elapsed < TIMEOUT_S + 8  # the timeout, the SDK's stop of the child, and a loaded machine's slack
    assert events.of("tool_call", tool=tool)[0].error == record.error
    # The next call starts the server again: one bad call does not break the tool.
    assert json.loads(toolset.call("tiny__add", {"a": 1, "b": 1}).result) == {"result": 2}


def test_a_server_that_never_answers_its_handshake_is_a_config_error_in_time(tmp_path):
    configure({"mute": {"command": sys.executable, "args": ["-c", "import time; time.sleep(60)"], "timeout_s": 2}})
    started = time.monotonic()
    with pytest.raises(ConfigError, match="Cannot list the tools of MCP server 'mute'.*within 2 s"):
        Registry.from_config(agents_file(tmp_path, ["mcp:mute"], ["network"]))
    assert time.monotonic() - started < 2 + 8


@pytest.mark.parametrize("servers, message", [
    ({"x": {"command": "a", "url": "http://127.0.0.1:1/mcp"}}, "exactly one of `command`"),
    ({"x": {}}, "exactly one of `command`"),
    ({"x": {"url": "ftp://h/"}}, "url must be http"),
    ({"x": {"command": "a", "permissions": ["root"]}}, "unknown permission"),
    ({"x__y": {"command": "a"}}, "single _ only"),
])
def test_a_bad_servers_file_is_one_clear_config_error(servers, message):
    configure(servers)
    with pytest.raises(ConfigError, match=message):
        load_servers()


def test_unknown_servers_and_tools_are_named(tiny, tmp_path):
    with pytest.raises(ConfigError, match="No MCP server 'nope'.*it has tiny"):
        Registry.from_config(agents_file(tmp_path, ["mcp:nope"], ["network"]))
    with pytest.raises(ConfigError, match="has no tool 'sub'.*offers add, note, hang, die"):
        Registry.from_config(agents_file(tmp_path, ["mcp:tiny/sub"], ["network"]))


def test_the_servers_file_is_a_setting(tmp_path, monkeypatch):
    other = tmp_path / "elsewhere.yaml"
    other.write_text(yaml.safe_dump({"servers": {"far": {"url": "http://127.0.0.1:9/mcp"}}}))
    monkeypatch.setenv("WORKBENCH_MCP_SERVERS", str(other))
    reload_settings()
    assert list(load_servers()) == ["far"]


def test_a_server_over_streamable_http_gives_its_tools_too(tmp_path):
    """The workbench's own MCP server over HTTP, as another workbench would see it."""
    from test_mcp import _HttpServer

    from workbench.mcp_server.profiles import Profile
    from workbench.mcp_server.server import McpGateway
    from workbench.mcp_server.tools import catalog

    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "plan.txt").write_text("step one: measure\n")
    gateway = McpGateway(Profile(name="peer", tools=("read_file",), roots=(shared,)), catalog())
    from workbench.mcp_server.transports import http_app

    with _HttpServer(http_app(gateway, "127.0.0.1", None)) as url:
        configure({"peer": {"url": url, "timeout_s": 10}})
        tools = server_tools("peer")
        assert [t.name for t in tools] == ["peer__read_file"] and tools[0].read_only
        with MemorySink() as events:
            record = Toolset(tools, permissions={"network"}, agent="general").call("peer__read_file",
                                                                                 {"path": "plan.txt"})
    assert record.error is None and "step one: measure" in record.result
    assert events.of("tool_call", tool="peer__read_file", agent="general")  # the agent's side
    assert events.of("tool_call", via="mcp", client="peer", tool="read_file")  # and the serving side
