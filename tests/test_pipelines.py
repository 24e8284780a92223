"""Pipelines: the yaml checks, runs on Dask recorded in Postgres, the scheduler on a test clock."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helpers import home_dir, run_cli, stack_in

pytestmark = pytest.mark.timeout(600)


# --- the yaml -------------------------------------------------------------------------------------

def _repo(tmp_path: Path, yaml_text: str, name: str = "p", notebook: str | None = "pipelines/p.ipynb") -> Path:
    (tmp_path / "pipelines").mkdir(exist_ok=True)
    (tmp_path / "notebooks").mkdir(exist_ok=True)
    if notebook:
        _notebook(tmp_path / notebook, ["x = 1"])
    (tmp_path / "pipelines" / f"{name}.yaml").write_text(yaml_text)
    return tmp_path


def _notebook(path: Path, sources: list[str], parameters: str = "n = 1\nword = 'hi'") -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    cells = [new_code_cell(parameters, metadata={"tags": ["parameters"]}), *map(new_code_cell, sources)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                       "display_name": "Python 3"}}), str(path))
    return path


def test_a_good_file_loads(tmp_path):
    from workbench.pipelines import spec

    root = _repo(tmp_path, "notebook: pipelines/p.ipynb\nschedule: '*/5 * * * *'\nparameters: {n: 3, x: 0.5}\n")
    p = spec.get("p", root)
    assert p.spec.parameters == {"n": 3, "x": 0.5} and p.notebook_path == root / "pipelines" / "p.ipynb"
    assert p.last_due(datetime(2026, 1, 1, 0, 7, tzinfo=UTC)) == datetime(2026, 1, 1, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize("text, says", [
    ("notebook: pipelines/p.ipynb\nschedule: '61 * * * *'\n", "is not a valid cron expression"),
    ("notebook: pipelines/p.ipynb\nschedule: 'every night'\n", "is not a valid cron expression"),
    ("notebook: ../outside.ipynb\n", "is outside the repository's pipelines/ or notebooks/"),
    ("notebook: /etc/passwd\n", "is outside the repository's pipelines/ or notebooks/"),
    ("notebook: pipelines/p.ipynb\nnotebok: typo\n", "notebok: Extra inputs are not permitted"),
    ("notebook: pipelines/p.ipynb\nparameters: {n: [1, 2]}\n", "parameters.n"),
    ("notebook: pipelines/missing.ipynb\n", "does not exist"),
])
def test_a_bad_file_is_one_clear_error(tmp_path, text, says):
    from workbench.pipelines import spec

    root = _repo(tmp_path, text)
    (tmp_path / "outside.ipynb").write_text("{}")
    with pytest.raises(spec.PipelineError) as err:
        spec.get("p", root)
    assert says in str(err.value) and "p.yaml" in str(err.value)


def test_parameters_are_typed_by_their_defaults(tmp_path):
    from workbench.pipelines import spec

    p = spec.get("p", _repo(tmp_path, "notebook: pipelines/p.ipynb\nparameters: {n: 3, x: 0.5, flag: true, s: a}\n"))
    assert spec.coerce(p, {"n": "7", "x": "2", "flag": "no", "s": "5"}) == {"n": 7, "x": 2.0, "flag": False, "s": "5"}
    for bad in ({"n": "seven"}, {"n": "1.5"}, {"flag": "maybe"}, {"n": True}, {"x": "abc"}):
        with pytest.raises(spec.PipelineError, match="must be"):
            spec.coerce(p, bad)
    with pytest.raises(spec.PipelineError, match="has no parameter 'nope'"):
        spec.coerce(p, {"nope": "1"})


def test_the_cli_refuses_a_wrong_parameter_with_exit_2():
    wrong = run_cli("pipelines", "run", "execution_report", "-p", "hours=many")
    assert wrong.returncode == 2, wrong.stderr
    assert "must be int" in wrong.stderr and len(wrong.stderr.strip().splitlines()) == 1
    unknown = run_cli("pipelines", "run", "execution_report", "-p", "days=2")
    assert unknown.returncode == 2 and "has no parameter 'days'" in unknown.stderr
    listed = run_cli("pipelines", "schedule")
    assert listed.returncode == 0 and "execution_report" in listed.stdout


# --- runs on Dask, recorded -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack():
    home = home_dir("wb-pipes-")
    with stack_in(home) as (store, client, _service):
        yield store, client, home


@pytest.fixture()
def runner(stack, monkeypatch):
    from workbench.config import reload_settings
    from workbench.pipelines.runner import PipelineRunner

    monkeypatch.setenv("WORKBENCH_HOME", str(stack[2]))  # the module's stack, not the per-test home
    reload_settings()
    return PipelineRunner(stack[0], stack[1], stack[2])


def test_a_run_is_executed_rendered_and_recorded(runner, tmp_path):
    from workbench.pipelines import spec
    from workbench.testing import MemorySink

    _notebook(tmp_path / "pipelines" / "tiny.ipynb", ["result = n * 2", "print('double', result, word)"])
    (tmp_path / "pipelines" / "tiny.yaml").write_text("notebook: pipelines/tiny.ipynb\nparameters: {n: 1, word: hi}\n")
    pipeline = spec.get("tiny", tmp_path)
    with MemorySink() as events:
        row = runner.run(pipeline, {"n": "21"})
    assert row["status"] == "completed", row["error"]
    assert row["parameters"] == {"n": 21, "word": "hi"} and row["duration_ms"] > 0 and row["finished_at"]
    workdir = Path(row["workdir"])
    assert workdir == runner.home / "pipelines" / "runs" / str(row["id"])
    executed = json.loads(Path(row["output_notebook"]).read_text())
    assert "double 42 hi" in json.dumps(executed["cells"])
    assert Path(row["output_html"]).parent == workdir and "double 42 hi" in Path(row["output_html"]).read_text()
    span = events.of("pipeline_run", run_id=str(row["id"]))
    assert len(span) == 1 and span[0].payload["status"] == "completed" and span[0].trace_id == str(row["id"])
    runner.store.flush()
    stored = runner.store.events(trace_id=str(row["id"]), kinds=["pipeline_run"])
    assert len(stored) == 1 and stored[0]["error"] is None


def test_a_failing_notebook_is_recorded_with_its_cell_and_error(runner, tmp_path):
    from workbench.pipelines import history, spec

    _notebook(tmp_path / "pipelines" / "bad.ipynb", ["ok = 1", "raise ValueError('the data is wrong')", "never = 1"])
    (tmp_path / "pipelines" / "bad.yaml").write_text("notebook: pipelines/bad.ipynb\nparameters: {n: 1}\n")
    row = runner.run(spec.get("bad", tmp_path), {"n": "5"})  # papermill then injects a cell of its own
    assert row["status"] == "failed"
    assert row["failed_cell"] == 2  # the author's notebook: parameters cell 0, `ok = 1` 1, the raise 2
    assert row["error"] == "ValueError: the data is wrong"
    assert Path(row["output_notebook"]).exists() and "the data is wrong" in Path(row["output_html"]).read_text()
    assert history.recent(runner.store, "bad")[0]["id"] == row["id"]
    runner.store.flush()
    span = runner.store.events(trace_id=str(row["id"]), kinds=["pipeline_run"])
    assert span[0]["error"] == "ValueError: the data is wrong" and span[0]["payload"]["failed_cell"] == 2


def test_the_execution_report_runs_on_an_empty_store(runner):
    from workbench.pipelines import spec

    row = runner.run(spec.get("execution_report"), {"hours": 24})
    assert row["status"] == "completed", row["error"]
    html = Path(row["output_html"]).read_text()
    assert "no tasks yet" in html and "image/png" in Path(row["output_notebook"]).read_text()


# --- the scheduler on a test clock -----------------------------------------------------------------

class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _scheduled(tmp_path: Path, name: str, cron: str) -> Path:
    _notebook(tmp_path / "pipelines" / f"{name}.ipynb", ["pass"])
    (tmp_path / "pipelines" / f"{name}.yaml").write_text(f"notebook: pipelines/{name}.ipynb\nschedule: '{cron}'\n")
    return tmp_path


def _scheduler(store, root, clock, launched):
    from workbench.pipelines import spec
    from workbench.pipelines.scheduler import Scheduler

    return Scheduler(store, None, clock=clock, load=lambda: spec.load_all(root),
                     launch=lambda pipeline, run: launched.append(run))


def test_a_due_schedule_fires_once_and_not_at_first_sight(stack, tmp_path):
    store = stack[0]
    root = _scheduled(tmp_path, "hourly", "0 * * * *")
    clock, launched = Clock(datetime(2026, 3, 1, 10, 30, tzinfo=UTC)), []
    scheduler = _scheduler(store, root, clock, launched)
    assert scheduler.tick() == [] and launched == []  # first sight at 10:30: 10:00 is not run
    clock.now = datetime(2026, 3, 1, 11, 0, 5, tzinfo=UTC)
    fired = scheduler.tick()
    assert [(f.pipeline, f.due, f.trigger) for f in fired] == [("hourly", datetime(2026, 3, 1, 11, tzinfo=UTC),
                                                                "schedule")]
    assert len(launched) == 1 and launched[0].scheduled_for == fired[0].due
    clock.now += timedelta(seconds=30)
    assert scheduler.tick() == [] and len(launched) == 1  # the same due time never fires again


def test_two_schedulers_ticking_at_once_run_it_once(stack, tmp_path):
    from workbench.store import Store

    root = _scheduled(tmp_path, "twice", "*/10 * * * *")
    clock, launched = Clock(datetime(2026, 3, 2, 9, 1, tzinfo=UTC)), []
    first = _scheduler(stack[0], root, clock, launched)
    first.tick()  # first sight
    other_store = Store.open(stack[2], pool_size=2, writer=False)  # a second server on the same database
    try:
        second = _scheduler(other_store, root, clock, launched)
        clock.now = datetime(2026, 3, 2, 9, 10, 1, tzinfo=UTC)
        barrier, results = threading.Barrier(2), []

        def tick(s):
            barrier.wait()
            results.append(s.tick())

        threads = [threading.Thread(target=tick, args=(s,)) for s in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        other_store.close()
    assert sorted(len(r) for r in results) == [0, 1] and len(launched) == 1
    with stack[0].connection() as conn:
        rows = conn.execute("SELECT count(*) FROM pipeline_runs WHERE pipeline = 'twice'").fetchone()[0]
    assert rows == 1


def test_missed_due_times_catch_up_once_and_busy_runs_are_skipped(stack, tmp_path):
    from workbench.pipelines import history

    root = _scheduled(tmp_path, "missed", "0 * * * *")
    clock, launched = Clock(datetime(2026, 3, 3, 8, 30, tzinfo=UTC)), []
    scheduler = _scheduler(stack[0], root, clock, launched)
    scheduler.tick()
    clock.now = datetime(2026, 3, 3, 13, 20, tzinfo=UTC)  # down from 08:30 to 13:20: 09, 10, 11, 12, 13 due
    fired = scheduler.tick()
    assert len(fired) == 1 and fired[0].trigger == "catch_up" and fired[0].missed == 4
    assert fired[0].due == datetime(2026, 3, 3, 13, tzinfo=UTC) and len(launched) == 1
    clock.now = datetime(2026, 3, 3, 14, 0, 10, tzinfo=UTC)  # the 13:00 run is still `running`
    skipped = scheduler.tick()
    assert [f.trigger for f in skipped] == ["skipped"] and len(launched) == 1
    history.finish(stack[0], launched[0].id, status="completed", finished_at=clock.now, duration_ms=1.0)
    clock.now = datetime(2026, 3, 3, 15, 0, 10, tzinfo=UTC)
    assert [f.trigger for f in scheduler.tick()] == ["schedule"] and len(launched) == 2


def test_the_scheduler_launches_real_runs(stack, runner, tmp_path):
    from workbench.pipelines import history, spec
    from workbench.pipelines.scheduler import Scheduler

    root = _scheduled(tmp_path, "real", "*/5 * * * *")
    clock = Clock(datetime(2026, 3, 4, 7, 1, tzinfo=UTC))
    scheduler = Scheduler(stack[0], runner, clock=clock, load=lambda: spec.load_all(root))
    try:
        scheduler.tick()
        clock.now = datetime(2026, 3, 4, 7, 5, 2, tzinfo=UTC)
        [fired] = scheduler.tick()
        scheduler._pool.shutdown(wait=True)  # the run finishes in the scheduler's pool
    finally:
        scheduler.stop()
    row = history.get(stack[0], fired.run.id)
    assert row["status"] == "completed" and row["trigger"] == "schedule" and Path(row["output_html"]).exists()
