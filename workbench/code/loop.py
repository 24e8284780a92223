"""The code loop: tests from the request first, then code, run in the sandbox, fix, repeat.

    result = solve("Write fib.py with fib(n) ... (rules) ...", "python", model="local", max_rounds=4)
    result.ok, result.files, result.rounds[-1].failing, result.summary()

One readable loop (smolagents' `_run_stream`): every pass through it is a `Round` record — what
the model wrote, what the sandbox said, tokens, cost, time — logged as an `agent_step` event when
a store is open. After the first solution ("code"), each round is chosen by what failed:

- the best candidate misses one of the request's own examples -> "sample": a fresh solution at
  temperature 0.8, shown the examples but not the model's own tests (a small model that misread the
  task rarely mends it from a failure report, and its own wrong tests can be what misled it; a new
  draw often reads it right — HumanEval, qwen2.5-coder-1.5B: see benchmarks/humaneval.py);
- otherwise, or when the last answer handed back the function's stub unwritten -> "fix": the failure
  report goes back, and the model corrects the code or its own tests.

It stops when every test passes (at least one test, at least one assertion); after one fix round
when every example passes but the model's own tests still fail ("examples_pass": its tests are more
often wrong than the code then); when a fix round fails exactly like the round before (same failing
test ids and error types: asking again will not help); or after `max_rounds`. The best candidate is
kept: most of the request's examples passing (those tests come from the request,
`workbench.code.examples`), then most tests passing, then the fewest tokens.
"""

from __future__ import annotations

import ast
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench import telemetry
from workbench.code import prompts
from workbench.code.task import CodeTask, count_assertions, count_tests, parse_task
from workbench.code.testfile import corrected, tidy_tests, with_examples
from workbench.sandbox import Executor, Limits
from workbench.sandbox.runtimes import SandboxRun, require_runtime, run_tests

MAX_REPLY_CHARS = 20_000  # kept per round in the record
SAMPLE_TEMPERATURE = 0.8  # a "sample" round: a fresh draw, seeded by its round number (so reruns repeat)
TOKENS_PER_TEST = 64  # the test round's answer is capped to what its tests need: small models otherwise
#                       repeat near-identical tests until max_tokens, at ~14 tokens/s on 2 cores


@dataclass
class Round:
    number: int
    kind: str  # "tests" (writing them), "code" (first solution), "sample" (a fresh one), "fix" (from a failure)
    files: dict[str, str] = field(default_factory=dict)  # what this round's answer contained
    reply: str = ""
    tests: int = 0
    passed: int = 0
    failing: list[tuple[str, str]] = field(default_factory=list)  # (test id, error type)
    assertions: int = 0
    examples_passed: int = 0  # of the task's example tests (the candidate ranking looks at these first)
    unwritten: list[str] = field(default_factory=list)  # the task's function, if the answer left it a stub
    coverage: float | None = None
    ok: bool = False
    output: str = ""  # tail of the sandbox's stdout + stderr
    scan: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the loop changed in the answer, and why
    error: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    model_s: float = 0.0
    sandbox_s: float = 0.0

    def signature(self) -> frozenset:
        """What failed and how: the same signature twice in a row stops the loop."""
        if self.failing:
            return frozenset(self.failing)
        return frozenset({("round", self.error or f"{self.passed}/{self.tests} passed")})

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class CodeResult:
    task: CodeTask
    ok: bool
    files: dict[str, str]  # the best candidate: solution (+ other named files) and tests
    rounds: list[Round]
    stop_reason: str  # passed | examples_pass | repeated_failure | max_rounds | no_tests
    best_round: int | None
    model: str
    seconds: float

    @property
    def best(self) -> Round | None:
        return next((r for r in self.rounds if r.number == self.best_round), None)

    @property
    def tokens_in(self) -> int:
        return sum(r.tokens_in for r in self.rounds)

    @property
    def tokens_out(self) -> int:
        return sum(r.tokens_out for r in self.rounds)

    @property
    def cost_usd(self) -> float:
        return sum(r.cost_usd for r in self.rounds)

    def summary(self) -> dict[str, Any]:
        best = self.best
        return {"passed": self.ok, "stop_reason": self.stop_reason, "language": self.task.language,
                "files": sorted(self.files), "rounds": sum(1 for r in self.rounds if r.kind != "tests"),
                "model_calls": len(self.rounds), "tests_run": best.tests if best else 0,
                "tests_passed": best.passed if best else 0, "coverage": best.coverage if best else None,
                "tokens_in": self.tokens_in, "tokens_out": self.tokens_out, "cost_usd": round(self.cost_usd, 8),
                "seconds": round(self.seconds, 2), "model": self.model}

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write exactly the task's files that the best candidate has into out_dir."""
        out = Path(out_dir)
        written = []
        for name in self.task.files:
            if name in self.files:
                path = out / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(self.files[name])
                written.append(path)
        return written


def solve(task: str | CodeTask, language: str = "python", *, model: Any = None, max_rounds: int = 4,
          tests: dict[str, str] | None = None, executor: Executor | None = None, limits: Limits | None = None,
          max_tokens: int = 1024, on_round: Callable[[Round], None] | None = None) -> CodeResult:
    """Write tests for every rule of the task (unless `tests` are given), then code until they pass."""
    task = task if isinstance(task, CodeTask) else parse_task(task, language, tests)
    require_runtime(task.language, executor)  # a missing JDK or node: say so before the model writes code
    model = _resolve(model)
    start = time.perf_counter()
    rounds: list[Round] = []

    def record(rnd: Round) -> None:
        rounds.append(rnd)
        _log(rnd, task, model)
        if on_round is not None:
            on_round(rnd)

    # 1. Every rule and example of the request becomes a named test, before any code is written.
    test_files = dict(task.user_tests) or _write_tests(task, model, max_tokens, record)
    if not test_files:
        return CodeResult(task, False, {}, rounds, "no_tests", None, model.model_id, time.perf_counter() - start)

    # 2. Code, run, read the failures, fix: until all pass, the same failure repeats, or rounds run out.
    best: Round | None = None
    best_files: dict[str, str] = {}
    candidate: dict[str, str] = {}
    problem = ""
    stop = "max_rounds"
    step = 0
    while step < max_rounds:
        step += 1
        kind = _next_kind(task, best, step, rounds[-1] if rounds else None)
        if kind == "fix":
            messages = prompts.fix_prompt(task, test_files, candidate, None, problem, may_fix_tests=not task.user_tests)
        else:  # a sample is shown only the examples: the model's own tests may be what misled the first try
            messages = prompts.code_prompt(task, test_files if kind == "code" else _examples_only(task))
        sampling = {"temperature": SAMPLE_TEMPERATURE, "seed": step} if kind == "sample" else {}
        rnd, reply = _ask(model, messages, max_tokens, number=len(rounds) + 1, kind=kind, **sampling)
        files = prompts.parse_files(task, reply, task.solution_file)
        rnd.files = files
        new_tests = _maybe_new_tests(task, test_files, files)
        if task.solution_file not in files and candidate and new_tests != test_files:
            files = {**candidate, **files}  # only the tests were corrected: rerun the last solution with them
        if task.solution_file not in files:
            rnd.error = f"no code block for {task.solution_file} in the answer"
            problem = prompts.failure_report(task, None, 1)
        else:
            test_files = new_tests
            candidate = {n: s for n, s in files.items() if n not in test_files and n in task.files}
            candidate, rnd.notes = _normalize(task, candidate, test_files)
            run = run_tests(task.language, {**candidate, **test_files}, tests=sorted(test_files),
                            executor=executor, limits=limits)
            _fill(rnd, task, run, test_files)
            candidate = {n: _text(run.files.get(n), s) for n, s in candidate.items()}  # as formatted
            if best is None or _rank(rnd) > _rank(best):
                best = rnd
                best_files = {**candidate, **{n: _text(run.files.get(n), s) for n, s in test_files.items()}}
            problem = prompts.failure_report(task, run, rnd.assertions)
            rnd.unwritten = _unwritten(task, candidate)
            if rnd.unwritten:  # small models echo the stub they were given: say so plainly in the fix round
                problem = (f"{', '.join(rnd.unwritten)} has no body yet (only its signature and docstring): "
                           f"write the complete body.\n{problem}")
        record(rnd)
        if rnd.ok:
            stop = "passed"
            break
        if kind == "fix" and best is not None and _examples(task) and best.examples_passed == _examples(task):
            stop = "examples_pass"
            break
        previous = next((r for r in reversed(rounds[:-1]) if r.kind != "tests"), None)
        if kind == "fix" and previous is not None and previous.signature() == rnd.signature():
            stop = "repeated_failure"
            break
    ok = best is not None and best.ok
    return CodeResult(task, ok, best_files or {**candidate, **test_files}, rounds, stop,
                      best.number if best else None, model.model_id, time.perf_counter() - start)


def _next_kind(task: CodeTask, best: Round | None, step: int, last: Round | None) -> str:
    """The first solution; a fix when the last answer left the function unwritten; a fresh sample while
    the best one misses an example; else a fix."""
    if step == 1:
        return "code"
    if last is not None and last.unwritten:
        return "fix"
    return "sample" if best is not None and best.examples_passed < _examples(task) else "fix"


def _unwritten(task: CodeTask, candidate: dict[str, str]) -> list[str]:
    """The task's function if the candidate defines it with no body (a docstring, `pass` or `...` at
    most): a small model asked to complete a stub often hands the stub back. Python only."""
    if task.language != "python":
        return []
    try:
        tree = ast.parse(candidate.get(task.solution_file, ""))
    except (SyntaxError, ValueError):
        return []
    empty = [f.name for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             and f.name == task.function_name and all(_is_filler(stmt) for stmt in f.body)]
    return empty[:1]


def _is_filler(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Pass) or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                                          and (isinstance(stmt.value.value, str) or stmt.value.value is Ellipsis))


def _examples_only(task: CodeTask) -> dict[str, str]:
    return {task.test_file: with_examples(task, "")}


def _examples(task: CodeTask) -> int:
    """How many of the tests are the request's own examples (none when the user gave the tests)."""
    return 0 if task.user_tests else len(task.example_names)


def _rank(rnd: Round) -> tuple[int, int, int]:
    """Better candidates first pass more of the task's own examples (a self-written test can be wrong,
    and a fix that pleases it by breaking an example is worse), then more tests, then use fewer tokens."""
    return rnd.examples_passed, rnd.passed, -rnd.tokens_out


def _write_tests(task: CodeTask, model: Any, max_tokens: int, record: Callable[[Round], None]) -> dict[str, str]:
    """Ask for the test file; once more if it has no test or no assertion. {} when both attempts fail."""
    messages = prompts.tests_prompt(task)
    limit = min(max_tokens, TOKENS_PER_TEST * (2 + prompts.max_tests(task) + len(task.example_names)))
    for attempt in range(2):
        rnd, reply = _ask(model, messages, limit, number=attempt + 1, kind="tests")
        files = prompts.parse_files(task, reply, task.test_file)
        source, rnd.notes, left = tidy_tests(task, files.get(task.test_file, ""))
        rnd.files = {task.test_file: source} if source else {}
        rnd.tests, rnd.assertions = count_tests(task, source), count_assertions(task, source)
        if rnd.tests and rnd.assertions and not left:
            record(rnd)
            return {task.test_file: source}
        rnd.error = ("no tests" if not rnd.tests else "tests without assertions" if not rnd.assertions
                     else f"the placeholders {', '.join(left)} were left in the tests")
        record(rnd)
        messages = [*messages, {"role": "assistant", "content": reply},
                    {"role": "user", "content": f"That has {rnd.error}. Give the complete {task.test_file} with "
                                                f"one test per rule, each with an assertion and real values from "
                                                f"the task, in one code block."}]
    return {}


def _ask(model: Any, messages: list[dict], max_tokens: int, *, number: int, kind: str,
         temperature: float = 0, seed: int | None = None) -> tuple[Round, str]:
    started = time.perf_counter()
    completion = model.complete(messages, temperature=temperature, max_tokens=max_tokens, seed=seed)
    rnd = Round(number=number, kind=kind, reply=completion.text[:MAX_REPLY_CHARS],
                tokens_in=completion.usage.input_tokens, tokens_out=completion.usage.output_tokens,
                cost_usd=completion.cost_usd or 0.0, model_s=time.perf_counter() - started)
    return rnd, completion.text


def _maybe_new_tests(task: CodeTask, tests: dict[str, str], files: dict[str, str]) -> dict[str, str]:
    """Accept corrected tests only for generated tests: in Python the corrected functions replace their
    namesakes; elsewhere a whole new file, only if it keeps every test."""
    new = files.get(task.test_file)
    if task.user_tests or not new or new == tests.get(task.test_file):
        return tests
    old = tests.get(task.test_file, "")
    if task.language == "python":  # a Python fix round sends only the corrected test functions
        fixed = corrected(task, old, new)
        return {**tests, task.test_file: fixed} if fixed else tests
    new, _, left = tidy_tests(task, new)
    if count_tests(task, new) >= count_tests(task, old) and count_assertions(task, new) > 0 and not left:
        return {**tests, task.test_file: new}
    return tests


_JAVA_PACKAGE = re.compile(r"^\s*package\s+[\w.]+\s*;\s*\n", re.MULTILINE)


def _normalize(task: CodeTask, candidate: dict[str, str], tests: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Undo the one slip that makes otherwise right code unrunnable: a `package` line in Java when the
    tests live in the default package (javac then hides the class from them)."""
    if task.language != "java" or any(_JAVA_PACKAGE.search(t) for t in tests.values()):
        return candidate, []
    fixed = {n: _JAVA_PACKAGE.sub("", s) for n, s in candidate.items()}
    changed = [n for n in fixed if fixed[n] != candidate[n]]
    return fixed, [f"removed the package line of {n} (the tests are in the default package)" for n in changed]


def _fill(rnd: Round, task: CodeTask, run: SandboxRun, tests: dict[str, str]) -> None:
    rnd.assertions = sum(count_assertions(task, s) for s in tests.values())
    rnd.coverage = run.coverage
    rnd.scan = [str(f) for f in run.scan.findings] if run.scan else []
    if run.result is not None:
        rnd.sandbox_s = run.result.duration_s
        rnd.output = (run.result.stdout[-2000:] + run.result.stderr[-2000:]).strip()
        rnd.error = run.result.killed_reason
    else:
        rnd.error = "blocked by the security scan"
    if run.report is not None:
        rnd.tests, rnd.passed = run.report.tests, run.report.passed
        rnd.examples_passed = sum(1 for c in run.report.cases if c.name in task.example_names and c.status == "passed")
        rnd.failing = sorted(run.report.failure_signature())
        if not rnd.tests and not rnd.error:
            rnd.error = run.report.problem or "no tests ran"
    if rnd.assertions == 0 and not rnd.error:
        rnd.error = "the tests contain no assertions"
    # Zero tests or zero assertions never count as a pass.
    rnd.ok = run.ok and rnd.tests > 0 and rnd.assertions > 0


def _text(data: bytes | None, fallback: str) -> str:
    return data.decode("utf-8", "replace") if data is not None else fallback


def _resolve(model: Any) -> Any:
    if model is None or isinstance(model, str):
        import workbench

        return workbench.get_model(model)
    return model


def _log(rnd: Round, task: CodeTask, model: Any) -> None:
    """One agent_step event per round (code, test output, tokens, cost, time)."""
    telemetry.emit("agent_step", agent="code", model=getattr(model, "model_id", None), tokens_in=rnd.tokens_in,
               tokens_out=rnd.tokens_out, cost_usd=rnd.cost_usd, duration_ms=(rnd.model_s + rnd.sandbox_s) * 1000,
               error=None if rnd.ok else (rnd.error or f"{len(rnd.failing)} of {rnd.tests} tests failed"),
               payload={"loop": "code", "language": task.language, **rnd.as_dict()})
