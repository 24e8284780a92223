"""`workbench serve`: one process answering /health and serving the chat page, driven in real Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import httpx
import pytest
from helpers import REPO, chromium_ok, free_port, require, wait_http

pytestmark = pytest.mark.timeout(300)

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def start_server(model: str, port: int, extra_env: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "WORKBENCH_MODEL": model, **(extra_env or {})}
    return subprocess.Popen([sys.executable, "-m", "workbench", "serve", "--port", str(port)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def served(test_model):
    port = free_port()
    proc = start_server(test_model, port)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=120, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(15)


def test_health_json(served, test_model):
    r = httpx.get(f"{served}/health", timeout=30)
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == test_model
    names = {c["name"] for c in body["checks"]}
    assert {"weights", "duckdb", "disk space"} <= names
    assert all({"status", "detail", "duration_ms"} <= set(c) for c in body["checks"])
    assert isinstance(body["breakers"], list)  # one per deployment called so far (state, success rate, p50)


def test_root_redirects_to_chat(served):
    r = httpx.get(f"{served}/", follow_redirects=False)
    assert r.status_code in (302, 307) and r.headers["location"] == "/chat"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    require(*chromium_ok())
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = p.chromium.launch_persistent_context(profile, executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS,
                                                   headless=True)
        yield ctx
        ctx.close()


@pytest.mark.browser
def test_chat_page_answers_in_browser(served, browser, test_model, tmp_path):
    page = browser.new_page()
    page.goto(f"{served}/chat")
    box = page.get_by_placeholder("Ask the model")
    box.wait_for(timeout=60_000)
    box.fill("Say hello in three words.")
    box.press("Enter")
    # The reply streams into a second message; usage and cost appear under the chat when it is done.
    page.get_by_text(test_model + " ·").wait_for(timeout=120_000)
    status = page.get_by_text(test_model + " ·").inner_text()
    assert "tokens" in status and "$" in status
    shots = REPO / "artifacts" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "chat.png"), full_page=True)
    page.close()


def test_non_loopback_bind_needs_api_key():
    out = subprocess.run([sys.executable, "-m", "workbench", "serve", "--host", "0.0.0.0", "--port", str(free_port())],
                         check=False, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "WORKBENCH_API_KEY" in out.stderr and "Traceback" not in out.stderr


def test_api_key_required_when_set(test_model):
    port = free_port()
    proc = start_server("test:echo", port, {"WORKBENCH_API_KEY": "k-123456789"})
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=120, proc=proc)
        assert httpx.get(f"http://127.0.0.1:{port}/openapi.json").status_code == 401
        ok = httpx.get(f"http://127.0.0.1:{port}/openapi.json", headers={"X-API-Key": "k-123456789"})
        assert ok.status_code == 200
    finally:
        proc.terminate()
        proc.wait(15)
