"""`workbench doctor` checks of the sandbox and the browser: bubblewrap, each language's runtime,
Chromium, and (heavy) one real sandboxed run with its start-up time.

None of these is needed for chat, tasks and dashboards, so a component that is not installed is
"unavailable" with the command that installs it, and does not fail the doctor; one that is installed
but broken (a sandboxed run that goes wrong, code running without isolation) is a failure.
"""

from __future__ import annotations

import functools
import time

from workbench.health import Outcome, check
from workbench.sandbox import components
from workbench.sandbox.components import Component

UNAVAILABLE = "unavailable"


def _outcome(c: Component) -> Outcome:
    return ("ok", c.detail, "") if c.available else (UNAVAILABLE, c.detail, c.fix)


# One doctor check per optional component, under the component's own name; all report through _outcome.
_COMPONENT_CHECKS = {
    "bubblewrap": components.bubblewrap,
    "python runtime": components.python_runtime,
    "typescript runtime": components.typescript_runtime,
    "java runtime": components.java_runtime,
    "chromium": components.browser,
}
for _name, _probe in _COMPONENT_CHECKS.items():
    check(_name)(functools.partial(lambda probe: _outcome(probe()), _probe))


@check("sandbox", heavy=True)
def _sandbox() -> Outcome:
    from workbench.errors import SandboxError
    from workbench.sandbox import Limits, get_executor
    from workbench.sandbox.bwrap import BwrapExecutor
    from workbench.sandbox.toolchain import Toolchain

    try:
        executor = get_executor()
    except SandboxError as exc:
        bwrap = components.bubblewrap()
        return UNAVAILABLE, str(exc).split(" (")[0], bwrap.fix or "configure WORKBENCH_SANDBOX"
    if isinstance(executor, BwrapExecutor):  # a check should not leave a warm sandbox waiting in a server
        executor = BwrapExecutor(executor.toolchain_dir, warm=False)
    python = components.python_runtime()
    if executor.name == "bwrap" and not python.available:
        return UNAVAILABLE, f"{executor.name} works, but the toolchain has no Python: {python.detail}", python.fix
    toolchain = Toolchain.from_settings()
    start = time.perf_counter()
    try:
        result = executor.run([executor.tools()["python"], "-c", "print(1)"], limits=Limits(timeout_s=20))
    except SandboxError as exc:
        return "fail", str(exc), "see the message; `make toolchain` rebuilds the runtimes"
    elapsed_ms = (time.perf_counter() - start) * 1000
    if result.stdout.strip() != "1":
        return ("fail", f"{executor.name}: exit {result.exit_code}: {result.stderr.strip()[:200]}",
                "make toolchain (rebuilds the sandbox runtimes in WORKBENCH_TOOLCHAIN_DIR)")
    if not executor.isolated:
        return ("fail", f"{executor.name}: code runs WITHOUT isolation ({elapsed_ms:.0f} ms)",
                "unset WORKBENCH_SANDBOX=unsafe-host to use bubblewrap")
    stamp = toolchain.stamp()
    versions = ", ".join(f"{k} {stamp[k]}" for k in ("python", "pytest", "node", "tsx", "javac") if k in stamp)
    notes = f"; {'; '.join(result.notes)}" if result.notes else ""
    return "ok", f"{executor.name}: python -c 'print(1)' in {elapsed_ms:.0f} ms; {versions or 'no toolchain stamp'}{notes}", ""
