"""The real `workbench serve` with WORKBENCH_API_KEY set (model `test:echo`): the task stream WebSocket needs
the key, a foreign Host and a cross-site write are refused, a chunked body past the limit is answered 413
before it is all sent, refusals are logged without the key, and in Chromium a browser logs in once and then
sees a task whose prompt is HTML as text (nothing in it runs)."""

from __future__ import annotations

import json
import select
import socket
import tempfile
import time

import httpx
import pytest
from helpers import REPO, chromium_ok, require, served_app

pytestmark = pytest.mark.timeout(600)
KEY = "k-hardening-0123456789"
PAYLOAD = "<img src=x onerror=\"document.title='pwned-img'\"> and <script>document.title='pwned-script'</script>"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
UI_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def served():
    with served_app("hardening", WORKBENCH_MODEL="test:echo", WORKBENCH_API_KEY=KEY) as app:
        yield app


def api(served, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(method, f"{served.url}{path}", headers={"X-API-Key": KEY, **kw.pop("headers", {})},
                         timeout=60, **kw)


def finished_task(served, prompt: str) -> dict:
    task = api(served, "POST", "/api/v1/tasks", json={"prompt": prompt, "mode": "single"}).json()
    deadline = time.monotonic() + 120
    while task["status"] not in ("completed", "failed", "cancelled") and time.monotonic() < deadline:
        time.sleep(0.3)
        task = api(served, "GET", f"/api/v1/tasks/{task['id']}").json()
    return task


def test_the_task_stream_needs_the_key(served):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    task = finished_task(served, "stream me")
    url = served.url.replace("http", "ws", 1) + f"/api/v1/tasks/{task['id']}/stream"
    with pytest.raises(InvalidStatus) as refused, connect(url, open_timeout=30):
        pass
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body)["type"] == "Unauthorized"
    page_socket = served.url.replace("http", "ws", 1) + "/tasks/ws"  # a Panel session's WebSocket
    with pytest.raises(InvalidStatus) as refused, connect(page_socket, open_timeout=30):
        pass
    assert refused.value.response.status_code == 401
    with connect(url, additional_headers={"X-API-Key": KEY}, open_timeout=30) as ws:
        first = json.loads(ws.recv(timeout=30))
    assert first["type"] == "event" and first["event"]["task_id"] == task["id"]


def test_a_foreign_host_and_a_cross_site_write_are_refused(served):
    r = api(served, "GET", "/api/v1/tasks", headers={"Host": "evil.example"})
    assert r.status_code == 400 and r.json()["type"] == "HostNotAllowed"
    body = {"model": "test:echo", "messages": [{"role": "user", "content": "hi"}]}
    r = api(served, "POST", "/v1/chat/completions", json=body, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and r.json()["error"]["type"] == "CrossSiteRequest"
    r = api(served, "POST", "/v1/chat/completions", content=json.dumps(body), headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    ok = api(served, "POST", "/v1/chat/completions", json=body)
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] == "hi"


def test_a_chunked_body_past_the_limit_is_refused_before_it_is_all_sent(served):
    """3 MB of a body meant to be 10 MB, then nothing: the answer must come without the rest."""
    port = int(served.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: {KEY}\r\n"
                  f"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        chunk = b"x" * 65_536
        sent = 0
        try:
            while sent < 3_000_000 and not select.select([s], [], [], 0)[0]:
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: it will not read the rest
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = s.recv(65_536)
            if not data:
                break
            answer += data
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:300]
    assert json.loads(body)["error"]["type"] == "PayloadTooLarge"


def test_refusals_are_logged_without_the_key(served):
    api(served, "GET", "/api/v1/tasks", headers={"X-API-Key": "k-wrong-key-987654321"})
    time.sleep(0.5)
    log = (REPO / "artifacts" / "hardening-serve.log").read_text(errors="replace")
    assert "refused GET /api/v1/tasks" in log and "401" in log
    assert KEY not in log and "k-wrong-key" not in log


@pytest.mark.browser
def test_browser_logs_in_and_sees_a_stored_script_as_text(served):
    from playwright.sync_api import sync_playwright

    require(*chromium_ok())
    task = finished_task(served, PAYLOAD)
    assert task["status"] == "completed", task
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = p.chromium.launch_persistent_context(profile, executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS,
                                                   headless=True, viewport={"width": 1280, "height": 800})
        try:
            tab = ctx.new_page()
            dialogs: list[str] = []
            tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            tab.goto(f"{served.url}/tasks?id={task['id']}")
            tab.get_by_placeholder("API key").fill(KEY)  # sent to the login page first
            tab.get_by_role("button", name="Log in").click()
            tab.get_by_text("Final answer").wait_for(timeout=UI_TIMEOUT_MS)  # the Panel page, over its WebSocket
            assert "id=" in tab.url
            tab.get_by_text("onerror=").first.wait_for(timeout=UI_TIMEOUT_MS)
            tab.wait_for_timeout(1_000)  # time for an injected handler to fire, if there were one
            assert "pwned" not in tab.title() and not dialogs, tab.title()
            assert tab.evaluate("document.querySelectorAll('img[src=x]').length") == 0
            # the prompt, the answer and the model call's messages, shown literally
            assert tab.get_by_text("<script>document.title='pwned-script'</script>").count() >= 2
            cookie = next(c for c in ctx.cookies() if c["name"] == "workbench_session")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["value"] != KEY
        finally:
            ctx.close()
