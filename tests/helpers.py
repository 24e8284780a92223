"""Helpers shared by tests: components setup installs (`require`), free ports, the real CLI in a subprocess,
waiting for servers, a scripted coder, a store and cluster for a test module."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
TOOLCHAIN_FIX = "run `make toolchain` (bash scripts/setup-toolchain.sh)"
SYSTEM_FIX = "run `make system` (bash scripts/setup-system.sh)"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require(ok: object, missing: str) -> None:
    """Go on only if a component that `make setup` installs is here (bubblewrap, Chromium, the sandbox
    toolchain, model weights, llama_cpp). Without it a local run skips, but a CI run (CI=true) fails,
    naming what is missing: a CI suite must never go green by skipping what setup should have installed.
    `missing` says what is missing and the command that installs it. Things setup does not install (a
    Docker engine, remote keys, the network) are plain `pytest.skip`s instead."""
    if ok:
        return
    if in_ci():
        pytest.fail(f"CI=true, so this cannot be skipped: {missing}", pytrace=False)
    pytest.skip(missing)


def requires(ok: object, missing: str) -> pytest.MarkDecorator:
    """`require` as a mark, for a test or a module's `pytestmark` (conftest checks it before fixtures run)."""
    return pytest.mark.requires(bool(ok), missing)


def chromium_ok() -> tuple[bool, str]:
    path = Path("/usr/bin/chromium")
    if path.exists() and os.access(path, os.X_OK):
        return True, ""
    return False, f"no Chromium at {path}: {SYSTEM_FIX}"


def sandbox_ok(toolchain: bool = True) -> tuple[bool, str]:
    """Whether bubblewrap works here (and, with `toolchain`, the sandbox toolchain is built)."""
    from workbench.sandbox.bwrap import BwrapExecutor

    ok, why = BwrapExecutor.available()
    if not ok:
        return False, f"bubblewrap unusable here ({why}): {SYSTEM_FIX}"
    if toolchain:
        from workbench.sandbox.toolchain import Toolchain

        tc = Toolchain.from_settings()
        if not tc.stamp():
            return False, f"no sandbox toolchain at {tc.root}: {TOOLCHAIN_FIX}"
    return True, ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_site(handler: type):
    """An HTTP server on a free 127.0.0.1 port answering with `handler`, in a thread; yields its base URL."""
    import threading
    from http.server import ThreadingHTTPServer

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


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


@contextlib.contextmanager
def stack_in(home: Path, **env: str):
    """The embedded store and a LocalCluster of processes in `home`, with WORKBENCH_HOME and `env` set while
    they run (for module-scoped fixtures); afterwards everything is stopped, the home removed and the
    environment restored. Yields (store, client, TaskService)."""
    from workbench import cluster
    from workbench.config import reload_settings
    from workbench.store import close_store, open_store
    from workbench.store import postgres as embedded
    from workbench.tasks.service import TaskService

    env = {"WORKBENCH_HOME": str(home), **env}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    reload_settings()
    try:
        store = open_store()
        client = cluster.get_client()
        yield store, client, TaskService(store)
    finally:
        cluster.close_client()
        close_store()
        embedded.stop(home / "postgres")
        shutil.rmtree(home, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reload_settings()


def module_stack(prefix: str, plugins: str):
    """A module's (stack, stack_home) fixtures: a store + LocalCluster with its own WORKBENCH_HOME and
    plugins, stopped at the module's end; tests using `stack` see that home and those plugins.

        stack, stack_home = module_stack("wb-tasks-", PLUGIN)
    """
    import pytest

    @pytest.fixture(scope="module")
    def stack():
        home = home_dir(prefix)
        with stack_in(home, WORKBENCH_PLUGINS=plugins) as (store, client, service):
            yield store, client, service, home

    @pytest.fixture(autouse=True)
    def stack_home(request, monkeypatch):
        if "stack" in request.fixturenames:
            from workbench.config import reload_settings

            monkeypatch.setenv("WORKBENCH_HOME", str(request.getfixturevalue("stack")[3]))
            monkeypatch.setenv("WORKBENCH_PLUGINS", plugins)
            reload_settings()

    return stack, stack_home


def seed_general_outcomes(store, model: str, done: int, failed: int, cost: float) -> None:
    """Finished `general` subtasks on `model` (each in a task of its own): what the strategy statistics read."""
    from psycopg.types.json import Jsonb

    with store.connection() as conn:
        for status in ["done"] * done + ["failed"] * failed:
            task_id = conn.execute("INSERT INTO tasks (prompt) VALUES ('q') RETURNING id").fetchone()[0]
            conn.execute("INSERT INTO task_subtasks (task_id, plan_version, subtask_id, specialist, status, result) "
                         "VALUES (%s, 1, 's1', 'general', %s, %s)",
                         (task_id, status, Jsonb({"status": status, "model": model, "cost_usd": cost,
                                                  "tokens_in": 10, "tokens_out": 10})))
