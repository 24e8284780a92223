"""Helpers shared by tests: free ports, the real CLI in a subprocess, waiting for servers, a scripted coder."""

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
        [sys.executable, "-m", "workbench", *args], check=False, capture_output=True, text=True, env=full_env,
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


class ServedApp:
    """A `workbench serve` subprocess: its URL, environment and home."""

    def __init__(self, url: str, env: dict, home: Path, proc: subprocess.Popen):
        self.url, self.env, self.home, self.proc = url, env, home, proc


def served_app(name: str, **env: str):
    """Start `workbench serve` on a free port with its own home (outside pytest's basetemp, where another
    pytest session's chmod would lock Postgres out); its log goes to artifacts/NAME-serve.log (a file, not
    a pipe nobody drains). Use as a context manager; the server and its embedded Postgres stop at exit."""
    import contextlib
    import shutil
    import signal

    @contextlib.contextmanager
    def run():
        home = home_dir(f"wb-{name}-")
        home.chmod(0o755)
        port = free_port()
        full_env = {**os.environ, "WORKBENCH_HOME": str(home), "WORKBENCH_PORT": str(port), **env}
        (REPO / "artifacts").mkdir(exist_ok=True)
        with open(REPO / "artifacts" / f"{name}-serve.log", "w") as log:
            proc = subprocess.Popen([sys.executable, "-m", "workbench", "serve", "--port", str(port)], cwd=REPO,
                                    env=full_env, stdout=log, stderr=subprocess.STDOUT)
            try:
                wait_http(f"http://127.0.0.1:{port}/health?quick=1", timeout=180, proc=proc)
                yield ServedApp(f"http://127.0.0.1:{port}", full_env, home, proc)
            finally:
                from workbench.store import postgres as embedded

                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                embedded.stop(home / "postgres")
                shutil.rmtree(home, ignore_errors=True)

    return run()


def scripted_coder(*code_replies: str, tests: str):
    """A FunctionModel for the code loop: `tests` when asked for the test file; otherwise the next code
    reply (the last one repeats)."""
    from workbench.testing import FunctionModel

    replies = list(code_replies)

    def answer(messages, options):
        if "Write ONLY the test file" in messages[1]["content"]:
            return tests
        return replies.pop(0) if len(replies) > 1 else replies[0]

    return FunctionModel(answer, name="scripted")
