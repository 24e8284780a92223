"""What the code loop asks the model, and how its answers are turned back into files.

Small local models ignore parts of long instructions, so each prompt asks for one thing (tests, or
the solution, or a fix) and ends with the exact output wanted: one fenced block per file. The
parser accepts the shapes models actually produce: a file name in the fence info, on the line
before the fence, or as a first-line comment; a lone block goes to the file that was asked for.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from workbench.code.task import CodeTask
from workbench.sandbox.runtimes import SandboxRun

FENCE = re.compile(r"```[ \t]*([^\n`]*)\n(.*?)(?:```|\Z)", re.DOTALL)
NAME = re.compile(r"([\w./-]+\.(?:py|ts|tsx|java))")
MAX_TESTS = 6  # small models otherwise repeat near-identical tests until they run out of tokens
MAX_TESTS_BESIDE_EXAMPLES = 4  # a small model's own tests are often wrong; the task's examples are not
SYSTEM = ("You are a careful programmer. You answer with complete files in fenced code blocks, "
          "each block starting with the file name as a comment, and nothing else after the blocks.")


def max_tests(task: CodeTask) -> int:
    """How many tests the model may write: fewer when the task's examples are tests already."""
    return MAX_TESTS_BESIDE_EXAMPLES if task.example_tests else MAX_TESTS


def _block(task: CodeTask, name: str, source: str) -> str:
    comment = "#" if task.language == "python" else "//"
    return f"```{task.lang.fence}\n{comment} {name}\n{source.rstrip()}\n```"


def tests_prompt(task: CodeTask) -> list[dict]:
    lang = task.lang
    body = (
        f"Task:\n{task.text}\n\n"
        f"Write ONLY the test file {task.test_file} for this task, using {lang.framework}.\n"
        f"- Write one test for every rule, edge case and example in the task (at most {max_tests(task)} tests); name "
        f"each test after what it checks.\n"
        # A small model's usual wrong test: error handling the task never asked for (fibonacci(1.5) must raise).
        f"- Test only what the task says. Do not test input validation or errors the task does not mention.\n"
        f"- Every test must contain at least one assertion.\n"
        f"- The code under test will be in {task.solution_file}; import it with: "
        f"{lang.import_hint.format(stem=task.stem, module=task.module)}\n"
        f"- Do not write the solution.\n\n"
        f"The file looks like this (fill in the UPPERCASE parts; one test per rule):\n"
        f"{_block(task, task.test_file, task.test_skeleton(with_examples=False))}\n\n"
        + (f"The task's own examples are tested already: do not repeat them. Write at most {max_tests(task)} tests "
           f"for the other rules and edge cases.\n\n" if task.example_tests else "") +
        f"Answer with one code block whose first line is a comment with the file name {task.test_file}."
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": body}]


def plain_prompt(task: CodeTask) -> list[dict]:
    """The plain answer to a one-file request: the request as the user wrote it, the language's rules, one block.
    Plainer than the prompts below on purpose: asked for the file-name comment and told not to write tests, the
    1.5B solved fewer problems (19 of HumanEval/120-163 against 23, benchmarks/results/plain_prompt.json)."""
    lang = task.lang.title
    body = (f"{task.text}\n\n" + (f"{task.memory}\n\n" if task.memory else "") +
            f"{task.lang.rules}\nAnswer with the complete {task.solution_file} in one ```{task.lang.fence} code block.")
    return [{"role": "system", "content": f"You are a careful {lang} programmer. You answer with complete {lang} code "
                                          f"in one fenced code block."},
            {"role": "user", "content": body}]


def code_prompt(task: CodeTask, tests: dict[str, str]) -> list[dict]:
    """The solution from the request (the plain answer, with no tests) or from the request and tests."""
    return plain_prompt(task) if not tests and not task.extra_files else files_prompt(task, tests)


def files_prompt(task: CodeTask, tests: dict[str, str]) -> list[dict]:
    """Every file the request names, each in a block that starts with its name, beside the tests to pass."""
    shown = "\n\n".join(_block(task, name, src) for name, src in tests.items())
    sources = [task.solution_file, *task.extra_files]  # every file the request names but the tests
    names = ", ".join(sources)
    files, blocks = ((f"files {names}", f"one code block per file whose first line is a comment with its file name "
                                         f"({names})") if len(sources) > 1 else
                     (f"file {names}", f"one code block whose first line is a comment with the file name {names}"))
    body = (
        f"Task:\n{task.text}\n\n"
        + (f"{task.memory}\n\n" if task.memory else "")
        + (f"These tests must pass:\n{shown}\n\n" if shown else "") +
        f"Write the complete {files}, with the body of every function written out. {task.lang.rules}\n"
        + ("" if shown else f"Write no tests: they are written separately in {task.test_file}.\n") +
        f"\nAnswer with {blocks}."
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": body}]


def missing_files_prompt(task: CodeTask, messages: list[dict], reply: str, missing: list[str]) -> list[dict]:
    """The same conversation, asking for the named files the answer uses but left out."""
    names = ", ".join(missing)
    blocks = ("one code block per file whose first line is a comment with its file name" if len(missing) > 1 else
              "one code block whose first line is a comment with its file name")
    return [*messages, {"role": "assistant", "content": reply},
            {"role": "user", "content": f"Now write {names}, which that code uses. Answer with {blocks} ({names})."}]


def fix_prompt(task: CodeTask, tests: dict[str, str], candidate: dict[str, str], problem: str) -> list[dict]:
    """The candidate back with what failed: the tests it must pass (those shown) and the failure report."""
    messages = code_prompt(task, tests)
    previous = "\n\n".join(_block(task, name, src) for name, src in candidate.items() if name not in tests)
    messages.append({"role": "assistant", "content": previous or "(no code block)"})
    messages.append({"role": "user", "content": (
        f"That did not work.\n{problem}\n\n"
        f"First explain in at most three sentences why it fails. Then give the complete corrected "
        f"{task.solution_file} in one code block whose first line is a comment with its file name.")})
    return messages


def failure_report(task: CodeTask, run: SandboxRun | None, assertions: int, max_chars: int = 2500,
                   only: set[str] | None = None) -> str:
    """What went wrong, for the fix prompt: failing tests with their errors (`only` those ids when
    given), else the run's output."""
    if run is None:
        return "No code block with the solution was found in the answer."
    if run.blocked:
        return "The security scan refused to run it:\n" + "\n".join(f"- {f}" for f in run.scan.high)
    lines: list[str] = []
    result, report = run.result, run.report
    if result.killed_reason:
        lines.append(f"The run was stopped: {result.killed_reason}.")
    if report is not None and report.tests:
        failing = [c for c in report.failing() if only is None or c.id in only]
        lines.append(f"{len(failing)} of {report.tests} tests failed:")
        for case in failing[:8]:
            detail = case.details[-600:] if case.details else case.message
            lines.append(f"- {case.id}: {case.error_type or case.status}: {case.message[:200]}\n{detail}")
    else:
        lines.append("The tests did not run (no test results). Output:")
        lines.append((result.stdout[-1200:] + "\n" + result.stderr[-1200:]).strip())
    if assertions == 0:
        lines.append("The tests contain no assertions, so they prove nothing.")
    text = "\n".join(lines)
    return text if len(text) <= max_chars else text[: max_chars - 20] + "\n[...cut...]"


def parse_files(task: CodeTask, reply: str, wanted: str) -> dict[str, str]:
    """Files in the reply, keyed by the task's file names. `wanted` gets a lone unnamed block."""
    known = task.files
    found: dict[str, str] = {}
    unnamed: list[str] = []
    for match in FENCE.finditer(reply):
        info, source = match.group(1), match.group(2)
        # One block holding two files ("// sum.ts ... // sum.test.ts ..."): split at the second name.
        parts = _split_at_names(source, known)
        if len(parts) > 1:
            for name, part in parts:
                if part.strip():
                    found.setdefault(name, part.rstrip() + "\n")
            continue
        before = reply[max(0, match.start() - 200):match.start()].rstrip().splitlines()[-1:]
        first = source.lstrip("\n").splitlines()[:1]
        name = _name_in(info, known) or _name_in(first[0] if first else "", known) or \
            _name_in(before[0] if before else "", known)
        if first and name and _name_in(first[0], known) == name and first[0].lstrip().startswith(("#", "//")):
            source = source.lstrip("\n").split("\n", 1)[1] if "\n" in source.lstrip("\n") else ""
        if not source.strip():
            continue
        if name:
            found.setdefault(name, source.rstrip() + "\n")
        else:
            unnamed.append(source.rstrip() + "\n")
    if wanted not in found and unnamed:
        found[wanted] = unnamed[0]
    if not found and reply.strip() and "```" not in reply and _looks_like_code(reply):
        found[wanted] = reply.strip() + "\n"  # some models answer with bare code
    return found


def _split_at_names(source: str, known: list[str]) -> list[tuple[str, str]]:
    """[(file, text)] when comment lines naming files split the block into two or more files."""
    parts: list[tuple[str, list[str]]] = []
    for line in source.splitlines():
        stripped = line.strip()
        name = _name_in(stripped, known) if stripped.startswith(("#", "//")) and len(stripped) < 80 else None
        if name:
            parts.append((name, []))
        elif parts:
            parts[-1][1].append(line)
        elif line.strip():
            return []  # code before any name: an ordinary block
    return [(name, "\n".join(lines)) for name, lines in parts] if len(parts) > 1 else []


def _name_in(text: str, known: list[str]) -> str | None:
    for candidate in NAME.findall(text or ""):
        for name in known:
            if candidate == name or PurePosixPath(candidate).name == PurePosixPath(name).name:
                return name
    return None


def _looks_like_code(text: str) -> bool:
    return bool(re.search(r"^\s*(def |class |import |from |export |function |public |@Test)", text, re.MULTILINE))
