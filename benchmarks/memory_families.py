"""Memory on the task-family set: does a workbench that solved a family before solve the next variation more
often and cheaper, and lose nothing on unrelated tasks?

    .venv/bin/python benchmarks/memory_families.py [--limit N] [--resume] [--report] [--name NAME]

The set is benchmarks/families/families.jsonl (10 families x 3 variations and 10 controls, shuffled; held-out
tests written from reference solutions, never shown to the model). Two arms, case by case (off, then on), each case
as a real agents task (router, Director, specialists, the code loop in the sandbox) on the default model in
a throwaway WORKBENCH_HOME, one task at a time in the set's order, the loop's configured rounds in both arms
(WORKBENCH_STRATEGY=false, so only memory differs):

- off: every task with memory off;
- on:  every task with memory on, under an owner of this run's own, so memory starts empty and holds only
       what this arm's earlier tasks verified (a variation can profit only from an earlier one).

A case passes when its task completed and the last code subtask's code passes every held-out test
(workbench.evals.checkers, the experiments' strict checker). Each finished task is one JSON line in
benchmarks/results/<name>.jsonl (default memory_families.jsonl): arm, case, tags, passed, tokens, seconds, and
the memory events of the task (retrievals and their similarity). --resume skips the (arm, case) pairs already
there; the on arm's memory lives in the home, so a resumed on arm continues in the home named by its rows
when it still exists, else starts a new owner (said in the report). The report (also --report alone): per
arm the pass count, mean tokens and seconds; per family the passes of its second and third variations (the
ones memory can help) off vs on; the controls off vs on; against the goals (>= 10 points more passes and
>= 30 % fewer tokens with memory on, no loss on the controls), over the cases both arms have run. Saved to
<name>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._common import agents_stack, append_row, code_version, last_rows, save, table  # noqa: E402

SET = Path(__file__).resolve().parent / "families" / "families.jsonl"
RESULTS = Path(__file__).resolve().parent / "results"
ARMS = ("off", "on")
TASK_TIMEOUT_S = 600


def read_rows(jsonl: Path) -> dict[tuple[str, str], dict]:
    """The last line of each (arm, case); a line cut off by a crash is skipped (that case runs again)."""
    return last_rows(jsonl, "arm", "case")


def run_case(case, arm: str, owner: str, service, runner) -> dict:
    from workbench.errors import WorkbenchError
    from workbench.evals import checkers
    from workbench.evals.answers import from_agent_result
    from workbench.tasks.records import NewTask

    began = time.perf_counter()
    new = NewTask(prompt=case.input, title=f"families {arm}: {case.id}", memory=arm == "on")
    task_id = runner.create(new.owned_by(owner) if arm == "on" else new)["id"]
    try:
        task = runner.wait(task_id, timeout=TASK_TIMEOUT_S)
    except WorkbenchError:
        try:
            runner.cancel(task_id)
        except WorkbenchError:
            pass
        task = service.get(task_id)
    seconds = time.perf_counter() - began
    result = task.get("result") or {}
    verdict = checkers.check(case, from_agent_result(result)) if task["status"] == "completed" else None
    memory = [e["payload"] for e in service.events(task_id) if e["kind"] == "memory"]
    return {"arm": arm, "case": case.id, "tags": case.tags, "status": task["status"],
            "passed": bool(verdict and verdict.passed), "why": (verdict.why if verdict else task.get("error")) or "",
            "tokens": result.get("tokens") or 0, "cost_usd": result.get("cost_usd") or 0.0,
            "seconds": round(seconds, 2), "task_id": task_id,
            "memory": [{k: m.get(k) for k in ("action", "kind", "similarity", "entry_id", "used", "setting", "chose")
                        if k in m} for m in memory]}


def family_of(tags: list[str]) -> str:
    return next((t.split(":", 1)[1] for t in tags if t.startswith("family:")), "control")


def summarize(rows: dict[tuple[str, str], dict]) -> tuple[list[dict], list[dict], dict]:
    """Over the cases both arms ran (a run cut short compares what it has: the on arm's cases so far)."""
    paired = {c for (a, c) in rows if a == "off"} & {c for (a, c) in rows if a == "on"}
    rows = {k: r for k, r in rows.items() if k[1] in paired}
    arms = []
    for arm in ARMS:
        mine = [r for (a, _), r in rows.items() if a == arm]
        later = [r for r in mine if r["case"].endswith(("-b", "-c"))]
        controls = [r for r in mine if "control" in r["tags"]]
        arms.append({"arm": arm, "cases": len(mine), "passed": sum(r["passed"] for r in mine),
                     "pass_rate": round(sum(r["passed"] for r in mine) / len(mine), 3) if mine else None,
                     "later_variations_passed": sum(r["passed"] for r in later), "later_variations": len(later),
                     "controls_passed": sum(r["passed"] for r in controls), "controls": len(controls),
                     "mean_tokens": round(statistics.fmean(r["tokens"] for r in mine)) if mine else None,
                     "median_s": round(statistics.median(r["seconds"] for r in mine), 1) if mine else None,
                     "retrievals": sum(any(m.get("action") == "retrieve" for m in r["memory"]) for r in mine)})
    families = []
    for family in sorted({family_of(r["tags"]) for r in rows.values()}):
        line = {"family": family}
        for arm in ARMS:
            mine = [r for (a, _), r in rows.items() if a == arm and family_of(r["tags"]) == family]
            line[f"{arm}_passed"] = f"{sum(r['passed'] for r in mine)}/{len(mine)}"
            line[f"{arm}_tokens"] = round(statistics.fmean(r["tokens"] for r in mine)) if mine else None
        families.append(line)
    off, on = arms
    goals = {}
    if off["cases"] and on["cases"] == off["cases"]:
        goals = {"points_more_passes": round(100 * ((on["pass_rate"] or 0) - (off["pass_rate"] or 0)), 1),
                 "tokens_change_pct": round(100 * (on["mean_tokens"] - off["mean_tokens"]) / off["mean_tokens"], 1)
                 if off["mean_tokens"] else None,
                 "controls_off_on": f"{off['controls_passed']}/{off['controls']} -> {on['controls_passed']}/{on['controls']}",
                 "goal": ">= 10 points more passes, >= 30 % fewer tokens, no loss on the controls"}
    return arms, families, goals


def report(jsonl: Path, extra: dict | None = None) -> None:
    rows = read_rows(jsonl)
    arms, families, goals = summarize(rows)
    if arms and arms[0]["cases"]:
        print(table(arms, list(arms[0])))
    if families:
        print(table(families, list(families[0])))
    print(json.dumps(goals, indent=1))
    save(jsonl.stem, arms, families=families, goals=goals, code_version=code_version(), **(extra or {}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the set's first N cases (both arms)")
    parser.add_argument("--resume", action="store_true", help="skip (arm, case) pairs already in the jsonl")
    parser.add_argument("--report", action="store_true", help="only print and save the report")
    parser.add_argument("--name", default="memory_families")
    args = parser.parse_args()
    jsonl = RESULTS / f"{args.name}.jsonl"
    if args.report:
        report(jsonl)
        return
    if jsonl.exists() and not args.resume:
        raise SystemExit(f"{jsonl} exists: --resume to continue it, or --name for a new run")

    from workbench.evals import loaders

    cases = loaders.load(str(SET))[: args.limit]
    done = read_rows(jsonl)
    homes = {r.get("home") for (a, _), r in done.items() if a == "on"} - {None}
    home = next((Path(h) for h in homes if Path(h).exists()), None) or Path(tempfile.mkdtemp(prefix="wb-bench-fam-"))
    home.chmod(0o755)
    owner = next((r["owner"] for (a, _), r in done.items() if a == "on" and r.get("home") == str(home)),
                 f"families-{int(time.time())}")
    os.environ["WORKBENCH_HOME"] = str(home)  # workers inherit WORKBENCH_* and open this store themselves
    os.environ["WORKBENCH_STRATEGY"] = "false"  # both arms the same loop settings: only memory differs

    from workbench.config import get_settings, reload_settings

    reload_settings()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    try:
        with agents_stack(home) as stack:
            # Case by case, both arms: a run cut short still compares the same cases (the on arm's memory
            # holds only what its own earlier cases verified either way).
            todo = [(arm, c) for c in cases for arm in ARMS if (arm, c.id) not in done]
            print(f"{len(todo)} task(s) on {get_settings().model}, home {home}, owner {owner}", flush=True)
            for i, (arm, case) in enumerate(todo, 1):
                row = run_case(case, arm, owner, stack.service, stack.runner)
                row.update(model=get_settings().model, home=str(home), owner=owner,
                           at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
                append_row(jsonl, row)
                print(f"[{i}/{len(todo)}] {arm:3} {case.id:20} {'PASS' if row['passed'] else 'fail'} "
                      f"{row['seconds']:6.1f} s {row['tokens']:6} tokens, {len(row['memory'])} memory event(s)",
                      flush=True)
    except BaseException:
        print(f"interrupted: rows so far in {jsonl}, the store (the on arm's memory) in {home}; rerun with "
              f"--resume", file=sys.stderr)
        raise
    report(jsonl, {"load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                   "session_s": round(time.perf_counter() - began, 1)})


if __name__ == "__main__":
    main()
