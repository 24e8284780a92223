"""The Tasks page's filters and span drill-down in headless Chromium, on a real `workbench serve` (the
deterministic `test:echo` and `test:fail` models): filter by status with the select, see the URL keep the
filter and a reload keep the view, open a task, click a span and read its input and output as text."""

from __future__ import annotations

import tempfile
import time

import httpx
import pytest
from helpers import REPO, chromium_ok, require, served_app

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
UI_TIMEOUT_MS = 90_000  # 2 shared cores
PROMPT = "Browser ok <script>document.title='pwned'</script> and [bold]loud[/bold]"


@pytest.fixture(scope="module")
def served():
    with served_app("taskspage", WORKBENCH_MODEL="test:echo") as app:
        yield app


@pytest.fixture(scope="module")
def tab(served):
    from playwright.sync_api import sync_playwright

    require(*chromium_ok())
    outside: list[str] = []
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = p.chromium.launch_persistent_context(profile, executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS,
                                                   headless=True, viewport={"width": 1400, "height": 1000})
        page = ctx.new_page()
        local = (served.url, "blob:", "data:", "about:")
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(local) else None)
        yield page
        (REPO / "artifacts" / "screenshots").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(REPO / "artifacts" / "screenshots" / "taskspage-last.png"), full_page=True)
        ctx.close()
    assert not outside, f"the page requested something outside the server: {outside[:3]}"


def _task(app, prompt: str, model: str) -> dict:
    r = httpx.post(f"{app.url}/api/v1/tasks", json={"prompt": prompt, "model": model, "mode": "single"}, timeout=60)
    assert r.status_code < 400, r.text
    task_id = r.json()["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        task = httpx.get(f"{app.url}/api/v1/tasks/{task_id}", timeout=30).json()
        if task["status"] in ("completed", "failed", "cancelled"):
            return task
        time.sleep(0.3)
    raise AssertionError(f"task {task_id} did not finish")


@pytest.fixture(scope="module")
def tasks(served):
    ok, failing = _task(served, PROMPT, "test:echo"), _task(served, "Browser failing task", "test:fail")
    assert (ok["status"], failing["status"]) == ("completed", "failed")
    return ok, failing


def _rows(tab, text: str):
    return tab.locator(".tabulator-row").filter(has_text=text)


def test_filter_by_status_in_the_ui_is_kept_in_the_url(served, tab, tasks):
    tab.goto(f"{served.url}/tasks")
    _rows(tab, "Browser failing task").first.wait_for(timeout=UI_TIMEOUT_MS)
    _rows(tab, "Browser ok").first.wait_for(timeout=UI_TIMEOUT_MS)
    tab.get_by_text("Cost over time per model").first.wait_for(timeout=UI_TIMEOUT_MS)
    tab.locator("canvas").first.wait_for(state="attached", timeout=UI_TIMEOUT_MS)  # the chart, drawn by a tick
    status = tab.locator("select", has=tab.locator("option", has_text="awaiting_approval"))
    status.select_option("failed")
    _rows(tab, "Browser ok").first.wait_for(state="detached", timeout=UI_TIMEOUT_MS)
    assert _rows(tab, "Browser failing task").count() == 1
    tab.wait_for_function("() => location.search.includes('status=failed')", timeout=UI_TIMEOUT_MS)
    tab.reload()  # the shared link: the same filtered view
    _rows(tab, "Browser failing task").first.wait_for(timeout=UI_TIMEOUT_MS)
    assert _rows(tab, "Browser ok").count() == 0
    assert status.input_value() == "failed"
    status.select_option("cancelled")
    tab.get_by_text("No task matches these filters").first.wait_for(timeout=UI_TIMEOUT_MS)


def test_clicking_a_span_shows_its_prompt_and_reply_as_text(served, tab, tasks):
    ok, _ = tasks
    tab.goto(f"{served.url}/tasks?id={ok['id']}")
    tab.get_by_text("click one to open its span").wait_for(timeout=UI_TIMEOUT_MS)
    tab.get_by_text("drawing…").filter(visible=True).first.wait_for(state="hidden", timeout=UI_TIMEOUT_MS)
    assert tab.locator("canvas").count() > 0  # the cost chart and the waterfall are drawn
    _rows(tab, "single_call").filter(has_text="llm_call").first.click()
    tab.get_by_text("<script>document.title='pwned'</script>").first.wait_for(timeout=UI_TIMEOUT_MS)
    tab.get_by_text("[bold]loud[/bold]").first.wait_for(timeout=UI_TIMEOUT_MS)
    tab.get_by_text("reply (").first.wait_for(timeout=UI_TIMEOUT_MS)
    assert tab.evaluate("document.title") != "pwned"  # shown, never run
    tab.wait_for_function("() => location.search.includes('span=')", timeout=UI_TIMEOUT_MS)
    tab.reload()  # the link opens the same span
    tab.get_by_text("<script>document.title='pwned'</script>").first.wait_for(timeout=UI_TIMEOUT_MS)
    tab.locator("pre").filter(has_text="[bold]loud[/bold]").first.wait_for(timeout=UI_TIMEOUT_MS)
