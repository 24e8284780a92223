"""The weekly eval pipeline (pipelines/weekly_eval.{yaml,ipynb}) under papermill on the real stack: the
notebook runs a HumanEval subset through the experiment runner (its own LocalCluster, the embedded Postgres,
the hidden tests in the sandbox) with deterministic models from tests/experiment_plugins.py, and reports the
pass rate and the comparison with the previous week's run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import REPO, module_stack, requires, sandbox_ok

pytestmark = [pytest.mark.timeout(600), requires(*sandbox_ok(toolchain=False))]
PLUGIN = str(REPO / "tests" / "experiment_plugins.py")
stack, stack_home = module_stack("wb-weekly-", PLUGIN)


def _printed(row: dict) -> str:
    """What the executed notebook's cells printed."""
    cells = json.loads(Path(row["output_notebook"]).read_text())["cells"]
    return "".join(o.get("text", "") if isinstance(o.get("text", ""), str) else "".join(o["text"])
                   for c in cells for o in c.get("outputs", []) if o.get("output_type") == "stream")


def test_the_weekly_eval_runs_and_compares_with_the_previous_week(stack):
    from workbench.experiment import records
    from workbench.pipelines import spec
    from workbench.pipelines.runner import PipelineRunner

    store, client, _, home = stack
    runner = PipelineRunner(store, client, home)
    pipeline = spec.get("weekly_eval")
    assert pipeline.spec.schedule and set(pipeline.spec.parameters) == {"model", "cases"}

    first = runner.run(pipeline, {"model": "test:canon_but_truncate", "cases": "3"})
    assert first["status"] == "completed", first["error"]
    printed = _printed(first)
    assert "weekly-humaneval-1 (test:canon_but_truncate): pass rate 2/3 = 66.7%" in printed
    assert "no earlier weekly run to compare with" in printed
    assert "image/png" in Path(first["output_notebook"]).read_text()  # the pass rate over the weeks

    second = runner.run(pipeline, {"model": "test:canon", "cases": "3"})
    assert second["status"] == "completed", second["error"]
    printed = _printed(second)
    assert "weekly-humaneval-2 (test:canon): pass rate 3/3 = 100.0%" in printed
    assert ("previous week weekly-humaneval-1 (test:canon_but_truncate) -> this week weekly-humaneval-2 "
            "(test:canon), on the 3 problems both ran:") in printed
    assert "pass rate 2/3 = 66.7% -> 3/3 = 100.0%, difference +33.3 points" in printed
    assert "fixed: HumanEval/2; broken: none" in printed
    assert "fixed: HumanEval/2" in Path(second["output_html"]).read_text()

    # The runs are ordinary experiments in the store: one traced task per problem.
    for name, passed in (("weekly-humaneval-1", 2), ("weekly-humaneval-2", 3)):
        rows = records.results(store, records.get(store, name)["id"])
        assert [r["case_id"] for r in rows] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
        assert sum(r["passed"] for r in rows) == passed and all(r["task_id"] for r in rows)


def test_a_wrong_parameter_fails_the_run_with_its_reason(stack):
    from workbench.pipelines import spec
    from workbench.pipelines.runner import PipelineRunner

    store, client, _, home = stack
    row = PipelineRunner(store, client, home).run(spec.get("weekly_eval"), {"cases": "0"})
    assert row["status"] == "failed" and row["error"] == "ValueError: cases = 0: run at least one problem (e.g. -p cases=10)"
