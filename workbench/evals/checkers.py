"""How an answer is judged, by the case's `checker.kind` (a registry, one small class each):

    exact      the answer, trimmed, equals `expected` trimmed
    contains   `expected` occurs in the answer (case-insensitive)
    regex      every pattern in `patterns` matches the answer (case-insensitive); score = share matched
    humaneval  strict HumanEval: the candidate completes `prompt`, and EVERY hidden `test` passes in the sandbox
    tests      held-out tests (`tests`: file name -> source, in `language`) run in the sandbox against the
               answer's code, saved as `solution_file`; passes only when every test passes
    sql        data: the answer's SQL rows (Answer.detail["data"], from an agent run's data subtask) hold what
               the case's own `sql` returns on the published analytics snapshot, compared by `shape`
               (value, top, per: workbench.evals.answers)
    all        every checker in `parts` passes

`validate(case)` runs when a case is imported (a checker missing what it needs is refused, naming the row);
`check(case, answer)` runs on the worker after the case's model calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from workbench.evals.answers import SHAPES, Answer, compare_rows, number


@dataclass
class Verdict:
    passed: bool
    score: float
    why: str
    detail: dict[str, Any] = field(default_factory=dict)


class Checker:
    kind: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ()  # keys the checker dict must hold
    needs_expected: ClassVar[bool] = False
    code: ClassVar[bool] = False  # the answer is code (code modes apply)

    @classmethod
    def validate(cls, case) -> None:
        missing = [k for k in cls.needs if k not in case.checker]
        if missing:
            raise ValueError(f"checker {cls.kind!r} needs {', '.join(missing)}")
        if cls.needs_expected and case.expected is None:
            raise ValueError(f"checker {cls.kind!r} needs an expected answer (give `expected`)")

    @classmethod
    def check(cls, case, answer: Answer) -> Verdict:
        raise NotImplementedError


CHECKERS: dict[str, type[Checker]] = {}


def register(cls: type[Checker]) -> type[Checker]:
    CHECKERS[cls.kind] = cls
    return cls


def check(case, answer: Answer) -> Verdict:
    return CHECKERS[case.checker_kind].check(case, answer)


@register
class Exact(Checker):
    kind = "exact"
    needs_expected = True

    @classmethod
    def check(cls, case, answer: Answer) -> Verdict:
        ok = answer.text.strip() == case.expected.strip()
        return Verdict(ok, float(ok), "equals the expected answer" if ok else "differs from the expected answer")


@register
class Contains(Checker):
    kind = "contains"
    needs_expected = True

    @classmethod
    def check(cls, case, answer: Answer) -> Verdict:
        ok = case.expected.strip().casefold() in answer.text.casefold()
        return Verdict(ok, float(ok), "contains the expected answer" if ok else "does not contain the expected answer")


@register
class Regex(Checker):
    kind = "regex"
    needs = ("patterns",)

    @classmethod
    def validate(cls, case) -> None:
        super().validate(case)
        patterns = case.checker["patterns"]
        if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) for p in patterns):
            raise ValueError("checker 'regex' needs patterns: a non-empty list of strings")
        for p in patterns:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"checker 'regex': pattern {p!r} does not compile ({exc})") from None

    @classmethod
    def check(cls, case, answer: Answer) -> Verdict:
        patterns = case.checker["patterns"]
        missing = [p for p in patterns if not re.search(p, answer.text, re.IGNORECASE)]
        score = (len(patterns) - len(missing)) / len(patterns)
        why = f"matches all {len(patterns)} pattern(s)" if not missing else f"matches none of /{missing[0]}/"
        return Verdict(not missing, score, why)


@register
class HumanEval(Checker):
    kind = "humaneval"
    needs = ("prompt", "test", "entry_point")
    code = True

    @classmethod
    def check(cls, case, answer: Answer) -> Verdict:
        from workbench.code import humaneval

        problem = case.checker
        if answer.solution is None and not answer.text.strip():
            return Verdict(False, 0.0, "no code to judge (the mode produced no solution)",
                           {"judge": {"passed": False, "output": "no solution"}})
        solution = answer.solution or humaneval.program(
            problem["prompt"], humaneval.extract_code(answer.text, problem["entry_point"]), problem["entry_point"])
        verdict = humaneval.judge(problem, solution)
        judged = verdict["judge"]
        why = "every hidden test passes" if verdict["passed"] else (
            "blocked by the sandbox's scan" if judged.get("blocked") else
            "timed out" if judged.get("timed_out") else f"hidden tests fail (exit {judged.get('exit_code')})")
        return Verdict(verdict["passed"], float(verdict["passed"]), why,
                       {"judge": judged, "solution": solution})


@register
class HeldOutTests(Checker):
    kind = "tests"
    needs = ("language", "tests", "solution_file")
    code = True

    @classmethod
    def check(cls, case, answer: Answer) -> Verdict:
        from workbench.code.prompts import FENCE
        from workbench.sandbox.runtimes import run_tests

        c = case.checker
        files = dict(answer.files or {})
        if not files:
            blocks = [m.group(2) for m in FENCE.finditer(answer.text) if m.group(2).strip()]
            files = {c["solution_file"]: blocks[0] if blocks else answer.text}
        files = {n: s for n, s in files.items() if n not in c["tests"]}
        run = run_tests(c["language"], {**files, **c["tests"]}, tests=sorted(c["tests"]))
        report = run.report
        detail = {"tests": report.tests if report else 0, "passed": report.passed if report else 0}
        if run.blocked:
            return Verdict(False, 0.0, "blocked by the sandbox's scan: " + "; ".join(run.notes), detail)
        if report is None or not report.tests:
            return Verdict(False, 0.0, "the held-out tests did not run", detail)
        score = report.passed / report.tests
        ok = bool(run.ok)
        return Verdict(ok, score, f"{report.passed}/{report.tests} held-out tests pass", detail)


@register
class SqlValue(Checker):
    kind = "sql"
    needs = ("sql", "shape")

    @classmethod
    def validate(cls, case) -> None:
        super().validate(case)
        if case.checker["shape"] not in SHAPES:
            raise ValueError(f"checker 'sql': shape {case.checker['shape']!r} is not one of {', '.join(SHAPES)}")

    @classmethod
    def check(cls, case, answer: Answer) -> Verdict:
        from workbench.store import analytics

        data = (answer.detail or {}).get("data")
        if not data:
            return Verdict(False, 0.0, "no data subtask ran SQL")
        con = analytics.connect()  # the snapshot published now (see docs/how-to/experiments.md on drift)
        try:
            expected = [tuple(number(v) for v in row) for row in con.execute(case.checker["sql"]).fetchall()]
        finally:
            con.close()
        ok, why = compare_rows(expected, data.get("rows") or [], case.checker["shape"])
        generation = (analytics.snapshot_info() or {}).get("generation")
        plain = [[v if isinstance(v, (int, float, str, bool)) or v is None else str(v) for v in row]
                 for row in expected[:20]]  # stored as JSON with the result
        return Verdict(ok, float(ok), why, {"expected": plain, "answer_sql": data["sql"][:600],
                                            "answer_rows": (data.get("rows") or [])[:20], "snapshot": generation})


@register
class AllOf(Checker):
    kind = "all"
    needs = ("parts",)

    @classmethod
    def validate(cls, case) -> None:
        super().validate(case)
        parts = case.checker["parts"]
        if not isinstance(parts, list) or not parts:
            raise ValueError("checker 'all' needs parts: a non-empty list of checkers")
        for part in parts:
            kind = part.get("kind") if isinstance(part, dict) else None
            if kind not in CHECKERS or kind == "all":
                raise ValueError(f"checker 'all': part kind {kind!r} is not one of "
                                 f"{', '.join(k for k in sorted(CHECKERS) if k != 'all')}")
            CHECKERS[kind].validate(case.model_copy(update={"checker": part}))

    @classmethod
    def check(cls, case, answer: Answer) -> Verdict:
        verdicts = [CHECKERS[p["kind"]].check(case.model_copy(update={"checker": p}), answer)
                    for p in case.checker["parts"]]
        ok = all(v.passed for v in verdicts)
        return Verdict(ok, sum(v.score for v in verdicts) / len(verdicts), " | ".join(v.why for v in verdicts),
                       {k: v for verdict in verdicts for k, v in verdict.detail.items()})


def is_code(case) -> bool:
    """Whether the case's answer is judged as code (its checker, or one of its parts, runs it)."""
    kinds = [p.get("kind") for p in case.checker.get("parts", [])] if case.checker_kind == "all" else [case.checker_kind]
    return any(CHECKERS[k].code for k in kinds if k in CHECKERS)
