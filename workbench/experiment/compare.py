"""Two experiments on the same dataset version, case by case: pass rates with 95 % intervals, the paired
difference and its test (workbench.evals.stats says which methods), cost, time, and the cases that flipped.

A case counts when both experiments finished it; a case that ended in an error counts as failed.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.errors import WorkbenchError
from workbench.evals import stats
from workbench.experiment import records


def pct(x: float | None) -> str:
    """A rate as `workbench experiment compare` and the Experiments page print it."""
    return "-" if x is None else f"{100 * x:.1f}%"


def points(x: float) -> str:
    """A difference of rates in percentage points, signed (the CLI's and the page's)."""
    return f"{100 * x:+.1f}"


class NotComparable(WorkbenchError):
    http_status = 422
    exit_code = 2


@dataclass
class Arm:
    id: str
    name: str
    model: str | None
    mode: str
    cases: int
    passed: int
    rate: float
    interval: tuple[float, float]
    cost_usd: float
    tokens: int
    duration_ms_median: float | None
    duration_ms_total: float


@dataclass
class Comparison:
    dataset: str
    dataset_version: int
    paired_cases: int
    a: Arm
    b: Arm
    diff: float  # B - A
    diff_interval: tuple[float, float]
    p_value: float
    fixed: list[str] = field(default_factory=list)  # failed in A, passed in B
    broken: list[str] = field(default_factory=list)  # passed in A, failed in B
    method: str = stats.METHOD

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _arm(experiment: dict, rows: list[dict], common: set[str], table: stats.Paired, first: bool) -> Arm:
    mine = [r for r in rows if r["case_id"] in common]
    durations = [r["duration_ms"] for r in mine if r["duration_ms"] is not None]
    passed = table.both + (table.only_a if first else table.only_b)
    return Arm(experiment["id"], experiment["name"], experiment["config"].get("model"), experiment["config"]["mode"],
               table.n, passed, table.rate_a if first else table.rate_b,
               table.interval_a() if first else table.interval_b(),
               sum(r["cost_usd"] or 0.0 for r in mine), sum((r["tokens_in"] or 0) + (r["tokens_out"] or 0) for r in mine),
               statistics.median(durations) if durations else None, sum(durations))


def compare(store, ref_a: str, ref_b: str) -> Comparison:
    a, b = records.get(store, ref_a), records.get(store, ref_b)
    if (a["dataset"], a["dataset_version"]) != (b["dataset"], b["dataset_version"]):
        raise NotComparable(
            f"{a['name']} ran on dataset {a['dataset']} v{a['dataset_version']} and {b['name']} on "
            f"{b['dataset']} v{b['dataset_version']}: a paired comparison needs the same cases; compare "
            f"experiments of one dataset version.")
    rows_a = [r for r in records.results(store, a["id"]) if r["status"] == "done"]
    rows_b = [r for r in records.results(store, b["id"]) if r["status"] == "done"]
    pass_a = {r["case_id"]: bool(r["passed"]) for r in rows_a}
    pass_b = {r["case_id"]: bool(r["passed"]) for r in rows_b}
    common = set(pass_a) & set(pass_b)
    table = stats.paired(pass_a, pass_b)
    order = [r["case_id"] for r in rows_a if r["case_id"] in common]
    return Comparison(
        a["dataset"], a["dataset_version"], table.n, _arm(a, rows_a, common, table, True),
        _arm(b, rows_b, common, table, False), table.diff, table.diff_interval(), table.p_value(),
        fixed=[c for c in order if not pass_a[c] and pass_b[c]], broken=[c for c in order if pass_a[c] and not pass_b[c]])
