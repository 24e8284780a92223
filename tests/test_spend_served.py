"""A key's daily budget on the real `workbench serve`, over /v1 with a Bearer key: counted by the key's stored
name in Postgres, so it survives a server restart, and rotating the key's secret does not reset it.

Model: `test:priced` (tests/agent_plugins.py), which echoes and costs $0.00124 a call."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import httpx
import pytest
from helpers import REPO, run_cli, served_app, wait_http

pytestmark = pytest.mark.timeout(600)
PLUGIN = str(REPO / "tests" / "agent_plugins.py")
REFRESH_S = 2.5  # the server re-reads the keys at most every 2 s


def ask(url: str, key: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", timeout=60,
                      headers={"Authorization": f"Bearer {key}", "X-Workbench-Cache": "off"},
                      json={"model": "test:priced", "messages": [{"role": "user", "content": "hi"}]})


def key(env: dict, *args: str) -> str:
    out = run_cli("keys", *args, "--json", env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout).get("key", "")


def test_a_key_budget_survives_a_restart_and_a_rotated_secret():
    with served_app("spend", WORKBENCH_MODEL="test:priced", WORKBENCH_PLUGINS=PLUGIN) as app:
        team, other = key(app.env, "create", "team", "--scope", "submit"), key(app.env, "create", "other",
                                                                                "--scope", "submit")
        key(app.env, "limit", "team", "--usd-per-day", "0.002")  # fits 2 calls at $0.00124 (reserved: $0 each)
        time.sleep(REFRESH_S)
        codes = [ask(app.url, team).status_code for _ in range(3)]
        assert codes == [200, 200, 402]
        refused = ask(app.url, team).json()["error"]
        assert "key budget 'team'" in refused["message"] and "workbench keys limit team" in refused["message"]
        assert team not in refused["message"]
        health = httpx.get(f"{app.url}/gateway/health", headers={"X-API-Key": team}, timeout=60).json()["spend"]
        row = next(r for r in health["rows"] if (r["scope"], r["name"]) == ("key", "team"))
        assert row["calls"] == 2 and row["settled_usd"] == pytest.approx(0.00248) and row["period"] == health["day"]

        app.proc.send_signal(signal.SIGTERM)  # restart the server on the same home
        app.proc.wait(60)
        port = app.url.rsplit(":", 1)[1]
        with open(REPO / "artifacts" / "spend-restart-serve.log", "w") as log:
            again = subprocess.Popen([sys.executable, "-m", "workbench", "serve", "--port", port], cwd=REPO,
                                     env=app.env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_http(f"{app.url}/health?quick=1", timeout=180, proc=again)
            assert ask(app.url, team).status_code == 402  # spend is in Postgres, not in the old process

            rotated = key(app.env, "rotate", "team")
            time.sleep(REFRESH_S)
            assert ask(app.url, team).status_code == 401  # the old secret is gone
            assert ask(app.url, rotated).status_code == 402  # the new one still has nothing left today
            assert ask(app.url, other).status_code == 200  # another key has its own budget
        finally:
            again.send_signal(signal.SIGTERM)
            try:
                again.wait(60)
            except subprocess.TimeoutExpired:
                again.kill()
