"""Loaders and checkers of workbench.evals without a store: HumanEval's strict judging in the real sandbox,
the project's task sets as datasets, and the statistics against published numbers."""

from __future__ import annotations

import pytest

from helpers import REPO, requires, sandbox_ok

pytestmark = pytest.mark.timeout(300)


def test_newcombe_wilson_and_mcnemar_match_published_values():
    from workbench.evals import stats

    # Newcombe (1998) Table II example (a), method 10: A - B in [0.0569, 0.3404]; Paired.diff is B - A.
    p = stats.Paired(50, 36, 12, 2, 0)
    assert (-p.diff_interval()[1], -p.diff_interval()[0]) == pytest.approx((0.0569, 0.3404), abs=5e-5)
    assert stats.Paired(10, 4, 0, 0, 6).diff_interval()[0] < 0 < stats.Paired(10, 4, 0, 0, 6).diff_interval()[1]
    assert stats.wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=5e-5)
    assert stats.mcnemar_exact(12, 2) == pytest.approx(2 * (1 + 14 + 91) / 2 ** 14)
    assert stats.mcnemar_exact(0, 0) == 1.0


@requires(*sandbox_ok(toolchain=False))
def test_humaneval_cases_pass_only_when_every_hidden_test_passes():
    from workbench.evals import checkers, loaders
    from workbench.evals.checkers import Answer

    cases = loaders.load("humaneval")
    assert len(cases) == 164 and len({c.id for c in cases}) == 164
    case = next(c for c in cases if c.id == "HumanEval/2")  # truncate_number: return number % 1.0
    right = "```python\ndef truncate_number(number: float) -> float:\n    return number % 1.0\n```"
    # Right on the docstring's example (3.5 -> 0.5) but wrong on the hidden tests' other numbers.
    almost = "```python\ndef truncate_number(number: float) -> float:\n    return 0.5\n```"
    assert checkers.check(case, Answer(text=right)).passed
    verdict = checkers.check(case, Answer(text=almost))
    assert not verdict.passed and verdict.score == 0.0 and "hidden tests fail" in verdict.why


def test_the_project_task_sets_load_as_cases():
    from workbench.evals import loaders

    tasks = loaders.load(str(REPO / "benchmarks" / "tasks"))
    kinds = {c.checker_kind for c in tasks}
    assert {"regex", "tests", "all"} <= kinds and len(tasks) >= 20
    assert all(c.input for c in tasks)
    spec = loaders.load(str(REPO / "benchmarks" / "spec" / "python"))
    assert spec and all(c.checker_kind == "tests" and c.checker["language"] == "python" for c in spec)
    assert all(c.id.startswith("python/") for c in spec)


@requires(*sandbox_ok(toolchain=False))
def test_held_out_tests_of_a_task_set_judge_the_answer_code():
    from workbench.evals import checkers, loaders
    from workbench.evals.checkers import Answer

    case = next(c for c in loaders.load(str(REPO / "benchmarks" / "tasks")) if c.id == "08_is_prime")
    good = "```python\ndef is_prime(n):\n    return n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1))\n```"
    bad = "```python\ndef is_prime(n):\n    return n in (2, 3, 5, 7, 11, 13, 17, 19)\n```"  # small ones only
    assert checkers.check(case, Answer(text=good)).passed
    verdict = checkers.check(case, Answer(text=bad))
    assert not verdict.passed and 0 < verdict.score < 1
