"""`workbench doctor` check: can untrusted code run here, isolated, and how long does a start take?"""

from __future__ import annotations

import time

from workbench.health import Outcome, check


@check("sandbox", heavy=True)
def _sandbox() -> Outcome:
    from workbench.errors import SandboxError
    from workbench.sandbox import Limits, get_executor
    from workbench.sandbox.bwrap import BwrapExecutor
    from workbench.sandbox.runtimes import Toolchain

    try:
        executor = get_executor()
    except SandboxError as exc:
        return "fail", str(exc).split(" (")[0], "make setup (installs bubblewrap), or configure WORKBENCH_SANDBOX"
    if isinstance(executor, BwrapExecutor):  # a check should not leave a warm sandbox waiting in a server
        executor = BwrapExecutor(executor.toolchain_dir, warm=False)
    toolchain = Toolchain.from_settings()
    python = executor.tools()["python"]
    start = time.perf_counter()
    try:
        result = executor.run([python, "-c", "print(1)"], limits=Limits(timeout_s=20))
    except SandboxError as exc:
        return "fail", str(exc), "see the message; `make toolchain` rebuilds the runtimes"
    elapsed_ms = (time.perf_counter() - start) * 1000
    if result.stdout.strip() != "1":
        missing = "" if toolchain.stamp() else " (toolchain missing)"
        return ("fail", f"{executor.name}: exit {result.exit_code}{missing}: {result.stderr.strip()[:200]}",
                "make toolchain (builds the sandbox runtimes in WORKBENCH_TOOLCHAIN_DIR)")
    if not executor.isolated:
        return ("fail", f"{executor.name}: code runs WITHOUT isolation ({elapsed_ms:.0f} ms)",
                "unset WORKBENCH_SANDBOX=unsafe-host to use bubblewrap")
    stamp = toolchain.stamp()
    versions = ", ".join(f"{k} {stamp[k]}" for k in ("python", "pytest", "node", "tsx", "javac") if k in stamp)
    notes = f"; {'; '.join(result.notes)}" if result.notes else ""
    return "ok", f"{executor.name}: python -c 'print(1)' in {elapsed_ms:.0f} ms; {versions or 'no toolchain stamp'}{notes}", ""
