"""Named API keys with scopes against the real `workbench serve` (model `test:echo`), on every surface: REST,
the task stream WebSocket, /v1, a Panel session's WebSocket and the browser login. Keys are made with the
real `workbench keys` command against the served home; the table holds hashes only; every refusal is an
`access_denied` event without key material; a revoked key stops working within the key ring's refresh."""

from __future__ import annotations

import json
import re
import time

import httpx
import psycopg
import pytest
from helpers import REPO, run_cli, served_app

from workbench.server import auth

pytestmark = pytest.mark.timeout(600)
REFRESH_S = 2.5  # the key ring re-reads the keys at most every 2 s


@pytest.fixture(scope="module")
def served():
    with served_app("apikeys", WORKBENCH_MODEL="test:echo") as app:
        yield app


@pytest.fixture(scope="module")
def keys(served) -> dict[str, str]:
    made = {}
    for name, scope in (("reader", "read"), ("alice", "submit"), ("bob", "submit"), ("root", "admin"),
                        ("doomed", "read")):
        out = run_cli("keys", "create", name, "--scope", scope, "--json", env=served.env, timeout=120)
        assert out.returncode == 0, out.stderr
        made[name] = json.loads(out.stdout)["key"]
    time.sleep(REFRESH_S)
    return made


def db(served) -> psycopg.Connection:
    return psycopg.connect(f"postgresql://postgres:@/postgres?host={served.home / 'postgres'}", autocommit=True)


def call(served, method: str, path: str, key: str | None = None, **kw) -> httpx.Response:
    headers = {"X-API-Key": key} if key else {}
    return httpx.request(method, f"{served.url}{path}", headers={**headers, **kw.pop("headers", {})}, timeout=60,
                         **kw)


def ws_status(served, path: str, headers: dict | None = None, subprotocols: list[str] | None = None) -> int:
    """101 when the handshake is accepted, else the refusal's HTTP status."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = served.url.replace("http", "ws", 1) + path
    try:
        with connect(url, additional_headers=headers or {}, subprotocols=subprotocols, open_timeout=30):
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


def panel_session(served, headers: dict) -> int:
    """Open the tasks page as a browser would (its HTML carries the session's signed token), then its
    WebSocket with the same credential: 101 when the session opens."""
    page = httpx.get(f"{served.url}/tasks", headers={**headers, "Accept": "text/html"}, timeout=60)
    if page.status_code != 200:
        return page.status_code
    token = re.search(r'"token":\s*"([^"]+)"', page.text) or re.search(r"token=([A-Za-z0-9_.-]+)", page.text)
    assert token, page.text[:500]
    return ws_status(served, "/tasks/ws", headers, subprotocols=["bokeh", token.group(1)])


def test_keys_are_stored_hashed_and_listed_without_secrets(served, keys):
    assert all(k.startswith("wbk_") for k in keys.values()) and len(set(keys.values())) == len(keys)
    with db(served) as conn:
        rows = conn.execute("SELECT name, key_id, scope, salt, secret_hash, session_hash FROM api_keys").fetchall()
    stored = " ".join(repr(r) for r in rows)
    assert len(rows) == 5 and not any(secret in stored or secret[13:] in stored for secret in keys.values())
    assert len({bytes(r[3]) for r in rows}) == 5  # a salt per key
    listed = run_cli("keys", "list", "--json", env=served.env, timeout=120)
    assert listed.returncode == 0 and not any(secret in listed.stdout for secret in keys.values())
    assert {r["name"]: r["scope"] for r in json.loads(listed.stdout)}["root"] == "admin"
    again = run_cli("keys", "create", "alice", "--scope", "read", env=served.env, timeout=120)
    assert again.returncode == 2 and "exists already" in again.stderr and "Traceback" not in again.stderr
    bad = run_cli("keys", "create", "x y", "--scope", "read", env=served.env, timeout=120)
    assert bad.returncode == 2 and "not valid" in bad.stderr


def test_rest_scopes(served, keys):
    assert call(served, "GET", "/api/v1/tasks").status_code == 401
    assert call(served, "GET", "/api/v1/tasks", "wbk_00000000_" + "A" * 43).status_code == 401
    assert call(served, "GET", "/api/v1/tasks", keys["reader"]).status_code == 200
    refused = call(served, "POST", "/api/v1/tasks", keys["reader"], json={"prompt": "hi", "mode": "single"})
    assert refused.status_code == 403 and refused.json()["type"] == "Forbidden" and "submit" in refused.json()["error"]
    assert call(served, "POST", "/api/v1/tasks", keys["alice"], json={"prompt": "hi", "mode": "single"}).status_code == 201
    for path in ("/api/v1/keys", "/api/v1/config"):
        assert call(served, "GET", path, keys["alice"]).status_code == 403
        ok = call(served, "GET", path, keys["root"])
        assert ok.status_code == 200 and not any(secret in ok.text for secret in keys.values())
    anonymous = call(served, "GET", "/health")  # open, but without a key: up or not, no details
    assert anonymous.status_code == 200 and set(anonymous.json()) == {"status", "failed", "details"}
    detailed = call(served, "GET", "/health", keys["reader"]).json()
    assert {"checks", "degraded", "breakers"} <= set(detailed) and detailed["status"] == anonymous.json()["status"]
    assert call(served, "GET", "/health?quick=1").json()["status"] == "ok"


def test_a_submit_key_cancels_only_its_own_tasks(served, keys):
    task = call(served, "POST", "/api/v1/tasks", keys["alice"], json={"prompt": "mine", "mode": "single"}).json()
    other = call(served, "POST", f"/api/v1/tasks/{task['id']}/cancel", keys["bob"])
    assert other.status_code == 403 and "admin" in other.json()["error"]
    assert call(served, "POST", f"/api/v1/tasks/{task['id']}/cancel", keys["alice"]).status_code in (200, 409)
    assert call(served, "POST", f"/api/v1/tasks/{task['id']}/cancel", keys["root"]).status_code in (200, 409)
    assert call(served, "DELETE", f"/api/v1/tasks/{task['id']}", keys["alice"]).status_code == 403
    assert call(served, "POST", "/api/v1/tasks/00000000-0000-0000-0000-000000000000/cancel",
                keys["bob"]).status_code == 404


def test_openai_routes_need_submit(served, keys):
    body = {"model": "test:echo", "messages": [{"role": "user", "content": "hi"}]}
    assert call(served, "POST", "/v1/chat/completions", json=body).status_code == 401
    refused = call(served, "POST", "/v1/chat/completions", keys["reader"], json=body)
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "Forbidden"  # OpenAI's shape
    assert call(served, "GET", "/v1/models", keys["reader"]).status_code == 200
    ok = call(served, "POST", "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {keys['bob']}"})
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] == "hi"


def test_a_key_names_only_its_own_task_in_x_workbench_task(served, keys):
    task = call(served, "POST", "/api/v1/tasks", keys["alice"], json={"prompt": "alice's", "mode": "single"}).json()
    body = {"model": "test:echo", "messages": [{"role": "user", "content": "charge it to alice"}]}

    def chat(key: str, task_id: str) -> httpx.Response:
        return call(served, "POST", "/v1/chat/completions", key, json=body, headers={"X-Workbench-Task": task_id})

    stolen = chat(keys["bob"], task["id"])  # bob may not spend alice's task budget nor write into its trace
    assert stolen.status_code == 403 and stolen.json()["error"]["code"] == "task_not_yours", stolen.text
    assert chat(keys["alice"], task["id"]).status_code == 200
    assert chat(keys["root"], task["id"]).status_code == 200
    bad = chat(keys["bob"], "'; DROP TABLE tasks; --")
    assert bad.status_code == 400 and "UUID" in bad.json()["error"]["message"]
    deadline, reasons = time.monotonic() + 30, []
    while not any("X-Workbench-Task" in r and "'bob'" in r for r in reasons):  # events are written asynchronously
        assert time.monotonic() < deadline, reasons
        time.sleep(0.3)
        with db(served) as conn:
            reasons = [r[0] or "" for r in conn.execute("SELECT error FROM events WHERE kind = 'access_denied'")]


def test_the_task_stream_and_panel_sockets(served, keys):
    task = call(served, "POST", "/api/v1/tasks", keys["alice"], json={"prompt": "stream", "mode": "single"}).json()
    stream = f"/api/v1/tasks/{task['id']}/stream"
    assert ws_status(served, stream) == 401
    assert ws_status(served, stream, {"X-API-Key": keys["reader"]}) == 101
    assert panel_session(served, {"X-API-Key": keys["reader"]}) == 403  # a Panel session can submit
    assert panel_session(served, {}) == 303  # a browser without a key is sent to /login
    assert panel_session(served, {"X-API-Key": keys["alice"]}) == 101


def test_browser_login_with_a_stored_key(served, keys):
    with httpx.Client(base_url=served.url, follow_redirects=False, timeout=60) as c:
        assert c.post("/login", data={"key": "wbk_nope", "next": "/tasks"}).status_code == 401
        ok = c.post("/login", data={"key": keys["alice"], "next": "/tasks"})
        assert ok.status_code == 303
        cookie = ok.cookies[auth.COOKIE]
        assert keys["alice"] not in cookie and keys["alice"][13:] not in cookie
        assert c.get("/api/v1/tasks").status_code == 200
        assert c.get("/api/v1/keys").status_code == 403  # the cookie carries the key's scope
    assert panel_session(served, {"Cookie": f"{auth.COOKIE}={cookie}"}) == 101
    assert ws_status(served, "/tasks/ws", {"Cookie": f"{auth.COOKIE}={cookie[:-4]}0000"}) == 401


def test_a_revoked_key_stops_working(served, keys):
    assert call(served, "GET", "/api/v1/tasks", keys["doomed"]).status_code == 200
    out = run_cli("keys", "revoke", "doomed", env=served.env, timeout=120)
    assert out.returncode == 0, out.stderr
    time.sleep(REFRESH_S)
    assert call(served, "GET", "/api/v1/tasks", keys["doomed"]).status_code == 401
    assert ws_status(served, "/api/v1/tasks/x/stream", {"X-API-Key": keys["doomed"]}) == 401
    again = run_cli("keys", "revoke", "doomed", env=served.env, timeout=120)
    assert again.returncode == 4 and "No active key" in again.stderr


def test_every_denial_is_an_event_without_key_material(served, keys):
    assert call(served, "GET", "/api/v1/tasks", keys["reader"], headers={"Host": "evil.example"}).status_code == 400
    assert call(served, "POST", "/api/v1/tasks", keys["alice"], json={"prompt": "x"},
                headers={"Origin": "http://evil.example"}).status_code == 403
    assert call(served, "GET", "/api/v1/keys", keys["reader"]).status_code == 403
    deadline = time.monotonic() + 30
    rows: list = []
    while time.monotonic() < deadline:
        with db(served) as conn:
            rows = conn.execute("SELECT error, payload::text FROM events WHERE kind = 'access_denied'").fetchall()
        if any("'reader' has scope read; GET /api/v1/keys" in (r[0] or "") for r in rows):
            break
        time.sleep(0.5)
    reasons = " | ".join(r[0] for r in rows)
    assert "key 'reader' has scope read; GET /api/v1/keys needs admin" in reasons
    assert "no API key sent" in reasons and "wrong or revoked API key" in reasons
    assert "may cancel only its own tasks" in reasons
    assert "Host 'evil.example' is not allowed" in reasons and "cross-site request from Origin" in reasons
    everything = reasons + " ".join(r[1] for r in rows)
    log = (REPO / "artifacts" / "apikeys-serve.log").read_text(errors="replace")
    for secret in keys.values():
        assert secret not in everything and secret not in log
        assert secret[13:] not in everything and secret[13:] not in log


def test_the_key_ring_fails_closed_when_the_store_cannot_say():
    """Keys read once stay in force while Postgres is down; a server that never read them lets in only
    WORKBENCH_API_KEY (it cannot tell an open server from one whose keys it cannot read)."""
    import asyncio
    import shutil

    from helpers import home_dir

    from workbench.store import api_keys, close_store, open_store
    from workbench.store import postgres as embedded

    home = home_dir("wb-keyring-")
    env_key = "k-env-0123456789abcdef"
    try:
        store = open_store(home, url="")
        secret = api_keys.create(store, "ops", "submit")

        async def scenario() -> None:
            warm = auth.KeyRing(None)
            assert (await warm.identify(secret, None))[0] == auth.Caller("ops", "submit")
            assert embedded.stop(home / "postgres")
            warm.refresh_soon()
            assert (await warm.identify(secret, None))[0] == auth.Caller("ops", "submit")  # the last keys read
            cold = auth.KeyRing(None)
            assert await cold.enabled()  # unknown keys: a key is needed
            caller, why = await cold.identify(secret, None)
            assert caller is None and "unreachable" in why
            with_env = auth.KeyRing(env_key)
            assert (await with_env.identify(env_key, None))[0].scope == "admin"

        asyncio.run(scenario())
    finally:
        close_store(timeout=5)
        embedded.stop(home / "postgres")
        shutil.rmtree(home, ignore_errors=True)
