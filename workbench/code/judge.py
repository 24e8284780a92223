"""Running a candidate against the request's examples and the tests, and saying whose fault a failure is.

    judge = Judge(task, executor=None, limits=None)
    judge.set_tests(model_written_source)          # or the user's tests (then they are the only judge)
    verdict = judge.evaluate({"fib.py": code})
    verdict.examples_passed, verdict.passed_tests, verdict.tests_broken, verdict.mechanical

The examples live in a file of their own while judging, so a model test file that does not load (an
import of a name the request never defines) cannot take the examples down with it, and its failure
is reported as the tests' (`tests_broken`), not the code's. `mechanical` names the failures a fix
round mends well (a syntax error, a name or import error in the solution, a compile error, a missing
export, a stub left unwritten, a run that never ended); everything else is a question of reading the
task, which a fresh sample answers better.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from workbench.code.task import CodeTask, count_assertions
from workbench.code.testfile import with_examples
from workbench.sandbox import Executor, Limits
from workbench.sandbox.reports import TestCase
from workbench.sandbox.runtimes import SandboxRun, run_tests

_MECHANICAL_TYPES = {"SyntaxError", "IndentationError", "TabError", "NameError", "ImportError", "ModuleNotFoundError",
                     "ReferenceError", "CompilationError", "UnboundLocalError"}
_MECHANICAL_TEXT = re.compile(r"does not provide an export named|is not a function|is not defined|Cannot find module|"
                              r"error: cannot find symbol|error: class .* is public", re.IGNORECASE)
_JAVA_ERROR_FILE = re.compile(r"^(\S+\.java):\d+: error:", re.MULTILINE)


@dataclass
class Verdict:
    """One candidate against the current tests."""

    run: SandboxRun | None  # None: there was nothing to judge it by yet
    outcomes: dict[str, str] = field(default_factory=dict)  # test id -> passed | failed | error | skipped
    examples: frozenset[str] = frozenset()  # ids of the request's example tests
    tests_broken: str | None = None  # the model's (or user's) test file did not load: the tests' fault
    mechanical: str | None = None  # a failure a fix mends: the solution did not load, compile or finish
    assertions: int = 0

    @property
    def examples_passed(self) -> int:
        return sum(1 for t in self.examples if self.outcomes.get(t) == "passed")

    @property
    def passed_tests(self) -> frozenset[str]:
        """The ids of the other tests (the model's or the user's) that passed."""
        return frozenset(t for t, s in self.outcomes.items() if s == "passed" and t not in self.examples)

    @property
    def other_tests(self) -> frozenset[str]:
        return frozenset(t for t in self.outcomes if t not in self.examples)

    @property
    def ok(self) -> bool:
        """Every test passed, at least one ran, there is an assertion, and the tests loaded."""
        return (bool(self.outcomes) and all(s == "passed" for s in self.outcomes.values()) and self.assertions > 0
                and self.tests_broken is None and self.run is not None and self.run.result is not None
                and not self.run.result.timed_out)

    def failing(self) -> list[TestCase]:
        return self.run.report.failing() if self.run is not None and self.run.report else []


class Judge:
    """The test files of one task (the examples' file and the other tests) and how to run a candidate."""

    def __init__(self, task: CodeTask, executor: Executor | None = None, limits: Limits | None = None):
        self.task, self.executor, self.limits = task, executor, limits
        self.examples_file = _examples_name(task)
        self.has_examples = bool(task.example_cases) and not task.user_tests
        self.examples_source = with_examples(task, "") if self.has_examples else ""
        if task.language == "java" and self.examples_source:  # one public-less class per file, named like it
            self.examples_source = self.examples_source.replace(f"class {task.stem}Test ",
                                                                f"class {PurePosixPath(self.examples_file).stem} ", 1)
        if not self.examples_source:  # no examples: the file still shows whether the solution loads (compiles)
            self.examples_source = task.lang.load_check.format(module=task.module,
                                                               name=PurePosixPath(self.examples_file).stem)
        self.tests: dict[str, str] = dict(task.user_tests)  # the other tests: the user's, or the model's checked ones

    def set_tests(self, source: str | None) -> None:
        """The model's test file (without the example tests), or None to judge by the examples alone."""
        if self.task.user_tests:
            return
        if source and self.task.example_names:  # the examples are judged from their own file, exactly as derived
            names = self.task.example_names
            source = self.task.lang.examples.drop(source, lambda name, text: name in names) or source
        self.tests = {self.task.test_file: source} if source else {}

    @property
    def has_tests(self) -> bool:
        return bool(self.tests) or self.has_examples

    def files(self) -> dict[str, str]:
        """The test files as the user gets them: the examples inside the test file."""
        if self.task.user_tests:
            return dict(self.task.user_tests)
        source = self.tests.get(self.task.test_file, "")
        combined = with_examples(self.task, source) if (source or self.has_examples) else ""
        return {self.task.test_file: combined} if combined else {}

    def evaluate(self, candidate: dict[str, str]) -> Verdict:
        """Run the candidate with every test file; a test file that does not load is named, not blamed on the code."""
        test_files = {**({self.examples_file: self.examples_source} if self.examples_source else {}), **self.tests}
        if not test_files:
            return Verdict(None)  # nothing to judge it by yet: judged once the tests are written
        run = run_tests(self.task.language, {**candidate, **test_files}, tests=sorted(test_files),
                        executor=self.executor, limits=self.limits)
        broken = self._broken_test_file(run)
        if broken and self.task.language == "java" and self.examples_source:
            # javac compiles every file together: without the broken test file the examples still judge.
            run = run_tests("java", {**candidate, self.examples_file: self.examples_source},
                            tests=[self.examples_file], executor=self.executor, limits=self.limits)
        verdict = Verdict(run, examples=self._example_ids(run), tests_broken=broken,
                          assertions=sum(count_assertions(self.task, s) for s in test_files.values()))
        if run.report is not None:
            verdict.outcomes = {c.id: c.status for c in run.report.cases if not (broken and self._from_tests_file(c))}
        verdict.mechanical = self._mechanical(run, verdict)
        return verdict

    # --- attribution ----------------------------------------------------------------------------------

    def _example_ids(self, run: SandboxRun) -> frozenset[str]:
        if run.report is None or not self.has_examples:
            return frozenset()
        return frozenset(c.id for c in run.report.cases if c.name in self.task.example_names)

    def _from_tests_file(self, case: TestCase) -> bool:
        """The case belongs to the model's or user's test file, not to the examples' (whose tests have
        the examples' names, and whose load failure is named after it)."""
        own = (PurePosixPath(self.examples_file).stem, PurePosixPath(self.examples_file).name)
        return bool(self.tests) and case.name not in self.task.example_names and case.name not in own \
            and not case.classname.endswith(own[0])

    def _broken_test_file(self, run: SandboxRun) -> str | None:
        """Why the other test file failed to load, when the fault is that file's and not the solution's:
        Python, it did not load while the examples' file (which imports the solution too) did; Java,
        every compile error is in it. (TypeScript imports are checked before the run.)"""
        if not self.tests or run.result is None:
            return None
        name = self.task.test_file if self.task.test_file in self.tests else next(iter(self.tests))
        output = run.result.stdout + run.result.stderr
        if self.task.language == "java":
            files = set(_JAVA_ERROR_FILE.findall(output))
            ours = files and all(PurePosixPath(f).name == PurePosixPath(name).name for f in files)
            return f"{name} does not compile: {_first_error(output)}" if ours else None
        if self.task.language != "python" or run.report is None:
            return None
        loads = {c.name: c for c in run.report.cases if c.message == "collection failure"}
        failed = loads.get(PurePosixPath(name).stem)
        if failed is None or PurePosixPath(self.examples_file).stem in loads:
            return None
        return f"{name} does not load: {_first_error(failed.details or failed.message)}"

    def _mechanical(self, run: SandboxRun, verdict: Verdict) -> str | None:
        if run.result is None:
            return "the security scan refused to run it"
        if run.result.timed_out or run.result.killed_reason:
            return f"the run was stopped: {run.result.killed_reason or 'timed out'}"
        for case in verdict.failing():
            if verdict.tests_broken and self._from_tests_file(case):
                continue
            text = f"{case.message}\n{case.details}"
            if case.error_type in _MECHANICAL_TYPES or _MECHANICAL_TEXT.search(text) or \
                    case.message == "collection failure":
                return f"{case.id}: {case.error_type or case.status}: {_first_error(text)}"
        if run.report is not None and not run.report.cases and run.report.problem:
            return run.report.problem
        return None


def _examples_name(task: CodeTask) -> str:
    stem, parent = task.stem, PurePosixPath(task.solution_file).parent
    name = {"python": f"test_examples_{stem}.py", "typescript": f"{stem}.examples.test.ts",
            "java": f"{stem}ExamplesTest.java"}[task.language]
    return str(parent / name)


def _first_error(text: str) -> str:
    """The line that says what went wrong (pytest's `E   ...`, javac's `error:`), else the last line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    marked = [ln for ln in lines if ln.startswith("E ") or ": error:" in ln or "Error:" in ln]
    return ((marked or lines or ["(no output)"])[0 if marked else -1]).removeprefix("E").strip()[:300]
