"""UNSAFE: run code directly on this machine, with no isolation at all.

Only reachable with WORKBENCH_SANDBOX=unsafe-host (get_executor never falls back to it). It keeps
what does not need isolation — a fresh temporary work directory, a scrubbed environment, rlimits,
the wall-clock timeout, output caps — and says in every result's notes that the code could read
and write anything this user can, and reach the network.
"""

from __future__ import annotations

import shutil
import tempfile

from workbench.sandbox._process import log_run, make_tar, supervise, to_result
from workbench.sandbox.executor import ExecResult, Executor, Limits

WARNING = ("UNSAFE: ran WITHOUT a sandbox (WORKBENCH_SANDBOX=unsafe-host): the code could read and write "
           "this user's files and use the network")


class UnsafeHostExecutor(Executor):
    name = "unsafe-host"
    isolated = False

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return True, WARNING

    def execute(self, command: list[str], inputs: dict[str, bytes], limits: Limits, env: dict[str, str],
                language: str | None) -> ExecResult:
        import resource

        input_tar = make_tar(inputs) if inputs else None
        workdir = tempfile.mkdtemp(prefix="workbench-unsafe-")
        full_env = {"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": f"{workdir}/.tmp", "LANG": "C.UTF-8",
                    "PYTHONDONTWRITEBYTECODE": "1", **env}
        cpu = limits.cpu_seconds
        # prlimit instead of preexec_fn: preexec_fn is unsafe when the caller has threads (Dask workers).
        prlimit = ["prlimit", f"--cpu={cpu}:{cpu + 1}", f"--data={limits.memory_mb * 2**20}",
                   f"--fsize={limits.disk_mb * 2**20}", f"--nofile={limits.open_files}", "--core=0", "--"]
        if resource.getrlimit(resource.RLIMIT_NPROC)[0] == resource.RLIM_INFINITY:
            prlimit.insert(-1, f"--nproc={limits.processes}")
        try:
            out = supervise(prlimit, workdir, command, env=full_env, run_env={}, limits=limits,
                            input_tar=input_tar, cwd=workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        result = to_result(out, inputs, limits, self.name,
                           [WARNING, "disk use is capped per file only (RLIMIT_FSIZE), not in total"])
        log_run(result, command, language)
        return result
