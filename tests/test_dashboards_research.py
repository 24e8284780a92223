"""The Experiments and Pipelines pages driven through their parameters against a real store: the embedded
Postgres, a Dask LocalCluster of processes running each experiment case as a traced task on deterministic
models (tests/experiment_plugins.py, tests/pages_plugins.py), and the real CLI for the numbers to match.
Tests run in file order: the first sees the empty store."""

from __future__ import annotations

import asyncio
import html
import json

import pytest
from helpers import REPO, module_stack, run_cli

pytestmark = pytest.mark.timeout(300)
PLUGINS = f"{REPO / 'tests' / 'experiment_plugins.py'},{REPO / 'tests' / 'pages_plugins.py'}"
CASES = range(30, 50)  # experiment_plugins' table on these: 6 pass in both, 12 only in A, 2 only in B
stack, stack_home = module_stack("wb-pages-", PLUGINS)


@pytest.fixture(scope="module")
def runtime(stack):
    """The served app's services for the pages (no LISTEN hub: the pages poll)."""
    from workbench.services import runtime as rt
    from workbench.tasks.api import TaskApi
    from workbench.tasks.runner import TaskRunner

    store, client, service, _ = stack
    runner = TaskRunner(client, service)
    rt.set_runtime(rt.Runtime(store, TaskApi(service, runner), None, client, asyncio.new_event_loop()))
    yield runner
    rt.set_runtime(None)


@pytest.fixture(scope="module")
def experiments(stack, runtime):
    """Two experiments of one dataset, run by the experiment code: A = test:arm_a, B = test:arm_b_markup."""
    from workbench.evals import datasets
    from workbench.evals.cases import Case
    from workbench.evals.config import ExperimentConfig
    from workbench.experiment.run import ExperimentRun

    store = stack[0]
    datasets.import_cases(store, "pages", [Case(id=f"case-{i:02d}", input=f"case {i:02d}", expected="yes")
                                           for i in CASES], "pages.jsonl")
    return ExperimentRun(store, runtime).run("pages", [ExperimentConfig(name="a", model="test:arm_a"),
                                                       ExperimentConfig(name="b", model="test:arm_b_markup")])


def _cli(stack, *args):
    return run_cli(*args, env={"WORKBENCH_HOME": str(stack[3]), "WORKBENCH_PLUGINS": PLUGINS, "COLUMNS": "220"})


def test_experiments_page_empty_state_says_what_to_run(stack, runtime):
    from dashboards.experiments import ExperimentsPage

    page = ExperimentsPage()
    assert not page.banner.visible, page.banner.object
    assert page.empty.visible and "workbench experiment run --dataset" in page.empty.object
    assert page.compare_note.visible and not page.arms.visible
    from dashboards.pipelines import PipelinesPage

    pipelines = PipelinesPage()
    assert pipelines.runs_empty.visible and "workbench pipelines run execution_report" in pipelines.runs_empty.object
    assert "execution_report" in set(pipelines.pipelines.value["pipeline"])  # the shipped pipeline, never run


def test_experiments_page_lists_and_compares_with_the_cli_numbers(stack, experiments):
    from dashboards.experiments import ExperimentsPage, arms_frame, difference_line
    from workbench.evals import stats
    from workbench.experiment.compare import pct

    a, b = experiments
    page = ExperimentsPage()
    page.param.trigger("refresh")  # the page of the empty store is cached; no LISTEN hub here to wake it
    assert not page.empty.visible
    listed = page.table.value.set_index("name")
    assert listed.loc[a["name"], "done"] == "20/20" and listed.loc[b["name"], "done"] == "20/20"
    assert listed.loc[a["name"], "dataset"] == "pages v1"
    assert listed.loc[a["name"], "pass rate"] == "90.0%" and listed.loc[b["name"], "pass rate"] == "40.0%"
    low, high = stats.wilson(18, 20)
    assert listed.loc[a["name"], "95% CI"] == f"[{pct(low)}, {pct(high)}]"
    assert "model=test:arm_a" in listed.loc[a["name"], "config"]
    assert listed.loc[a["name"], "mean ms"] != "-"

    page.a, page.b = a["name"], b["name"]
    c = page.comparison
    assert c is not None and page.arms.visible and not page.compare_note.visible
    # The same numbers as `workbench experiment compare`, in JSON and as printed.
    shown = _cli(stack, "experiment", "compare", a["name"], b["name"], "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert (c.a.rate, c.b.rate, c.diff, c.p_value) == (data["a"]["rate"], data["b"]["rate"], data["diff"],
                                                        data["p_value"])
    assert list(c.diff_interval) == data["diff_interval"] and list(c.a.interval) == data["a"]["interval"]
    assert (c.fixed, c.broken) == (data["fixed"], data["broken"]) == (["case-48", "case-49"],
                                                                       [f"case-{i}" for i in range(36, 48)])
    text = _cli(stack, "experiment", "compare", a["name"], b["name"]).stdout
    assert difference_line(c) in text
    for row in arms_frame(c).itertuples(index=False):
        assert f"{row[4]}" in text and row[5] in text and row[6] in text and row[7] in text
    assert html.escape(difference_line(c)) in page.difference.object

    # The flipped cases link to their tasks' traces; the markup in B's output is shown as text.
    from workbench.experiment import records

    rows_b = {r["case_id"]: r for r in records.results(stack[0], b["id"])}
    flips = page.flips.object
    for case in ("case-36", "case-48"):
        assert f'href="/tasks?id={rows_b[case]["task_id"]}"' in flips
    assert "<img" not in flips and "&lt;img src=x onerror=" in flips


def test_comparing_experiments_of_different_datasets_says_why(stack, experiments, runtime):
    from dashboards.experiments import ExperimentsPage
    from workbench.evals import datasets
    from workbench.evals.cases import Case
    from workbench.evals.config import ExperimentConfig
    from workbench.experiment.run import ExperimentRun

    datasets.import_cases(stack[0], "other", [Case(id="x", input="case 01", expected="yes")], "other.jsonl")
    (other,) = ExperimentRun(stack[0], runtime).run("other", [ExperimentConfig(name="a", model="test:arm_a")])
    page = ExperimentsPage()
    page.param.trigger("refresh")
    page.a, page.b = experiments[0]["name"], other["name"]
    assert page.compare_note.visible and page.compare_note.alert_type == "warning"
    assert "same cases" in page.compare_note.object and not page.arms.visible


# --- pipelines ----------------------------------------------------------------------------------------

PRINTED = "<script>document.title='pwned'</script>"


def _notebook(path, sources):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    cells = [new_code_cell("n = 1", metadata={"tags": ["parameters"]}), *map(new_code_cell, sources)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                       "display_name": "Python 3"}}), str(path))


@pytest.fixture(scope="module")
def pipeline_runs(stack, runtime, tmp_path_factory):
    """Two real runs (papermill on the cluster, recorded by the pipeline runner): one completes and prints
    markup, one fails in its second cell."""
    from workbench.pipelines import spec
    from workbench.pipelines.runner import PipelineRunner

    root = tmp_path_factory.mktemp("repo")
    _notebook(root / "pipelines" / "good.ipynb", [f"from IPython.display import HTML\nHTML({PRINTED!r})",
                                                   "print('total', n * 2)"])
    _notebook(root / "pipelines" / "bad.ipynb", ["x = n", "raise ValueError('no rows for ' + str(x))"])
    (root / "pipelines" / "good.yaml").write_text("notebook: pipelines/good.ipynb\nschedule: '0 3 * * *'\n"
                                                  "description: a nightly report\nparameters: {n: 1}\n")
    (root / "pipelines" / "bad.yaml").write_text("notebook: pipelines/bad.ipynb\nparameters: {n: 1}\n")
    runner = PipelineRunner(stack[0], stack[1], stack[3])
    good = runner.run(spec.get("good", root), {"n": "21"})
    bad = runner.run(spec.get("bad", root))
    assert (good["status"], bad["status"]) == ("completed", "failed"), (good["error"], bad["error"])
    return root, good, bad


def test_pipelines_page_shows_schedules_runs_and_a_failed_run(pipeline_runs):
    from dashboards.pipelines import PipelinesPage

    root, good, bad = pipeline_runs
    page = PipelinesPage(root=root)
    page.param.trigger("refresh")
    table = page.pipelines.value.set_index("pipeline")
    assert table.loc["good", "schedule (UTC)"] == "0 3 * * *" and table.loc["good", "next run"].endswith("03:00:00")
    assert table.loc["good", "last status"] == "completed" and table.loc["bad", "last status"] == "failed"
    assert table.loc["bad", "next run"] == "-" and table.loc["bad", "schedule (UTC)"] == "manual only"
    assert not page.runs_empty.visible and set(page.runs.value["run"]) == {str(good["id"]), str(bad["id"])}

    assert not page.scheduler_off.visible
    page.run_id = str(bad["id"])
    assert page.detail.visible and "failed in cell 2" in page.detail.object
    assert "ValueError: no rows for 1" in page.detail.object
    assert "<pre class='cell'" in page.detail.object and "raise ValueError(&#x27;no rows for &#x27;" in page.detail.object


def test_a_run_shows_its_parameters_and_its_notebook_sandboxed(pipeline_runs):
    from dashboards.pipelines import PipelinesPage

    root, good, _ = pipeline_runs
    page = PipelinesPage(root=root)
    page.run_id = str(good["id"])
    assert "&quot;n&quot;: 21" in page.detail.object and "failed in cell" not in page.detail.object
    shown = page.notebook.object
    assert page.notebook.visible and shown.startswith('<iframe class="notebook" sandbox="" ')
    # The rendering is inside srcdoc, escaped: the page itself holds no tag of the notebook's.
    assert shown.count("<") == 2 and shown.endswith("</iframe>") and "&lt;script&gt;document.title=" in shown and "total 42" in shown

    page.run_id = "not-a-run"
    assert "No pipeline run not-a-run" in page.detail.object and not page.notebook.visible


def test_with_the_scheduler_off_no_next_run_is_promised(pipeline_runs, monkeypatch):
    from dashboards.pipelines import PipelinesPage
    from workbench.config import reload_settings

    monkeypatch.setenv("WORKBENCH_PIPELINES_SCHEDULER", "false")
    reload_settings()
    try:
        page = PipelinesPage(root=pipeline_runs[0])
        assert page.scheduler_off.visible and "WORKBENCH_PIPELINES_SCHEDULER" in page.scheduler_off.object
        assert page.pipelines.value.set_index("pipeline").loc["good", "next run"] == "-"
    finally:
        monkeypatch.delenv("WORKBENCH_PIPELINES_SCHEDULER")
        reload_settings()  # later tests get the default settings back
