"""A task's worked examples as tests in TypeScript and Java (Python's are in test_code_loop.py): which
examples can be written in the language, how they go into a model's test file (an edited copy is
replaced, the model's other tests stay, missing imports are added), and, in the real sandbox, that the
loop counts the examples a candidate passes by the names the test report shows."""

from __future__ import annotations

import pytest
from helpers import requires, sandbox_ok, scripted_coder

from workbench.code import parse_task, solve
from workbench.code.example_tests import java_literal, js_literal
from workbench.code.examples import closing_paren
from workbench.code.testfile import tidy_tests, with_examples

sandboxed = requires(*sandbox_ok())
pytestmark = pytest.mark.timeout(300)

TS_TASK = ("Write clamp.ts exporting clamp(x, lo, hi): clamp(5, 0, 3) === 3, clamp(-1, 0, 3) returns 0, "
           "clamp(x, 0, 3) is x when 0 <= x <= 3.")
JAVA_TASK = "Write Clamp.java with static int clamp(int x, int lo, int hi): clamp(5, 0, 3) returns 3, clamp(-1, 0, 3) -> 0."
TS_RIGHT = "```typescript\n// clamp.ts\nexport function clamp(x: number, lo: number, hi: number): number {\n" \
           "  return Math.min(hi, Math.max(lo, x));\n}\n```"
JAVA_RIGHT = ("```java\n// Clamp.java\npublic class Clamp {\n    public static int clamp(int x, int lo, int hi) {\n"
              "        return Math.min(hi, Math.max(lo, x));\n    }\n}\n```")


def test_examples_a_language_can_write_become_named_tests():
    ts = parse_task(TS_TASK, "typescript")
    assert ts.example_names == {"example 1", "example 2"}  # clamp(x, 0, 3) is a rule, not an example
    assert 'test("example 2", () => {\n  assert.deepStrictEqual(clamp(-1, 0, 3), 0);\n});' in ts.test_skeleton()
    java = parse_task(JAVA_TASK, "java")
    assert java.example_names == {"example1()", "example2()"}
    assert "    @Test\n    void example1() {\n        assertEquals(3, Clamp.clamp(5, 0, 3));\n    }" in java.test_skeleton()
    words = parse_task("Write even.ts with isEven(n): isEven(2) returns true, isEven(3) returns false.", "typescript")
    assert "assert.deepStrictEqual(isEven(2), true)" in words.example_tests
    unknowable = parse_task("Write first.ts with first(xs): first([]) returns undefined, first([1]) == null.", "typescript")
    assert unknowable.example_cases == []  # null or undefined: not a value the example text pins down


def test_literals_in_each_language():
    assert js_literal([1, "a", True, {"k": (2.5, False)}]) == '[1, "a", true, {"k": [2.5, false]}]'
    assert js_literal(None) is None and js_literal([1, None]) is None and js_literal({1: 2}) is None
    assert java_literal(5) == "5" and java_literal(2**40) == f"{2**40}L" and java_literal(2**70) is None
    assert java_literal('say "hi"') == '"say \\"hi\\""' and java_literal([1]) is None and java_literal(1.5) == "1.5"
    java = parse_task("Write Half.java with static double half(int n): half(3) returns 1.5.", "java")
    assert "assertEquals(1.5, Half.half(3), 1e-9);" in java.example_tests  # doubles compare with a tolerance


def test_brackets_are_matched_over_lines_strings_and_comments():
    text = 'f(a, ")", \'(\', `)`, /* ) */ g(1) // )\n, [2])'
    assert closing_paren(text, 1, code=True) == len(text) - 1 and closing_paren("f(1, 2", 1, code=True) is None
    assert closing_paren("f(2,\n 3) == 5", 1) is None  # prose: an example ends with its line
    assert closing_paren("f(7 // 2, ')') == 3", 1) == 13  # in Python `//` divides


def test_an_edited_example_is_replaced_and_the_models_other_tests_stay():
    ts = parse_task(TS_TASK, "typescript")
    written = ('import { test } from "node:test";\nimport assert from "node:assert/strict";\nimport { clamp } from "./clamp";\n\n'
               'test("example 1", () => {\n  assert.equal(clamp(5, 0, 3), 4); // "fixed" (wrongly)\n});\n\n'
               'test("keeps a value inside", () => {\n  assert.equal(clamp(1, 0, 3), 1);\n});\n')
    merged = with_examples(ts, written)
    assert "clamp(5, 0, 3), 4" not in merged and "assert.deepStrictEqual(clamp(5, 0, 3), 3)" in merged
    assert 'test("keeps a value inside"' in merged and merged.count('import { clamp } from "./clamp";') == 1
    no_semicolons = with_examples(ts, 'import { test } from "node:test"\nimport {\n  clamp,\n} from "./clamp"\n\n'
                                      'test("x", () => {\n  assert.ok(clamp(1, 0, 3));\n});\n')
    assert no_semicolons.index('} from "./clamp"\nimport assert') < no_semicolons.index('test("example 1"') < \
        no_semicolons.index('test("x"')  # the examples go after the last import, however it is written
    bare = with_examples(ts, 'test("x", () => { assert.ok(clamp(1, 0, 3)); });\n')  # the model forgot its imports
    assert bare.startswith('import { test } from "node:test";\nimport assert from "node:assert/strict";\n'
                           'import { clamp } from "./clamp";\n')
    java = parse_task(JAVA_TASK, "java")
    written = ("import org.junit.jupiter.api.Test;\nimport static org.junit.jupiter.api.Assertions.assertEquals;\n\n"
               "class ClampTest {\n    @Test\n    void example1() {\n        assertEquals(4, Clamp.clamp(5, 0, 3)); // }\n    }\n\n"
               "    @Test\n    void inside() {\n        assertEquals(1, Clamp.clamp(1, 0, 3));\n    }\n}\n")
    merged = with_examples(java, written)
    assert "assertEquals(4," not in merged and merged.count("void example1()") == 1 and "void inside()" in merged
    assert "Assertions.*" not in merged  # assertEquals, all the examples use, was imported already
    assert "import static org.junit.jupiter.api.Assertions.*;" in with_examples(java, written.replace(
        "import static org.junit.jupiter.api.Assertions.assertEquals;\n", ""))
    assert with_examples(java, "").rstrip().endswith("}\n}") and "class ClampTest {" in with_examples(java, "")
    packaged = with_examples(java, "package clamp;\n\nclass ClampTest {\n}\n")
    assert packaged.startswith("package clamp;\nimport org.junit.jupiter.api.Test;\n")  # imports after the package


def test_placeholder_tests_are_dropped_and_the_filled_in_ones_kept():
    ts = parse_task(TS_TASK, "typescript")
    half_copied = ('import { test } from "node:test";\nimport assert from "node:assert/strict";\nimport { clamp } from "./clamp";\n\n'
                   'test("WHAT IT CHECKS", () => {\n  assert.equal(clamp(INPUT), EXPECTED);\n});\n\n'
                   'test("caps at hi", () => {\n  assert.equal(clamp(9, 0, 3), 3);\n});\n')
    source, notes, left = tidy_tests(ts, half_copied)
    assert not left and notes == ["dropped the tests that kept the placeholders EXPECTED, INPUT, WHAT IT CHECKS"]
    assert "WHAT IT CHECKS" not in source and 'test("caps at hi"' in source and 'test("example 2"' in source


@sandboxed
def test_typescript_loop_counts_the_examples_by_their_report_names():
    wrong_tests = ('```typescript\n// clamp.test.ts\nimport { test } from "node:test";\nimport assert from "node:assert/strict";\n'
                   'import { clamp } from "./clamp";\n\ntest("example 1", () => {\n  assert.equal(clamp(5, 0, 3), 5);\n});\n```')
    identity = "```typescript\n// clamp.ts\nexport function clamp(x: number, lo: number, hi: number): number {\n  return x;\n}\n```"
    model = scripted_coder(identity, TS_RIGHT, tests=wrong_tests)
    result = solve(TS_TASK, "typescript", model=model, max_rounds=3)
    code, sample = result.rounds[0], result.rounds[1]
    assert (code.kind, code.tests, code.examples_passed) == ("code", 2, 0)  # judged by the examples as derived
    assert sample.kind == "sample" and sample.ok and sample.examples_passed == 2 and result.ok


@sandboxed
def test_java_loop_counts_the_examples_by_their_report_names():
    tests = ("```java\n// ClampTest.java\nimport org.junit.jupiter.api.Test;\n\nclass ClampTest {\n"
             "    @Test\n    void inside() { org.junit.jupiter.api.Assertions.assertEquals(2, Clamp.clamp(2, 0, 3)); }\n}\n```")
    asked = JAVA_TASK + " Tests go in ClampTest.java."  # asked for: the model's tests are written beside the examples
    result = solve(asked, "java", model=scripted_coder(JAVA_RIGHT, tests=tests), max_rounds=2)
    final = result.final  # the plain answer, judged by the examples and then the model's test
    assert result.ok and result.best_round == 1 and (final.tests, final.passed, final.examples_passed) == (3, 3, 2)


KEEP_PY = ("Write tail.py with drop_first(items): a new list without the first item. Do not modify items.\n"
           "drop_first([1, 2, 3]) == [2, 3]")
KEEP_TS = ("Write tail.ts exporting dropFirst(items: number[]): number[], a new array without the first item. "
           "Do not modify items. dropFirst([1, 2, 3]) == [2, 3]")
POPS_PY = "```python\n# tail.py\ndef drop_first(items):\n    items.pop(0)\n    return items\n```"
COPIES_PY = "```python\n# tail.py\ndef drop_first(items):\n    return items[1:]\n```"
POPS_TS = "```typescript\n// tail.ts\nexport function dropFirst(items: number[]): number[] {\n  items.shift();\n  return items;\n}\n```"
COPIES_TS = "```typescript\n// tail.ts\nexport function dropFirst(items: number[]): number[] {\n  return items.slice(1);\n}\n```"


def test_an_example_checks_its_input_is_left_alone_only_where_the_request_says_so():
    kept = parse_task(KEEP_PY, "python").example_cases[0].source
    assert kept == ("def test_example_1():\n    arg1 = [1, 2, 3]\n    assert drop_first(arg1) == [2, 3]\n"
                    "    assert arg1 == [1, 2, 3], 'the call modified its input, which the request forbids'\n")
    plain = parse_task(KEEP_PY.replace(" Do not modify items.", ""), "python").example_cases[0].source
    assert plain == "def test_example_1():\n    assert drop_first([1, 2, 3]) == [2, 3]\n"
    ts = parse_task(KEEP_TS, "typescript").example_cases[0].source
    assert "const arg1 = [1, 2, 3];" in ts and "assert.deepStrictEqual(arg1, [1, 2, 3]," in ts


@sandboxed
@pytest.mark.parametrize("language, task, pops, copies", [("python", KEEP_PY, POPS_PY, COPIES_PY),
                                                          ("typescript", KEEP_TS, POPS_TS, COPIES_TS)])
def test_an_answer_that_modifies_an_input_the_request_protects_misses_the_example(language, task, pops, copies):
    result = solve(task, language, model=scripted_coder(pops, copies, tests=""), max_rounds=3)
    first, second = result.rounds[0], result.rounds[1]
    assert (first.examples_passed, second.kind, second.examples_passed) == (0, "sample", 1)
    assert "the call modified its input" in first.output and result.ok and result.best_round == 2
    assert [r.kind for r in result.rounds] == ["code", "sample"]  # the examples judge: no test file written
