"""A coding task: its language, the files it names, and what the model's answers are parsed into.

File names come from the task text ("write fizzbuzz.py and test_fizzbuzz.py") or per-language
defaults; every answer is parsed into exactly those files, whatever fences the model uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import PurePosixPath

from workbench.code.example_tests import EXAMPLE_STYLES, ExampleStyle, ExampleTest, call_and_result, forbids_modifying
from workbench.code.examples import Example, find_examples
from workbench.errors import WorkbenchError
from workbench.sandbox.runtimes import get_runtime


class CodeTaskError(WorkbenchError):
    http_status = 422


@dataclass(frozen=True)
class Language:
    name: str
    fence: str  # the fence tag models use
    default_solution: str
    test_name: str  # format with {stem}
    framework: str  # how tests are written, in words, for the prompt
    import_hint: str  # format with {stem}, {module}
    rules: str  # language-specific rules for the solution file
    test_count: re.Pattern  # a test in a test file
    assertion: re.Pattern  # an assertion in a test file
    skeleton: str = ""  # the shape of a test file (format with {stem}, {module}, {example}); small models copy it
    examples: ExampleStyle = EXAMPLE_STYLES["python"]  # how the task's examples become tests
    literal_words: tuple[tuple[str, str], ...] = ()  # the language's words for Python literals in examples
    label: str = ""  # the language's name as people write it, for prompts
    # A test file that only loads the solution (format with {module}, {name}: the file's class): what
    # judges an answer before any test exists. Empty where loading says nothing a test run would not.
    load_check: str = ""

    @property
    def title(self) -> str:
        return self.label or self.name.capitalize()


LANGUAGES: dict[str, Language] = {}


def _register(lang: Language) -> None:
    LANGUAGES[lang.name] = lang


_register(Language(
    name="python", fence="python", default_solution="solution.py", test_name="test_{stem}.py",
    framework="pytest (plain `def test_...():` functions with `assert`; `pytest.raises` for errors)",
    import_hint="from {module} import ...",
    rules="No code at module top level except imports and definitions (no print, no input, no examples).",
    test_count=re.compile(r"^\s*(?:async\s+)?def\s+test_\w*\s*\(", re.MULTILINE),
    assertion=re.compile(r"\bassert\b|pytest\.raises|\.assert\w*\(|pytest\.approx"),
    skeleton=("import pytest\n\nfrom {module} import NAME\n\n\n{example}"
              "def test_WHAT_IT_CHECKS():\n    assert NAME(INPUT) == EXPECTED\n"),
    load_check="import {module}  # the solution must load for any test to judge it\n",
))
_register(Language(
    name="typescript", fence="typescript", default_solution="solution.ts", test_name="{stem}.test.ts",
    framework=('node:test with node:assert/strict: `import { test } from "node:test"; '
               'import assert from "node:assert/strict";` and `test("name", () => { assert.equal(...) })`'),
    import_hint='import {{ ... }} from "./{stem}";',
    rules="Export every function and class the tests use (`export function ...`). No top-level console.log.",
    test_count=re.compile(r"\b(?:test|it)\s*\(\s*[\"'`]"),
    assertion=re.compile(r"\bassert(?:\.\w+)?\s*\(|\bexpect\s*\("),
    skeleton=('import {{ test }} from "node:test";\nimport assert from "node:assert/strict";\n'
              'import {{ NAME }} from "./{stem}";\n\n{example}test("WHAT IT CHECKS", () => {{\n'
              '  assert.equal(NAME(INPUT), EXPECTED);\n}});\n'),
    examples=EXAMPLE_STYLES["typescript"], literal_words=(("true", "True"), ("false", "False")),
    label="TypeScript",
))
_register(Language(
    name="java", fence="java", default_solution="Solution.java", test_name="{stem}Test.java",
    framework=("JUnit 5: `import org.junit.jupiter.api.Test; import static org.junit.jupiter.api.Assertions.*;` "
               "and `@Test void name() { assertEquals(...); }`"),
    import_hint="(same default package: no import needed for class {stem})",
    rules="One public class named exactly like the file, in the default package (no `package` line). No main().",
    test_count=re.compile(r"@(?:Test|ParameterizedTest)\b"),
    assertion=re.compile(r"\bassert\w*\s*\(|\bfail\s*\("),
    skeleton=("import org.junit.jupiter.api.Test;\nimport static org.junit.jupiter.api.Assertions.*;\n\n"
              "class {stem}Test {{\n{example}    @Test\n    void whatItChecks() {{\n"
              "        assertEquals(EXPECTED, {stem}.NAME(INPUT));\n    }}\n}}\n"),
    examples=EXAMPLE_STYLES["java"], literal_words=(("true", "True"), ("false", "False")),
    load_check="class {name} {{  // the solution must compile for any test to judge it\n}}\n",
))

_CALL = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_TIGHT_CALL = re.compile(r"\b([A-Za-z_]\w*)(?:<[^<>()\n]*>)?\(")  # `chunk(`, `chunk<T>(`: code, not prose
_NOT_NAMES = {"if", "for", "while", "return", "print", "len", "range", "int", "str", "list", "dict", "set", "e",
              "i", "g", "eg", "ie", "assert", "assertEquals", "console", "log", "new", "function", "def", "with"}
_FILE = re.compile(r"(?<![\w/.-])([A-Za-z_][\w-]*(?:/[A-Za-z_][\w-]*)*\.(?:py|ts|tsx|java))\b")


@dataclass
class CodeTask:
    text: str
    language: str
    solution_file: str
    test_file: str
    user_tests: dict[str, str] = field(default_factory=dict)  # tests given by the user: never rewritten
    extra_files: list[str] = field(default_factory=list)  # other files the task names (written if produced)
    memory: str = ""  # similar past tasks from workbench.memory, shown with the request when writing code

    @property
    def lang(self) -> Language:
        return LANGUAGES[self.language]

    @property
    def files(self) -> list[str]:
        return [self.solution_file, self.test_file, *self.extra_files]

    @property
    def module(self) -> str:
        return PurePosixPath(self.solution_file).with_suffix("").as_posix().replace("/", ".")

    @property
    def stem(self) -> str:
        return PurePosixPath(self.solution_file).stem

    @property
    def function_name(self) -> str:
        """The first name the task calls like a function (`clamp(x, lo, hi)` -> clamp, `chunk<T>(` -> chunk),
        else NAME. A name written flush against its bracket is code; `objects (one per key)` is prose,
        and counts only when the text has no code-like call at all."""
        defined = set(re.findall(r"\bdef\s+(\w+)\s*\(", self.text))  # `def f(` makes a one-letter name real
        files = {"java", "py", "ts", "tsx"}  # `Write X.java (default package)`: an extension, not a call
        for pattern in (_TIGHT_CALL, _CALL):
            found = next((n for n in pattern.findall(self.text) if n not in _NOT_NAMES and n not in files
                          and (len(n) > 1 or n in defined)), None)
            if found:
                return found
        return "NAME"

    @property
    def wants_tests(self) -> bool:
        """The request asks for tests (says "test" or names a test file): the test file is part of the answer."""
        return bool(re.search(r"\btest|Test\.java\b", self.text, re.IGNORECASE)) or bool(self.user_tests)

    @cached_property
    def examples(self) -> list[Example]:
        """The task's worked examples of its function (`workbench.code.examples`)."""
        if self.function_name == "NAME":
            return []
        text = self.text
        if self.language == "java":  # `RomanNumerals.fromRoman("XIV") == 14`: the class's static method
            text = re.sub(rf"\b{re.escape(self.stem)}\.(?={re.escape(self.function_name)}\b)", "", text)
        for word, python in self.lang.literal_words:  # `isEven(2) returns true` -> True
            text = re.sub(rf"\b{word}\b", python, text)
        return find_examples(text, self.function_name)

    @cached_property
    def example_cases(self) -> list[ExampleTest]:
        """The task's worked examples as named tests in its language (`workbench.code.example_tests`):
        the user's own spec, so the loop keeps them whatever the model writes. Cached: every round asks."""
        if not self.examples:
            return []
        return self.lang.examples.tests(self.examples, function=self.function_name, stem=self.stem,
                                        unchanged=forbids_modifying(self.text))

    def contradictions(self) -> list[tuple[str, str]]:
        """Pairs of examples that call the function with the same arguments and want different results."""
        seen: dict[str, tuple[object, str]] = {}
        found = []
        for example in self.examples:
            parts = call_and_result(example, self.function_name)
            if parts is None:
                continue
            key = repr(parts[0])
            if key in seen and seen[key][0] != parts[1]:
                found.append((seen[key][1], example.shown))
            seen.setdefault(key, (parts[1], example.shown))
        return found

    @property
    def example_tests(self) -> str:
        """The example tests as source ("" when the task has none)."""
        return self.lang.examples.block(self.example_cases) if self.example_cases else ""

    @cached_property
    def example_names(self) -> frozenset[str]:
        """The example tests' names as the test report shows them (test_example_1, "example 1", example1())."""
        return frozenset(t.name for t in self.example_cases)

    def test_skeleton(self, with_examples: bool = True) -> str:
        """The shape of the test file, with the task's function name filled in and, for Python, the
        task's worked examples as real tests (small models copy the skeleton literally, and copied
        examples are still tests). The test round leaves them out: the loop tests the examples itself,
        and a copy only costs output tokens."""
        example = self.example_tests if with_examples else ""
        return self.lang.skeleton.format(stem=self.stem, module=self.module, example=example).replace(
            "NAME", self.function_name)


def parse_task(text: str, language: str = "python", tests: dict[str, str] | None = None) -> CodeTask:
    """The task with its file names: those named in the text (right extension), else defaults."""
    if not text or not text.strip():
        raise CodeTaskError("Empty task: describe what the code should do, e.g. "
                            "'Write fizzbuzz.py with a function fizzbuzz(n) ... and tests in test_fizzbuzz.py'.")
    runtime = get_runtime(language)  # raises UnknownLanguage with the list
    lang = LANGUAGES[runtime.name]
    named = list(dict.fromkeys(m for m in _FILE.findall(text) if m.endswith(runtime.extensions)))
    if any(".." in n or n.startswith("/") for n in named):
        raise CodeTaskError("File names in the task must be relative paths inside the output directory.")
    tests = dict(tests or {})
    test_names = [n for n in named if runtime.is_test(n)] + [n for n in tests if n not in named]
    sources = [n for n in named if not runtime.is_test(n)]
    # Of several named files, the first that is not an exception class ("InsufficientFundsException.java and
    # BankAccount.java": the account is the solution, the exception a file beside it).
    sources.sort(key=lambda n: PurePosixPath(n).stem.endswith(("Exception", "Error")))
    solution = sources[0] if sources else lang.default_solution
    stem = PurePosixPath(solution).stem
    test_file = test_names[0] if test_names else str(PurePosixPath(solution).parent / lang.test_name.format(stem=stem))
    test_file = test_file.removeprefix("./")
    if not runtime.is_test(test_file):
        raise CodeTaskError(f"{test_file} is not named like a {runtime.name} test file.")
    extra = [n for n in named if n not in (solution, test_file)]
    return CodeTask(text.strip(), runtime.name, solution, test_file, tests, extra)


def count_tests(task: CodeTask, source: str) -> int:
    return len(task.lang.test_count.findall(source))


def count_assertions(task: CodeTask, source: str) -> int:
    return len(task.lang.assertion.findall(source))
