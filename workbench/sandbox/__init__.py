"""Run untrusted code: one small Executor interface, a bubblewrap backend by default, fail closed.

    from workbench.sandbox import get_executor, Limits
    ex = get_executor()                                   # bwrap here; SandboxError if nothing isolates
    r = ex.run(["python", "main.py"], files={"main.py": "print(1)"}, limits=Limits(timeout_s=5))
    r.exit_code, r.stdout, r.timed_out, r.killed_reason, r.files
    run_code("python", "print(1)", executor=ex).result   # source text in (workbench.sandbox.runtimes)

Tests and formatting per language live in `workbench.sandbox.runtimes` (run_tests, run_path).
Backends: `bwrap` (bubblewrap + rlimits + cgroup), `docker` (when an engine is reachable and
configured), and `unsafe-host` (no isolation at all; only with WORKBENCH_SANDBOX=unsafe-host).
"""

from __future__ import annotations

from workbench.errors import SandboxError
from workbench.sandbox.executor import (
    MAX_INPUT_FILES,
    WORKDIR,
    ExecResult,
    Executor,
    Limits,
    check_command,
    check_files,
    default_limits,
    files_from_path,
)

BACKENDS = ("auto", "bwrap", "docker", "unsafe-host")

_INSTANCES: dict[tuple, Executor] = {}


def _backends() -> dict[str, type[Executor]]:
    from workbench.sandbox.bwrap import BwrapExecutor
    from workbench.sandbox.docker import DockerExecutor
    from workbench.sandbox.host import UnsafeHostExecutor

    return {"bwrap": BwrapExecutor, "docker": DockerExecutor, "unsafe-host": UnsafeHostExecutor}


def get_executor(backend: str | None = None) -> Executor:
    """The configured executor (WORKBENCH_SANDBOX: auto | bwrap | docker | unsafe-host).

    auto = bubblewrap if it works here, else Docker if an engine answers, else SandboxError: code is
    never run without isolation unless unsafe-host is asked for by name.
    """
    from workbench.config import get_settings

    choice = (backend or get_settings().sandbox or "auto").strip().lower()
    if choice not in BACKENDS:
        raise SandboxError(f"Unknown sandbox backend {choice!r}: set WORKBENCH_SANDBOX to one of {', '.join(BACKENDS)}.")
    backends = _backends()
    order = ["bwrap", "docker"] if choice == "auto" else [choice]
    reasons = []
    for name in order:
        ok, why = backends[name].available()
        if ok:
            # One instance per backend and settings: the bwrap one keeps a warm sandbox between runs.
            key = (name, str(get_settings().toolchain_dir), repr(sorted(get_settings().sandbox_docker_images.items())))
            if key not in _INSTANCES:
                _INSTANCES[key] = backends[name]()
            return _INSTANCES[key]
        reasons.append(f"{name}: {why}")
    raise SandboxError(
        "No sandbox is available, so the code was not run (" + "; ".join(reasons) + "). Fix: install "
        "bubblewrap (`make setup` or `apt-get install bubblewrap`), or start a Docker engine and set "
        "WORKBENCH_SANDBOX=docker. Only if you accept running untrusted code on this machine with no "
        "isolation: WORKBENCH_SANDBOX=unsafe-host.")


__all__ = [
    "MAX_INPUT_FILES",
    "WORKDIR",
    "ExecResult",
    "Executor",
    "Limits",
    "check_command",
    "check_files",
    "default_limits",
    "files_from_path",
    "get_executor",
]
