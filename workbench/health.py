"""The health-check registry shared by `workbench doctor` and the served `/health`.

Each check is a function registered with `@check(name)`; it returns (status, detail, fix) where status
is "ok", "fail" or "skip" (not configured). Checks never raise: an exception is a failure with its text.
A component registers its own checks next to its code (store/health.py, sandbox/health.py, ...);
`workbench.doctor` imports every one of them and runs them.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

Outcome = tuple[str, str, str]  # status, detail, fix


@dataclass
class CheckResult:
    name: str
    status: str
    detail: str
    fix: str
    duration_ms: float
    impact: str = ""  # what keeps working and what does not while this check fails (its Check's)

    @property
    def ok(self) -> bool:
        return self.status != "fail"

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Check:
    name: str
    fn: Callable[[], Outcome]
    heavy: bool  # loads a model or starts processes: /health caches its result
    impact: str = ""  # how the workbench degrades while it fails (shown by /health's `degraded` list)


CHECKS: dict[str, Check] = {}


def check(name: str, heavy: bool = False, impact: str = "") -> Callable[[Callable[[], Outcome]], Callable[[], Outcome]]:
    def decorate(fn: Callable[[], Outcome]) -> Callable[[], Outcome]:
        CHECKS[name] = Check(name, fn, heavy, impact)
        return fn

    return decorate


def run_check(c: Check) -> CheckResult:
    start = time.perf_counter()
    try:
        status, detail, fix = c.fn()
    except Exception as exc:  # a check must report, not crash the doctor
        status, detail, fix = "fail", f"{type(exc).__name__}: {exc}", "see the detail above"
    return CheckResult(c.name, status, detail, fix, (time.perf_counter() - start) * 1000,
                       c.impact if status == "fail" else "")
