"""HumanEval's judging, shared by `benchmarks/humaneval.py` and the experiments' `humaneval` checker.

A candidate is judged strictly: the program is the problem's prompt, then the candidate code (a rewritten
function replaces the prompt's stub; a bare body completes it), then the hidden `test` and
`check(entry_point)`, run in the sandbox with a 10 s timeout; passed = exit code 0. A top-level
`if __name__ == "__main__":` block in the candidate is cut off first (the usual HumanEval stop sequence).
"""

from __future__ import annotations

import re

from workbench.code.examples import Example
from workbench.code.prompts import FENCE  # the loop's own block reader: every mode reads replies alike

JUDGE_TIMEOUT_S = 10.0
MAX_TOKENS = 1024
MAIN_GUARD = re.compile(r"^if\s+__name__\s*==\s*['\"]__main__['\"]\s*:", re.MULTILINE)


def extract_code(reply: str, entry_point: str) -> str:
    """The fenced block that defines the function, else the first block, else the whole reply."""
    blocks = [m.group(2) for m in FENCE.finditer(reply) if m.group(2).strip()]
    defining = [b for b in blocks if re.search(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", b, re.MULTILINE)]
    return (defining or blocks or [reply])[0]


def program(prompt: str, code: str, entry_point: str) -> str:
    """The prompt completed by the code: a rewritten function (with its imports) replaces the prompt's stub
    by being defined after it; a bare body is indented under the prompt's signature if it is not already."""
    guard = MAIN_GUARD.search(code)
    if guard:
        code = code[:guard.start()]
    if re.search(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", code, re.MULTILINE):
        return f"{prompt.rstrip()}\n\n\n{code.strip()}\n"
    lines = code.strip("\n").splitlines()
    if lines and not lines[0].startswith((" ", "\t")):
        lines = ["    " + line if line.strip() else line for line in lines]
    return prompt + "\n".join(lines) + "\n"


def judge_source(solution: str, problem: dict) -> str:
    return f"{solution}\n\n{problem['test']}\n\ncheck({problem['entry_point']})\n"


def examples_source(solution: str, found: list[Example]) -> str:
    return (f"{solution}\n\nimport doctest as _doctest\nimport sys as _sys\n\n"
            f"_examples = [_doctest.Example(source, want) for source, want in {[(e.source, e.want) for e in found]!r}]\n"
            f"_runner = _doctest.DocTestRunner(verbose=False, optionflags=_doctest.NORMALIZE_WHITESPACE)\n"
            f"_runner.run(_doctest.DocTest(_examples, dict(globals()), 'examples', None, 0, None))\n"
            f"_sys.exit(1 if _runner.failures else 0)\n")


def loop_task(problem: dict) -> str:
    """The code loop's task: the prompt as the specification, as a user would paste it. The loop finds the
    docstring's examples itself (they become tests); the model writes the other tests when they can help."""
    ep = problem["entry_point"]
    return (f"Write the Python function {ep}(...) below in solution.py. "
            f"Keep the code as given and write the body of {ep}.\n\n```python\n{problem['prompt'].rstrip()}\n```")


def run(source: str, executor=None, timeout_s: float = JUDGE_TIMEOUT_S) -> dict:
    """Run one program in the sandbox: passed = exit code 0 (not blocked, not timed out)."""
    from workbench.sandbox import Limits
    from workbench.sandbox.runtimes import run_program

    run = run_program("python", {"main.py": source}, executor=executor, limits=Limits(timeout_s=timeout_s))
    if run.result is None:
        return {"passed": False, "exit_code": None, "blocked": True, "output": "; ".join(run.notes)}
    r = run.result
    return {"passed": r.exit_code == 0 and not r.timed_out, "exit_code": r.exit_code, "timed_out": r.timed_out,
            "output": "" if r.exit_code == 0 else (r.stdout[-400:] + r.stderr[-800:]).strip()}


def judge(problem: dict, solution: str, executor=None) -> dict:
    """The strict verdict: every hidden test passes in the sandbox."""
    verdict = run(judge_source(solution, problem), executor)
    return {"passed": verdict["passed"], "judge": verdict}


def complete(model, problem: dict, messages=None, **options) -> tuple[str, int, int]:
    """One call with the code loop's own first prompt (single shot is exactly the loop's round 1), stopped
    where the loop stops its answers: once solution.py's block is closed. Returns (program, tokens in, out).
    `messages(task)`, when given, replaces that prompt (benchmarks/plain_prompt.py compares others)."""
    from workbench.code import parse_task, prompts
    from workbench.code.stopping import complete_until, files_closed

    task = parse_task(loop_task(problem), "python")
    options.setdefault("max_tokens", MAX_TOKENS)
    asked = messages(task) if messages is not None else prompts.code_prompt(task, {})
    c = complete_until(model, asked, files_closed(task, [task.solution_file]), **options)
    code = prompts.parse_files(task, c.text, task.solution_file).get(task.solution_file) or \
        extract_code(c.text, problem["entry_point"])
    return program(problem["prompt"], code, problem["entry_point"]), c.usage.input_tokens, c.usage.output_tokens
