"""The Memory page of a real `workbench serve` in headless Chromium: filled the way a user fills memory
(`workbench memory import`), it lists the entry, and the search box finds it, as text."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

import pytest
from helpers import REPO, chromium_ok, require, served_app

from workbench.memory import embedder

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
UI_TIMEOUT_MS = 120_000  # 2 shared cores; the first search loads the embedding model in the server
REQUEST = "Write rotate_left(xs, k) that rotates a list left by k places <i>fast</i>"
CODE = "def rotate_left(xs, k):\n    k %= len(xs) or 1\n    return xs[k:] + xs[:k]\n"


def test_the_memory_page_lists_an_entry_and_the_search_finds_it(tmp_path):
    require(*chromium_ok())
    require(embedder.available(), "the embedder is not installed: run `make venv`")
    from playwright.sync_api import sync_playwright

    rows = tmp_path / "memory.jsonl"
    rows.write_text(json.dumps({"kind": "solution", "owner": "local", "text": REQUEST, "language": "python",
                                "verified": True, "body": {"files": {"rotate.py": CODE}, "solution_file": "rotate.py"}})
                    + "\n")
    with served_app("memorypage") as app:
        done = subprocess.run([sys.executable, "-m", "workbench", "memory", "import", str(rows), "--json"], cwd=REPO,
                              env=app.env, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0 and json.loads(done.stdout) == {"imported": 1, "merged": 0}, done.stderr[-2000:]
        outside: list[str] = []
        with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
            ctx = p.chromium.launch_persistent_context(profile, executable_path="/usr/bin/chromium",
                                                       args=CHROMIUM_FLAGS, headless=True,
                                                       viewport={"width": 1280, "height": 900})
            tab = ctx.new_page()
            local = (app.url, "blob:", "data:", "about:")
            tab.on("request", lambda r: outside.append(r.url) if not r.url.startswith(local) else None)
            try:
                tab.goto(f"{app.url}/memory")
                tab.get_by_text("What is stored").first.wait_for(timeout=UI_TIMEOUT_MS)
                # the newest entry, as text: the request's markup is shown, not rendered
                tab.get_by_text("<i>fast</i>").first.wait_for(timeout=UI_TIMEOUT_MS)
                box = tab.get_by_placeholder("e.g. reverse the words of a sentence")
                box.fill("rotate a list to the left")
                tab.get_by_role("button", name="Search").click()
                tab.locator("table.memory-entries th", has_text="similarity").first.wait_for(timeout=UI_TIMEOUT_MS)
                assert tab.locator("table.memory-entries", has_text="return xs[k:] + xs[:k]").count() == 2
                assert tab.locator("i", has_text="fast").count() == 0
            finally:
                (REPO / "artifacts" / "screenshots").mkdir(parents=True, exist_ok=True)
                tab.screenshot(path=str(REPO / "artifacts" / "screenshots" / "memory-last.png"), full_page=True)
                ctx.close()
        assert not outside, f"the page requested something outside the server: {outside[:3]}"
