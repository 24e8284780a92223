"""Helpers shared by tests: free ports, the real CLI in a subprocess, waiting for servers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args: str, env: dict | None = None, input: str | None = None, timeout: float = 300):
    """Run the real `workbench` command in a subprocess (what a user types)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args], capture_output=True, text=True, env=full_env,
        input=input, timeout=timeout, cwd=REPO,
    )


def wait_http(url: str, timeout: float = 60, proc: subprocess.Popen | None = None) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}:\n{out[-3000:]}")
        try:
            r = httpx.get(url, timeout=5)
            if r.status_code < 500:
                return r
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s ({last})")


def home_dir(prefix: str = "wb-home-") -> Path:
    """A WORKBENCH_HOME outside /tmp/pytest-of-root (see conftest.isolated_home for why)."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix=prefix))
