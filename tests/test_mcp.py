"""The MCP server: the agents' tools over the SDK, profiles enforced server-side, file tools confined to the roots.

In memory through the SDK's own client (mcp.Client(server)); one stdio round trip with `python -m workbench mcp
serve` as a child process; one streamable-HTTP round trip on a free loopback port, with and without the API key.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import duckdb
import mcp
import pytest
from helpers import REPO, free_port, requires, sandbox_ok
from pydantic import SecretStr

from workbench import nofollow
from workbench.errors import ConfigError, ToolRefused
from workbench.mcp_server.profiles import Profile, default_profile, denial, load_profile
from workbench.mcp_server.server import McpGateway
from workbench.mcp_server.tools import Services, catalog
from workbench.testing import MemorySink
from workbench.tools import confine

SECRET_TEXT = "outside-secret-4f1c"
FILE_TEXT = "hello from the root\nsecond line mentions needle\n"
TASK_ID = "0b8f8c3e-8d6e-4c0e-9a57-3c5f2f1b7a11"


class FakeTasks:
    """The TaskApi surface the task tools use, without Postgres."""

    def __init__(self) -> None:
        self.created: list[Any] = []

    def create_and_submit(self, new: Any) -> Any:
        self.created.append(new)
        return self.get(TASK_ID, status="pending")

    def get(self, task_id: str, status: str = "completed") -> Any:
        from workbench.tasks.service import TaskNotFound

        if task_id != TASK_ID:
            raise TaskNotFound(task_id)
        from workbench.tasks.records import Task

        return Task(id=TASK_ID, title="t", prompt="p", status=status, priority=0, result={"answer": 42},
                    created_at="2026-01-01T00:00:00Z", updated_at="2026-01-01T00:00:00Z")


@pytest.fixture
def places(tmp_path: Path) -> SimpleNamespace:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "notes.txt").write_text(FILE_TEXT)
    (root / "sub" / "deep.txt").write_text("needle in a folder\n")
    (root / ".env").write_text("TOKEN=needle-secret\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET_TEXT)
    snapshot = tmp_path / "log.duckdb"
    with duckdb.connect(str(snapshot)) as con:
        con.execute("CREATE TABLE events AS SELECT * FROM (VALUES (1, 'tool_call'), (2, 'llm_call')) t(seq, kind)")
    return SimpleNamespace(root=root.resolve(), outside=outside.resolve(), snapshot=snapshot)


def gateway(places: SimpleNamespace, *, tools: tuple[str, ...] = ("*",), read_only: bool = False,
            name: str = "tester", services: Services | None = None) -> McpGateway:
    services = services or Services(snapshot=lambda: places.snapshot, tasks=FakeTasks)
    profile = Profile(name=name, tools=tools, roots=(places.root,), read_only=read_only)
    return McpGateway(profile, catalog(services))


def session(target: Any, *calls: tuple[str, dict | None]) -> tuple[list[Any], list[Any]]:
    """(tools/list, the results of `calls`) through the SDK's client connected to `target`."""

    async def main() -> tuple[list[Any], list[Any]]:
        async with mcp.Client(target) as client:
            listed = (await client.list_tools()).tools
            return listed, [await client.call_tool(name, args) for name, args in calls]

    return anyio.run(main)


def text(result: Any) -> str:
    return "".join(block.text for block in result.content)


# --- listing and calling through the SDK -------------------------------------------------------------


def test_every_tool_is_listed_with_its_schema_and_hints_from_the_typed_function(places):
    from workbench.tools import BUILTIN_TOOLS

    gw = gateway(places)
    listed, _ = session(gw.server())
    by_name = {t.name: t for t in listed}
    assert set(by_name) == {"read_file", "list_files", "search_files", "write_file", "query_db", "run_code",
                            "submit_task", "task_status", "task_result", "browser_open", "browser_text",
                            "browser_screenshot", "browser_click", "browser_fill", "run_shell", "http_get",
                            "http_post"}
    # One definition: the agents' tool and the MCP tool have the same schema and description.
    for name in ("read_file", "list_files", "search_files", "write_file"):
        assert by_name[name].input_schema == BUILTIN_TOOLS[name].parameters
        assert by_name[name].description == BUILTIN_TOOLS[name].description
    assert by_name["read_file"].annotations.read_only_hint is True
    assert by_name["write_file"].annotations.read_only_hint is False
    assert by_name["write_file"].annotations.destructive_hint is True
    assert by_name["submit_task"].annotations.read_only_hint is False
    assert by_name["query_db"].input_schema["required"] == ["sql"]


def test_every_tool_but_the_sandbox_is_called_through_the_client(places):
    tasks = FakeTasks()
    gw = gateway(places, services=Services(snapshot=lambda: places.snapshot, tasks=lambda: tasks))
    with MemorySink() as events:
        _, results = session(gw.server(),
                             ("read_file", {"path": "notes.txt"}),
                             ("list_files", {}),
                             ("search_files", {"text": "needle"}),
                             ("write_file", {"path": "new/out.txt", "content": "written"}),
                             ("query_db", {"sql": "SELECT kind FROM events ORDER BY seq", "max_rows": 1}),
                             ("submit_task", {"prompt": "count the events"}),
                             ("task_status", {"task_id": TASK_ID}),
                             ("task_result", {"task_id": TASK_ID}))
    assert [r.is_error for r in results] == [False] * 8, [text(r) for r in results if r.is_error]
    read, listing, search, write, query, submit, status, result = results
    assert text(read) == FILE_TEXT
    assert listing.structured_content["result"] == [".env", "notes.txt", "sub/"]
    files = [m["file"] for m in search.structured_content["matches"]]
    assert files == ["notes.txt", "sub/deep.txt"]  # .env holds the text too, but secrets are never searched
    assert (places.root / "new" / "out.txt").read_text() == "written"
    assert query.structured_content["rows"] == [["tool_call"]] and query.structured_content["truncated"] is True
    assert submit.structured_content == {"id": TASK_ID, "status": "pending"}
    assert tasks.created[0].prompt == "count the events"
    assert status.structured_content["status"] == "completed"
    assert result.structured_content["result"] == {"answer": 42}
    calls = events.of("tool_call", via="mcp")
    assert [e.get("tool") for e in calls] == ["read_file", "list_files", "search_files", "write_file", "query_db",
                                              "submit_task", "task_status", "task_result"]
    assert all(e.get("client") == "tester" and e.get("denied") is None for e in calls)
    # Never the client's data: no file content, written text or SQL in any event.
    dumped = repr([e.payload for e in calls])
    assert "hello from the root" not in dumped and "written" not in dumped and "SELECT" not in dumped


@requires(*sandbox_ok(toolchain=False))
def test_run_code_runs_in_the_sandbox(places):
    _, [result] = session(gateway(places).server(), ("run_code", {"code": "import os; print(os.getcwd(), 6 * 7)"}))
    assert not result.is_error, text(result)
    assert result.structured_content["ok"] and "42" in result.structured_content["stdout"]


def test_run_code_never_runs_on_the_host(places):
    services = Services(executor=lambda: SimpleNamespace(name="unsafe-host"))
    _, results = session(gateway(places, services=services).server(), ("run_code", {"code": "print(1)"}),
                         ("run_shell", {"command": "echo 1"}))
    for result in results:
        assert result.is_error and "unsafe-host" in text(result) and "WORKBENCH_SANDBOX" in text(result)


@requires(*sandbox_ok(toolchain=False))
def test_run_shell_runs_in_the_sandbox_with_its_files_and_nothing_of_the_host(places):
    command = f"cat data.txt | tr a-z A-Z; ls {places.outside} 2>&1; echo done > made.txt; cat made.txt"
    _, [result] = session(gateway(places).server(), ("run_shell", {"command": command,
                                                                    "files": {"data.txt": "shout\n"}}))
    assert not result.is_error, text(result)
    out = result.structured_content
    assert out["exit_code"] == 0 and out["stdout"].startswith("SHOUT\n") and out["stdout"].endswith("done\n")
    assert "secret.txt" not in out["stdout"]  # the host's folders are not in the sandbox
    assert not (places.root / "made.txt").exists() and not Path("made.txt").exists()


def test_query_db_runs_only_one_select(places):
    _, results = session(gateway(places).server(),
                         ("query_db", {"sql": "DROP TABLE events"}),
                         ("query_db", {"sql": "SELECT 1; SELECT 2"}),
                         ("query_db", {"sql": "SELECT * FROM read_text('/etc/passwd')"}))
    assert all(r.is_error for r in results)
    assert "only one read-only SELECT" in text(results[0]) and "only one read-only SELECT" in text(results[1])
    assert "root:" not in text(results[2])


# --- permissions ----------------------------------------------------------------------------------------


def test_a_read_only_profile_cannot_write_even_a_tool_it_lists(places):
    gw = gateway(places, tools=("read_file", "write_file"), read_only=True, name="reader")
    with MemorySink() as events:
        listed, [result] = session(gw.server(), ("write_file", {"path": "x.txt", "content": "no"}))
    assert [t.name for t in listed] == ["read_file"]
    assert result.is_error and "read-only" in text(result)
    assert not (places.root / "x.txt").exists()
    [event] = events.of("tool_call", via="mcp")
    assert event.get("client") == "reader" and event.get("tool") == "write_file"
    assert "read-only" in event.get("denied")


def test_a_tool_outside_the_profile_is_denied_and_not_listed(places):
    gw = gateway(places, tools=("read_file",), read_only=True, name="narrow")
    with MemorySink() as events:
        listed, [result] = session(gw.server(), ("query_db", {"sql": "SELECT 1"}))
    assert [t.name for t in listed] == ["read_file"]
    assert result.is_error and "not in the MCP profile 'narrow'" in text(result)
    [event] = events.of("tool_call", via="mcp", tool="query_db")
    assert "not in the MCP profile" in event.get("denied") and event.get("refused") is True


def test_the_builtin_profile_is_read_only(places):
    profile = default_profile([places.root])
    tools = catalog(Services())
    allowed = {name for name, t in tools.items() if denial(profile, name, t) is None}
    assert allowed == {"read_file", "list_files", "search_files", "query_db", "task_status", "task_result"}


def test_profiles_file_is_checked_when_loaded(places, tmp_path):
    tools = catalog(Services())
    path = tmp_path / "profiles.yaml"
    path.write_text("profiles:\n  ed:\n    tools: [read_file, write_file]\n    roots: [root]\n    read_only: false\n")
    profile = load_profile(path, "ed", tools)
    assert profile.roots == (places.root,) and not profile.read_only and profile.name == "ed"
    with pytest.raises(ConfigError, match="No MCP profile 'nope'.*it has ed"):
        load_profile(path, "nope", tools)
    path.write_text("profiles:\n  ed:\n    tools: [rm_rf]\n    roots: [root]\n")
    with pytest.raises(ConfigError, match="unknown tool.*rm_rf"):
        load_profile(path, "ed", tools)
    path.write_text("profiles:\n  ed:\n    tools: [read_file]\n    roots: [/]\n")
    with pytest.raises(ConfigError, match="whole machine"):
        load_profile(path, "ed", tools)
    path.write_text("profiles:\n  ed:\n    tools: [read_file]\n    rots: [root]\n")
    with pytest.raises(ConfigError, match="not valid"):
        load_profile(path, "ed", tools)


# --- bad calls are results, not crashes ----------------------------------------------------------------


def test_wrong_arguments_and_unknown_tools_are_errors_not_crashes(places):
    with MemorySink() as events:
        _, results = session(gateway(places).server(),
                             ("read_file", {"path": 42}),
                             ("read_file", {}),
                             ("read_file", {"path": "notes.txt", "mode": "w"}),
                             ("search_files", {"text": "x", "max_results": "many"}),
                             ("no_such_tool", {"x": 1}),
                             ("read_file", {"path": "notes.txt"}))
    *bad, fine = results
    assert all(r.is_error for r in bad) and not fine.is_error
    assert "missing required argument 'path'" in text(bad[1])
    assert "unknown argument 'mode'" in text(bad[2])
    assert "There is no tool 'no_such_tool'" in text(bad[4])
    assert events.of("tool_call", via="mcp", tool="no_such_tool")[0].get("denied")


def test_a_file_where_a_folder_is_expected_is_named_as_such(places):
    _, results = session(gateway(places).server(),
                         ("list_files", {"path": "notes.txt"}),
                         ("read_file", {"path": "notes.txt/inner"}),
                         ("search_files", {"text": "x", "path": "notes.txt"}))
    assert all(r.is_error and "is not a folder" in text(r) and "symbolic" not in text(r) for r in results), \
        [text(r) for r in results]


def test_without_the_store_the_task_tools_say_so(places):
    from workbench.mcp_server.tools import no_tasks

    services = Services(tasks=no_tasks)
    _, [result] = session(gateway(places, services=services).server(), ("task_status", {"task_id": TASK_ID}))
    assert result.is_error and "--no-store" in text(result)


# --- file tools stay inside the roots ------------------------------------------------------------------


def _escape(places: SimpleNamespace, how: str) -> str:
    if how == "dotdot":
        return "../outside/secret.txt"
    if how == "absolute":
        return str(places.outside / "secret.txt")
    if how == "symlink_file":
        (places.root / "link.txt").symlink_to(places.outside / "secret.txt")
        return "link.txt"
    (places.root / "linkdir").symlink_to(places.outside)
    return "linkdir/secret.txt"


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink_file", "symlink_dir"])
def test_reads_and_writes_outside_the_roots_are_refused(places, how):
    path = _escape(places, how)
    with MemorySink() as events:
        _, results = session(gateway(places).server(),
                             ("read_file", {"path": path}),
                             ("write_file", {"path": path, "content": "overwritten"}),
                             ("list_files", {"path": str(Path(path).parent)}) if how != "symlink_file" else
                             ("search_files", {"text": "secret", "path": "/"}))
    assert all(r.is_error and "Refused" in text(r) for r in results), [text(r) for r in results]
    assert not any(SECRET_TEXT in text(r) for r in results)
    assert (places.outside / "secret.txt").read_text() == SECRET_TEXT
    assert all(e.get("denied") for e in events.of("tool_call", via="mcp"))


def test_a_write_to_a_file_hard_linked_from_outside_is_refused(places):
    os.link(places.outside / "secret.txt", places.root / "innocent.txt")
    _, [result] = session(gateway(places).server(), ("write_file", {"path": "innocent.txt", "content": "pwned"}))
    assert result.is_error and "hard links" in text(result)
    assert (places.outside / "secret.txt").read_text() == SECRET_TEXT


def test_a_symlink_swapped_in_after_the_check_is_not_followed(places):
    """The race: confine() checks a real file, then it becomes a link out before the open."""
    target = confine("notes.txt", places.root)
    (places.root / "notes.txt").unlink()
    (places.root / "notes.txt").symlink_to(places.outside / "secret.txt")
    with pytest.raises(ToolRefused, match="symbolic link"):
        nofollow.read_text(target, 1000)
    with pytest.raises(ToolRefused, match="symbolic link"):
        nofollow.write_text(target, "pwned")
    assert (places.outside / "secret.txt").read_text() == SECRET_TEXT


def test_a_folder_swapped_for_a_symlink_after_the_check_is_not_followed(places):
    target = confine("sub/deep.txt", places.root)
    (places.root / "sub").rename(places.root / "old")
    (places.root / "sub").symlink_to(places.outside)
    (places.outside / "deep.txt").write_text(SECRET_TEXT)
    with pytest.raises(ToolRefused, match="symbolic link"):
        nofollow.read_text(target, 1000)
    with pytest.raises(ToolRefused, match="symbolic link"):
        nofollow.write_text(target, "pwned")
    assert (places.outside / "deep.txt").read_text() == SECRET_TEXT


# --- transports -----------------------------------------------------------------------------------------


def _child_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_MCP")}
    env.update(PYTHONPATH=str(REPO), WORKBENCH_HOME=str(home))
    return env


@pytest.mark.timeout(120)
def test_stdio_round_trip_with_a_child_process(places, isolated_home):
    params = mcp.StdioServerParameters(
        command=sys.executable, args=["-m", "workbench", "mcp", "serve", "--no-store", "--root", str(places.root)],
        env=_child_env(isolated_home), cwd=str(REPO))
    listed, [result] = session(params, ("read_file", {"path": "notes.txt"}))
    assert {t.name for t in listed} == {"read_file", "list_files", "search_files", "query_db", "task_status",
                                        "task_result"}  # the built-in read-only profile
    assert not result.is_error and text(result) == FILE_TEXT


class _HttpServer:
    """The HTTP app on a free loopback port, in a thread, for the length of a `with`."""

    def __init__(self, app: Any):
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the MCP HTTP app did not start"
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}/mcp"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.mark.timeout(120)
def test_streamable_http_round_trip(places):
    from workbench.mcp_server.transports import http_app

    with _HttpServer(http_app(gateway(places, tools=("read_file",)), "127.0.0.1", None)) as url:
        listed, [result] = session(url, ("read_file", {"path": "sub/deep.txt"}))
    assert [t.name for t in listed] == ["read_file"]
    assert not result.is_error and text(result) == "needle in a folder\n"


@pytest.mark.timeout(120)
def test_streamable_http_needs_the_api_key_when_one_is_set(places):
    import httpx
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    from workbench.mcp_server.transports import http_app

    key = "mcp-test-key-9d2"
    with _HttpServer(http_app(gateway(places, tools=("read_file",)), "127.0.0.1", SecretStr(key))) as url:
        refused = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                             headers={"Accept": "application/json, text/event-stream"})
        with_key = streamable_http_client(url, http_client=httpx2.AsyncClient(headers={"X-API-Key": key}))
        _, [result] = session(with_key, ("read_file", {"path": "notes.txt"}))
    assert refused.status_code == 401 and "API key" in refused.text
    assert not result.is_error and text(result) == FILE_TEXT


def test_http_refuses_to_bind_beyond_loopback_without_a_key(places):
    from workbench.mcp_server.transports import http_app

    with pytest.raises(ConfigError, match="WORKBENCH_API_KEY"):
        http_app(gateway(places), "0.0.0.0", None)
    http_app(gateway(places), "0.0.0.0", SecretStr("k"))  # with a key it may


@pytest.mark.timeout(180)
def test_streamable_http_takes_the_stored_keys_of_an_open_store(places):
    """With the store open in the MCP process, `workbench keys` keys work there too: a read key may not call
    tools (POST needs the submit scope), a submit key may."""
    import shutil

    import httpx
    import httpx2
    from helpers import home_dir
    from mcp.client.streamable_http import streamable_http_client

    from workbench.mcp_server.transports import http_app
    from workbench.store import api_keys, close_store, open_store
    from workbench.store import postgres as embedded

    home = home_dir("wb-mcp-keys-")
    try:
        store = open_store(home, url="")
        reader, submitter = api_keys.create(store, "r", "read"), api_keys.create(store, "s", "submit")
        with _HttpServer(http_app(gateway(places, tools=("read_file",)), "127.0.0.1", None)) as url:
            call = {"json": {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                    "headers": {"Accept": "application/json, text/event-stream"}}
            anonymous = httpx.post(url, **call)
            read_only = httpx.post(url, **{**call, "headers": {**call["headers"], "X-API-Key": reader}})
            with_key = streamable_http_client(url, http_client=httpx2.AsyncClient(headers={"X-API-Key": submitter}))
            _, [result] = session(with_key, ("read_file", {"path": "notes.txt"}))
        assert anonymous.status_code == 401 and read_only.status_code == 403
        assert not result.is_error and text(result) == FILE_TEXT
    finally:
        close_store(timeout=10)
        embedded.stop(home / "postgres")
        shutil.rmtree(home, ignore_errors=True)
