"""A model-written test file checked before it judges: imports of names the request never defines are
mended or their tests dropped; what cannot be mended is named (pure logic, no sandbox)."""

from __future__ import annotations

from workbench.code import parse_task
from workbench.code.candidates import Candidate, agreement, best, trusted_failures
from workbench.code.judge import Verdict
from workbench.code.testcheck import check_tests, request_names

SLUG = parse_task("Write slug.py with slugify(text) and is_slug(text). Tests go in test_slug.py.")
SOLUTION = {"slug.py": "import re\n\n\ndef slugify(text):\n    return text\n\n\ndef is_slug(text):\n    return True\n\n\n"
                       "def _helper():\n    pass\n"}


def test_the_names_the_request_defines_are_its_own_and_the_candidates_that_it_mentions():
    assert request_names(SLUG, SOLUTION) == {"slugify", "is_slug"}  # not _helper, not re
    assert request_names(SLUG, {}) == {"slugify"}  # before any answer: the function the request calls


def test_a_wrong_module_name_is_replaced_by_the_solutions():
    checked = check_tests(SLUG, "from slugify import slugify\n\n\ndef test_a():\n    assert slugify('A') == 'a'\n",
                          {"slugify", "is_slug"})
    assert checked.problem is None and checked.source.startswith("from slug import slugify\n")
    assert "from slugify import slugify" not in checked.source
    assert checked.notes == ["replaced `from slugify import slugify`: slug is the solution's module"]


def test_submodules_and_invented_helpers_are_mended_and_tests_needing_unknown_names_dropped():
    source = ("import pytest\nfrom slug import helpers, slugify\nimport slug.strings\n\n\n"
              "def test_a():\n    assert helpers.slugify('A B') == 'a-b'\n\n\n"
              "def test_b():\n    assert slug.strings.is_slug('a')\n\n\n"
              "def test_c():\n    assert helpers.normalize('x') == 'x'\n\n\n"
              "def test_d():\n    with pytest.raises(ValueError):\n        slugify(None)\n")
    checked = check_tests(SLUG, source, {"slugify", "is_slug"})
    assert checked.problem is None
    assert "helpers" not in checked.source and "slug.strings" not in checked.source
    assert "assert slugify('A B') == 'a-b'" in checked.source and "assert is_slug('a')" in checked.source
    assert "def test_c" not in checked.source and "def test_d" in checked.source and "import pytest" in checked.source
    assert any(n.startswith("dropped test_c: it uses normalize") for n in checked.notes)


def test_a_file_that_cannot_judge_says_why():
    assert check_tests(SLUG, "def test_a(:\n", {"slugify"}).problem.startswith("the test file does not parse")
    only_unknown = check_tests(SLUG, "from slug import unknown\n\n\ndef test_a():\n    assert unknown(1)\n", {"slugify"})
    assert only_unknown.problem == "no test is left that uses only what the request defines"
    no_asserts = check_tests(SLUG, "from slug import slugify\n\n\ndef test_a():\n    slugify('a')\n", {"slugify"})
    assert no_asserts.problem == "the tests contain no assertions"


def test_typescript_imports_narrowed_to_the_exports_the_request_defines():
    task = parse_task("Write clamp.ts exporting clamp(x, lo, hi).", "typescript")
    source = ('import { test } from "node:test";\nimport assert from "node:assert/strict";\n'
              'import { clamp, limit } from "./clamp";\n\n'
              'test("clamps", () => {\n  assert.equal(clamp(5, 0, 3), 3);\n});\n\n'
              'test("limits", () => {\n  assert.equal(limit(5), 3);\n});\n')
    checked = check_tests(task, source, {"clamp"})
    assert checked.problem is None and 'import { clamp } from "./clamp";' in checked.source
    assert 'test("limits"' not in checked.source and 'test("clamps"' in checked.source
    wrong_path = check_tests(task, source.replace('"./clamp"', '"./utils/clamp"').replace(", limit", ""), {"clamp"})
    assert 'from "./clamp";' in wrong_path.source


def _candidate(number: int, passed: set[str], failed: set[str], examples_passed: int = 1, files=None) -> Candidate:
    outcomes = {"ex::1": "passed" if examples_passed else "failed", **{t: "passed" for t in passed},
                **{t: "failed" for t in failed}}
    return Candidate(number, files or {"f.py": str(number)}, Verdict(None, outcomes, frozenset({"ex::1"}), assertions=1))


def test_candidates_are_chosen_by_examples_then_agreement_then_the_earliest():
    first = _candidate(1, {"t1"}, {"t2", "t3"})
    twin_a, twin_b = _candidate(2, {"t1", "t2"}, {"t3"}), _candidate(3, {"t1", "t2"}, {"t3"})
    loner = _candidate(4, {"t1", "t2", "t3"}, set(), examples_passed=0)  # fits every test, misses the example
    pool = [first, twin_a, twin_b, loner]
    assert agreement(twin_a, pool) == 4 and agreement(first, pool) == 1
    assert best(pool) is twin_a  # examples first (the loner is out), then agreement, then the earliest twin
    # Two samples sharing a misreading agree, but the plain answer passes a test they fail: it stays.
    right_first = _candidate(1, {"t1", "t2", "t3"}, {"t4"})
    misread_a, misread_b = _candidate(2, {"t1", "t4"}, {"t2", "t3"}), _candidate(3, {"t1", "t4"}, {"t2", "t3"})
    assert agreement(misread_a, [right_first, misread_a, misread_b]) > agreement(right_first, [right_first])
    assert best([right_first, misread_a, misread_b]) is right_first
    assert best([_candidate(1, {"t1"}, {"t2"}, examples_passed=0), misread_a]) is misread_a  # a missed example
    missed_too = [_candidate(1, {"t1"}, {"t2", "t3"}, examples_passed=0),
                  *(_candidate(n, {"t2", "t3"}, {"t1"}, examples_passed=0) for n in (2, 3))]
    assert best(missed_too).number == 2  # a plain answer its examples call wrong has no claim: agreement decides
    assert best([first, _candidate(2, {"t1"}, {"t2", "t3"})]) is first  # a tie keeps the plain answer
    assert trusted_failures(first, pool) == {"t2", "t3"} and trusted_failures(twin_a, [first, twin_a]) == set()
    stub = Candidate(5, {"f.py": "stub"}, Verdict(None, {"ex::1": "passed", "t1": "passed", "t2": "passed",
                                                         "t3": "passed"}, frozenset({"ex::1"})), unwritten=True)
    assert best([first, stub]) is first  # a stub is never kept over real code
