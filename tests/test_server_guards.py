"""The served app's guards, in process: the Host allowlist, the Origin and content-type checks, the API key on
HTTP and WebSockets (header, Bearer, the login cookie), the streaming body limit, and a blank API key.

The guards are installed on a small FastAPI app exactly as `create_app` installs them (`app._guard`), with
stand-in routes, so no store or cluster starts; tests/test_server_hardening.py drives the real server.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from fastapi import FastAPI, Request, WebSocket
from helpers import free_port, run_cli
from starlette.testclient import TestClient, WebSocketDenialResponse

from workbench.config import Settings
from workbench.hosts import is_loopback_url
from workbench.server import app as server_app
from workbench.server import auth, guards

KEY = "k-guards-0123456789"
BASE = "http://127.0.0.1:5006"
EVIL = "http://evil.example"
WS = "ws://127.0.0.1:5006/api/v1/tasks/t1/stream"  # TestClient resolves WebSocket paths against ws://testserver


def guarded(key: str | None = None, **settings: str) -> FastAPI:
    app = FastAPI()
    seen: list[int] = []
    app.state.seen = seen  # body sizes the routes were given

    @app.post("/api/v1/tasks")
    async def create(request: Request) -> dict:
        seen.append(len(await request.body()))
        return {"ok": True}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict:
        seen.append(len(await request.body()))
        return {"ok": True}

    @app.get("/tasks")
    async def page() -> dict:
        return {"page": True}

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.websocket("/api/v1/tasks/{task_id}/stream")
    async def stream(websocket: WebSocket, task_id: str) -> None:
        await websocket.accept()
        await websocket.send_json({"task": task_id})
        await websocket.close()

    app.include_router(auth.router)
    server_app._guard(app, Settings(api_key=key, **settings), "127.0.0.1")
    return app


def client(app: FastAPI, **kw) -> TestClient:
    return TestClient(app, base_url=BASE, **kw)


def ws_denied(c: TestClient, url: str, headers: dict | None = None) -> WebSocketDenialResponse:
    with pytest.raises(WebSocketDenialResponse) as denied, c.websocket_connect(url, headers=dict(headers or {})):
        pass
    return denied.value


# --- Host allowlist (DNS rebinding) -----------------------------------------------------------------------

def test_foreign_host_is_refused_on_http_and_websocket():
    c = client(guarded())
    r = c.get("/tasks", headers={"Host": "evil.example"})
    assert r.status_code == 400 and r.json()["type"] == "HostNotAllowed"
    assert "WORKBENCH_ALLOWED_HOSTS" in r.json()["error"]
    assert ws_denied(c, WS, {"Host": "evil.example:5006"}).status_code == 400
    for host in ("127.0.0.1:5006", "localhost:5006", "[::1]:5006", "localhost"):
        assert c.get("/tasks", headers={"Host": host}).status_code == 200, host
    with c.websocket_connect(WS) as ws:
        assert ws.receive_json() == {"task": "t1"}


def test_allowed_hosts_setting_adds_names():
    c = client(guarded(allowed_hosts="workbench.lan, box:5006"))
    assert c.get("/tasks", headers={"Host": "workbench.lan:5006"}).status_code == 200
    assert c.get("/tasks", headers={"Host": "box"}).status_code == 200
    assert c.get("/tasks", headers={"Host": "evil.example"}).status_code == 400


# --- Origin and content type (cross-site requests) -------------------------------------------------------

def test_cross_site_writes_and_websockets_are_refused():
    app = guarded()
    c = client(app)
    r = c.post("/api/v1/tasks", json={"prompt": "x"}, headers={"Origin": EVIL})
    assert r.status_code == 403 and r.json()["type"] == "CrossSiteRequest" and app.state.seen == []
    assert c.post("/api/v1/tasks", json={}, headers={"Origin": "null"}).status_code == 403
    assert ws_denied(c, WS, {"Origin": EVIL}).status_code == 403
    # same origin, and API clients that send no Origin at all, pass; reads are not checked
    assert c.post("/api/v1/tasks", json={}, headers={"Origin": BASE}).status_code == 200
    assert c.post("/api/v1/tasks", json={}).status_code == 200
    assert c.get("/tasks", headers={"Origin": EVIL}).status_code == 200
    with c.websocket_connect(WS, headers={"Origin": BASE}) as ws:
        assert ws.receive_json() == {"task": "t1"}
    assert "access-control-allow-origin" not in r.headers  # CORS stays closed


def test_allowed_origins_setting():
    c = client(guarded(allowed_origins="https://ui.example"))
    assert c.post("/api/v1/tasks", json={}, headers={"Origin": "https://ui.example"}).status_code == 200
    assert c.post("/api/v1/tasks", json={}, headers={"Origin": EVIL}).status_code == 403


def test_chat_completions_takes_json_only():
    """A cross-site form can send text/plain without a preflight; the API never takes it."""
    app = guarded()
    c = client(app)
    body = '{"model": "test:echo", "messages": [{"role": "user", "content": "hi"}]}'
    r = c.post("/v1/chat/completions", content=body, headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["error"]["type"] == "UnsupportedMediaType"  # OpenAI's shape under /v1
    assert c.post("/api/v1/tasks", content="prompt=x",
                  headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 415
    assert c.post("/v1/chat/completions", content=body, headers={"Content-Type": ""}).status_code == 415
    assert app.state.seen == []
    ok = c.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json; charset=utf-8"})
    assert ok.status_code == 200
    assert c.post("/v1/chat/completions", content=body).status_code == 200  # API clients that name no type


# --- the API key ------------------------------------------------------------------------------------------

def test_websocket_needs_the_key(caplog):
    c = client(guarded(KEY))
    with caplog.at_level(logging.WARNING, logger="workbench.server.guards"):
        denied = ws_denied(c, WS)
        wrong = ws_denied(c, WS, {"X-API-Key": "k-wrong-0123456789"})
    assert denied.status_code == 401 and wrong.status_code == 401
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 2 and all("/api/v1/tasks/t1/stream" in m for m in refusals)
    assert KEY not in caplog.text and "k-wrong" not in caplog.text  # never the key, right or wrong
    for headers in ({"X-API-Key": KEY}, {"Authorization": f"Bearer {KEY}"}):
        with c.websocket_connect(WS, headers=headers) as ws:
            assert ws.receive_json() == {"task": "t1"}


def test_http_needs_the_key_and_health_stays_open():
    c = client(guarded(KEY))
    r = c.post("/api/v1/tasks", json={})
    assert r.status_code == 401 and r.json()["type"] == "Unauthorized"
    assert c.post("/api/v1/tasks", json={}, headers={"X-API-Key": KEY}).status_code == 200
    assert c.get("/health").status_code == 200


def test_browser_logs_in_once_and_the_cookie_opens_pages_and_sockets():
    c = client(guarded(KEY), follow_redirects=False)
    r = c.get("/tasks?id=abc", headers={"Accept": "text/html"})
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Ftasks%3Fid%3Dabc"
    assert "password" in c.get("/login").text
    wrong = c.post("/login", data={"key": "nope", "next": "/tasks"})
    assert wrong.status_code == 401 and auth.COOKIE not in wrong.cookies
    ok = c.post("/login", data={"key": KEY, "next": "/tasks?id=abc"}, headers={"Origin": BASE})
    assert ok.status_code == 303 and ok.headers["location"] == "/tasks?id=abc"
    cookie = ok.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower() and KEY not in cookie
    assert c.get("/tasks").status_code == 200  # the client keeps the cookie
    with c.websocket_connect(WS) as ws:
        assert ws.receive_json() == {"task": "t1"}
    # the login form only sends the browser to a path on this server
    assert c.post("/login", data={"key": KEY, "next": "//evil.example/x"}).headers["location"] == "/"


def test_a_cross_site_login_is_refused():
    c = client(guarded(KEY), follow_redirects=False)
    assert c.post("/login", data={"key": KEY}, headers={"Origin": EVIL}).status_code == 403


# --- body limit -------------------------------------------------------------------------------------------

def test_a_chunked_body_is_cut_off_at_the_limit_without_reading_the_rest():
    called: list[bool] = []

    async def inner(scope, receive, send):
        called.append(True)

    chunk = b"x" * 65_536
    total_chunks = 10_000_000 // len(chunk)
    read = 0
    sent: list[dict] = []

    async def receive():
        nonlocal read
        read += 1
        return {"type": "http.request", "body": chunk, "more_body": read < total_chunks}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions",
             "headers": [(b"transfer-encoding", b"chunked"), (b"content-type", b"application/json")]}
    asyncio.run(guards.BodyLimit(inner, limit=2_000_000)(scope, receive, send))
    assert sent[0]["status"] == 413 and not called
    assert read * len(chunk) < 2_000_000 + 2 * len(chunk)  # stopped right after the limit, not at 10 MB
    assert b"limit is 2,000,000" in sent[1]["body"] and b'"message"' in sent[1]["body"]


def test_body_limit_in_the_app():
    app = guarded()
    c = client(app)
    big = b'{"prompt": "' + b"x" * 2_100_000 + b'"}'
    declared = c.post("/api/v1/tasks", content=big, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413 and declared.json()["type"] == "PayloadTooLarge"

    def chunks():
        for i in range(0, len(big), 100_000):
            yield big[i:i + 100_000]

    streamed = c.post("/api/v1/tasks", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413 and app.state.seen == []
    assert c.post("/api/v1/tasks", content=b'{"prompt": "ok"}', headers={"Content-Type": "application/json"}).json()
    assert app.state.seen == [16]


# --- a blank key ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_api_key_is_no_key(blank, monkeypatch):
    monkeypatch.setenv("WORKBENCH_API_KEY", blank)
    assert Settings().api_key is None


def test_serve_refuses_a_public_bind_with_a_blank_key():
    out = run_cli("serve", "--host", "0.0.0.0", "--port", str(free_port()), env={"WORKBENCH_API_KEY": ""},
                  timeout=60)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode != 0 and len(lines) == 1 and "WORKBENCH_API_KEY" in lines[0], out.stderr
    assert "Traceback" not in out.stderr and "serving on" not in out.stdout


def test_serve_treats_every_loopback_address_as_local():
    assert all(guards.is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"))
    assert not any(guards.is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.5", "example.com"))



# --- denial events ----------------------------------------------------------------------------------------

def test_denials_are_events_within_a_budget_per_client(monkeypatch):
    """A client sending wrong keys in a loop gets its refusals, but at most `limit` events per window; the
    next window's first event says how many were left out. Another client has its own budget."""
    from workbench.testing import MemorySink

    budget = guards.DenialBudget(limit=3, window_s=60.0)
    monkeypatch.setattr(guards, "DENIALS", budget)
    c = client(guarded(KEY))
    sink = MemorySink()
    with sink:
        for _ in range(5):
            assert c.get("/api/v1/tasks", headers={"X-API-Key": "k-wrong-0123456789"}).status_code == 401
        assert c.get("/api/v1/tasks", headers={"Host": "evil.example"}).status_code == 400  # same client
    denied = [e for e in sink.events if e.kind == "access_denied"]
    assert len(denied) == 3 and all(e.error == "wrong or revoked API key" for e in denied)
    assert all("k-wrong" not in str(e.payload) for e in denied)
    start, recorded, left_out = budget.windows["testclient"]
    assert (recorded, left_out) == (3, 3)
    budget.windows["testclient"] = (start - 61, recorded, left_out)  # the window has passed
    with sink:
        c.get("/api/v1/tasks")
    latest = [e for e in sink.events if e.kind == "access_denied"][-1]
    assert latest.payload["left_out_before"] == 3 and latest.error == "no API key sent"
    assert budget.admit("10.0.0.9", 0.0) == (True, 0)  # another address: its own budget


def test_a_url_is_loopback_by_its_host_with_or_without_a_scheme():
    assert all(is_loopback_url(u) for u in ("http://127.0.0.1:11434", "http://[::1]:8000/v1", "localhost:11434",
                                            "https://localhost/v1", "127.0.0.5"))
    assert not any(is_loopback_url(u) for u in ("https://api.openai.com/v1", "example.com:80", "", None,
                                                "http://127.0.0.1.example.com/", "http://10.0.0.1"))
