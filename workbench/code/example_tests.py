"""The task's worked examples as tests in the task's language, and how they go into a test file.

    style = EXAMPLE_STYLES["typescript"]
    tests = style.tests(find_examples(text, "clamp"), function="clamp", stem="clamp")
    tests[0].name, tests[0].source   # "example 1", 'test("example 1", () => { ... });'
    style.insert(model_written_file, tests, function="clamp", stem="clamp", module="clamp")

Python tests come from each example's check (`f(2) == 4`, or any doctest comparison). TypeScript and
Java need a call of the task's function with literal arguments and a literal result the language can
write (TypeScript: numbers, strings, booleans, arrays, plain objects; Java: numbers, strings,
booleans); other examples are left to the model's own tests. A test's `name` is the case name the
sandbox's JUnit report shows, which is how the loop counts the examples a candidate passes.
Where the request forbids modifying the input ("Do not modify items"), an example whose arguments
include a list, dict or set (an array or object in TypeScript) also checks that the call left them as
they were: a rule the request states and a model's tests seldom check. (Java's literal arguments are
never mutable.)
`insert` puts the tests into a model's test file exactly as derived (a same-named copy the model
edited is replaced) with the imports they need: the user's examples are the one part of the spec a
model cannot get wrong.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workbench.code.examples import Example, closing_paren

LIMIT = 12  # example tests per task: past a dozen they only lengthen every prompt
_KEEP_INPUT = re.compile(r"\b(?:do\s+not|don't|must\s+not|never|without)\s+(?:modify|modifying|mutate|mutating)\b",
                         re.IGNORECASE)
UNCHANGED = "the call modified its input, which the request forbids"  # the failure message the model sees


def forbids_modifying(text: str) -> bool:
    """The request says not to modify (mutate) what it is given."""
    return bool(_KEEP_INPUT.search(text))


@dataclass(frozen=True)
class ExampleTest:
    name: str  # the test case name in the sandbox's report
    source: str


def call_and_result(example: Example, function: str) -> tuple[list[Any], Any] | None:
    """(argument values, expected value) of an example `function(literals) == literal`, else None."""
    if not example.check:
        return None
    node = ast.parse(example.check, mode="eval").body
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq)):
        return None
    call = node.left
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == function
            and not call.keywords):
        return None
    try:
        return [ast.literal_eval(a) for a in call.args], ast.literal_eval(node.comparators[0])
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _literal_tests(examples: list[Example], function: str, literal: Callable[[Any], str | None],
                   render: Callable[[int, list[str], str, Any, list[Any]], ExampleTest]) -> list[ExampleTest]:
    """Up to LIMIT tests, numbered from 1, of the examples whose arguments and result `literal` can write."""
    out: list[ExampleTest] = []
    for example in examples:
        parts = call_and_result(example, function)
        if parts is None or len(out) == LIMIT:
            continue
        args, want = [literal(a) for a in parts[0]], literal(parts[1])
        if want is not None and None not in args:
            out.append(render(len(out) + 1, args, want, parts[1], parts[0]))
    return out


def _protected(args: list[str], keep: list[bool]) -> tuple[list[str], list[tuple[str, str]]]:
    """The call's argument texts with each kept one named (arg1, arg2, ...), and (name, literal) of those
    named: set up before the call, compared with their literal after it."""
    names = [f"arg{i}" if k else a for i, (a, k) in enumerate(zip(args, keep), 1)]
    return names, [(n, a) for n, a, k in zip(names, args, keep) if k]


# --- Python ---------------------------------------------------------------------------------------


class PythonExamples:
    prefix = "test_example_"  # how the prompts name them

    def tests(self, examples: list[Example], *, function: str, stem: str, unchanged: bool = False
              ) -> list[ExampleTest]:
        with_checks = [e for e in examples if e.check][:LIMIT]
        return [ExampleTest(f"test_example_{i}", f"def test_example_{i}():\n{self._body(e, function, unchanged)}")
                for i, e in enumerate(with_checks, 1)]

    @staticmethod
    def _body(example: Example, function: str, unchanged: bool) -> str:
        """`assert <check>`; where the input must stay unchanged and the call has mutable literal
        arguments, those are named first and compared with their literals after the call."""
        parts = call_and_result(example, function) if unchanged else None
        keep = [isinstance(a, (list, dict, set)) for a in parts[0]] if parts else []
        if not any(keep):
            return f"    assert {example.check}\n"
        names, named = _protected([repr(a) for a in parts[0]], keep)
        setup = "".join(f"    {n} = {a}\n" for n, a in named)
        after = "".join(f"    assert {n} == {a}, {UNCHANGED!r}\n" for n, a in named)
        return f"{setup}    assert {function}({', '.join(names)}) == {parts[1]!r}\n{after}"

    def block(self, tests: list[ExampleTest]) -> str:
        return "".join(t.source + "\n\n" for t in tests)

    def drop(self, source: str, unwanted: Callable[[str, str], bool]) -> str:
        """The file less the test functions for which unwanted(name, source) holds; "" if it does not parse."""
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            return ""
        tests = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test")]
        return without_functions(source, {f.name for f in tests if unwanted(f.name, ast.get_source_segment(source, f) or "")})

    def insert(self, source: str, tests: list[ExampleTest], *, function: str, stem: str, module: str) -> str:
        source = without_functions(source, {t.name for t in tests})
        imported = re.search(rf"^\s*from\s+{re.escape(module)}\s+import\s+(?:\*|.*\b{re.escape(function)}\b)",
                             source, re.MULTILINE)
        header = "" if imported else f"from {module} import {function}\n\n\n"
        return (source.rstrip() + "\n\n\n" if source.strip() else "") + header + self.block(tests).rstrip() + "\n"


def without_functions(source: str, names: set[str]) -> str:
    """The Python source less its top-level functions with these names (as is if it does not parse)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return source
    lines = source.splitlines(keepends=True)
    drop = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name in names]
    for node in sorted(drop, key=lambda n: n.lineno, reverse=True):
        del lines[function_lines(node)]
    return "".join(lines)


def function_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> slice:
    """The function's lines (its decorators included) as a slice of source.splitlines()."""
    return slice(min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1, node.end_lineno)


# --- TypeScript -----------------------------------------------------------------------------------


class TypeScriptExamples:
    prefix = '"example N"'

    def tests(self, examples: list[Example], *, function: str, stem: str, unchanged: bool = False
              ) -> list[ExampleTest]:
        def render(i: int, args: list[str], want: str, value: Any, values: list[Any]) -> ExampleTest:
            # a tuple is written as an array, which a call can change; a set is never written
            names, named = _protected(args, [unchanged and isinstance(v, (list, tuple, dict)) for v in values])
            setup = "".join(f"  const {n} = {a};\n" for n, a in named)
            after = "".join(f"  assert.deepStrictEqual({n}, {a}, {json.dumps(UNCHANGED)});\n" for n, a in named)
            return ExampleTest(f"example {i}", f'test("example {i}", () => {{\n{setup}  assert.deepStrictEqual('
                                               f'{function}({", ".join(names)}), {want});\n{after}}});\n')

        return _literal_tests(examples, function, js_literal, render)

    def block(self, tests: list[ExampleTest]) -> str:
        return "".join(t.source + "\n" for t in tests)

    def drop(self, source: str, unwanted: Callable[[str, str], bool]) -> str:
        """The file less the `test(...)` / `it(...)` calls for which unwanted(title, source) holds."""
        return _drop_blocks(source, _TS_TEST, unwanted)

    def insert(self, source: str, tests: list[ExampleTest], *, function: str, stem: str, module: str) -> str:
        names = {t.name for t in tests}
        source = self.drop(source, lambda name, text: name in names)
        source = source if not source or source.endswith("\n") else source + "\n"
        needed = [line for line, present in (
            ('import { test } from "node:test";',
             r"import\s+(?:test\b|\{[^}]*\btest\b[^}]*\})[^;\n]*from\s*[\"']node:test[\"']"),
            ('import assert from "node:assert/strict";', r"import\s+(?:\*\s+as\s+)?assert\b"),
            (f'import {{ {function} }} from "./{stem}";',
             rf"import\s*\{{[^}}]*\b{re.escape(function)}\b[^}}]*\}}\s*from"),
        ) if not re.search(present, source)]
        imports = list(re.finditer(r"^import\b(?:[^;\n{]|\{[^}]*\})*;?[ \t]*$", source, re.MULTILINE))
        at = imports[-1].end() + 1 if imports else 0
        head = source[:at] + "".join(line + "\n" for line in needed)
        return head + "\n" + self.block(tests) + source[at:].lstrip("\n")


def js_literal(value: Any) -> str | None:
    """The value as a TypeScript literal; None where the text would be ambiguous (None: null or undefined?)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if abs(value) < 2**53 else None
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        items = [js_literal(v) for v in value]
        return None if None in items else f"[{', '.join(items)}]"
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        items = [js_literal(v) for v in value.values()]
        return None if None in items else "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in zip(value, items)) + "}"
    return None


# --- Java -----------------------------------------------------------------------------------------


class JavaExamples:
    prefix = "exampleN"

    def tests(self, examples: list[Example], *, function: str, stem: str, unchanged: bool = False
              ) -> list[ExampleTest]:
        def render(i: int, args: list[str], want: str, value: Any, values: list[Any]) -> ExampleTest:
            delta = ", 1e-9" if isinstance(value, float) else ""  # doubles compare with a tolerance
            return ExampleTest(f"example{i}()", f"    @Test\n    void example{i}() {{\n        assertEquals("
                                                f"{want}, {stem}.{function}({', '.join(args)}){delta});\n    }}\n")

        return _literal_tests(examples, function, java_literal, render)

    def block(self, tests: list[ExampleTest]) -> str:
        return "\n".join(t.source for t in tests) + "\n"

    def drop(self, source: str, unwanted: Callable[[str, str], bool]) -> str:
        """The file less the test methods for which unwanted(name + "()", source) holds."""
        return _drop_blocks(source, _JAVA_TEST, unwanted, opening="{")

    def insert(self, source: str, tests: list[ExampleTest], *, function: str, stem: str, module: str) -> str:
        names = {t.name for t in tests}
        source = self.drop(source, lambda name, text: name in names)
        needed = [line for line, present in (
            ("import org.junit.jupiter.api.Test;", r"import\s+org\.junit\.jupiter\.api\.(?:Test|\*)\s*;"),
            ("import static org.junit.jupiter.api.Assertions.*;",
             r"import\s+static\s+org\.junit\.jupiter\.api\.Assertions\.(?:\*|assertEquals)\s*;"),
        ) if not re.search(present, source)]
        imports = "".join(line + "\n" for line in needed)
        opened = re.search(r"\bclass\s+\w+[^{]*\{[ \t]*\n?", source)
        if opened is None:  # no test class at all: the examples are the file
            return imports + f"\nclass {stem}Test {{\n{self.block(tests).rstrip()}\n}}\n"
        package = re.match(r"\s*package\s+[\w.]+\s*;[ \t]*\n?", source)  # imports go after it
        at = package.end() if package else 0
        return (source[:at] + imports + source[at:opened.end()] + self.block(tests)
                + source[opened.end():].lstrip("\n"))


def java_literal(value: Any) -> str | None:
    """The value as a Java literal (int, long, double, String, boolean); None for anything else."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if -2**31 <= value < 2**31 else f"{value}L" if -2**63 <= value < 2**63 else None
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return json.dumps(value)
    return None


# --- C-family source surgery ----------------------------------------------------------------------


_TS_TEST = re.compile(r"\b(?:test|it)\s*\(\s*([\"'`])(?P<name>[^\"'`]*)\1")
_JAVA_TEST = re.compile(r"(?:@Test\s+)?(?:public\s+)?void\s+(?P<name>\w+)\s*\(\s*\)[^{;]*(?=\{)")


def _drop_blocks(source: str, head: re.Pattern, unwanted: Callable[[str, str], bool], opening: str = "(") -> str:
    """The source less each block whose head matches and for which unwanted(name, block) holds: from the
    head's line to the bracket closing its first `opening` bracket (and a `;` right after it). Java
    names carry "()", as in the JUnit report. A block cut off mid-way stays, for the sandbox to report."""
    for match in reversed(list(head.finditer(source))):
        start = source.rfind("\n", 0, match.start()) + 1
        open_at = source.find(opening, match.start() if opening == "(" else match.end())
        end = closing_paren(source, open_at, code=True) if open_at >= 0 else None
        if end is None:
            continue
        end += 1
        while end < len(source) and source[end] in " \t;":
            end += 1
        name = match.group("name") + ("()" if opening == "{" else "")
        if unwanted(name, source[start:end]):
            source = source[:start] + source[end:].removeprefix("\n")
    return source


ExampleStyle = PythonExamples | TypeScriptExamples | JavaExamples
EXAMPLE_STYLES: dict[str, ExampleStyle] = {"python": PythonExamples(), "typescript": TypeScriptExamples(), "java": JavaExamples()}
