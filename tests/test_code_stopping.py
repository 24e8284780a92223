"""Where a code answer ends: generation stops once the files asked for are closed, or at the test after
the last one wanted; the loop's tidying of what a stopped or chatty answer leaves (a Java class closed,
demo calls at a module's top level removed, java.util imports added)."""

from __future__ import annotations

from workbench.code import parse_task
from workbench.code.slips import mend_slips
from workbench.code.stopping import complete_until, enough_tests, files_closed
from workbench.code.testfile import complete_tests
from workbench.testing import FunctionModel

TASK = parse_task("Write fib.py with fib(n). Tests go in test_fib.py.")
CODE = "```python\n# fib.py\ndef fib(n):\n    return n\n```"


def test_an_answer_ends_when_the_file_asked_for_is_closed_and_not_before():
    until = files_closed(TASK, ["fib.py"])
    assert until("Here:\n```python\n# fib.py\ndef fib(n):\n") is None  # still open
    assert until("```python\n# test_fib.py\nx = 1\n```\n") is None  # another file closed
    text = CODE + "\n\nThis function returns n."
    assert until(text) == len(CODE)
    two = parse_task("Write a.py and b.py: a(x) and b(x).")
    both = files_closed(two, ["a.py", "b.py"])
    first = "```python\n# a.py\ndef a(x):\n    return x\n```\n"
    assert both(first) is None and both(first + "```python\n# b.py\ndef b(x):\n    return x\n```") is not None


def test_a_streamed_answer_is_cut_where_it_is_complete_and_every_generated_token_counted():
    model = FunctionModel(lambda messages, options: CODE + "\n\nThis function returns n, which is wrong but short.")
    completion = complete_until(model, [{"role": "user", "content": "fib"}], files_closed(TASK, ["fib.py"]))
    assert completion.text == CODE and completion.finish_reason == "stop"
    assert completion.usage.output_tokens >= 1
    whole = complete_until(model, [{"role": "user", "content": "fib"}], files_closed(TASK, ["other.py"]))
    assert whole.text.endswith("short.")  # never complete: read to the end


def test_tests_stop_at_the_one_after_the_last_wanted():
    tests = "".join(f"def test_{i}():\n    assert fib({i}) >= 0\n\n" for i in range(6))
    reply = "```python\n# test_fib.py\nfrom fib import fib\n\n" + tests
    cut = enough_tests(TASK, 3)(reply)
    assert cut is not None and reply[:cut].count("def test_") == 3 and reply[cut:].lstrip().startswith("def test_3")
    java = parse_task("Write Fib.java with fib(n).", "java")
    body = "".join(f"    @Test\n    void t{i}() {{\n        assertEquals(0, Fib.fib(0));\n    }}\n\n" for i in range(3))
    reply = f"```java\n// FibTest.java\nclass FibTest {{\n{body}"
    cut = enough_tests(java, 2)(reply)
    source = reply[:cut].split("\n", 2)[2]
    closed, note = complete_tests(java, source)
    assert closed.count("@Test") == 2 and closed.rstrip().endswith("}\n}") and "closed the test class" in note
    assert complete_tests(java, closed) == (closed, "")  # a whole class is left alone


def test_demo_calls_at_a_modules_top_level_are_removed_and_set_up_calls_kept():
    source = ("import sys\n\nsys.setrecursionlimit(5000)\n\n\ndef fib(n):\n    return n\n\n\n"
              "def test_fib():\n    assert fib(1) == 1\n\n\ntest_fib()\nprint(fib(10))\n")
    fixed, notes = mend_slips(TASK, {"fib.py": source}, {})
    assert "test_fib()\n" not in fixed["fib.py"] and "print(" not in fixed["fib.py"]
    assert "sys.setrecursionlimit(5000)" in fixed["fib.py"] and "def fib(n)" in fixed["fib.py"]
    assert notes == ["removed the top-level call(s) test_fib(), print(fib(10)) from fib.py (they ran on import)"]


def test_java_util_classes_used_without_an_import_are_imported_and_nothing_else():
    task = parse_task("Write Bag.java with a static List<Integer> items().", "java")
    source = ("// Bag.java\nimport java.util.List;\n\npublic class Bag {\n"
              "    // a Map would do too; \"Set\" is only a word here\n"
              "    public static List<Integer> items() { return new ArrayList<>(Arrays.asList(1, 2)); }\n"
              "    static Function<Integer, Integer> twice = x -> 2 * x;\n}\n")
    fixed, notes = mend_slips(task, {"Bag.java": source, "Optional.java": "class Optional {}\n"}, {})
    imports = [line for line in fixed["Bag.java"].splitlines() if line.startswith("import ")]
    assert imports == ["import java.util.List;", "import java.util.ArrayList;", "import java.util.Arrays;",
                       "import java.util.function.Function;"]
    assert notes == ["imported java.util.ArrayList, java.util.Arrays, java.util.function.Function in Bag.java "
                     "(used without an import)"]
    packaged = {"BagTest.java": "package bags;\n\nclass BagTest {}\n"}  # the package line stays; imports are added
    assert mend_slips(task, {"Bag.java": source}, packaged)[1] == notes
    wildcard = "import java.util.*;\n\npublic class Bag { List<Integer> xs = new ArrayList<>(); Optional o; }\n"
    assert mend_slips(task, {"Bag.java": wildcard, "Optional.java": "class Optional {}\n"}, {}) == (
        {"Bag.java": wildcard, "Optional.java": "class Optional {}\n"}, [])  # a wildcard, and a class of its own
