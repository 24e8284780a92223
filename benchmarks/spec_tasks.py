"""Spec-heavy requests: one shot, the code loop, and plain resampling at the loop's token budget.

    .venv/bin/python benchmarks/spec_tasks.py [--model NAME] [--limit N] [--only python/01_slugify,02_chunk]
                                              [--languages python,java] [--modes single,loop,resample]
                                              [--resume] [--report] [--name NAME]

The tasks are benchmarks/spec/ (12 Python, 10 TypeScript, 8 Java): requests with their rules in the text,
each with held-out tests that no prompt ever contains. Every model call goes through the gateway (no
response cache; no store is opened here, so nothing is logged), the workbench default model unless --model names another.
Every program runs in the workbench sandbox.

Modes, per task:
  single    one greedy call (temperature 0) with the loop's own first prompt (`prompts.code_prompt`: the request
            and the files it names, one fenced block each), parsed with `workbench.code.prompts.parse_files`:
            exactly the loop's round 1
  loop      `workbench.code.loop.solve(text, language, model=..., max_rounds=5)`, then `result.write(dir)`;
            the files written are the candidate
  resample  samples at temperature 0.8 (seeds 1, 2, ...) until the tokens spent (in + out) reach what the loop
            spent on that task (at least one sample; the last may overshoot). Kept: the first sample that passes
            the request's own examples (`CodeTask.example_cases`, run in the sandbox), else the first sample;
            sampling stops at the first that passes them. The held-out tests never choose.

Judging is the same for all three (`benchmarks.spec.judge`): the candidate's files, less any test file the
model wrote, beside the held-out tests; passed = EVERY held-out test passed (a missing file, a compile
error, a wrong exception type all fail the task). Strict: there is no partial credit; the share of held-out
tests passed is kept in each row for diagnosis only.

Each (task, mode) is one JSON line in benchmarks/results/<name>.jsonl (default spec_tasks.jsonl), appended as
it finishes; --resume skips the pairs already there for the same model, so a run resumes on a fresh machine
from the file. A pair run again is appended too; the report uses the last line of each (model, task, mode).
The report (also `--report` alone) gives per model, mode and language: pass rate = passed / tasks attempted,
seconds (mean, median), tokens per task, rounds or samples; and the pass rate on the tasks every reported mode
attempted. Nothing is extrapolated to tasks that were not run. Report: benchmarks/results/<name>.json.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._common import RESULTS, append_row, last_rows, save, table
from benchmarks.spec import LANGUAGES, SpecTask, candidate_files, judge, load

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MODES = ("single", "loop", "resample")  # the loop runs before resample: resample needs its token count
MAX_TOKENS = 1024
LOOP_ROUNDS = 5
RESAMPLE_TEMPERATURE = 0.8


def code_task(task: SpecTask):
    from workbench.code.task import parse_task

    return parse_task(task.text, task.language)


def single_messages(task: SpecTask) -> list[dict]:
    """The code loop's own first prompt (the request and the files it names): single shot is exactly the
    loop's round 1, so the loop's rows show what its other rounds add."""
    from workbench.code.prompts import code_prompt

    return code_prompt(code_task(task), {})


class Runner:
    """The model and the sandbox of one run, and the three modes."""

    def __init__(self, model, executor):
        self.model, self.executor = model, executor

    def complete(self, task: SpecTask, **options) -> tuple[dict[str, str], int, int]:
        from workbench.code.prompts import parse_files
        from workbench.code.stopping import complete_until, files_closed

        parsed = code_task(task)
        # Stopped where the loop stops its answers: once the files asked for are closed.
        c = complete_until(self.model, single_messages(task), files_closed(parsed, [parsed.solution_file,
                                                                                     *parsed.extra_files]),
                           max_tokens=MAX_TOKENS, **options)
        files = parse_files(parsed, c.text, parsed.solution_file)
        return files, c.usage.input_tokens, c.usage.output_tokens

    def judged(self, task: SpecTask, files: dict[str, str]) -> dict:
        verdict = judge(task, files, executor=self.executor)
        return {"passed": verdict.pop("passed"), "judge": verdict}

    # --- the three modes: each returns the fields of its JSON line --------------------------------------

    def single(self, task: SpecTask, done: dict) -> dict:
        files, tin, tout = self.complete(task, temperature=0)
        return {**self.judged(task, files), "tokens_in": tin, "tokens_out": tout, "samples": 1,
                "files": candidate_files(task, files)}

    def loop(self, task: SpecTask, done: dict) -> dict:
        from workbench.code.loop import solve

        result = solve(task.text, task.language, model=self.model, max_rounds=LOOP_ROUNDS, executor=self.executor,
                       max_tokens=MAX_TOKENS)
        summary = result.summary()
        with tempfile.TemporaryDirectory(prefix="spec-loop-") as tmp:
            written = result.write(tmp)
            files = {Path(p).relative_to(tmp).as_posix(): Path(p).read_text() for p in written}
        row = {"tokens_in": summary.get("tokens_in", 0), "tokens_out": summary.get("tokens_out", 0),
               "rounds": summary.get("rounds"), "model_calls": summary.get("model_calls"),
               "stop_reason": result.stop_reason, "own_tests_passed": bool(result.ok),
               "own_tests": summary.get("tests_run"), "files": candidate_files(task, files),
               "round_log": [{"kind": r.kind, "decision": r.decision, "tests": r.tests, "passed": r.passed,
                              "examples_passed": r.examples_passed, "error": r.error, "mechanical": r.mechanical,
                              "tokens": r.tokens_in + r.tokens_out, "notes": r.notes} for r in result.rounds],
               "kept_round": result.best_round}
        if not row["files"]:
            return {"passed": False, "judge": {"output": "the loop wrote no code file"}, **row}
        return {**self.judged(task, files), **row}

    def resample(self, task: SpecTask, done: dict) -> dict:
        loop = done.get((self.model.model_id, task.id, "loop"))
        if loop is None:
            raise SystemExit(f"resample needs the loop's tokens for {task.id} with {self.model.model_id}: run it "
                             f"with --modes loop,resample (or loop first).")
        budget = loop["tokens_in"] + loop["tokens_out"]
        examples = self.examples(task)
        spent_in = spent_out = 0
        samples: list[dict[str, str]] = []
        picked, examples_passed = 0, False
        while not samples or spent_in + spent_out < budget:
            files, tin, tout = self.complete(task, temperature=RESAMPLE_TEMPERATURE, seed=len(samples) + 1)
            samples.append(files)
            spent_in, spent_out = spent_in + tin, spent_out + tout
            if examples is None:
                break  # nothing to choose by: the first sample is kept, so more would only spend tokens
            if self.passes_examples(task, files, examples):
                picked, examples_passed = len(samples) - 1, True
                break
        return {**self.judged(task, samples[picked]), "tokens_in": spent_in, "tokens_out": spent_out,
                "samples": len(samples), "picked_sample": picked + 1,
                "examples": 0 if examples is None else len(code_task(task).example_cases),
                "examples_passed": examples_passed, "budget_tokens": budget,
                "files": candidate_files(task, samples[picked])}

    def examples(self, task: SpecTask) -> tuple[str, str] | None:
        """(test file name, source) of the request's own examples as tests, or None when it has none."""
        parsed = code_task(task)
        if not parsed.example_cases:
            return None
        source = parsed.lang.examples.insert("", parsed.example_cases, function=parsed.function_name,
                                             stem=parsed.stem, module=parsed.module)
        return parsed.test_file, source

    def passes_examples(self, task: SpecTask, files: dict[str, str], examples: tuple[str, str]) -> bool:
        from workbench.sandbox.runtimes import run_tests

        code = candidate_files(task, files)
        if not code:
            return False
        name, source = examples
        return run_tests(task.language, {**code, name: source}, tests=[name], executor=self.executor,
                         format=False).ok


# --- the results file and the report ------------------------------------------------------------------


def read_rows(jsonl: Path) -> dict[tuple[str, str, str], dict]:
    """The last line of each (model, task, mode); a line cut off by a crash is skipped."""
    return last_rows(jsonl, "model", "task_id", "mode")


def append(jsonl: Path, row: dict) -> None:
    append_row(jsonl, row)


def summarize(rows: dict[tuple[str, str, str], dict]) -> tuple[list[dict], dict]:
    by: dict[tuple[str, str, str], list[dict]] = {}
    for (model, _, mode), row in rows.items():
        for language in (row["language"], "all"):
            by.setdefault((model, mode, language), []).append(row)
    common: dict[str, set[str]] = {}
    for model in {m for m, _, _ in by}:
        sets = [{r["task_id"] for r in rs} for (m, _, lang), rs in by.items() if m == model and lang == "all"]
        common[model] = set.intersection(*sets)
    order = (*LANGUAGES, "all")
    out = []
    for (model, mode, language), rs in sorted(by.items(), key=lambda kv: (kv[0][0], MODES.index(kv[0][1]),
                                                                         order.index(kv[0][2]))):
        seconds = [r["seconds"] for r in rs]
        tokens = [r["tokens_in"] + r["tokens_out"] for r in rs]
        same = [r for r in rs if r["task_id"] in common[model]]
        steps = [r.get("rounds") if mode == "loop" else r.get("samples") for r in rs]
        steps = [s for s in steps if s is not None]
        out.append({
            "model": model, "mode": mode, "language": language, "tasks": len(rs),
            "passed": sum(r["passed"] for r in rs), "pass_rate": sum(r["passed"] for r in rs) / len(rs),
            "common_tasks": len(same),
            "pass_rate_common": sum(r["passed"] for r in same) / len(same) if same else None,
            "heldout_share_mean": statistics.fmean(
                (r.get("judge") or {}).get("tests_passed", 0) / max(1, (r.get("judge") or {}).get("tests", 0))
                for r in rs),
            "seconds_mean": statistics.fmean(seconds), "seconds_median": statistics.median(seconds),
            "tokens_mean": statistics.fmean(tokens), "tokens_median": statistics.median(tokens),
            "rounds_or_samples_mean": statistics.fmean(steps) if steps else None,
            "errors": sum(1 for r in rs if r.get("error")),
        })
    return out, {m: len(c) for m, c in common.items()}


def report(jsonl: Path) -> None:
    rows = read_rows(jsonl)
    if not rows:
        raise SystemExit(f"No results in {jsonl}: run the benchmark first.")
    summary, common = summarize(rows)
    print(table(summary, ["model", "mode", "language", "tasks", "passed", "pass_rate", "common_tasks",
                          "pass_rate_common", "heldout_share_mean", "seconds_mean", "seconds_median",
                          "tokens_mean", "rounds_or_samples_mean", "errors"]))
    total = len(load())
    path = save(jsonl.stem, summary, total_tasks=total, common_tasks=common,
                source=str(jsonl.relative_to(RESULTS.parent.parent)), loop_max_rounds=LOOP_ROUNDS,
                max_tokens=MAX_TOKENS, resample_temperature=RESAMPLE_TEMPERATURE,
                notes=("pass_rate = tasks whose held-out tests ALL pass / tasks attempted in that mode and language; "
                       f"the counts say how many of the {total} tasks each number covers (no extrapolation). "
                       "pass_rate_common: on the tasks every mode of that model attempted. heldout_share_mean: the "
                       "mean share of held-out tests passed, for diagnosis only (not a pass). single is greedy; "
                       "resample draws at temperature 0.8 up to the loop's tokens and keeps the first sample that "
                       "passes the request's own examples, never choosing by the held-out tests."))
    print(f"saved {path}")


# --- main ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model name (default: the workbench default model)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N tasks")
    parser.add_argument("--only", default=None, help="comma-separated ids or names: python/01_slugify,02_chunk")
    parser.add_argument("--languages", default=",".join(LANGUAGES), help="comma-separated: python,typescript,java")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: single,loop,resample")
    parser.add_argument("--resume", action="store_true", help="skip (task, mode) pairs in the jsonl")
    parser.add_argument("--report", action="store_true", help="only print and save the report from the jsonl")
    parser.add_argument("--name", default="spec_tasks", help="results name: <name>.jsonl rows, <name>.json report")
    args = parser.parse_args()
    if not NAME.fullmatch(args.name):
        raise SystemExit(f"--name {args.name!r}: use letters, digits, '.', '_' or '-' (a file name in {RESULTS}).")
    jsonl = RESULTS / f"{args.name}.jsonl"
    if args.report:
        report(jsonl)
        return
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise SystemExit(f"--modes: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(MODES)}.")
    modes = [m for m in MODES if m in modes]
    try:
        tasks = load(args.only, args.limit, [x.strip() for x in args.languages.split(",") if x.strip()])
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc

    from workbench import gateway, providers
    from workbench.errors import SandboxError
    from workbench.sandbox import get_executor

    try:
        executor = get_executor()
    except SandboxError as exc:
        raise SystemExit(str(exc)) from exc
    # No response cache: the loop's first call repeats single shot's, and each mode pays for its own calls.
    model = gateway.build(providers.get_model(args.model), cache=False)
    done = read_rows(jsonl)
    if not args.resume or any((model.model_id, t.id, m) not in done for t in tasks for m in modes):
        start = time.perf_counter()
        model.complete("Say OK.", max_tokens=1, cache=False)  # loads the weights, so no task pays for it
        print(f"{model.model_id}: ready in {time.perf_counter() - start:.1f} s", end="; ")
    print(f"{len(tasks)} tasks, modes {', '.join(modes)}, sandbox {executor.name}")
    runner = Runner(model, executor)
    for task in tasks:
        for mode in modes:
            key = (model.model_id, task.id, mode)
            if args.resume and key in done:
                print(f"{task.id:<30} {mode:<8} skipped (in {jsonl.name})")
                continue
            start = time.perf_counter()
            try:
                fields = getattr(runner, mode)(task, done)
            except SandboxError:
                raise
            except Exception as exc:  # noqa: BLE001 - a model or parsing failure fails this task, not the run
                fields = {"passed": False, "tokens_in": 0, "tokens_out": 0, "error": f"{type(exc).__name__}: {exc}"}
            row = {"task_id": task.id, "language": task.language, "mode": mode, "model": model.model_id,
                   "passed": bool(fields.pop("passed")), "seconds": round(time.perf_counter() - start, 3),
                   **fields, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            append(jsonl, row)
            done[key] = row
            j = row.get("judge") or {}
            steps = f"rounds {row['rounds']}" if "rounds" in row else f"samples {row.get('samples', 0)}"
            print(f"{task.id:<30} {mode:<8} {'passed' if row['passed'] else 'FAILED':<6} "
                  f"held-out {j.get('tests_passed', 0)}/{j.get('tests', 0)}  {row['seconds']:7.1f} s  "
                  f"tokens {row['tokens_in']}+{row['tokens_out']}  {steps}"
                  + (f"  ({row['error']})" if row.get("error") else ""), flush=True)
    report(jsonl)


if __name__ == "__main__":
    main()
