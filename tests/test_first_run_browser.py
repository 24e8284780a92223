"""A new user's first serve, in headless Chromium: a fresh home's pages offer the seeded demo; clicking the
button starts it on the server (the model is the deterministic `test:echo`, set by environment variable) and
the page shows its progress, live, until every demo task is done."""

from __future__ import annotations

import re
import time

import httpx
import pytest
import test_dashboards_browser as shared
from helpers import served_app

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]
browser = shared.browser  # one Chromium per module


@pytest.fixture(scope="module")
def served():
    with served_app("firstrun", WORKBENCH_MODEL="test:echo") as app:
        yield app.url, app.home


@pytest.fixture()
def tab(browser, served):
    page = browser.new_page()
    yield page
    shared.screenshot(page, "first-run")
    page.close()


def test_a_fresh_home_offers_the_demo_and_the_button_starts_it_with_live_progress(served, tab):
    url = served[0]
    assert httpx.get(f"{url}/api/v1/tasks", timeout=30).json()["total"] == 0
    tab.goto(f"{url}/costs")
    tab.get_by_text("This workbench has no tasks yet").wait_for(timeout=shared.UI_TIMEOUT_MS)
    tab.get_by_text("workbench demo").first.wait_for(timeout=shared.UI_TIMEOUT_MS)
    # Never left half-drawn: cards either hide behind the empty state or draw on the tab's first ticks (the
    # server's own health check makes one model call, so the costs charts can have data before any task).
    deadline = time.monotonic() + 60
    while any(d.is_visible() for d in tab.get_by_text("drawing…").all()):
        assert time.monotonic() < deadline, "chart cards still say drawing… after 60 s"
        time.sleep(0.5)
    tab.goto(f"{url}/tasks")
    tab.get_by_role("button", name="Start the demo").click(timeout=shared.UI_TIMEOUT_MS)
    tab.get_by_text(re.compile(r"Demo running: \d+/\d+ tasks done")).wait_for(timeout=shared.UI_TIMEOUT_MS)
    progress = httpx.get(f"{url}/api/v1/demo", timeout=30).json()
    assert progress["state"] in ("running", "finished") and progress["total"] > 0
    # A second start (the API, as another client would) is refused while it runs: one demo only.
    if progress["state"] == "running":
        assert httpx.post(f"{url}/api/v1/demo", json={}, timeout=30).status_code == 409
    total = progress["total"]
    tab.get_by_text(f"Demo finished: {total}/{total} tasks done").wait_for(timeout=240_000)
    tasks = httpx.get(f"{url}/api/v1/tasks", params={"limit": 100}, timeout=30).json()
    assert tasks["total"] == total and all(t["title"].startswith("demo: ") for t in tasks["items"])
