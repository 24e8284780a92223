"""Datasets and experiments on the real stack: the embedded Postgres, a Dask LocalCluster of processes, the
real CLI in subprocesses, deterministic models from a plugin (tests/experiment_plugins.py) on the workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import REPO, module_stack, requires, run_cli, sandbox_ok

pytestmark = pytest.mark.timeout(300)
PLUGIN = str(REPO / "tests" / "experiment_plugins.py")
stack, stack_home = module_stack("wb-exp-", PLUGIN)


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _config(path, **settings):
    import yaml

    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def _cli(stack, *args):
    return run_cli(*args, env={"WORKBENCH_HOME": str(stack[3]), "WORKBENCH_PLUGINS": PLUGIN, "COLUMNS": "200"})


def _error_lines(stderr: str) -> list[str]:
    """What the CLI said went wrong (other stderr lines are library warnings, e.g. platformdirs')."""
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _import(stack, name, rows, tmp_path):
    from workbench.evals import datasets
    from workbench.evals.cases import Case

    return datasets.import_cases(stack[0], name, [Case(**r) for r in rows], f"{name}.jsonl")


# --- the known answer table ---------------------------------------------------------------------------


def test_comparison_of_a_known_table_is_exactly_right(stack, tmp_path):
    """50 cases, two deterministic arms: Newcombe's (1998) first example. The pass rates, Wilson intervals
    (checked against scipy), the paired interval (the published numbers), McNemar's exact p (scipy) and the
    flipped cases all come out exactly."""
    from scipy.stats import binomtest

    from workbench.evals.config import ExperimentConfig
    from workbench.experiment.compare import compare
    from workbench.experiment.run import ExperimentRun
    from workbench.tasks.runner import TaskRunner

    store, client, service, _ = stack
    _import(stack, "newcombe", [{"id": f"case-{i:02d}", "input": f"case {i:02d}", "expected": "yes"} for i in range(50)],
            tmp_path)
    seen = []
    a, b = ExperimentRun(store, TaskRunner(client, service)).run(
        "newcombe", [ExperimentConfig(name="a", model="test:arm_a"), ExperimentConfig(name="b", model="test:arm_b")],
        progress=seen.append)
    assert a["status"] == b["status"] == "completed"
    assert seen[-1].done == seen[-1].total == 100 and seen[-1].passed == 48 + 38

    c = compare(store, a["name"], b["name"])
    assert c.paired_cases == 50 and (c.a.passed, c.b.passed) == (48, 38)
    assert c.a.rate == pytest.approx(0.96, abs=1e-12) and c.b.rate == pytest.approx(0.76, abs=1e-12)
    for arm, passed in ((c.a, 48), (c.b, 38)):
        ci = binomtest(passed, 50).proportion_ci(0.95, method="wilson")
        assert arm.interval == pytest.approx((ci.low, ci.high), abs=1e-9)
    assert c.diff == pytest.approx(-0.2, abs=1e-12)
    # Newcombe (1998), Table II, example (a): A - B in [0.0569, 0.3404]; here B - A, so negated and swapped.
    assert c.diff_interval == pytest.approx((-0.3404, -0.0569), abs=5e-5)
    assert c.p_value == pytest.approx(binomtest(2, 14, 0.5).pvalue, rel=1e-12)
    assert c.fixed == ["case-48", "case-49"]
    assert c.broken == [f"case-{i}" for i in range(36, 48)]

    # Each case is a normal traced task: its row names it, and its trace holds the model call.
    rows = {r["case_id"]: r for r in __import__("workbench").experiment_results(a["name"], store).to_dict("records")}
    assert len(rows) == 50 and all(r["status"] == "done" and r["task_id"] for r in rows.values())
    events = service.events(rows["case-07"]["task_id"])
    assert [e["kind"] for e in events if e["kind"] == "llm_call"] == ["llm_call"]
    assert service.get(rows["case-07"]["task_id"])["status"] == "completed"

    # The same numbers through the CLI, and the refusal of experiments on different datasets.
    shown = _cli(stack, "experiment", "compare", a["name"], b["name"], "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["diff_interval"] == pytest.approx([-0.3404, -0.0569], abs=5e-5)
    assert data["broken"] == c.broken and data["fixed"] == c.fixed
    shown = json.loads(_cli(stack, "experiment", "show", b["name"], "--failed", "--json").stdout)
    assert [r["case_id"] for r in shown["results"]] == c.broken and shown["passed"] == 38
    text = _cli(stack, "experiment", "compare", a["name"], b["name"])
    assert "Newcombe" in text.stdout and "McNemar" in text.stdout and "case-48, case-49" in text.stdout

    _import(stack, "other", [{"id": "x", "input": "case 01", "expected": "yes"}], tmp_path)
    (other,) = ExperimentRun(store, TaskRunner(client, service)).run("other", [ExperimentConfig(name="a", model="test:arm_a")])
    refused = _cli(stack, "experiment", "compare", a["name"], other["name"])
    assert refused.returncode == 2
    (line,) = _error_lines(refused.stderr)
    assert "newcombe v1" in line and "other v1" in line and "same cases" in line

    frame = __import__("workbench").experiments(store)
    assert {a["name"], b["name"], other["name"]} <= set(frame["name"])
    assert frame.set_index("name").loc[a["name"], "pass_rate"] == pytest.approx(0.96)


# --- resume after a crash -----------------------------------------------------------------------------


def _rows(store, name):
    with store.pool.connection() as conn:
        return conn.execute(
            "SELECT r.case_id, r.status, r.task_id, r.passed FROM experiment_results r JOIN experiments e "
            "ON e.id = r.experiment_id WHERE e.name = %s ORDER BY r.case_id", (name,)).fetchall()


def test_a_killed_run_resumes_and_ends_with_each_case_exactly_once(stack, tmp_path):
    store = stack[0]
    n = 10
    _import(stack, "naps", [{"id": f"n{i}", "input": f"nap {i}", "expected": f"nap {i}"} for i in range(n)], tmp_path)
    config = _config(tmp_path / "nap.yaml", model="test:nap")
    env = {**os.environ, "WORKBENCH_HOME": str(stack[3]), "WORKBENCH_PLUGINS": PLUGIN}
    args = [sys.executable, "-m", "workbench", "experiment", "run", "--dataset", "naps", "--config", str(config)]
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = [r for r in _rows(store, "nap-naps-1") if r[1] == "done"]
            if len(done) >= 3:
                break
            assert proc.poll() is None, proc.stdout.read().decode()
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # the process running the experiment, mid-run
        proc.wait(10)
    finally:
        try:  # its Dask workers, once the crash has happened: they must not outlive the test
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    before = {r[0]: r[2] for r in _rows(store, "nap-naps-1") if r[1] == "done"}
    assert 3 <= len(before) < n, "the kill should land mid-run"

    again = run_cli("experiment", "run", "--dataset", "naps", "--config", str(config), env=env)
    assert again.returncode == 0, again.stderr
    assert "resuming nap-naps-1" in again.stderr
    after = _rows(store, "nap-naps-1")
    assert [r[0] for r in after] == sorted(f"n{i}" for i in range(n))  # one row per case, no more
    assert all(r[1] == "done" and r[3] for r in after)
    assert {r[0]: r[2] for r in after if r[0] in before} == before  # finished cases were not run again
    with store.pool.connection() as conn:
        owners = conn.execute(
            "SELECT t.status, t.result->>'case_id' FROM experiment_results r JOIN experiments e ON e.id = r.experiment_id "
            "JOIN tasks t ON t.id = r.task_id WHERE e.name = 'nap-naps-1' ORDER BY r.case_id").fetchall()
        experiments = conn.execute("SELECT status FROM experiments WHERE dataset = 'naps'").fetchall()
    assert owners == [("completed", f"n{i}") for i in sorted(range(n), key=lambda i: f"n{i}")]  # each row, its task
    assert experiments == [("completed",)]


# --- bad input ------------------------------------------------------------------------------------------


def test_dataset_versions_follow_the_content(stack, tmp_path):
    rows = [{"id": "q1", "input": "2+2?", "expected": "4"}, {"id": "q2", "input": "3+3?", "expected": "6"}]
    first = _cli(stack, "datasets", "import", str(_jsonl(tmp_path / "a.jsonl", rows)), "--name", "math", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["version"] == 1 and json.loads(first.stdout)["created"]
    same = _cli(stack, "datasets", "import", str(_jsonl(tmp_path / "b.jsonl", rows)), "--name", "math", "--json")
    assert json.loads(same.stdout) | {} == {**json.loads(first.stdout), "created": False}
    changed = _cli(stack, "datasets", "import", str(_jsonl(tmp_path / "c.jsonl", [*rows[:1], {**rows[1], "expected": "7"}])),
                   "--name", "math", "--json")
    assert json.loads(changed.stdout)["version"] == 2
    shown = json.loads(_cli(stack, "datasets", "show", "math", "--version", "1", "--json").stdout)
    assert [c["expected"] for c in shown["cases"]] == ["4", "6"] and shown["versions"] == 2
    missing = _cli(stack, "datasets", "show", "maths")
    assert missing.returncode == 4
    (line,) = _error_lines(missing.stderr)
    assert "No dataset 'maths'" in line and "math" in line


@pytest.mark.parametrize("name, content, where", [
    ("bad.jsonl", '{"id": "a", "input": "x", "expected": "y"}\n{"id": "b", "input": "x", "expected": "y"}\n'
                  '{"id": "c", "input": "x", oops}\n', "bad.jsonl: line 3: not valid JSON"),
    ("bad.jsonl", '{"id": "a", "input": "x", "expected": "y"}\n{"id": "b", "input": "x"}\n',
     "bad.jsonl: line 2: checker 'exact' needs an expected answer"),
    ("bad.jsonl", '{"id": "a", "input": "x", "expected": "y", "colour": "red"}\n', "line 1: colour: Extra inputs"),
    ("bad.csv", 'id,input,expected\na,x,y\nb,,y\n', "bad.csv: row 2 (line 3): input:"),
    ("bad.csv", 'id,input,expected,checker\na,x,y,{"kind": "regex"}\n', "row 1 (line 2): checker 'regex' needs patterns"),
    ("bad.jsonl", '{"id": "a", "input": "x", "expected": "y"}\n{"id": "a", "input": "z", "expected": "y"}\n',
     "row 2: case id 'a' repeats row 1"),
])
def test_a_malformed_row_is_named_and_nothing_is_imported(stack, tmp_path, name, content, where):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    result = _cli(stack, "datasets", "import", str(path), "--name", "broken")
    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = _error_lines(result.stderr)
    assert where in line, line
    listed = json.loads(_cli(stack, "datasets", "list", "--json").stdout)
    assert "broken" not in {d["name"] for d in listed}


def test_parquet_and_csv_rows_import_like_jsonl(stack, tmp_path):
    import pandas as pd

    rows = [{"id": "p1", "input": "hi", "expected": "hi", "tags": "a;b"}, {"id": "p2", "input": "yo", "expected": "yo", "tags": ""}]
    pd.DataFrame(rows).to_parquet(tmp_path / "d.parquet")
    pd.DataFrame(rows).to_csv(tmp_path / "d.csv", index=False)
    got = [json.loads(_cli(stack, "datasets", "import", str(tmp_path / f), "--name", "tabular", "--json").stdout)
           for f in ("d.parquet", "d.csv")]
    assert got[0]["version"] == got[1]["version"] == 1 and not got[1]["created"]  # the same content


def test_unknown_config_key_is_refused_by_name_before_anything_runs(stack, tmp_path):
    _import(stack, "tiny", [{"id": "t", "input": "case 01", "expected": "yes"}], tmp_path)
    good = _config(tmp_path / "good.yaml", model="test:arm_a")
    bad = _config(tmp_path / "bad.yaml", model="test:arm_a", mode="single", temprature=0.2)
    result = _cli(stack, "experiment", "run", "--dataset", "tiny", "--config", str(good), "--config", str(bad))
    assert result.returncode != 0
    (line,) = _error_lines(result.stderr)
    assert "bad.yaml: unknown key 'temprature'" in line
    wrong = _config(tmp_path / "wrong.yaml", model="test:arm_a", mode="looping")
    result = _cli(stack, "experiment", "run", "--dataset", "tiny", "--config", str(wrong))
    assert result.returncode != 0 and "wrong.yaml: mode:" in result.stderr
    loop = _config(tmp_path / "loop.yaml", model="test:arm_a", mode="loop")
    result = _cli(stack, "experiment", "run", "--dataset", "tiny", "--config", str(loop))
    assert result.returncode == 2
    (line,) = _error_lines(result.stderr)
    assert "loop: mode loop cannot answer case 't'" in line
    listed = json.loads(_cli(stack, "experiment", "list", "--json").stdout)
    assert "tiny" not in {e["dataset"] for e in listed}


# --- HumanEval through the CLI ----------------------------------------------------------------------------


@requires(*sandbox_ok(toolchain=False))
def test_humaneval_subset_in_two_configurations_end_to_end(stack, tmp_path):
    """Import HumanEval, run its first 3 problems in two configurations through the CLI (the hidden tests run
    in the sandbox on the workers), compare: the one wrong answer is the one flipped case."""
    imported = _cli(stack, "datasets", "import", "humaneval", "--name", "he", "--json")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["cases"] == 164
    good = _config(tmp_path / "canon.yaml", model="test:canon", mode="single", temperature=0, max_tokens=512)
    bad = _config(tmp_path / "broken.yaml", model="test:canon_but_truncate", mode="single")
    ran = _cli(stack, "experiment", "run", "--dataset", "he", "--config", str(good), "--config", str(bad),
               "--limit", "3", "--json")
    assert ran.returncode == 0, ran.stderr
    by_name = {e["name"]: e for e in json.loads(ran.stdout)}
    assert by_name["canon-he-1"]["passed"] == 3 and by_name["broken-he-1"]["passed"] == 2
    assert all(e["done"] == e["cases"] == 3 for e in by_name.values())
    compared = json.loads(_cli(stack, "experiment", "compare", "canon-he-1", "broken-he-1", "--json").stdout)
    assert compared["broken"] == ["HumanEval/2"] and compared["fixed"] == [] and compared["paired_cases"] == 3


# --- HumanEval's three modes as experiments -----------------------------------------------------------------


def _passed(store, name):
    from workbench.experiment import records

    return {r["case_id"]: r for r in records.results(store, records.get(store, name)["id"])}


@requires(*sandbox_ok(toolchain=False))
def test_humaneval_modes_as_experiments_give_the_known_pass_table(stack, tmp_path):
    """The shipped configurations (single shot, the loop, resampling at the loop's budget) on HumanEval/0 and /2
    with models whose answers are known: `canon_but_truncate` is right on /0 and always wrong on /2;
    `greedy_wrong_truncate` is wrong on /2 only when greedy, so the loop's fresh sample and resampling fix it.
    The pass tables come out exactly; resampling runs after the loop and spends the loop's tokens per case;
    the benchmark's export writes its usual JSON lines from the rows."""
    import math
    import sys

    from workbench.code.humaneval_modes import LOOP_ROUNDS
    from workbench.evals import datasets, loaders
    from workbench.experiment.compare import compare
    from workbench.experiment.run import ExperimentRun
    from workbench.tasks.runner import TaskRunner

    store, client, service, _ = stack
    cases = [c for c in loaders.load("humaneval") if c.id in ("HumanEval/0", "HumanEval/2")]
    datasets.import_cases(store, "he-two", cases, "humaneval")
    shipped = REPO / "benchmarks" / "experiments"
    folder = tmp_path / "configs"
    folder.mkdir()
    paths = []
    for mode in ("resample", "single", "loop"):  # resample first on purpose: it must still run after the loop
        path = folder / f"humaneval-{mode}.yaml"
        path.write_text((shipped / path.name).read_text() + "model: test:canon_but_truncate\n")
        paths += ["--config", str(path)]
    ran = _cli(stack, "experiment", "run", "--dataset", "he-two", *paths, "--json")
    assert ran.returncode == 0, ran.stderr
    assert {e["name"]: e["passed"] for e in json.loads(ran.stdout)} == {
        "humaneval-resample-he-two-1": 1, "humaneval-single-he-two-1": 1, "humaneval-loop-he-two-1": 1}

    single, loop, resample = (_passed(store, f"humaneval-{m}-he-two-1") for m in ("single", "loop", "resample"))
    for rows in (single, loop, resample):
        assert {c: r["passed"] for c, r in rows.items()} == {"HumanEval/0": True, "HumanEval/2": False}
        assert all(r["status"] == "done" and r["error"] is None and r["task_id"] for r in rows.values())
    # The shipped experiment draws as many answers as the benchmark's loop: their numbers compare.
    assert loop["HumanEval/2"]["detail"]["rounds"] == LOOP_ROUNDS and loop["HumanEval/0"]["detail"]["rounds"] == 1
    budget = loop["HumanEval/2"]["tokens_in"] + loop["HumanEval/2"]["tokens_out"]
    per_sample = single["HumanEval/2"]["tokens_in"] + single["HumanEval/2"]["tokens_out"]  # the same call
    detail = resample["HumanEval/2"]["detail"]
    assert detail["budget_tokens"] == budget and detail["samples"] == math.ceil(budget / per_sample) > 1
    assert resample["HumanEval/2"]["tokens_in"] + resample["HumanEval/2"]["tokens_out"] == detail["samples"] * per_sample
    assert resample["HumanEval/0"]["detail"]["samples"] == 1  # passed its examples at once

    from benchmarks import _experiments

    configs = [c.model_copy(update={"model": "test:greedy_wrong_truncate"})
               for c in _experiments.configs(["humaneval-single", "humaneval-loop", "humaneval-resample"])]
    fixed = ExperimentRun(store, TaskRunner(client, service)).run("he-two", configs)
    tables = [{c: r["passed"] for c, r in _passed(store, e["name"]).items()} for e in fixed]
    assert tables == [{"HumanEval/0": True, "HumanEval/2": False}, {"HumanEval/0": True, "HumanEval/2": True},
                      {"HumanEval/0": True, "HumanEval/2": True}]
    c = compare(store, fixed[0]["name"], fixed[1]["name"])
    assert (c.paired_cases, c.a.passed, c.b.passed, c.fixed, c.broken) == (2, 1, 2, ["HumanEval/2"], [])

    # The benchmark's results file as an export of these runs: its lines, its report, nothing written twice.
    sys.path.insert(0, str(REPO))
    from benchmarks import humaneval as bench

    jsonl = tmp_path / "humaneval-exp.jsonl"
    runs = [_experiments.rows(e["name"], store) for e in fixed]
    assert bench.export(jsonl, runs) == 6 and bench.export(jsonl, runs) == 0
    lines = bench.read_rows(jsonl)
    assert {k: r["passed"] for k, r in lines.items()} == {
        ("test:greedy_wrong_truncate", f"HumanEval/{n}", mode): n == 0 or mode != "single"
        for n in (0, 2) for mode in ("single", "loop", "resample")}
    row = lines[("test:greedy_wrong_truncate", "HumanEval/2", "loop")]
    assert row["rounds"] == 2 and row["judge"]["passed"] and "def truncate_number" in row["code"]
    assert row["trace_id"] and row["experiment"] == fixed[1]["name"]
    summary, _ = bench.summarize(lines)
    assert {r["mode"]: r["pass_at_1"] for r in summary} == {"single": 0.5, "loop": 1.0, "resample": 1.0}


# --- the agent task set as a dataset ------------------------------------------------------------------------


@requires(*sandbox_ok(toolchain=False))
def test_the_agent_task_set_is_a_dataset_judged_as_strictly_as_the_benchmark(stack, tmp_path):
    """Every task file of benchmarks/tasks is a case, with the benchmark's strict checker: a Director run's
    result (as the agent mode gets it) passes a data case only with the value the case's own SQL gives on the
    published snapshot, and a code case only when every held-out test passes."""
    from workbench.evals import checkers, datasets
    from workbench.evals.answers import from_agent_result
    from workbench.store import analytics
    from workbench.store.sync import Syncer

    store = stack[0]
    files = sorted(p.stem for p in (REPO / "benchmarks" / "tasks").glob("[0-9][0-9]_*.py"))
    imported = _cli(stack, "datasets", "import", str(REPO / "benchmarks" / "tasks"), "--name", "agent-tasks", "--json")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["cases"] == len(files) == 45
    cases = {c.id: c for c in datasets.get(store, "agent-tasks").cases}
    assert sorted(cases) == files
    kinds = {kind: {c.checker_kind for c in cases.values() if kind in c.tags} for kind in ("general", "code", "data")}
    assert kinds == {"general": {"regex"}, "code": {"tests"}, "data": {"sql"}}

    def run_of(specialist, output, data):
        return {"answer": "Sources: ...", "subtasks": {"s1": {"specialist": specialist, "status": "done",
                                                              "output": output, "data": data}}}

    from workbench.evals.config import ExperimentConfig
    from workbench.experiment.run import ExperimentRun
    from workbench.tasks.runner import TaskRunner

    _import(stack, "two-calls", [{"id": f"c{i}", "input": f"case {i:02d}", "expected": "yes"} for i in range(2)],
            tmp_path)  # some model calls in the log, whatever ran before
    ExperimentRun(store, TaskRunner(stack[1], stack[2])).run("two-calls", [ExperimentConfig(name="calls", model="test:arm_a")])
    store.flush()
    Syncer(store).sync_once()  # the snapshot the Data specialist and the checker read
    calls = analytics.connect().execute("SELECT count(*) FROM events WHERE kind = 'llm_call'").fetchone()[0]
    assert calls >= 2
    sql = "SELECT count(*) AS n FROM events WHERE kind = 'llm_call'"
    case = cases["43_count_then_explain"]  # a count from the log, then a sentence with a required term
    text = f"There are {calls} LLM calls. An LLM call is one request to a language model."
    assert checkers.check(case, from_agent_result(run_of("data", text, {"sql": sql, "rows": [[calls]]}))).passed
    wrong = checkers.check(case, from_agent_result(run_of("data", text, {"sql": sql, "rows": [[calls + 1]]})))
    assert not wrong.passed and f"lacks {calls}" in wrong.why
    assert not checkers.check(case, from_agent_result(run_of("text", text, {}))).passed  # no SQL ran

    case = cases["08_is_prime"]
    good = "def is_prime(n):\n    return n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1))\n"
    bad = "def is_prime(n):\n    return n in (2, 3, 5, 7, 11, 13, 17, 19)\n"
    own_tests = {"test_solution.py": "from solution import is_prime\n\ndef test_two():\n    assert is_prime(2)\n"}
    for code, passes in ((good, True), (bad, False)):
        answer = from_agent_result(run_of("code", "done", {"code": code, "language": "python", "files": own_tests}))
        assert set(answer.files) == {"solution.py"}  # the model's own tests are not what judges it
        assert checkers.check(case, answer).passed is passes

    # The agents benchmark's results file as an export of an experiment on the set (here two general cases
    # answered by echoing, in mode single: the export's path, not the Director's).
    import sys

    from benchmarks import _experiments

    sys.path.insert(0, str(REPO))
    from benchmarks import agent_tasks as bench

    (run,) = ExperimentRun(store, TaskRunner(stack[1], stack[2])).run(
        "agent-tasks", [ExperimentConfig(name="echo", model="test:echo")], limit=2)
    jsonl = tmp_path / "agent_tasks-exp.jsonl"
    runs = [_experiments.rows(run["name"], store)]
    assert bench.export(store, jsonl, runs) == 2 and bench.export(store, jsonl, runs) == 0
    lines = bench.read_rows(jsonl)
    assert sorted(lines) == [("test:echo", "01_process_thread"), ("test:echo", "02_list_comprehension")]
    for line in lines.values():
        assert line["kind"] == "general" and line["status"] == "completed" and line["experiment"] == run["name"]
        assert line["seconds"] > 0 and line["task_id"] and line["why"]
        assert line["lenient_passed"] is False and "no finished subtask" in line["lenient_why"]  # no Director ran
    summary, _ = bench.summarize(list(lines.values()))
    assert summary[0] == {"measure": "tasks", "value": 2}


def test_a_resampling_budget_from_nowhere_is_refused_before_anything_runs(stack, tmp_path):
    from workbench.evals import datasets, loaders

    datasets.import_cases(stack[0], "he-one", loaders.load("humaneval")[:1], "humaneval")
    nowhere = _config(tmp_path / "resample.yaml", model="test:canon", mode="resample", budget_from="nope")
    result = _cli(stack, "experiment", "run", "--dataset", "he-one", "--config", str(nowhere))
    assert result.returncode != 0
    (line,) = _error_lines(result.stderr)
    assert "resample: budget_from 'nope' names no configuration of this run and no experiment on he-one v1" in line
    single = _config(tmp_path / "single.yaml", model="test:canon", budget_from="loop")
    result = _cli(stack, "experiment", "run", "--dataset", "he-one", "--config", str(single))
    assert result.returncode != 0
    (line,) = _error_lines(result.stderr)
    assert "single.yaml: budget_from sets a resampling budget; mode single does not resample" in line
    listed = json.loads(_cli(stack, "experiment", "list", "--json").stdout)
    assert "he-one" not in {e["dataset"] for e in listed}


def test_memory_on_gives_each_experiment_a_memory_of_its_own_and_off_turns_it_off(stack, tmp_path):
    """The task-family benchmark's two arms: the agent mode's tasks carry the config's memory switch, and with
    memory on an owner of that experiment's own (empty at its start, never shared with another run)."""
    from workbench.evals import datasets, loaders
    from workbench.evals.config import ConfigError, ExperimentConfig, parse
    from workbench.experiment.run import ExperimentRun
    from workbench.tasks.runner import TaskRunner

    store = stack[0]
    datasets.import_cases(store, "fam-one", loaders.load(str(REPO / "benchmarks/families/families.jsonl"))[:1],
                          "families.jsonl")
    configs = [ExperimentConfig(name="off", model="test:echo", mode="agent"),
               ExperimentConfig(name="on", model="test:echo", mode="agent", memory=True)]
    runs = ExperimentRun(store, TaskRunner(stack[1], stack[2])).run("fam-one", configs)
    with store.connection() as conn:
        rows = conn.execute(
            "SELECT e.config_name, e.id::text, r.memory, r.memory_owner FROM experiment_results x "
            "JOIN experiments e ON e.id = x.experiment_id JOIN task_runs r ON r.task_id = x.task_id "
            "WHERE e.id = ANY(%s::uuid[])", ([r["id"] for r in runs],)).fetchall()
    by_config = {name: (eid, memory, owner) for name, eid, memory, owner in rows}
    assert by_config["off"][1] is False
    eid, memory, owner = by_config["on"]
    assert memory is True and owner == f"experiment:{eid}"
    with pytest.raises(ConfigError, match="memory is used by the agents"):
        parse({"name": "x", "mode": "single", "memory": True}, "x.yaml")
