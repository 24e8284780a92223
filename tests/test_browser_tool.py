"""The browser tool on Debian's Chromium against pages this test serves on 127.0.0.1: open, text, fill, click,
screenshot; URLs off the allowlist refused; the page kept away from the workbench's own API (its requests,
its redirects, a direct open); the same tools over MCP with the profile's read-only rule."""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import chromium_ok, requires

from workbench.config import reload_settings
from workbench.errors import ToolError, ToolRefused
from workbench.testing import MemorySink
from workbench.tools import Toolset
from workbench.tools.browser import BROWSER_TOOLS, BrowserSession, close_session
from workbench.tools.web_policy import WebPolicy

pytestmark = requires(*chromium_ok())

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Site(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, pages: dict[str, str]):
        self.pages, self.hits = pages, []
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        page = self.server.pages.get(self.path)
        if page is None:
            self.send_response(404)
            self.end_headers()
            return
        if page.startswith("redirect:"):
            self.send_response(302)
            self.send_header("Location", page.removeprefix("redirect:"))
            self.end_headers()
            return
        body = page.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def api() -> Iterator[Site]:
    """Stands in for the workbench's own server: the page must never reach it."""
    site = Site({"/api/v1/tasks": '{"tasks": []}'})
    yield site
    site.shutdown()


@pytest.fixture(scope="module")
def site(api: Site) -> Iterator[Site]:
    form = """<html><head><title>Orders</title></head><body>
      <h1 id="total">Total: 42 orders</h1>
      <input id="name"><button id="go" onclick="document.querySelector('#out').textContent =
        'Hello ' + document.querySelector('#name').value">Greet</button>
      <p id="out"></p></body></html>"""
    spy = f"""<html><body><p>spy</p><script>
      fetch('{api.url}/api/v1/tasks').then(() => document.body.dataset.reached = 'yes')
    </script><img src="/to-api"></body></html>"""
    site = Site({"/": form, "/spy": spy, "/to-api": f"redirect:{api.url}/api/v1/tasks",
                 "/hop": "redirect:/", "/far": "redirect:http://example.com/"})
    yield site
    site.shutdown()


@pytest.fixture(scope="module")
def browser(api: Site, tmp_path_factory) -> Iterator[BrowserSession]:
    policy = WebPolicy(blocked_ports=frozenset({api.server_address[1]}), timeout_s=20)
    session = BrowserSession(policy, shots_dir=tmp_path_factory.mktemp("shots"))
    yield session
    session.close()


def test_open_read_fill_click_and_screenshot(browser, site):
    opened = browser.open(site.url + "/")
    assert opened["status"] == 200 and opened["title"] == "Orders"
    assert "Total: 42 orders" in opened["text"] and opened["blocked"] == []
    assert browser.text("#total")["text"] == "Total: 42 orders"
    assert browser.fill("#name", "Ada")["filled_chars"] == 3
    clicked = browser.click("#go")
    assert "Hello Ada" in clicked["text"]
    assert browser.text("#out")["text"] == "Hello Ada"
    shot = browser.screenshot()
    path = Path(shot["path"])
    assert path.is_file() and path.read_bytes()[:8] == PNG_MAGIC and shot["bytes"] == path.stat().st_size > 1000


def test_a_redirect_inside_the_allowed_hosts_is_followed(browser, site):
    assert browser.open(site.url + "/hop")["title"] == "Orders"


@pytest.mark.parametrize("url, why", [
    ("http://example.com/", "host example.com is not allowed"),
    ("http://127.0.0.2:8000/", "host 127.0.0.2 is not allowed"),
    ("http://localhost.example.com/", "not allowed"),
    ("file:///etc/passwd", "only http and https"),
    ("javascript:alert(1)", "only http and https"),
])
def test_a_url_off_the_allowlist_is_refused(browser, url, why):
    with pytest.raises(ToolRefused, match=why):
        browser.open(url)


def test_a_redirect_off_the_allowlist_is_refused(browser, site):
    with pytest.raises(ToolRefused, match="redirects where the host example.com is not allowed"):
        browser.open(site.url + "/far")


def test_the_page_cannot_reach_the_workbench_api(browser, site, api):
    api.hits.clear()
    with pytest.raises(ToolRefused, match="workbench's own server"):
        browser.open(api.url + "/api/v1/tasks")  # asked directly
    with MemorySink() as events:
        opened = browser.open(site.url + "/spy")  # a script's fetch and an image that redirects there
        assert "spy" in opened["text"]
        browser.text()  # the fetch may land after the load event: give it the next call's time
    assert api.hits == []
    assert any("/to-api" in b["url"] and "redirects where port" in b["reason"] for b in opened["blocked"])
    denials = [e for e in events.of("tool_call", refused=True) if e.get("blocked_request")]
    assert {e.get("blocked_request").split("/", 3)[-1] for e in denials} >= {"api/v1/tasks", "to-api"}


def test_calls_before_a_page_is_open_and_bad_selectors_are_tool_errors(tmp_path, site):
    fresh = BrowserSession(WebPolicy(timeout_s=5), shots_dir=tmp_path)
    try:
        with pytest.raises(ToolError, match="call browser_open"):
            fresh.text()
        fresh.open(site.url + "/")
        with pytest.raises(ToolError, match="gave up after 5 s"):
            fresh.click("#no-such-button")
        with pytest.raises(ToolError, match="A selector must be"):
            fresh.text("x" * 600)
    finally:
        fresh.close()


def test_the_tools_are_one_definition_for_agents_with_the_setting_and_events(monkeypatch, site, api):
    monkeypatch.setenv("WORKBENCH_PORT", str(api.server_address[1]))
    reload_settings()
    close_session()  # the process's browser is made with the settings of its first call
    toolset = Toolset(list(BROWSER_TOOLS.values()), permissions={"network"}, agent="general")
    try:
        with MemorySink() as events:
            ok = toolset.call("browser_open", {"url": site.url + "/"})
            shot = toolset.call("browser_screenshot", {})
            refused = toolset.call("browser_open", {"url": api.url + "/"})
        assert ok.error is None and "Total: 42 orders" in ok.result
        assert Path(json.loads(shot.result)["path"]).read_bytes()[:8] == PNG_MAGIC
        assert refused.refused and "workbench's own server" in refused.error
        logged = events.of("tool_call", agent="general")
        assert [(e.get("tool"), e.get("refused")) for e in logged] == [
            ("browser_open", False), ("browser_screenshot", False), ("browser_open", True)]
        without = Toolset(list(BROWSER_TOOLS.values()), agent="general").call("browser_open", {"url": site.url})
        assert without.refused and "network" in without.error
    finally:
        close_session()


def test_annotations_say_which_tools_change_things():
    hints = {name: (t.read_only, t.destructive) for name, t in BROWSER_TOOLS.items()}
    assert hints == {"browser_open": (True, False), "browser_text": (True, False), "browser_screenshot": (True, False),
                     "browser_click": (False, True), "browser_fill": (False, False)}


def test_over_mcp_a_read_only_profile_reads_pages_but_cannot_click(monkeypatch, site, api, tmp_path):
    import anyio
    import mcp

    from workbench.mcp_server.profiles import Profile
    from workbench.mcp_server.server import McpGateway
    from workbench.mcp_server.tools import catalog

    monkeypatch.setenv("WORKBENCH_PORT", str(api.server_address[1]))
    reload_settings()
    close_session()
    gateway = McpGateway(Profile(name="viewer", tools=("*",), roots=(tmp_path,), read_only=True), catalog())

    async def main() -> tuple[list, list]:
        async with mcp.Client(gateway.server()) as client:
            listed = (await client.list_tools()).tools
            results = [await client.call_tool("browser_open", {"url": site.url + "/"}),
                       await client.call_tool("browser_click", {"selector": "#go"}),
                       await client.call_tool("browser_open", {"url": "http://example.com/"})]
            return listed, results

    try:
        with MemorySink() as events:
            listed, (opened, clicked, far) = anyio.run(main)
    finally:
        close_session()
    names = {t.name for t in listed}
    assert {"browser_open", "browser_text", "browser_screenshot"} <= names and "browser_click" not in names
    assert not opened.is_error and opened.structured_content["title"] == "Orders"
    assert clicked.is_error and "read-only" in clicked.content[0].text
    assert far.is_error and "example.com is not allowed" in far.content[0].text
    calls = events.of("tool_call", via="mcp")
    assert [(e.get("tool"), e.get("refused")) for e in calls] == [
        ("browser_open", False), ("browser_click", True), ("browser_open", True)]


# --- the General specialist's browser capability ------------------------------------------------------


def test_the_general_specialist_answers_about_a_local_page_with_its_screenshot_in_the_trace(site):
    from workbench.agents.registry import Registry, run_specialist
    from workbench.testing import FunctionModel

    seen: list[str] = []

    def model(messages: list[dict], options: dict) -> str:
        prompt = messages[-1]["content"]
        seen.append(prompt)
        match = "42 orders" if "Total: 42 orders" in prompt else "unknown"
        return json.dumps({"thought": "read the page", "final_answer": f"The page shows {match}."})

    question = {"id": "s1", "specialist": "general",
                "instructions": f"How many orders does the page at {site.url}/ show?"}
    try:
        with MemorySink() as events:
            result = run_specialist(question, registry=Registry.from_config(), model=FunctionModel(model),
                                    task_id="t-browse")
    finally:
        close_session()
    assert result.ok, result.error
    assert "42 orders" in result.output
    assert "<h1" not in seen[0] and "Total: 42 orders" in seen[0]  # the page's text, never its HTML
    shot = events.of("tool_call", tool="browser_screenshot", agent="general")[0]
    path = Path(json.loads(shot.get("result"))["path"])
    assert path.read_bytes()[:8] == PNG_MAGIC and shot.task_id == "t-browse"
    subtask = events.of("subtask")[0]
    assert subtask.get("data")["screenshots"] == [str(path)]


def test_a_page_off_the_allowlist_is_said_to_be_unreadable_not_guessed(site):
    from workbench.agents.registry import Registry, run_specialist
    from workbench.testing import FunctionModel

    prompts: list[str] = []
    model = FunctionModel(lambda m, o: prompts.append(m[-1]["content"]) or json.dumps({"final_answer": "n/a"}))
    try:
        with MemorySink() as events:
            result = run_specialist({"id": "s1", "specialist": "general",
                                     "instructions": "Summarize http://example.com/ please."},
                                    registry=Registry.from_config(), model=model)
    finally:
        close_session()
    assert result.ok and "could not be read: Refused" in prompts[0]
    assert events.of("tool_call", tool="browser_open", refused=True)
    assert result.data["pages"][0]["error"].startswith("Refused")
