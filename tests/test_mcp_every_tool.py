"""Every MCP tool, called by the SDK's client on a `workbench mcp serve` child process, over stdio and over
streamable HTTP: the real store (embedded Postgres, a published analytics snapshot), the real sandbox, headless
Chromium and a page served by this test on 127.0.0.1. A profile that allows everything; each call must succeed
and give the result that tool exists for."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from helpers import REPO, free_port, local_site, requires, run_cli, sandbox_ok
from test_mcp import session, text

pytestmark = [pytest.mark.timeout(600), pytest.mark.browser]

PAGE = b"""<!doctype html><title>Order form</title><h1>Order</h1>
<input id="qty" value="1"><button id="go" onclick="document.querySelector('h1').textContent='Ordered'">Go</button>"""


class Site(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        body = PAGE if self.path == "/" else b'{"items": [1, 2, 3]}'
        self.send_response(200)
        self.send_header("Content-Type", "text/html" if self.path == "/" else "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        got = self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"received": json.loads(got)}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def site():
    with local_site(Site) as url:
        yield url


@pytest.fixture
def served_home(tmp_path: Path) -> dict[str, Any]:
    """A home with a task in its store and a published snapshot, and a profile that allows every tool."""
    home = Path(os.environ["WORKBENCH_HOME"])
    root = tmp_path / "root"
    root.mkdir()
    (root / "notes.txt").write_text("the needle is here\n")
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(yaml.safe_dump({"profiles": {"all": {"tools": ["*"], "roots": [str(root)],
                                                             "read_only": False}}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_MCP")}
    env.update(PYTHONPATH=str(REPO), WORKBENCH_HOME=str(home), WORKBENCH_MCP_PROFILES=str(profiles),
               WORKBENCH_MCP_PROFILE="all")
    for args in (["submit", "count the events", "--model", "test:echo"],
                 ["db", "sync"]):  # the sync publishes the analytics snapshot query_db reads
        done = run_cli(*args, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
    return {"env": env, "root": root}


def every_call(site: str) -> list[tuple[str, dict]]:
    return [
        ("read_file", {"path": "notes.txt"}),
        ("list_files", {}),
        ("search_files", {"text": "needle"}),
        ("write_file", {"path": "out/made.txt", "content": "written over MCP"}),
        ("query_db", {"sql": "SELECT count(*) AS n FROM tasks"}),
        ("run_code", {"code": "print(6 * 7)"}),
        ("run_shell", {"command": "echo shell-ok | tr a-z A-Z"}),
        ("submit_task", {"prompt": "say hi", "model": "test:echo"}),
        ("browser_open", {"url": f"{site}/"}),
        ("browser_fill", {"selector": "#qty", "value": "3"}),
        ("browser_click", {"selector": "#go"}),
        ("browser_text", {"selector": "h1"}),
        ("browser_screenshot", {}),
        ("http_get", {"url": f"{site}/items"}),
        ("http_post", {"url": f"{site}/items", "body": '{"item": 4}'}),
    ]


def check(listed: list[Any], results: list[Any], root: Path) -> str:
    """Asserts each result; returns the submitted task's id (its status and result are asked next)."""
    names = [name for name, _ in every_call("http://x")]
    assert {t.name for t in listed} == {*names, "task_status", "task_result"}
    errors = {name: text(r) for name, r in zip(names, results, strict=True) if r.is_error}
    assert not errors, errors
    out = {name: r for name, r in zip(names, results, strict=True)}
    assert text(out["read_file"]) == "the needle is here\n"
    assert out["list_files"].structured_content["result"] == ["notes.txt"]
    assert [m["file"] for m in out["search_files"].structured_content["matches"]] == ["notes.txt"]
    assert (root / "out" / "made.txt").read_text() == "written over MCP"
    assert out["query_db"].structured_content["rows"] == [[1]]  # the task submitted before the sync
    assert "42" in out["run_code"].structured_content["stdout"]
    assert out["run_shell"].structured_content["stdout"] == "SHELL-OK\n"
    assert out["browser_open"].structured_content["title"] == "Order form"
    assert out["browser_text"].structured_content["text"] == "Ordered"  # the fill and the click happened
    assert Path(out["browser_screenshot"].structured_content["path"]).read_bytes()[:4] == b"\x89PNG"
    assert json.loads(out["http_get"].structured_content["text"]) == {"items": [1, 2, 3]}
    assert json.loads(out["http_post"].structured_content["text"]) == {"received": {"item": 4}}
    return out["submit_task"].structured_content["id"]


def follow(target: Any, task_id: str) -> None:
    _, [status, result] = session(target, ("task_status", {"task_id": task_id}), ("task_result", {"task_id": task_id}))
    assert not status.is_error and status.structured_content["status"] == "pending"  # no runner: it waits
    assert not result.is_error and result.structured_content["finished"] is False


@requires(*sandbox_ok(toolchain=False))
def test_every_tool_over_stdio_and_streamable_http(served_home, site):
    import mcp

    env, root = served_home["env"], served_home["root"]
    params = mcp.StdioServerParameters(command=sys.executable, args=["-m", "workbench", "mcp", "serve"], env=env,
                                       cwd=str(REPO))
    listed, results = session(params, *every_call(site))
    follow(params, check(listed, results, root))

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "workbench", "mcp", "serve", "--http", "--port", str(port)],
                              env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                httpx.get(url, timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "workbench mcp serve --http did not answer in 120 s"
                time.sleep(0.3)
        shutil.rmtree(root / "out")  # what the stdio round wrote
        listed, results = session(url, *every_call(site))
        follow(url, check(listed, results, root))
    finally:
        server.terminate()
        server.wait(60)
