"""The Experiments and Pipelines pages of a real `workbench serve` in headless Chromium, filled the way a
user fills them: `workbench datasets import` and `workbench experiment run` (deterministic models from
tests/experiment_plugins.py and tests/pages_plugins.py), `workbench pipelines run execution_report`."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

import pytest
from helpers import REPO, chromium_ok, require, served_app

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]
PLUGINS = f"{REPO / 'tests' / 'experiment_plugins.py'},{REPO / 'tests' / 'pages_plugins.py'}"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
UI_TIMEOUT_MS = 90_000  # 2 shared cores


@pytest.fixture(scope="module")
def served():
    with served_app("research", WORKBENCH_MODEL="test:echo", WORKBENCH_PLUGINS=PLUGINS) as app:
        yield app


def _cli(app, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "workbench", *args], cwd=REPO, env={**app.env, "COLUMNS": "220"},
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def tab(served):
    from playwright.sync_api import sync_playwright

    require(*chromium_ok())
    outside: list[str] = []
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = p.chromium.launch_persistent_context(profile, executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS,
                                                   headless=True, viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        local = (served.url, "blob:", "data:", "about:")
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(local) else None)
        yield page
        (REPO / "artifacts" / "screenshots").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(REPO / "artifacts" / "screenshots" / "research-last.png"), full_page=True)
        ctx.close()
    assert not outside, f"the page requested something outside the server: {outside[:3]}"


def test_experiments_page_shows_the_compare_numbers_and_trace_links(served, tab, tmp_path):
    cases = tmp_path / "pages.jsonl"
    cases.write_text("".join(json.dumps({"id": f"case-{i}", "input": f"case {i}", "expected": "yes"}) + "\n"
                             for i in range(30, 50)))
    (tmp_path / "a.yaml").write_text("name: a\nmodel: test:arm_a\n")
    (tmp_path / "b.yaml").write_text("name: b\nmodel: test:arm_b_markup\n")
    _cli(served, "datasets", "import", str(cases), "--name", "pages")
    a, b = (e["name"] for e in json.loads(_cli(served, "experiment", "run", "--dataset", "pages", "--config",
                                               str(tmp_path / "a.yaml"), "--config", str(tmp_path / "b.yaml"),
                                               "--json")))
    expected = json.loads(_cli(served, "experiment", "compare", a, b, "--json"))

    tab.goto(f"{served.url}/experiments?a={a}&b={b}")
    tab.get_by_text("difference B-A:").first.wait_for(timeout=UI_TIMEOUT_MS)

    def shown(text: str) -> None:  # locators pierce Panel's shadow roots (inner_text of the body does not)
        tab.get_by_text(text).first.wait_for(timeout=UI_TIMEOUT_MS)

    for arm in (expected["a"], expected["b"]):
        low, high = arm["interval"]
        shown(f"{100 * arm['rate']:.1f}%")
        shown(f"[{100 * low:.1f}%, {100 * high:.1f}%]")
    low, high = expected["diff_interval"]
    shown(f"difference B-A: {100 * expected['diff']:+.1f} points, 95% CI [{100 * low:+.1f}, {100 * high:+.1f}]; "
          f"exact McNemar p = {expected['p_value']:.4g}")
    links = tab.locator("a[href^='/tasks?id=']")
    assert links.count() == 2 * (len(expected["fixed"]) + len(expected["broken"]))
    shown("<img src=x onerror=")  # B's markup shows as text ...
    assert tab.evaluate("document.title") != "pwned"  # ... and never ran
    links.first.click()
    tab.get_by_text("Events (newest first)").wait_for(timeout=UI_TIMEOUT_MS)  # the case's trace opens


def test_pipelines_page_shows_a_run_and_its_notebook_sandboxed(served, tab):
    _cli(served, "pipelines", "run", "execution_report", "-p", "hours=48")
    tab.goto(f"{served.url}/pipelines")
    tab.get_by_text("0 3 * * *").wait_for(timeout=UI_TIMEOUT_MS)
    tab.get_by_text("completed").first.wait_for(timeout=UI_TIMEOUT_MS)
    tab.locator(".tabulator-row").filter(has_text="execution_report").last.click()
    tab.get_by_text('"hours": 48').wait_for(timeout=UI_TIMEOUT_MS)
    frame = tab.locator("iframe.notebook")
    frame.wait_for(timeout=UI_TIMEOUT_MS)
    assert frame.get_attribute("sandbox") == ""
    # The notebook's own content renders inside the frame (its plots and tables), with no script run.
    tab.frame_locator("iframe.notebook").locator("body").get_by_text("hours").first.wait_for(timeout=UI_TIMEOUT_MS)
