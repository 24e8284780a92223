"""The benchmark sets are sound: every reference solution passes its held-out tests in the real sandbox, a
broken reference or a broken test is caught, and the agents benchmark's strict checkers judge what they say."""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import pytest
from helpers import requires, sandbox_ok

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks" / "tasks"))  # the agent task files' shared `_checks`

from _checks import AllOf, DataAnswer, HeldOutTests, Mentions  # noqa: E402

from benchmarks import agent_tasks  # noqa: E402
from benchmarks.spec import SpecTask, check_references, load  # noqa: E402

needs_sandbox = requires(*sandbox_ok())


# --- the spec-heavy set -----------------------------------------------------------------------------


def test_spec_set_has_thirty_tasks_in_three_languages_with_names_in_the_text():
    tasks = load()
    counts = collections.Counter(t.language for t in tasks)
    assert counts == {"python": 12, "typescript": 10, "java": 8}
    for t in tasks:
        assert t.reference and t.heldout, t.id
        for name in t.files:  # the request names every file the reference has
            assert name in t.text, f"{t.id}: {name} is not named in task.md"
        for source in t.heldout.values():  # the tests are held out: nothing of them is in the request
            assert source not in t.text
    for language in counts:  # one sandbox run per language needs unique file names (Java: class names)
        names = [n for t in tasks if t.language == language for n in [*t.reference, *t.heldout]]
        assert len(names) == len(set(names)), f"{language}: file names repeat across tasks"


@needs_sandbox
@pytest.mark.timeout(300)
@pytest.mark.parametrize("language", ["python", "typescript", "java"])
def test_every_reference_passes_its_held_out_tests(language):
    verdicts = check_references(load(languages=[language]))
    broken = {k: v for k, v in verdicts.items() if not v["passed"]}
    assert not broken, f"references failing their held-out tests: {broken}"
    assert all(v["grouped"] for v in verdicts.values())


def _replace(task: SpecTask, **changes) -> SpecTask:
    return SpecTask(**{**task.__dict__, **changes})


@needs_sandbox
@pytest.mark.timeout(300)
@pytest.mark.parametrize("language", ["python", "typescript", "java"])
def test_a_broken_reference_or_test_is_caught_and_named(language):
    first, second = load(languages=[language])[:2]
    ref_name, ref_source = next(iter(first.reference.items()))
    wrong = {  # a plausible wrong solution: the right names, a wrong result
        "python": ("\n\ndef slugify(text, max_length=50):\n    return text\n"),
        "typescript": ("\nexport function chunk<T>(items: T[], size: number): T[][] {\n  return [items];\n}\n"),
        "java": None,
    }[language]
    if wrong is not None:
        broken_ref = _replace(first, reference={ref_name: wrong.lstrip()})
    else:  # BankAccount that lets the balance go negative
        broken = first.reference["BankAccount.java"].replace("if (cents > balance) throw", "if (false) throw")
        assert broken != first.reference["BankAccount.java"]
        broken_ref = _replace(first, reference={**first.reference, "BankAccount.java": broken})
    test_name, test_source = next(iter(second.heldout.items()))
    # a broken test: an expectation nobody can meet
    flipped = {"python": test_source + "\n\ndef test_impossible():\n    assert 1 == 2\n",
               "typescript": test_source + '\ntest("impossible", () => {\n  assert.equal(1, 2);\n});\n',
               "java": test_source.rstrip().rstrip("}") + "\n    @Test\n    void impossible() {\n"
                                                        "        assertEquals(1, 2);\n    }\n}\n"}[language]
    broken_test = _replace(second, heldout={test_name: flipped})
    verdicts = check_references([broken_ref, broken_test])
    assert not verdicts[first.id]["passed"] and not verdicts[second.id]["passed"], verdicts
    assert verdicts[first.id]["tests"] > 0 and verdicts[first.id]["failing"], verdicts[first.id]
    assert any("impossible" in f for f in verdicts[second.id]["failing"]), verdicts[second.id]


# --- the agents benchmark ---------------------------------------------------------------------------


def _task_row(status="completed", **subtasks) -> dict:
    return {"status": status, "error": None, "result": {"subtasks": subtasks}}


class _SandboxJudge:
    def run_tests(self, language, files, tests):
        from workbench.sandbox.runtimes import run_tests

        return run_tests(language, files, tests=tests, format=False)

    def query(self, sql):
        raise AssertionError("a code check must not query the log")


def test_agent_set_has_forty_tasks_of_every_kind():
    tasks = agent_tasks.load_tasks()
    kinds = collections.Counter(m.KIND for _, m in tasks)
    assert len(tasks) >= 40 and set(kinds) == set(agent_tasks.KINDS), kinds
    assert [m.KIND for _, m in tasks] == sorted((m.KIND for _, m in tasks), key=agent_tasks.KINDS.index)
    languages = collections.Counter(p.language for _, m in tasks for p in _parts(m.check) if isinstance(p, HeldOutTests))
    assert languages["python"] >= 5 and languages["typescript"] >= 3, languages
    for name, m in tasks:
        for part in _parts(m.check):
            if isinstance(part, HeldOutTests):
                assert hasattr(m, "REFERENCE"), f"{name}: a code task needs a REFERENCE that passes its TESTS"
                assert part.tests not in m.PROMPT


def _parts(check):
    return check.parts if isinstance(check, AllOf) else (check,)


def _code_tasks():
    return [(n, m, p) for n, m in agent_tasks.load_tasks() for p in _parts(m.check) if isinstance(p, HeldOutTests)]


@needs_sandbox
@pytest.mark.timeout(300)
def test_agent_code_references_pass_their_held_out_tests_and_wrong_code_fails():
    judge = _SandboxJudge()
    failures = []
    for name, module, check in _code_tasks():
        data = {"code": module.REFERENCE, "language": check.language, "executed": True,
                "files": {"whatever.py" if check.language == "python" else "whatever.ts": module.REFERENCE}}
        verdict = check.strict(_task_row(s1={"specialist": "code", "status": "done", "data": data}), judge)
        if not verdict.passed:
            failures.append((name, verdict.why))
    assert not failures
    # The same check fails code that defines the function but breaks a stated rule, and a task not completed.
    name, module, check = next(t for t in _code_tasks() if t[0] == "11_is_palindrome")
    wrong = "def is_palindrome(s):\n    return s == s[::-1]\n"  # ignores neither case nor spaces
    row = _task_row(s1={"specialist": "code", "status": "done", "data": {"code": wrong, "language": "python"}})
    verdict = check.strict(row, judge)
    assert not verdict.passed and "held-out tests pass" in verdict.why
    assert check.lenient({**row, "result": {"subtasks": {"s1": {"specialist": "code", "data": {
        "code": wrong, "executed": True, "tests_passed": 1, "tests_run": 3}}}}}).passed  # the old rule let it by
    good = _task_row("failed", s1={"specialist": "code", "data": {"code": module.REFERENCE, "language": "python"}})
    assert not check.strict(good, judge).passed


def test_a_python_answer_to_a_typescript_task_fails_without_running():
    check = HeldOutTests("typescript", "unused", r"maxOf")
    row = _task_row(s1={"specialist": "code", "data": {"code": "def maxOf(x): ...", "language": "python"}})
    assert not check.strict(row, _SandboxJudge()).passed


class _Rows:
    def __init__(self, rows):
        self.rows = rows

    def query(self, sql):
        return self.rows


def _data_row(*rows, status="completed"):
    return _task_row(status, s1={"specialist": "data", "status": "done", "data": {"sql": "SELECT 1", "rows": list(rows)}})


def test_data_answers_must_equal_the_benchmarks_own_value():
    value = DataAnswer("SELECT ...", "value")
    assert value.strict(_data_row([12]), _Rows([(12,)])).passed
    assert not value.strict(_data_row([11]), _Rows([(12,)])).passed
    assert value.strict(_data_row([1234.57]), _Rows([(1234.5678,)])).passed  # rounded to two places
    assert not value.strict(_data_row([12], status="failed"), _Rows([(12,)])).passed
    assert value.lenient(_data_row([11])).passed  # the old rule: any non-null value
    top = DataAnswer("SELECT ...", "top")
    assert top.strict(_data_row(["code", 900]), _Rows([("code", 900), ("general", 10)])).passed
    assert not top.strict(_data_row([0.0004]), _Rows([("local:m", 0.0004)])).passed  # a number, not the model
    assert top.strict(_data_row(["b", 5]), _Rows([("a", 5), ("b", 5), ("c", 1)])).passed  # any of a tie
    per = DataAnswer("SELECT ...", "per")
    want = _Rows([("llm_call", 3), ("agent_step", 1)])
    assert per.strict(_data_row(["agent_step", 1], ["llm_call", 3]), want).passed
    assert per.strict(_data_row(["agent_step", 1], ["llm_call", 3], ["status", 0]), want).passed  # zeros ok
    assert not per.strict(_data_row(["llm_call", 3]), want).passed  # a key missing
    assert not per.strict(_data_row(["agent_step", 2], ["llm_call", 3]), want).passed  # a wrong value
    assert not per.strict(_data_row(["agent_step", 1], ["llm_call", 3], ["status", 4]), want).passed


def test_every_data_sql_runs_on_the_analytics_schema():
    import duckdb

    from workbench.store import analytics

    con = duckdb.connect(":memory:")
    con.execute(analytics.EVENTS_DDL)
    con.execute(analytics.TASKS_DDL)
    con.execute("INSERT INTO events (seq, event_id, ts, task_id, kind, agent, model, tokens_in, tokens_out, cost_usd, "
                "duration_ms, error) VALUES (1, uuid(), now(), uuid(), 'llm_call', 'code', 'local:m', 10, 5, 0.01, 300, "
                "NULL), (2, uuid(), now(), NULL, 'sandbox_run', 'code', NULL, NULL, NULL, NULL, 20, 'boom')")
    con.execute("INSERT INTO tasks (id, status) VALUES (uuid(), 'completed'), (uuid(), 'failed')")
    checks = [(n, p) for n, m in agent_tasks.load_tasks() for p in _parts(m.check) if isinstance(p, DataAnswer)]
    assert len(checks) >= 12
    for name, check in checks:
        rows = con.execute(check.sql).fetchall()
        assert rows and rows[0][0] is not None, name


def test_general_answers_must_state_every_required_fact():
    check = Mentions(r"\b443\b", r"\b80\b")
    row = _task_row(s1={"specialist": "general", "status": "done", "output": "HTTPS uses port 443."})
    assert not check.strict(row, None).passed and check.lenient(row).passed
    row["result"]["subtasks"]["s1"]["output"] += " Plain HTTP uses 80."
    assert check.strict(row, None).passed
    assert not check.strict({**row, "status": "failed"}, None).passed


def test_agent_rows_resume_from_the_jsonl(tmp_path):
    jsonl = tmp_path / "a.jsonl"
    agent_tasks.append(jsonl, {"task": "01_x", "model": "m", "passed": False})
    agent_tasks.append(jsonl, {"task": "01_x", "model": "m", "passed": True})
    agent_tasks.append(jsonl, {"task": "01_x", "model": "other", "passed": False})
    with jsonl.open("a") as f:
        f.write('{"task": "02_y", "mod')  # the line being written when the run was killed
    rows = agent_tasks.read_rows(jsonl)
    assert rows[("m", "01_x")]["passed"] is True and ("other", "01_x") in rows and len(rows) == 2


def _run_held_out(reference: str, tests: str) -> list[str]:
    """The held-out tests of one case against `reference` (as solution.py), in this process: failing names."""
    import types

    solution = types.ModuleType("solution")
    exec(reference, solution.__dict__)  # noqa: S102 - the benchmark's own references
    saved = sys.modules.get("solution")
    sys.modules["solution"] = solution
    try:
        scope: dict = {}
        exec(tests, scope)  # noqa: S102
        failed = []
        for name, fn in scope.items():
            if name.startswith("test_"):
                try:
                    fn()
                except AssertionError:
                    failed.append(name)
        return failed
    finally:
        if saved is None:
            sys.modules.pop("solution", None)
        else:
            sys.modules["solution"] = saved


def test_family_set_is_ten_families_of_three_and_ten_controls_each_reference_passing():
    import json

    from benchmarks.families import make
    from workbench.evals import loaders

    rows = make.cases()
    committed = [json.loads(line) for line in make.OUT.read_text().splitlines()]
    assert committed == [{k: v for k, v in r.items() if k != "reference"} for r in rows], \
        "families.jsonl is stale: run python benchmarks/families/make.py"
    families = collections.Counter(t for r in rows for t in r["tags"] if t.startswith("family:"))
    assert len(families) == 10 and set(families.values()) == {3}
    assert sum("control" in r["tags"] for r in rows) == 10
    for r in rows:  # every reference passes every one of its held-out tests
        assert _run_held_out(r["reference"], r["checker"]["tests"]["test_heldout.py"]) == [], r["id"]
    # the tests tell variations apart: a sibling's solution (its constants, under this name) fails
    by_id = {r["id"]: r for r in rows}
    clamp_b = by_id["clamp-b"]["reference"].replace("limit_speed", "clamp_reading")
    assert _run_held_out(clamp_b, by_id["clamp-a"]["checker"]["tests"]["test_heldout.py"])
    cases = loaders.load(str(make.OUT))  # the dataset import reads it, checkers and tags included
    assert [c.id for c in cases] == [r["id"] for r in rows] and cases[0].checker["kind"] == "tests"
