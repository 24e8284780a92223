"""Dashboards under a 100k-event history: page load to first render, live update latency, anomaly training.

    .venv/bin/python benchmarks/dashboards.py            # ~5 min on 2 cores; writes benchmarks/results/dashboards.json

Everything runs in a THROWAWAY WORKBENCH_HOME that is deleted at the end. The history is bulk-loaded
synthetic data, labelled as such (payload {"synthetic": "benchmarks/dashboards.py"}, task titles "synthetic
benchmark task N"): a benchmark may invent rows to reach a size, the served product never does.

Measured:
* page load: Chromium navigation start -> the page's first data-bearing text is visible (each page cold =
  first visit after start, then the median of 3 warm visits); goal <= 2 s;
* live update: a `message` event committed to Postgres -> its text visible on the open task detail page,
  no reload (15 runs, p50/p95); goal <= 1 s p50;
* anomaly training on 100k model calls: read from the analytics snapshot, fit + score, store the scores.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _common import machine, save, table  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
N_CALLS = 100_000
N_TASKS = 2_000
LABEL = {"synthetic": "benchmarks/dashboards.py"}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# The first text on each page that is only there once its data has been read and shown.
PAGES = {
    "/tasks": re.compile(r"\d+ of \d+ task\(s\)"),
    "/monitoring": re.compile(r"unfinished task\(s\)"),
    "/costs": re.compile(r"model calls \("),
    "/anomalies": re.compile(r"Trained"),
    "/prediction": re.compile(r"Random forest on|Predictor not available"),
    "/models": re.compile(r"Served default model"),
    "/chat": "placeholder:Ask the model",
}
MODELS = ["local:qwen2.5-coder-1.5b", "local:qwen2.5-coder-0.5b", "openai:gpt-4o-mini"]
AGENTS = ["understanding", "single_call", "coder", "data", "general"]


def bulk_load(store) -> list[str]:
    """N_TASKS finished tasks and N_CALLS model calls (plus status and step events), COPYed in."""
    import datetime as dt

    from psycopg.types.json import Jsonb

    rng = np.random.default_rng(0)
    now = dt.datetime.now(dt.timezone.utc)
    task_ids = [str(uuid.uuid4()) for _ in range(N_TASKS)]
    created = [now - dt.timedelta(seconds=float(s)) for s in rng.uniform(3600, 14 * 86400, N_TASKS)]
    durations = rng.lognormal(2.5, 0.8, N_TASKS)
    failed = rng.random(N_TASKS) < 0.04
    with store.connection() as conn:
        with conn.cursor().copy("COPY tasks (id, title, prompt, kind, status, model, created_at, started_at, finished_at,"
                                " error, result, budget_usd) FROM STDIN") as copy:
            for i, tid in enumerate(task_ids):
                start = created[i] + dt.timedelta(seconds=1)
                copy.write_row((tid, f"synthetic benchmark task {i}", f"synthetic prompt {i} " + "x" * int(rng.integers(10, 400)),
                                ["code", "general", "data"][i % 3], "failed" if failed[i] else "completed",
                                MODELS[i % 3], created[i], start, start + dt.timedelta(seconds=float(durations[i])),
                                "ProviderError: synthetic upstream error (HTTP 503)" if failed[i] else None,
                                Jsonb({**LABEL, "answer": "synthetic"}), 0.01 if i % 10 == 0 else None))
        calls_task = rng.integers(0, N_TASKS, N_CALLS)
        latency = rng.lognormal(7.0, 0.7, N_CALLS)
        tokens_in = rng.integers(20, 2000, N_CALLS)
        tokens_out = rng.integers(5, 500, N_CALLS)
        errors = rng.random(N_CALLS) < 0.02
        with conn.cursor().copy("COPY events (event_id, ts, task_id, trace_id, span_id, kind, agent, model, tokens_in,"
                                " tokens_out, cost_usd, duration_ms, error, payload) FROM STDIN") as copy:
            for j in range(N_CALLS):
                i = int(calls_task[j])
                model = MODELS[i % 3]
                cost = (latency[j] / 1000 * 0.0000124) if model.startswith("local") else (tokens_in[j] * 0.15 + tokens_out[j] * 0.6) / 1e6
                ts = created[i] + dt.timedelta(seconds=1 + float(rng.uniform(0, durations[i])))
                copy.write_row((str(uuid.uuid4()), ts, task_ids[i], task_ids[i], uuid.uuid4().hex[:16], "llm_call",
                                AGENTS[j % 5], model, int(tokens_in[j]), int(tokens_out[j]), float(cost), float(latency[j]),
                                "ProviderError: synthetic (HTTP 503)" if errors[j] else None, Jsonb(LABEL)))
            for i, tid in enumerate(task_ids):
                for to in ("processing", "failed" if failed[i] else "completed"):
                    copy.write_row((str(uuid.uuid4()), created[i] + dt.timedelta(seconds=1 if to == "processing" else 1 + float(durations[i])),
                                    tid, tid, uuid.uuid4().hex[:16], "status", "workbench", None, None, None, None, None,
                                    None, Jsonb({**LABEL, "to": to})))
    return task_ids


def train_anomalies(store) -> dict:
    from workbench.analysis import anomaly
    from workbench.analysis import features as F

    t0 = time.perf_counter()
    frame = F.rows("call")
    read_s = time.perf_counter() - t0
    result = anomaly.train(store, "call", frame=frame, trigger="benchmark")
    anomaly.train(store, "task", trigger="benchmark")
    return {"rows": result.rows, "read_s": read_s, "fit_score_store_s": result.duration_ms / 1000,
            "total_s": read_s + result.duration_ms / 1000, "flagged": result.flagged}


def page_loads(browser, base: str) -> list[dict]:
    """First render = the page's data text is visible; charts (drawn from the first tick on) = first canvas."""
    rows = []
    for route, marker in PAGES.items():
        times, charts = [], []
        for _ in range(4):
            page = browser.new_page()
            t0 = time.perf_counter()
            page.goto(base + route)
            if isinstance(marker, str):  # the chat page's first content is its input box
                page.get_by_placeholder(marker.removeprefix("placeholder:")).wait_for(timeout=180_000)
            else:
                page.get_by_text(marker).first.wait_for(timeout=180_000)
            times.append(time.perf_counter() - t0)
            if route not in ("/chat", "/tasks"):  # /tasks draws a chart only for an open task (live test below)
                page.locator("canvas:visible").first.wait_for(timeout=180_000)
                charts.append(time.perf_counter() - t0)
            page.close()
        warm = statistics.median(times[1:])
        print(f"{route}: cold {times[0]:.2f} s, warm {', '.join(f'{t:.2f}' for t in times[1:])} s; first chart "
              f"{', '.join(f'{t:.2f}' for t in charts)} s", flush=True)
        rows.append({"what": f"page load {route}", "cold_s": round(times[0], 3), "warm_p50_s": round(warm, 3),
                     "first_chart_p50_s": round(statistics.median(charts[1:]), 3) if charts else None,
                     "goal_s": 2.0, "met": warm <= 2.0})
    return rows


def live_latency(browser, base: str, task_id: str, runs: int = 15) -> dict:
    from workbench import telemetry
    from workbench.store import open_store

    store = open_store()  # attaches to the server's embedded Postgres; the sink of telemetry.emit here
    page = browser.new_page()
    page.goto(f"{base}/tasks?id={task_id}")
    page.get_by_text("Status: ").first.wait_for(timeout=180_000)
    latencies = []
    for i in range(runs):
        text = f"benchmark live marker {i} {uuid.uuid4().hex[:8]}"
        telemetry.emit("message", task_id=task_id, agent="benchmark", payload={**LABEL, "text": text})
        store.flush()  # committed: the NOTIFY is on its way
        t0 = time.perf_counter()
        page.get_by_text(text).first.wait_for(timeout=60_000)
        latencies.append(time.perf_counter() - t0)
        time.sleep(0.3)
    page.close()
    latencies.sort()
    return {"runs": runs, "p50_s": round(statistics.median(latencies), 3),
            "p95_s": round(latencies[int(0.95 * (runs - 1))], 3), "max_s": round(latencies[-1], 3)}


def main() -> None:
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="workbench-bench-dashboards-"))
    home.chmod(0o755)
    os.environ.update(WORKBENCH_HOME=str(home), WORKBENCH_MODEL="test:echo", WORKBENCH_ALLOW_NETWORK="0")
    from helpers import free_port, wait_http

    from workbench.config import reload_settings
    from workbench.store import close_store, open_store
    from workbench.store import postgres as embedded
    from workbench.store.sync import Syncer

    reload_settings()
    proc = None
    try:
        store = open_store()
        t0 = time.perf_counter()
        task_ids = bulk_load(store)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        Syncer(store).sync_once()
        sync_s = time.perf_counter() - t0
        counts = store.counts()
        training = train_anomalies(store)
        close_store()
        print(f"loaded {counts['events']:,} events / {counts['tasks']:,} tasks in {load_s:.1f} s, synced in {sync_s:.1f} s",
              flush=True)
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "workbench", "serve", "--port", str(port)], cwd=REPO,
                                env={**os.environ, "WORKBENCH_PORT": str(port)}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/health?quick=1", timeout=300, proc=proc)
        load_before = os.getloadavg()
        with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
            browser = p.chromium.launch_persistent_context(profile, executable_path="/usr/bin/chromium",
                                                           args=CHROMIUM_FLAGS, headless=True,
                                                           viewport={"width": 1280, "height": 800})
            rows = page_loads(browser, base)
            live = live_latency(browser, base, task_ids[0])
            browser.close()
        rows.append({"what": "live update (event committed -> visible)", "cold_s": None, "warm_p50_s": live["p50_s"],
                     "goal_s": 1.0, "met": live["p50_s"] <= 1.0, "p95_s": live["p95_s"]})
        rows.append({"what": f"anomaly training, {training['rows']:,} calls", "cold_s": None,
                     "warm_p50_s": round(training["total_s"], 3), "goal_s": None, "met": None,
                     "read_s": round(training["read_s"], 3), "fit_score_store_s": round(training["fit_score_store_s"], 3)})
        print(table(rows, ["what", "cold_s", "warm_p50_s", "first_chart_p50_s", "goal_s", "met"]))
        path = save("dashboards", rows, events=counts["events"], tasks=counts["tasks"], bulk_load_s=round(load_s, 2),
                    sync_s=round(sync_s, 2), live=live, training=training,
                    load_average_at_start=[round(x, 2) for x in load_before], machine_detail=machine(),
                    note="synthetic history (labelled) in a throwaway home; served app on test:echo")
        print(f"wrote {path}")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        close_store()
        embedded.stop(home / "postgres")
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
