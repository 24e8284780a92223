"""MCP context providers through the SDK's in-memory client: resources (the repository, docs, environment,
preferences) and prompts, answered under the client's profile, every read an event."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import anyio
import mcp
import pytest
from mcp.shared.exceptions import MCPError

from workbench.config import reload_settings
from workbench.mcp_server.context import ContextProviders
from workbench.mcp_server.profiles import Profile
from workbench.mcp_server.server import McpGateway
from workbench.testing import MemorySink

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("def add(a, b):\n    return a + b\n")
    (root / ".env").write_text("TOKEN=secret-value-7\n")
    (tmp_path / "outside.txt").write_text("not yours")
    (root / "link.txt").symlink_to(tmp_path / "outside.txt")
    env = {**os.environ, **GIT_ENV}
    for args in (["init", "-q"], ["add", "src/app.py"], ["commit", "-qm", "Add the adder"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, env=env, capture_output=True)
    return root.resolve()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "wb"
    (root / "docs" / "how-to").mkdir(parents=True)
    (root / "README.md").write_text("# workbench\nread me\n")
    (root / "docs" / "how-to" / "mcp.md").write_text("# MCP\n")
    return root


def providers(docs: Path) -> ContextProviders:
    return ContextProviders(docs_root=docs, health=lambda: [{"name": "duckdb", "status": "ok", "detail": ""}],
                            models=lambda: [{"name": "test:echo", "usable": True}])


def run(gateway: McpGateway, fn) -> Any:
    async def main() -> Any:
        async with mcp.Client(gateway.server()) as client:
            return await fn(client)

    return anyio.run(main)


def refusal(gateway: McpGateway, fn) -> str:
    """The error message a request gets (caught inside the session, as a client would)."""

    async def attempt(client: mcp.Client) -> str:
        try:
            await fn(client)
        except MCPError as exc:
            return str(exc)
        raise AssertionError("the request was answered, not refused")

    return run(gateway, attempt)


def test_resources_and_prompts_are_listed_and_read(repo, docs):
    (Path(os.environ["WORKBENCH_HOME"]) / "preferences.md").write_text("Answer in French.\n")
    gateway = McpGateway(Profile(name="ide", roots=(repo,)), {}, providers(docs))

    async def session(client: mcp.Client) -> dict[str, Any]:
        return {"resources": (await client.list_resources()).resources,
                "templates": (await client.list_resource_templates()).resource_templates,
                "prompts": (await client.list_prompts()).prompts,
                "files": await client.read_resource("workbench://repo/files"),
                "file": await client.read_resource("workbench://repo/file/src/app.py"),
                "log": await client.read_resource("workbench://repo/log"),
                "doc": await client.read_resource("workbench://docs/how-to/mcp.md"),
                "env": await client.read_resource("workbench://env"),
                "prefs": await client.read_resource("workbench://preferences"),
                "review": await client.get_prompt("review_file", {"path": "src/app.py"}),
                "changes": await client.get_prompt("recent_changes"),
                "asked": await client.get_prompt("with_preferences", {"question": "What is MCP?"})}

    with MemorySink() as events:
        got = run(gateway, session)
    uris = {str(r.uri) for r in got["resources"]}
    assert {"workbench://repo/files", "workbench://repo/log", "workbench://env", "workbench://preferences",
            "workbench://docs/README.md", "workbench://docs/how-to/mcp.md"} == uris
    assert got["templates"][0].uri_template == "workbench://repo/file/{path}"
    assert {p.name for p in got["prompts"]} == {"review_file", "recent_changes", "with_preferences"}
    assert json.loads(got["files"].contents[0].text) == ["src/app.py"]
    assert got["file"].contents[0].text.startswith("def add")
    assert "Add the adder" in got["log"].contents[0].text
    assert got["doc"].contents[0].text == "# MCP\n"
    env = json.loads(got["env"].contents[0].text)
    assert env["versions"]["mcp"] == mcp_version() and env["health"][0]["name"] == "duckdb"
    assert got["prefs"].contents[0].text == "Answer in French.\n"
    assert "return a + b" in got["review"].messages[0].content.text
    assert "Add the adder" in got["changes"].messages[0].content.text
    assert "Answer in French." in got["asked"].messages[0].content.text
    reads = events.of("tool_call", via="mcp", client="ide")
    assert len(reads) == 9 and all(e.get("denied") is None for e in reads)
    assert "def add" not in repr([e.payload for e in reads])  # the client's data stays out of the log


def mcp_version() -> str:
    from importlib.metadata import version

    return version("mcp")


@pytest.mark.parametrize("uri, why", [
    ("workbench://repo/file/../outside.txt", "outside"),
    ("workbench://repo/file/link.txt", "outside"),
    ("workbench://repo/file/.env", "looks like a secret"),
    ("workbench://repo/file//etc/passwd", "outside"),
    ("workbench://docs/../../etc/passwd", "No documentation page"),
    ("file:///etc/passwd", "Unknown resource"),
])
def test_reads_outside_what_is_offered_are_refused(repo, docs, uri, why):
    gateway = McpGateway(Profile(name="ide", roots=(repo,)), {}, providers(docs))
    with MemorySink() as events:
        assert why in refusal(gateway, lambda client: client.read_resource(uri))
    assert events.of("tool_call", via="mcp", resource=uri)


def test_the_profile_decides_what_context_a_client_gets(repo, docs):
    narrow = Profile(name="docs-only", tools=("query_db",), roots=(repo,), context=("docs",))
    gateway = McpGateway(narrow, {}, providers(docs))

    async def session(client: mcp.Client) -> dict[str, Any]:
        listed = (await client.list_resources()).resources
        prompts = (await client.list_prompts()).prompts
        errors = {}
        for uri in ("workbench://repo/files", "workbench://env", "workbench://preferences"):
            try:
                await client.read_resource(uri)
            except MCPError as exc:
                errors[uri] = str(exc)
        return {"listed": listed, "prompts": prompts, "errors": errors}

    with MemorySink() as events:
        got = run(gateway, session)
    assert {str(r.uri) for r in got["listed"]} == {"workbench://docs/README.md", "workbench://docs/how-to/mcp.md"}
    assert got["prompts"] == []
    assert set(got["errors"]) == {"workbench://repo/files", "workbench://env", "workbench://preferences"}
    assert "does not include the context provider 'repo'" in got["errors"]["workbench://repo/files"]
    assert len(events.of("tool_call", via="mcp", refused=True)) == 3

    # The repository also needs the file tool itself, not only the provider.
    no_read = McpGateway(Profile(name="lister", tools=("list_files",), roots=(repo,)), {}, providers(docs))
    assert "needs the tool read_file" in refusal(no_read, lambda c: c.read_resource("workbench://repo/file/src/app.py"))
    assert "needs the argument 'path'" in refusal(
        McpGateway(Profile(name="ide", roots=(repo,)), {}, providers(docs)), lambda c: c.get_prompt("review_file"))


def test_a_missing_preferences_file_says_where_to_write_it(repo, docs, monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    reload_settings()
    gateway = McpGateway(Profile(name="ide", roots=(repo,)), {}, providers(docs))
    got = run(gateway, lambda client: client.read_resource("workbench://preferences"))
    assert "no preferences yet" in got.contents[0].text and str(tmp_path / "home") in got.contents[0].text


def test_the_real_docs_and_environment_of_this_checkout(repo):
    gateway = McpGateway(Profile(name="ide", roots=(repo,)), {},
                         ContextProviders(health=lambda: [], models=lambda: []))
    listed = run(gateway, lambda client: client.list_resources()).resources
    assert "workbench://docs/how-to/mcp.md" in {str(r.uri) for r in listed}


@pytest.mark.timeout(120)
def test_a_child_process_server_answers_resources_and_prompts_lists(repo):
    import sys

    from helpers import REPO

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    params = mcp.StdioServerParameters(command=sys.executable, env=env, cwd=str(REPO),
                                       args=["-m", "workbench", "mcp", "serve", "--no-store", "--root", str(repo)])

    async def session(client: mcp.Client) -> tuple[Any, Any, Any]:
        return ((await client.list_resources()).resources, (await client.list_prompts()).prompts,
                await client.read_resource("workbench://repo/log"))

    async def main() -> tuple[Any, Any, Any]:
        async with mcp.Client(params) as client:
            return await session(client)

    resources, prompts, log = anyio.run(main)
    assert {"workbench://repo/files", "workbench://env", "workbench://docs/README.md"} <= {str(r.uri) for r in resources}
    assert {"review_file", "recent_changes", "with_preferences"} == {p.name for p in prompts}
    assert "Add the adder" in log.contents[0].text
