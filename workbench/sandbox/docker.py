"""Docker backend: one throw-away container per run, used when an engine is reachable and
WORKBENCH_SANDBOX=docker (or auto finds no bubblewrap).

The container: no network, read-only root, all capabilities dropped, no-new-privileges, an
unprivileged user, memory (= memory+swap), CPU, pids and ulimits set, /work and /tmp size-capped
tmpfs. Files go in and out as tar streams through `docker exec` (a copy into a stopped container
cannot reach a tmpfs), the command runs through the same shell steps as the bwrap backend, and the
container is removed whatever happens.

Images: one per language from WORKBENCH_SANDBOX_DOCKER_IMAGES (JSON, language -> image), default
`workbench-sandbox:1` for all, built from DOCKERFILE below so that the toolchain sits at the same
paths as on the host (Node.js from PyPI, as setup-toolchain.sh does where PATH has no node >= 20:
bookworm's own nodejs is 18):  docker build -t workbench-sandbox:1 -f - . < <(python -c
"from workbench.sandbox.docker import DOCKERFILE; print(DOCKERFILE)")
"""

from __future__ import annotations

import functools
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

from workbench.errors import SandboxError
from workbench.sandbox._process import SKIP_DIRS, Outcome, _Capped, log_run, make_tar, to_result
from workbench.sandbox.executor import WORKDIR, ExecResult, Executor, Limits

DEFAULT_IMAGE = "workbench-sandbox:1"
DOCKERFILE = """\
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3.11 python3.11-venv \\
      default-jdk-headless junit5 tar ca-certificates && rm -rf /var/lib/apt/lists/*
COPY scripts/setup-toolchain.sh /tmp/setup-toolchain.sh
RUN CI=true bash /tmp/setup-toolchain.sh && rm -rf /root/.npm /root/.cache
USER 1000:1000
"""
SANDBOX_USER = "1000:1000"


@functools.lru_cache(maxsize=1)
def _probe() -> tuple[bool, str]:
    try:
        import docker
    except ImportError:
        return False, "the docker Python package is not installed (pip install docker)"
    try:
        client = docker.from_env(timeout=3)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - DockerException, refused connection, missing socket...
        return False, f"no Docker engine reachable ({type(exc).__name__})"
    return True, f"Docker engine {client.version().get('Version', '?')} reachable"


class DockerExecutor(Executor):
    name = "docker"

    def __init__(self, client: Any = None, images: Mapping[str, str] | None = None):
        from workbench.config import get_settings

        self._client = client
        self.images = dict(images if images is not None else get_settings().sandbox_docker_images)

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return _probe()

    @property
    def client(self) -> Any:
        if self._client is None:
            import docker

            self._client = docker.from_env(timeout=30)
        return self._client

    def image_for(self, language: str | None) -> str:
        return self.images.get(language or "", self.images.get("default", DEFAULT_IMAGE))

    def container_options(self, limits: Limits, env: Mapping[str, str]) -> dict:
        import docker.types

        from workbench.sandbox.bwrap import BASE_ENV

        cpu = limits.cpu_seconds
        ulimits = [docker.types.Ulimit(name="cpu", soft=cpu, hard=cpu + 1),
                   docker.types.Ulimit(name="fsize", soft=limits.disk_mb * 2**20, hard=limits.disk_mb * 2**20),
                   docker.types.Ulimit(name="nofile", soft=limits.open_files, hard=limits.open_files),
                   docker.types.Ulimit(name="nproc", soft=limits.processes, hard=limits.processes),
                   docker.types.Ulimit(name="core", soft=0, hard=0)]
        options = {
            "command": ["sleep", "infinity"], "init": True, "detach": True, "user": SANDBOX_USER,
            "working_dir": WORKDIR, "network_mode": "none", "read_only": True, "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"], "ipc_mode": "private", "pids_limit": limits.processes,
            "mem_limit": f"{limits.memory_mb}m", "memswap_limit": f"{limits.memory_mb}m",
            "tmpfs": {WORKDIR: f"size={limits.disk_mb}m,mode=1777", "/tmp": "size=16m,mode=1777"},
            "ulimits": ulimits, "environment": {**BASE_ENV, **env}, "labels": {"workbench.sandbox": "1"},
        }
        if limits.cpus:
            options["nano_cpus"] = int(limits.cpus * 1e9)
        return options

    def execute(self, command: list[str], inputs: dict[str, bytes], limits: Limits, env: dict[str, str],
                language: str | None) -> ExecResult:
        start = time.perf_counter()
        try:
            container = self.client.containers.create(self.image_for(language), **self.container_options(limits, env))
        except Exception as exc:  # noqa: BLE001 - any engine error becomes one fix-it message
            raise SandboxError(f"Docker could not create the sandbox container from {self.image_for(language)!r} "
                               f"({exc}). Build it (see workbench/sandbox/docker.py) or set "
                               f"WORKBENCH_SANDBOX_DOCKER_IMAGES.") from None
        out = Outcome(0, _Capped(limits.output_bytes), _Capped(limits.output_bytes),
                      _Capped(limits.files_bytes * 2 + 1_000_000), 0.0)
        try:
            container.start()
            if inputs:
                self._exec(container, ["tar", "-x", "-o", "-C", WORKDIR, "-f", "-"], stdin=make_tar(inputs))
            deadline = start + limits.timeout_s
            out.returncode = self._exec(container, command, out=out, deadline=deadline, limits=limits)
            if not (out.timed_out or out.flooded):
                out.tar.feed(b"T")
                excludes = [f"--exclude={d}" for d in SKIP_DIRS]
                self._exec(container, ["tar", "-c", "-C", WORKDIR, *excludes, "."], into=out.tar)
        finally:
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001, S110 - already gone; the engine reaps it
                pass
        out.duration_s = time.perf_counter() - start
        result = to_result(out, inputs, limits, self.name, [f"docker image {self.image_for(language)}"],
                           expect_tar=False)
        log_run(result, command, language)
        return result

    def _exec(self, container: Any, cmd: list[str], *, stdin: bytes | None = None, out: Outcome | None = None,
              deadline: float | None = None, limits: Limits | None = None, into: _Capped | None = None) -> int:
        api = self.client.api
        exec_id = api.exec_create(container.id, cmd, stdin=stdin is not None, user=SANDBOX_USER,
                                  workdir=WORKDIR)["Id"]
        if stdin is not None:
            sock = api.exec_start(exec_id, socket=True)
            raw = getattr(sock, "_sock", sock)
            raw.sendall(stdin)
            raw.shutdown(socket.SHUT_WR)
            while raw.recv(65536):
                pass
            raw.close()
        else:
            timer = None
            if deadline is not None and out is not None:
                def on_deadline() -> None:
                    out.timed_out = True
                    container.kill()  # ends the stream below
                timer = threading.Timer(max(0.0, deadline - time.perf_counter()), on_deadline)
                timer.start()
            try:
                for chunk_out, chunk_err in api.exec_start(exec_id, stream=True, demux=True):
                    if into is not None:
                        into.feed(chunk_out or b"")
                        continue
                    out.stdout.feed(chunk_out or b"")
                    out.stderr.feed(chunk_err or b"")
                    if limits and out.stdout.total + out.stderr.total > limits.flood_bytes:
                        out.flooded = True
                        container.kill()
                        break
            finally:
                if timer is not None:
                    timer.cancel()
        code = api.exec_inspect(exec_id).get("ExitCode")
        return -9 if code is None else int(code)
