"""Prompt-prefix reuse on a local model: seconds per step with the prompt cache off and on, same run.

One realistic sequence of calls where call sites take turns, as a task does: the Director plans (a long
system prompt plus the user's request), the code loop writes tests, then code, then fix rounds for one
task (every round repeats the system prompt and the task text; a fix round repeats the whole code prompt),
and the Director plans other requests in between. Each step runs on two model hosts of the same model,
one with WORKBENCH_LOCAL_PROMPT_CACHE_MB=0 and one with the cache on, interleaved step by step so both
see the same machine load. Reported per step: prompt tokens, tokens the cache let the model skip,
seconds off / on and seconds saved, wall clock and CPU time of the host (the CPU time is the steadier
measure on a shared machine). Answers are compared too (temperature 0: they must be equal).

With --reps R the whole sequence runs R times, each on freshly started hosts; seconds are medians per step.
Usage: python benchmarks/prompt_cache.py [--model qwen2.5-coder-1.5b] [--threads 2] [--tokens 16]
       [--cache-mb 256] [--reps 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save, table  # noqa: E402

DIRECTOR = (
    "You are the Director of a team of specialists. Split the user's task into as FEW subtasks as possible: one "
    "per distinct part of the task (a task asking for two different things has two parts; a simple task is ONE "
    "subtask; never more than 4). Give each subtask to the specialist whose description fits it best.\n"
    "Specialists:\n"
    "- general: answers questions, explains concepts, writes prose, and handles anything no other specialist fits.\n"
    "- code: writes, fixes and tests programs in Python, TypeScript or Java, and runs them in a sandbox.\n"
    "- data: loads CSV, Parquet or JSON files, summarises them, and answers questions about their columns.\n"
    "- research: searches the documents in the workspace and cites the passages it used.\n"
    "Fields: \"reasoning\" is one short sentence naming the parts. Each subtask has an id (s1, s2, ... in order), "
    "a specialist, \"instructions\" (one short sentence: that part of the task, in the user's words) and "
    "\"depends_on\" (ids of earlier subtasks whose results it needs; [] when it can start at once).\n"
    "Examples:\n"
    'Task: "Explain what a mutex is." -> {"reasoning": "One part: an explanation.", "subtasks": [{"id": "s1", '
    '"specialist": "general", "instructions": "Explain what a mutex is.", "depends_on": []}]}\n'
    'Task: "Load orders.csv and write a function that flags late orders." -> {"reasoning": "Two parts: the data, '
    'then code using it.", "subtasks": [{"id": "s1", "specialist": "data", "instructions": "Load orders.csv and '
    'describe its columns.", "depends_on": []}, {"id": "s2", "specialist": "code", "instructions": "Write a '
    'function that flags late orders.", "depends_on": ["s1"]}]}\n'
    'Reply with JSON only: {"reasoning": "...", "subtasks": [{"id": "s1", "specialist": "...", '
    '"instructions": "...", "depends_on": []}]}'
)
CODER = ("You are a careful programmer. You answer with complete files in fenced code blocks, each block starting "
         "with the file name as a comment, and nothing else after the blocks.")
TASK = (
    "Task:\nWrite a function `roman(n: int) -> str` that converts an integer from 1 to 3999 to a Roman numeral, "
    "and `parse_roman(text: str) -> int`, its inverse.\n"
    "Rules:\n- Use the subtractive forms IV, IX, XL, XC, CD and CM, and no others.\n"
    "- roman(n) for n outside 1..3999 raises ValueError whose message names n.\n"
    "- parse_roman accepts upper or lower case, ignores surrounding whitespace, and raises ValueError on anything "
    "that is not a canonical numeral: 'IIII', 'VX', 'IC', 'MMMM', '' and 'XIIV' are all invalid.\n"
    "- parse_roman(roman(n)) == n for every n in 1..3999.\n"
    "Examples: roman(3) == 'III', roman(58) == 'LVIII', roman(1994) == 'MCMXCIV', parse_roman('mmxxiv') == 2024.\n\n"
)
TESTS = ("```python\n# test_roman.py\nimport pytest\nfrom roman import roman, parse_roman\n\n"
         "def test_examples():\n    assert roman(3) == 'III'\n    assert roman(58) == 'LVIII'\n"
         "    assert roman(1994) == 'MCMXCIV'\n    assert parse_roman('mmxxiv') == 2024\n\n"
         "def test_out_of_range():\n    with pytest.raises(ValueError):\n        roman(0)\n\n"
         "def test_invalid():\n    for bad in ['IIII', 'VX', 'IC', 'MMMM', '', 'XIIV']:\n"
         "        with pytest.raises(ValueError):\n            parse_roman(bad)\n\n"
         "def test_round_trip():\n    assert all(parse_roman(roman(n)) == n for n in range(1, 4000))\n```")


def director(request: str) -> list[dict]:
    return [{"role": "system", "content": DIRECTOR}, {"role": "user", "content": request}]


def tests_prompt() -> list[dict]:
    return [{"role": "system", "content": CODER}, {"role": "user", "content": TASK + (
        "Write ONLY the test file test_roman.py for this task, using pytest. One test per rule and example; "
        "every test has an assertion. Answer with one code block whose first line is a comment with the file name.")}]


def code_prompt() -> list[dict]:
    return [{"role": "system", "content": CODER}, {"role": "user", "content": TASK + (
        f"These tests must pass:\n{TESTS}\n\nWrite the complete file roman.py, with the body of every function "
        "written out. Answer with one code block whose first line is a comment with the file name roman.py.")}]


def fix_prompt(candidate: str, failure: str) -> list[dict]:
    return code_prompt() + [{"role": "assistant", "content": candidate}, {"role": "user", "content": (
        f"That did not work.\n{failure}\n\nFirst explain in at most three sentences why it fails. Then give the "
        "complete corrected roman.py in one code block whose first line is a comment with its file name.")}]


SEQUENCE: list[tuple[str, list[dict]]] = [
    ("director", director("Write a Roman numeral converter in Python, with tests.")),
    ("code: tests", tests_prompt()),
    ("code: solution", code_prompt()),
    ("director", director("Load sales.csv and tell me which region sold the most.")),
    ("code: fix 1", fix_prompt("```python\n# roman.py\ndef roman(n):\n    return 'I' * n\n```",
                               "3 of 4 tests failed: test_examples: assert 'IIIIIIIIII...' == 'LVIII'")),
    ("director", director("Explain the difference between a process and a thread.")),
    ("code: fix 2", fix_prompt("```python\n# roman.py\ndef roman(n):\n    return str(n)\n```",
                               "4 of 4 tests failed: NameError: name 'parse_roman' is not defined")),
]


def model_with_cache(name: str, cache_mb: int):
    from workbench import providers
    from workbench.config import reload_settings

    os.environ["WORKBENCH_LOCAL_PROMPT_CACHE_MB"] = str(cache_mb)
    reload_settings()
    model = providers.get_model(f"local:{name}")
    model.host()  # load the weights before any timing
    return model


def step(model, messages: list[dict], tokens: int) -> tuple[float, object]:
    start = time.perf_counter()
    completion = model.complete(messages, max_tokens=tokens, temperature=0, seed=1)
    return time.perf_counter() - start, completion


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=16, help="max_tokens per step (the same in both modes)")
    ap.add_argument("--cache-mb", type=int, default=256, help="the prompt cache's bound in the 'on' host")
    ap.add_argument("--reps", type=int, default=1, help="runs of the whole sequence, each on fresh hosts")
    args = ap.parse_args()
    os.environ.update(WORKBENCH_N_THREADS=str(args.threads), WORKBENCH_N_CTX="4096")
    from workbench.providers import model_host

    runs: list[list[dict]] = []
    for rep in range(args.reps):
        model_host.close_all()  # fresh hosts: nothing cached from the previous run
        off, on = model_with_cache(args.model, 0), model_with_cache(args.model, args.cache_mb)
        runs.append([])
        for number, (site, messages) in enumerate(SEQUENCE, 1):
            s_off, c_off = step(off, messages, args.tokens)
            s_on, c_on = step(on, messages, args.tokens)
            runs[-1].append({"step": number, "call site": site, "prompt_tokens": c_on.usage.input_tokens,
                             "reused_off": c_off.usage.cache_read_tokens, "reused_on": c_on.usage.cache_read_tokens,
                             "s_off": s_off, "s_on": s_on, "cpu_s_off": c_off.cpu_seconds, "cpu_s_on": c_on.cpu_seconds,
                             "same_answer": c_off.text == c_on.text})
            print(f"run {rep + 1} step {number} ({site}): {s_off:.1f} s off, {s_on:.1f} s on", file=sys.stderr)
    rows = []
    for steps in zip(*runs):
        med = {key: statistics.median(r[key] for r in steps) for key in ("s_off", "s_on", "cpu_s_off", "cpu_s_on")}
        rows.append({**steps[0], **{key: round(value, 2) for key, value in med.items()},
                     "saved_s": round(med["s_off"] - med["s_on"], 2),
                     "saved_cpu_s": round(med["cpu_s_off"] - med["cpu_s_on"], 2),
                     "same_answer": all(r["same_answer"] for r in steps)})
    cache = on.host_stats()["prompt_cache"]
    revisits = [r for r in rows if r["reused_on"] > 0]
    summary = {
        "steps": len(rows), "total_s_off": round(sum(r["s_off"] for r in rows), 1),
        "total_s_on": round(sum(r["s_on"] for r in rows), 1),
        "total_cpu_s_off": round(sum(r["cpu_s_off"] for r in rows), 1),
        "total_cpu_s_on": round(sum(r["cpu_s_on"] for r in rows), 1),
        "saved_s_per_step": round(statistics.mean(r["saved_s"] for r in rows), 2),
        "saved_cpu_s_per_step": round(statistics.mean(r["saved_cpu_s"] for r in rows), 2),
        "saved_s_per_revisit": round(statistics.mean(r["saved_s"] for r in revisits), 2) if revisits else 0.0,
        "prompt_tokens": sum(r["prompt_tokens"] for r in rows), "tokens_reused": sum(r["reused_on"] for r in rows),
        "all_answers_equal": all(r["same_answer"] for r in rows), "cache_bytes_held": cache["bytes"],
        "cache_capacity_bytes": cache["capacity_bytes"], "snapshots_restored": cache["restored"],
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    print(table(rows, list(rows[0])))
    print()
    print(table([summary], list(summary)))
    path = save("prompt_cache", rows, summary=summary, model=args.model, threads=args.threads,
                max_tokens=args.tokens, reps=args.reps, runs=runs)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
