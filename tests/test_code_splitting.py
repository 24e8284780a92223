"""A model's test with several checks becomes one test per check (the setup before each check kept,
repeats written once, a TypeScript test cut off by the end of the answer closed), so one wrong check
cannot hide the right ones; the split files run in the real sandbox exactly as the checks did."""

from __future__ import annotations

import re

import pytest
from helpers import requires, sandbox_ok

from workbench.code import parse_task
from workbench.code.splitting import one_check_per_test
from workbench.code.stopping import enough_tests
from workbench.sandbox.runtimes import run_tests

PY = parse_task("Write words.py with reverse_words(s), which reverses the order of the words, with tests.")
TS = parse_task("Write clamp.ts exporting clamp(x: number, lo: number, hi: number): number, with tests.", "typescript")
JAVA = parse_task("Write MathUtil.java with a static int max3(int a, int b, int c), with tests.", "java")

PY_TESTS = '''import pytest

from words import reverse_words


def test_reverse_words():
    """Several checks in one test, as small models write them."""
    assert reverse_words("hello world") == "world hello"
    text = "one two three"
    assert reverse_words(text) == "three two one"
    assert reverse_words(text) == "three two one"
    assert reverse_words("  padded  ") == "  padded  "
    with pytest.raises(AttributeError):
        reverse_words(None)


def test_single():
    assert reverse_words("alone") == "alone"
'''

TS_TESTS = '''import { test } from "node:test";
import assert from "node:assert/strict";
import { clamp } from "./clamp";

test("clamps", () => {
  const lo = 0; // the floor
  assert.equal(clamp(5, lo, 3), 3);
  assert.equal(clamp(-1, lo, 3), 1);
  assert.deepEqual(
    [clamp(2, lo, 3)],
    [2]);
  assert.equal(clamp(5, lo, 3), 3);
});

test("inside", () => {
  assert.equal(clamp(1, 0, 2), 1);
});

test("edges", () => {
  assert.equal(clamp(0, 0, 0), 0);
  assert.equal(clamp(3, 0, 3), 3);
  assert.equal(cl'''


def test_python_checks_become_tests_with_their_setup_and_without_repeats():
    source, note = one_check_per_test(PY, PY_TESTS)
    assert note == "split 1 test(s) with several checks into one test per check"
    compile(source, "test_words.py", "exec")
    assert [line for line in source.splitlines() if line.startswith("def ")] == [
        "def test_reverse_words_1():", "def test_reverse_words_2():", "def test_reverse_words_3():",
        "def test_reverse_words_4():", "def test_single():"]
    second = source.split("def test_reverse_words_2():")[1].split("\n\n")[0]
    assert 'text = "one two three"' in second and "three two one" in second and "hello" not in second
    assert source.count('== "three two one"') == 1  # the repeated check is written once
    assert "pytest.raises" in source.split("def test_reverse_words_4():")[1]
    assert one_check_per_test(PY, "def test_one():\n    assert 1\n") == ("def test_one():\n    assert 1\n", "")


def test_typescript_checks_become_tests_and_a_test_cut_off_is_closed():
    source, note = one_check_per_test(TS, TS_TESTS)
    assert note == "split 2 test(s) with several checks into one test per check"
    titles = [line.split('"')[1] for line in source.splitlines() if line.startswith("test(")]
    assert titles == ["clamps (1)", "clamps (2)", "clamps (3)", "inside", "edges (1)", "edges (2)"]
    assert source.count("const lo = 0;") == 3 and "the floor" not in source  # setup in each, comments out
    assert source.rstrip().endswith("});") and "assert.equal(cl\n" not in source  # the cut-off check dropped
    assert source.count("clamp(5, lo, 3)") == 1


JAVA_TESTS = """import org.junit.jupiter.api.Test;
import static org.junit.jupiter.api.Assertions.*;

class MathUtilTest {
    @Test
    void maxOfThree() {
        int a = 1; // the smallest
        assertEquals(3, MathUtil.max3(a, 2, 3));
        assertEquals(2, MathUtil.max3(3, 2, a));
        for (int i = 0; i < 3; i++) {
            assertEquals(i, MathUtil.max3(i, i, i));
        }
    }

    @Test
    void negatives() {
        assertEquals(-1, MathUtil.max3(-1, -2, -3));
    }
}
"""


def test_java_checks_become_methods_and_a_block_statement_is_one_check():
    source, note = one_check_per_test(JAVA, JAVA_TESTS)
    assert note == "split 1 test(s) with several checks into one test per check"
    assert [m for m in re.findall(r"void (\w+)\(", source)] == ["maxOfThree_1", "maxOfThree_2", "maxOfThree_3",
                                                               "negatives"]
    third = source.split("void maxOfThree_3()")[1].split("@Test")[0]
    assert "int a = 1;" in third and "for (int i = 0; i < 3; i++) {" in third and "max3(3, 2, a)" not in third
    assert source.count("@Test") == 4 and source.rstrip().endswith("}")


def test_a_line_repeated_a_third_time_in_a_row_ends_the_test_file():
    reply = "```ts\n// clamp.test.ts\ntest(\"same\", () => {\n" + "  assert.equal(clamp(1, 1, 1), 1);\n" * 5
    cut = enough_tests(TS, 6)(reply)
    assert cut is not None and reply[:cut].count("assert.equal") == 2
    assert enough_tests(TS, 6)(reply.replace("clamp(1, 1, 1)", "clamp(1, 1, 2)", 1)) is not None  # 3rd..5th
    varied = "```ts\n" + "".join(f"  assert.equal(clamp({i}, 0, 9), {i});\n" for i in range(5))
    assert enough_tests(TS, 6)(varied) is None


@pytest.mark.timeout(300)
@requires(*sandbox_ok())
@pytest.mark.parametrize("language", ["python", "typescript", "java"])
def test_split_files_run_and_judge_check_by_check(language):
    """In the sandbox, a right answer fails only the one wrong check of the split file (the whole test
    failed before the split)."""
    if language == "python":
        task, tests, name = PY, PY_TESTS, "test_words.py"
        code = {"words.py": "def reverse_words(s):\n    return ' '.join(reversed(s.split()))\n"}
    elif language == "typescript":
        task, tests, name = TS, TS_TESTS.rsplit('\ntest("edges"', 1)[0] + "\n", "clamp.test.ts"
        code = {"clamp.ts": "export function clamp(x: number, lo: number, hi: number): number {\n"
                            "  return Math.min(Math.max(x, lo), hi);\n}\n"}
    else:
        task, tests, name = JAVA, JAVA_TESTS, "MathUtilTest.java"
        code = {"MathUtil.java": "public class MathUtil {\n    public static int max3(int a, int b, int c) {\n"
                                 "        return Math.max(a, Math.max(b, c));\n    }\n}\n"}
    whole = run_tests(language, {**code, name: tests}, tests=[name])
    split, _ = one_check_per_test(task, tests)
    parts = run_tests(language, {**code, name: split}, tests=[name])
    assert whole.report.count("failed") == 1 and whole.report.count("passed") == 1, whole.report
    assert parts.report.count("failed") == 1 and parts.report.count("passed") == {"python": 4}.get(language, 3)
