"""The http tools (http_get, http_post): allowed hosts only, every redirect hop checked, answers capped, the
workbench's own port out of reach, credentials never stored in events. Against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

import pytest
from helpers import local_site

from workbench.errors import ToolError, ToolRefused
from workbench.testing import MemorySink
from workbench.tools import Toolset
from workbench.tools.fetch import MAX_BODY_BYTES, request
from workbench.tools.web_policy import WebPolicy


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(status)
        for key, value in {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        port = self.server.server_address[1]
        routes = {
            "/hello": lambda: self._send(200, "héllo".encode(), {"Set-Cookie": "sid=1", "ETag": '"v1"'}),
            "/big": lambda: self._send(200, b"x" * (MAX_BODY_BYTES + 5000)),
            "/away": lambda: self._send(302, headers={"Location": "http://example.com/"}),
            "/home": lambda: self._send(302, headers={"Location": f"http://127.0.0.1:{port}/hello"}),
            "/loop": lambda: self._send(302, headers={"Location": "/loop"}),
            "/auth": lambda: self._send(200, self.headers.get("Authorization", "none").encode()),
        }
        routes.get(self.path, lambda: self._send(404, b"no such page"))()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self._send(201, json.dumps({"got": body.decode(), "type": self.headers["Content-Type"]}).encode(),
                   {"Content-Type": "application/json"})


@pytest.fixture(scope="module")
def site():
    with local_site(Handler) as url:
        yield url


POLICY = WebPolicy(timeout_s=5)


def test_get_returns_status_text_and_only_harmless_headers(site):
    out = request("GET", f"{site}/hello", policy=POLICY)
    assert out["status"] == 200 and out["text"] == "héllo" and out["truncated"] is False
    assert out["headers"]["etag"] == '"v1"' and "set-cookie" not in out["headers"]


def test_post_sends_the_body_with_its_type(site):
    out = request("POST", f"{site}/items", body='{"a": 1}', headers={"Content-Type": "application/json"},
                  policy=POLICY)
    assert out["status"] == 201 and json.loads(out["text"]) == {"got": '{"a": 1}', "type": "application/json"}


def test_a_large_answer_is_cut_and_says_so(site):
    out = request("GET", f"{site}/big", policy=POLICY)
    assert out["truncated"] is True and len(out["text"]) == MAX_BODY_BYTES


def test_redirects_are_followed_only_to_allowed_hosts(site):
    assert request("GET", f"{site}/home", policy=POLICY)["text"] == "héllo"
    with pytest.raises(ToolRefused, match="example.com is not allowed"):
        request("GET", f"{site}/away", policy=POLICY)
    with pytest.raises(ToolError, match="redirects more than"):
        request("GET", f"{site}/loop", policy=POLICY)


def test_disallowed_hosts_schemes_and_the_workbench_port_are_refused(site):
    port = int(site.rsplit(":", 1)[1])
    for url, why in [("http://example.com/", "not allowed"), ("file:///etc/passwd", "only http and https"),
                     ("ws://127.0.0.1:1/", "only http and https")]:
        with pytest.raises(ToolRefused, match=why):
            request("GET", url, policy=POLICY)
    own = WebPolicy(blocked_ports=frozenset({port}), timeout_s=5)
    with pytest.raises(ToolRefused, match="workbench's own server"):
        request("GET", f"{site}/hello", policy=own)


def test_bad_arguments_are_one_clear_error(site):
    with pytest.raises(ToolError, match="may not be given: Host"):
        request("GET", f"{site}/hello", headers={"Host": "evil"}, policy=POLICY)
    with pytest.raises(ToolError, match="line break"):
        request("GET", f"{site}/hello", headers={"X-A": "1\r\nX-B: 2"}, policy=POLICY)
    with pytest.raises(ToolError, match="request body is"):
        request("POST", f"{site}/items", body="x" * 200_000, policy=POLICY)
    with pytest.raises(ToolError, match="Could not reach"):
        request("GET", "http://127.0.0.1:1/", policy=POLICY)


def test_an_agents_call_logs_the_arguments_without_the_credential(site, monkeypatch):
    from workbench.config import get_settings
    from workbench.tools.fetch import HTTP_TOOLS

    monkeypatch.setenv("WORKBENCH_PORT", "1")  # the policy from settings: this test's site is not the workbench
    get_settings.cache_clear()
    tools = Toolset(list(HTTP_TOOLS.values()), permissions={"network"}, agent="general")
    with MemorySink() as events:
        call = tools.call("http_get", {"url": f"{site}/auth", "headers": {"Authorization": "Bearer sk-live-123"}})
    assert call.error is None and json.loads(call.result)["text"] == "Bearer sk-live-123"  # it was sent
    [event] = events.of("tool_call")
    assert event.get("arguments")["headers"] == {"Authorization": "****"}
    assert "sk-live-123" not in repr(event.payload["arguments"])
