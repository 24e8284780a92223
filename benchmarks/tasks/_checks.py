"""The checkers the task files share: each file is PROMPT, KIND and `check = <one of these>(...)`.

Every checker has two verdicts:

- `strict(task, judge)`: the number the benchmark reports. The task must be `completed`, and
  general: its answer states every required fact (each pattern matches, not just one);
  code:    the code the agents produced passes EVERY held-out test written in the task file, run by the
           benchmark in the sandbox (the model never sees them; the solution is saved as solution.py /
           solution.ts, which is what the held-out tests import);
  data:    the SQL result the data specialist returned holds the value the benchmark computes itself with
           its own SQL over the same analytics snapshot (`judge.query`), compared per `shape`.
- `lenient(task)`: the benchmark's earlier rule, kept for comparison and labelled as such in the report
  (general: one key term; code: one of the model's own tests passed; data: any non-null value).

`judge` is what the benchmark lends a checker: `run_tests(language, files, tests)` (the sandbox) and
`query(sql)` (rows of the snapshot the data specialist read).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

# What an agent run answered and how a data answer is compared are shared with the experiments' checkers.
from workbench.evals.answers import HELD_OUT, SOLUTION, compare_rows, data_runs, number, same, solution_files  # noqa: F401
from workbench.evals.answers import answer_text as _result_text
from workbench.evals.answers import code_runs as _result_code_runs


class Judge(Protocol):
    def run_tests(self, language: str, files: dict[str, str], tests: list[str]) -> Any: ...

    def query(self, sql: str) -> list[tuple]: ...


@dataclass
class Verdict:
    passed: bool
    why: str
    detail: dict = field(default_factory=dict)


def _subtasks(task: dict) -> list[dict]:
    return list(((task.get("result") or {}).get("subtasks") or {}).values())


def _not_completed(task: dict) -> Verdict | None:
    if task.get("status") != "completed":
        return Verdict(False, f"status {task.get('status')}: {task.get('error')}"[:300])
    return None


def _answer(task: dict) -> str:
    """The finished subtasks' outputs (not the Sources list, which echoes the prompt)."""
    return _result_text(task.get("result") or {})


# --- general ---------------------------------------------------------------------------------------


class Mentions:
    """General: strict = completed and EVERY pattern matches the answer; lenient = completed and the first
    pattern matches (the earlier rule)."""

    def __init__(self, *patterns: str):
        self.patterns = [re.compile(p, re.IGNORECASE) for p in patterns]

    def strict(self, task: dict, judge: Judge) -> Verdict:
        return _not_completed(task) or self._match(task, self.patterns)

    def lenient(self, task: dict) -> Verdict:
        return _not_completed(task) or self._match(task, self.patterns[:1])

    @staticmethod
    def _match(task: dict, patterns: list[re.Pattern]) -> Verdict:
        answer = _answer(task)
        if not answer.strip():
            return Verdict(False, "no finished subtask / empty answer")
        missing = [p.pattern for p in patterns if not p.search(answer)]
        if missing:
            return Verdict(False, f"answer matches none of /{missing[0]}/" + (f" (+{len(missing) - 1} more)"
                                                                             if len(missing) > 1 else ""))
        return Verdict(True, f"answer {len(answer)} chars, states all {len(patterns)} required term(s)")


# --- code ------------------------------------------------------------------------------------------


def _code_runs(task: dict) -> list[dict]:
    return _result_code_runs(task.get("result") or {})


class HeldOutTests:
    """Code: strict = completed, and the last code subtask's code (in `language`) passes every held-out test
    in `tests` (source of one test file importing from ./solution); lenient = one of the model's own tests
    passed and the code defines `defines` (the earlier rule)."""

    def __init__(self, language: str, tests: str, defines: str):
        if language not in SOLUTION:
            raise ValueError(f"HeldOutTests: language {language!r} is not one of {', '.join(SOLUTION)}")
        self.language, self.tests, self.defines = language, tests, re.compile(defines)

    def strict(self, task: dict, judge: Judge) -> Verdict:
        if (v := _not_completed(task)) is not None:
            return v
        runs = [d for d in _code_runs(task) if (d.get("code") or "").strip()]
        if not runs:
            return Verdict(False, "no code subtask produced code")
        data = runs[-1]
        language = (data.get("language") or "python").lower()
        if language != self.language:
            return Verdict(False, f"the code is {language}, the task asks for {self.language}")
        files = {**solution_files(data, language), HELD_OUT[language]: self.tests}
        run = judge.run_tests(language, files, [HELD_OUT[language]])
        report = run.report
        detail = {"held_out_tests": report.tests if report else 0, "held_out_passed": report.passed if report else 0}
        if run.blocked:
            return Verdict(False, "the sandbox's security scan refused the code: " + "; ".join(run.notes), detail)
        if report is None or not report.tests:
            out = (run.result.stdout[-300:] + run.result.stderr[-300:]).strip() if run.result else ""
            return Verdict(False, f"the held-out tests did not run ({report.problem if report else ''}) {out}"[:300],
                           detail)
        if not run.ok:
            first = report.failing()[0] if report.failing() else None
            told = f"; first: {first.name}: {first.message[:120]}" if first else ""
            return Verdict(False, f"{report.passed}/{report.tests} held-out tests pass{told}", detail)
        return Verdict(True, f"all {report.tests} held-out tests pass", detail)

    def lenient(self, task: dict) -> Verdict:
        runs = _code_runs(task)
        if not runs:
            return Verdict(False, "no code subtask")
        for d in runs:
            if d.get("executed") and (d.get("tests_passed") or 0) >= 1 and self.defines.search(d.get("code") or ""):
                return Verdict(True, f"{d['tests_passed']}/{d.get('tests_run')} own tests pass")
        d = runs[-1]
        return Verdict(False, f"executed={d.get('executed')}, own tests {d.get('tests_passed')}/{d.get('tests_run')}")


# --- data ------------------------------------------------------------------------------------------


class DataAnswer:
    """Data: strict = completed, and the data subtask's result rows hold what `sql` returns on the same
    snapshot, by `shape`:

    - "value": `sql` returns one value; the answer's first row contains it.
    - "top":   `sql` returns (label, value) rows ordered best first; the answer's first row contains a label
               whose value ties the best (any of a tie counts).
    - "per":   `sql` returns (key, value) rows; the answer has a row per key holding its key and its value,
               and no other rows except ones that say 0 (a key the SQL has no rows for).

    lenient = any non-null value in a data subtask's rows (the earlier rule)."""

    def __init__(self, sql: str, shape: str):
        if shape not in ("value", "top", "per"):
            raise ValueError(f"DataAnswer: shape {shape!r} is not value, top or per")
        self.sql, self.shape = sql, shape

    def strict(self, task: dict, judge: Judge) -> Verdict:
        if (v := _not_completed(task)) is not None:
            return v
        expected = [tuple(number(v) for v in row) for row in judge.query(self.sql)]
        detail = {"expected": [list(r) for r in expected[:20]]}
        answers = data_runs(task.get("result") or {})
        if not answers:
            return Verdict(False, "no data subtask ran SQL", detail)
        rows = [[number(v) for v in row] for row in answers[-1].get("rows") or []]
        detail["answer_sql"] = answers[-1]["sql"][:600]
        detail["answer_rows"] = rows[:20]
        ok, why = compare_rows(expected, rows, self.shape)
        return Verdict(ok, why, detail)

    def lenient(self, task: dict) -> Verdict:
        runs = [s for s in _subtasks(task) if s.get("specialist") == "data"]
        if not runs:
            return Verdict(False, "no data subtask")
        for s in runs:
            d = s.get("data") or {}
            if d.get("sql") and any(v is not None for row in d.get("rows") or [] for v in row):
                return Verdict(True, f"{len(d['rows'])} row(s), first {d['rows'][0]}"[:120])
        return Verdict(False, "no SQL with non-null rows")


# --- several steps ---------------------------------------------------------------------------------


class AllOf:
    """Multi-step: every part's verdict must pass (strict and lenient alike)."""

    def __init__(self, *parts: Mentions | HeldOutTests | DataAnswer):
        self.parts = parts

    def strict(self, task: dict, judge: Judge) -> Verdict:
        return self._all([p.strict(task, judge) for p in self.parts])

    def lenient(self, task: dict) -> Verdict:
        return self._all([p.lenient(task) for p in self.parts])

    @staticmethod
    def _all(verdicts: list[Verdict]) -> Verdict:
        detail = {k: v for verdict in verdicts for k, v in verdict.detail.items()}
        failed = [v for v in verdicts if not v.passed]
        if failed:
            return Verdict(False, " | ".join(v.why for v in failed)[:300], detail)
        return Verdict(True, " | ".join(v.why for v in verdicts)[:300], detail)
