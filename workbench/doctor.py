"""Every health check, run: the machine's own (workbench.checks) first, then each component's. They are
imported plainly, so a component whose checks cannot be imported is an error, not a missing line.

    results = run_all(include_heavy=False)      # [CheckResult(name, status, detail, fix, duration_ms)]
"""

from __future__ import annotations

import workbench.checks  # noqa: F401 - each of these registers its checks, in this order
import workbench.gateway.health  # noqa: F401
import workbench.sandbox.health  # noqa: F401
import workbench.store.health  # noqa: F401
from workbench.health import CHECKS, CheckResult, run_check


def run_all(include_heavy: bool = True, only: list[str] | None = None) -> list[CheckResult]:
    chosen = [c for c in CHECKS.values() if (include_heavy or not c.heavy) and (not only or c.name in only)]
    return [run_check(c) for c in chosen]
