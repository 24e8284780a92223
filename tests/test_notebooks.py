"""Notebooks run end to end under papermill (as a schedule would run them)."""

from __future__ import annotations

import pytest

from helpers import REPO

pytestmark = pytest.mark.timeout(600)


def test_quickstart_notebook(test_model, tmp_path):
    import papermill

    out = tmp_path / "01_quickstart.out.ipynb"
    papermill.execute_notebook(
        str(REPO / "notebooks" / "01_quickstart.ipynb"), str(out),
        parameters={"model": test_model, "other_model": "test:echo", "max_tokens": 60},
        kernel_name="python3", cwd=str(REPO), progress_bar=False,
    )
    assert out.exists()


# --- 03-05: the DataFrame helpers on the real stack (embedded Postgres, a Dask LocalCluster started by the
# notebook's kernel), with deterministic models from tests/notebook_plugins.py on its workers.

PLUGIN = str(REPO / "tests" / "notebook_plugins.py")


def _execute(name: str, tmp_path, monkeypatch, **parameters) -> dict:
    import json

    import papermill

    monkeypatch.setenv("WORKBENCH_PLUGINS", PLUGIN)  # the kernel and its Dask workers load the test models
    out = tmp_path / name.replace(".ipynb", ".out.ipynb")
    papermill.execute_notebook(str(REPO / "notebooks" / name), str(out), parameters=parameters,
                               kernel_name="python3", cwd=str(REPO), progress_bar=False)
    return json.loads(out.read_text())


def _outputs(nb: dict, mime: str) -> list:
    return [o["data"][mime] for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
            if mime in o.get("data", {})]


def test_costs_and_anomalies_notebook_flags_the_slow_calls(tmp_path, monkeypatch):
    workload = [f"quick question {i}" for i in range(24)] + ["a slow one", "another slow one"]
    nb = _execute("03_costs_and_anomalies.ipynb", tmp_path, monkeypatch, workload=workload,
                  workload_model="test:sluggish", expect_unusual=["a slow one", "another slow one"])
    assert len(_outputs(nb, "image/png")) >= 3  # the cost, per-task and latency charts were drawn
    text = "\n".join("".join(t) for t in _outputs(nb, "text/plain"))
    assert "test:sluggish" in text  # the per-model table names the model


def test_experiment_notebook_compares_a_known_answer_table(tmp_path, monkeypatch):
    # test:calc adds correctly; test:calc_sloppy only when the first number is even: 3 of the 8 cases
    nb = _execute("04_experiment.ipynb", tmp_path, monkeypatch,
                  config_a={"name": "right", "model": "test:calc"},
                  config_b={"name": "sloppy", "model": "test:calc_sloppy"}, expect_passed=[8, 3])
    text = "\n".join("".join(t) for t in _outputs(nb, "text/plain"))
    printed = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "8 paired cases" in printed and "broken by B: ['add-17-25', 'add-123-456', 'add-9-91', 'add-31-12', 'add-77-7']" in printed
    assert "right-notebook-additions-1" in text and len(_outputs(nb, "image/png")) == 1


def test_panel_dashboard_notebook_shows_what_the_helpers_return(tmp_path, monkeypatch):
    workload = {"test:picky": ["first question", "please fail here", "<b>bold</b> reply"], "test:echo": ["other"]}
    nb = _execute("05_panel_dashboard.ipynb", tmp_path, monkeypatch, workload=workload, check_model="test:picky")
    bundles = _outputs(nb, "application/vnd.holoviews_exec.v0+json")
    assert bundles, "the dashboard cell produced no Panel output"
    (selection,) = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).startswith("model =")]
    table = "".join(next(o for o in selection["outputs"] if o["output_type"] == "execute_result")["data"]["text/plain"])
    assert "please fail here" in table and "&lt;b&gt;" not in table and "other" not in table  # test:picky's only


def test_the_docs_pages_are_rendered_from_real_runs(tmp_path):
    """scripts/render_notebooks.py (`make notebooks-html`) on a test model: each page carries its outputs."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "WORKBENCH_PLUGINS": PLUGIN}
    done = subprocess.run([sys.executable, "scripts/render_notebooks.py", "--model", "test:sluggish", "--only", "03",
                           "--only", "05", "--out", str(tmp_path)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    costs = (tmp_path / "03_costs_and_anomalies.html").read_text()
    assert costs.count("data:image/png;base64,") >= 3 and "Cumulative cost" in costs  # the plots, inline
    assert "test:sluggish" in costs and "Traceback" not in costs
    dashboard = (tmp_path / "05_panel_dashboard.dashboard.html").read_text()
    assert "cdn.bokeh.org" not in dashboard and "Bokeh" in dashboard  # standalone: BokehJS inline
    assert "test:sluggish" in dashboard  # the model's tasks, in the page's data
