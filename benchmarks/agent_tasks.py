"""The agents benchmark: real tasks through the Director and its specialists, end to end, judged strictly.

    .venv/bin/python benchmarks/agent_tasks.py [--model NAME] [--only 01,02] [--limit N] [--kinds code,data]
                                               [--resume] [--report] [--name NAME]
                                               [--experiment] [--export EXPERIMENT ...]

Each file in benchmarks/tasks/ defines PROMPT, KIND (general, code, data, multi) and `check`, a checker from
benchmarks/tasks/_checks.py with two verdicts (see its docstring):

- strict, the number reported as the pass rate: the task is `completed` AND its check passes. Code: the code
  the agents produced passes every held-out test in the task file, run here in the sandbox (never shown to
  the model). Data: the data specialist's result rows hold the value this script computes with its own SQL
  over the same analytics snapshot. General: the answer states every required fact. Multi: every part.
- lenient, the earlier rule (one own test passing, any non-null value, one key term), reported beside it
  and labelled, to compare with earlier runs.

Everything runs on the stack the server uses, in a throwaway WORKBENCH_HOME: the embedded Postgres, the
LocalCluster, the background DuckDB sync, and `TaskRunner` with the task's default body (agents). One task at
a time (general, code, data, multi; by file name within each): create, submit, wait for a final status; its
time is create -> final status, wall clock. A task that asks about the execution log runs on a frozen
snapshot: the sync publishes everything so far, then pauses until that task and its check are done, so the
data specialist and the benchmark's own SQL read the same rows (the log of the tasks run before it).

Each finished task is one JSON line in benchmarks/results/<name>.jsonl (default agent_tasks.jsonl), appended
as it finishes, with the model, the verdicts and the home it ran in. --resume skips the tasks already there
for the same model; on a fresh machine (the home gone) the remaining tasks run in a new home, and the data
tasks' expected values are computed over that home's log, so strictness holds either way. A task run again
is appended too; the report uses the last line of each (model, task). The report (also `--report` alone)
gives completion rate, strict pass rate, lenient pass rate, median and p95 seconds, mean tokens and cost,
pass rates per kind, against the goals (strict pass rate >= 95 %, median <= 20 s, p95 <= 60 s); saved to
<name>.json.

As an experiment (`--experiment`, default name agent_tasks-experiment): the tasks are the dataset
`agent-tasks` (benchmarks/tasks, every task, the strict checkers: `workbench.evals`) run with
benchmarks/experiments/agent-tasks.yaml through the experiment runner in the configured store (resumable:
run it again), the cases in parallel on the cluster's workers rather than one at a time, and the data cases
judged on the snapshot published when they are judged rather than a frozen one. The finished rows are then
exported to <name>.jsonl in the lines above: `passed` is the experiment's strict verdict, `lenient_passed` the
task file's lenient rule on the same task, `seconds` create -> final status of the case's task, plus
`experiment`. `--export NAME ...` exports experiments run another way (`workbench experiment run --dataset
agent-tasks --config benchmarks/experiments/agent-tasks.yaml`); a row already exported from the same
experiment is not written twice.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "tasks"))  # the task files' shared `_checks`
from _checks import AllOf, DataAnswer, Verdict  # noqa: E402

from benchmarks._common import RESULTS, agents_stack, append_row, last_rows, save, table  # noqa: E402

TASKS_DIR = Path(__file__).resolve().parent / "tasks"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# The goals: strictly passed (completed and checked) >= 95 %, median <= 20 s, p95 <= 60 s per task.
GOALS = {"strict_rate": 0.95, "median_s": 20.0, "p95_s": 60.0}
TASK_TIMEOUT_S = 900
KINDS = ("general", "code", "data", "multi")


def load_tasks(only: str | None = None, limit: int | None = None, kinds: str | None = None
               ) -> list[tuple[str, ModuleType]]:
    """The task modules in run order (by KIND, then file name); `only` keeps those whose number or name is
    listed, `kinds` those of the listed kinds."""
    wanted = {w.strip() for w in only.split(",") if w.strip()} if only else None
    wanted_kinds = {k.strip() for k in kinds.split(",") if k.strip()} if kinds else set(KINDS)
    unknown = wanted_kinds - set(KINDS)
    if unknown:
        raise SystemExit(f"--kinds: unknown {', '.join(sorted(unknown))}; choose from {', '.join(KINDS)}.")
    tasks = []
    for path in sorted(TASKS_DIR.glob("[0-9][0-9]_*.py")):
        name = path.stem
        if wanted is not None and name.split("_")[0] not in wanted and name not in wanted:
            continue
        module = load_task(path)
        if module.KIND in wanted_kinds:
            tasks.append((name, module))
    if wanted is not None and not tasks:
        raise SystemExit(f"--only {only} matches no file in {TASKS_DIR} (of the kinds asked for).")
    tasks.sort(key=lambda t: (KINDS.index(t[1].KIND), t[0]))
    return tasks[:limit] if limit else tasks


def load_task(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"agent_task_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for attr in ("PROMPT", "KIND", "check"):
        if not hasattr(module, attr):
            raise SystemExit(f"{path} defines no {attr}; every task file needs PROMPT, KIND and check.")
    if module.KIND not in KINDS:
        raise SystemExit(f"{path}: KIND {module.KIND!r} is not one of {', '.join(KINDS)}.")
    if not (hasattr(module.check, "strict") and hasattr(module.check, "lenient")):
        raise SystemExit(f"{path}: check must be a checker from _checks (Mentions, HeldOutTests, DataAnswer, AllOf).")
    return module


def reads_log(check) -> bool:
    """True when the check compares with the execution log (so the task runs on a frozen snapshot)."""
    if isinstance(check, AllOf):
        return any(reads_log(p) for p in check.parts)
    return isinstance(check, DataAnswer)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- the results file ---------------------------------------------------------------------------------


def read_rows(jsonl: Path) -> dict[tuple[str, str], dict]:
    """The last line of each (model, task); a line cut off by a crash is skipped (that task runs again)."""
    return last_rows(jsonl, "model", "task")


def append(jsonl: Path, row: dict) -> None:
    append_row(jsonl, row)


# --- judging ------------------------------------------------------------------------------------------


class Judge:
    """What a checker may use: the sandbox, and SQL over the analytics snapshot the data specialist read."""

    def __init__(self, executor, home: Path):
        self.executor, self.home = executor, home

    def run_tests(self, language: str, files: dict[str, str], tests: list[str]):
        from workbench.sandbox.runtimes import run_tests

        return run_tests(language, files, tests=tests, executor=self.executor, format=False)

    def query(self, sql: str) -> list[tuple]:
        from workbench.store import analytics

        con = analytics.connect(self.home)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def log_events(self) -> int | None:
        try:
            return self.query("SELECT count(*) FROM events")[0][0]
        except Exception:  # noqa: BLE001 - nothing published yet
            return None


def judged(module: ModuleType, task: dict, judge: Judge) -> tuple[Verdict, Verdict]:
    """(strict, lenient); a checker that raises fails its task, not the run."""
    out = []
    for how in ("strict", "lenient"):
        try:
            out.append(module.check.strict(task, judge) if how == "strict" else module.check.lenient(task))
        except Exception as exc:  # noqa: BLE001
            out.append(Verdict(False, f"{how} checker raised {type(exc).__name__}: {exc}"[:300]))
    return out[0], out[1]


def run_one(name: str, module: ModuleType, model: str | None, service, runner, judge: Judge) -> dict:
    from workbench.errors import WorkbenchError
    from workbench.tasks.service import NewTask

    began = time.perf_counter()
    task_id = service.create(NewTask(prompt=module.PROMPT, title=f"bench: {name}", model=model))["id"]
    runner.submit(task_id)
    timed_out = False
    try:
        task = runner.wait(task_id, timeout=TASK_TIMEOUT_S)
    except WorkbenchError:  # still running after the limit: cancel it so it does not slow the next ones
        timed_out = True
        try:
            runner.cancel(task_id)
        except WorkbenchError:
            pass  # it finished meanwhile
        task = service.get(task_id)
    seconds = time.perf_counter() - began
    strict, lenient = judged(module, task, judge)
    if timed_out:
        strict = Verdict(False, f"timed out after {TASK_TIMEOUT_S} s ({strict.why})", strict.detail)
    result = task.get("result") or {}
    subtasks = result.get("subtasks") or {}
    return {"task": name, "kind": module.KIND, "status": task["status"], "passed": bool(strict.passed),
            "why": str(strict.why), "lenient_passed": bool(lenient.passed), "lenient_why": str(lenient.why),
            "detail": strict.detail, "seconds": round(seconds, 2), "tokens": result.get("tokens"),
            "cost_usd": result.get("cost_usd"), "subtasks": len(subtasks),
            "specialists": "+".join(sorted({s.get("specialist", "?") for s in subtasks.values()})) or "-",
            "plan_source": (result.get("plan") or {}).get("source"), "task_id": task_id,
            "error": task.get("error"), "answer_head": (result.get("answer") or "")[:300]}


def publish_and_pause(sync, store, rounds: int = 2, timeout_s: float = 30.0):
    """Before a task that reads the log: let the background sync publish the rows of the tasks run so far,
    then stop it (one final round), so the snapshot stays as it is until the task has been judged."""
    store.flush()
    target, deadline = sync.rounds + rounds, time.monotonic() + timeout_s
    while sync.rounds < target and time.monotonic() < deadline:
        time.sleep(0.1)
    sync.stop(final_round=True)
    if sync.last_error:
        print(f"  (the DuckDB sync reports: {sync.last_error})", flush=True)


# --- the summary ----------------------------------------------------------------------------------------


def rate(rows: list[dict], key: str) -> float | None:
    return sum(bool(r.get(key)) for r in rows) / len(rows) if rows else None


def summarize(rows: list[dict]) -> tuple[list[dict], dict]:
    n = len(rows)
    seconds = [r["seconds"] for r in rows]
    completion = sum(r["status"] == "completed" for r in rows) / n
    median = statistics.median(seconds)
    p95, strict = pct(seconds, 0.95), rate(rows, "passed") or 0.0
    tokens = [r["tokens"] for r in rows if r.get("tokens") is not None]
    costs = [r["cost_usd"] for r in rows if r.get("cost_usd") is not None]
    out = [
        {"measure": "tasks", "value": n},
        {"measure": "completion rate (status completed)", "value": completion},
        {"measure": "STRICT pass rate (completed and check passed)", "value": strict,
         "goal": f">= {GOALS['strict_rate']}", "met": strict >= GOALS["strict_rate"]},
        {"measure": "lenient pass rate (earlier rule, for comparison)", "value": rate(rows, "lenient_passed")},
        {"measure": "median s per task", "value": median, "goal": f"<= {GOALS['median_s']:g}",
         "met": median <= GOALS["median_s"]},
        {"measure": "p95 s per task", "value": p95, "goal": f"<= {GOALS['p95_s']:g}", "met": p95 <= GOALS["p95_s"]},
        {"measure": "mean tokens per task", "value": statistics.mean(tokens) if tokens else None},
        {"measure": "mean cost_usd per task", "value": statistics.mean(costs) if costs else None},
    ]
    for kind in KINDS:
        of_kind = [r for r in rows if r["kind"] == kind]
        if of_kind:
            out.append({"measure": f"STRICT pass rate {kind} (n={len(of_kind)})", "value": rate(of_kind, "passed")})
            out.append({"measure": f"lenient pass rate {kind} (n={len(of_kind)})",
                        "value": rate(of_kind, "lenient_passed")})
            out.append({"measure": f"median s {kind} (n={len(of_kind)})",
                        "value": statistics.median(r["seconds"] for r in of_kind)})
    met = {"strict_rate": out[2]["met"], "median_s": out[4]["met"], "p95_s": out[5]["met"]}
    return out, met


def report(jsonl: Path, model: str | None = None, extra: dict | None = None) -> None:
    rows_by = read_rows(jsonl)
    models = sorted({m for m, _ in rows_by})
    if not rows_by:
        raise SystemExit(f"No results in {jsonl}: run the benchmark first.")
    if model is None and len(models) > 1:
        raise SystemExit(f"{jsonl} holds runs of {', '.join(models)}: name one with --model.")
    model = model or models[0]
    rows = sorted((r for (m, _), r in rows_by.items() if m == model), key=lambda r: (KINDS.index(r["kind"]), r["task"]))
    if not rows:
        raise SystemExit(f"No results for {model} in {jsonl}.")
    summary, met = summarize(rows)
    shown = [{**r, "why": r["why"][:60]} for r in rows]
    print(table(shown, ["task", "kind", "status", "passed", "lenient_passed", "seconds", "tokens", "specialists", "why"]))
    print()
    print(table(summary, ["measure", "value", "goal", "met"]))
    print(f"\ngoals met: {met}; model {model}; {len(rows)} task(s) from {jsonl.name}")
    path = save(jsonl.stem, [{k: v for k, v in r.items() if k != "detail"} for r in rows], summary=summary,
                goals=GOALS, goals_met=met, model=model, tasks=len(rows), task_timeout_s=TASK_TIMEOUT_S,
                source=str(jsonl.relative_to(RESULTS.parent.parent)), **(extra or {}),
                note="one task at a time; seconds = create -> final status (wall clock). passed = STRICT "
                     "(status completed and the check passed: all held-out tests, the value the benchmark's "
                     "own SQL computes on the same snapshot, every required fact); lenient_passed = the "
                     "earlier rule, for comparison only. See benchmarks/tasks/_checks.py.")
    print(f"saved {path}")


# --- as an experiment ------------------------------------------------------------------------------------


def _tasks_of(store, task_ids: list[str]) -> dict[str, dict]:
    from psycopg.rows import dict_row

    with store.pool.connection() as conn:
        rows = conn.cursor(row_factory=dict_row).execute(
            "SELECT id::text AS id, status, result, error, created_at, finished_at FROM tasks WHERE id = ANY(%s::uuid[])",
            ([t for t in task_ids if t],)).fetchall()
    return {r["id"]: r for r in rows}


def export_lines(store, experiment: dict, rows: list[dict]) -> list[dict]:
    """An experiment's finished rows as this benchmark's JSON lines."""
    modules = {path.stem: path for path in TASKS_DIR.glob("[0-9][0-9]_*.py")}
    tasks = _tasks_of(store, [r["task_id"] for r in rows])
    model = experiment["config"].get("model")
    if not model:
        from workbench.config import get_settings

        model = get_settings().model
    lines = []
    for r in rows:
        task = tasks.get(r["task_id"] or "", {})
        result = task.get("result") or {}
        subtasks = result.get("subtasks") or {}
        module = load_task(modules[r["case_id"]]) if r["case_id"] in modules else None
        lenient = module.check.lenient({**task, "result": result}) if module and task else Verdict(False, "no task")
        detail = dict(r["detail"] or {})
        seconds = (task["finished_at"] - task["created_at"]).total_seconds() if task.get("finished_at") else None
        lines.append({
            "task": r["case_id"], "kind": module.KIND if module else None, "status": task.get("status"),
            "passed": bool(r["passed"]), "why": str(detail.pop("why", r["error"] or "")),
            "lenient_passed": bool(lenient.passed), "lenient_why": str(lenient.why), "detail": detail,
            "seconds": round(seconds if seconds is not None else (r["duration_ms"] or 0) / 1000, 2),
            "tokens": result.get("tokens"), "cost_usd": result.get("cost_usd"), "subtasks": len(subtasks),
            "specialists": "+".join(sorted({s.get("specialist", "?") for s in subtasks.values()})) or "-",
            "plan_source": (result.get("plan") or {}).get("source"), "task_id": r["task_id"],
            "error": task.get("error") or r["error"], "answer_head": (result.get("answer") or "")[:300],
            "model": model, "at": r["finished_at"], "experiment": experiment["name"]})
    return lines


def export(store, jsonl: Path, experiments: list[tuple[dict, list[dict]]]) -> int:
    """Append the rows not yet exported from the same experiment; returns how many were written."""
    done = read_rows(jsonl)
    written = 0
    for experiment, rows in experiments:
        for line in export_lines(store, experiment, rows):
            if done.get((line["model"], line["task"]), {}).get("experiment") == line["experiment"]:
                continue
            append(jsonl, line)
            written += 1
    return written


def run_experiment(args, jsonl: Path) -> str:
    """The chosen tasks as the `agent-tasks` dataset (or a subset of it), run and exported; returns the model."""
    import hashlib

    from benchmarks import _experiments
    from workbench.evals import loaders
    from workbench.store import open_store

    chosen = {name for name, _ in load_tasks(args.only, args.limit, args.kinds)}
    cases = [c for c in loaders.load(str(TASKS_DIR)) if c.id in chosen]
    every = len(cases) == len(list(TASKS_DIR.glob("[0-9][0-9]_*.py")))
    dataset = "agent-tasks" if every else "agent-tasks-" + hashlib.sha256(",".join(c.id for c in cases).encode()).hexdigest()[:8]
    finished = _experiments.run(dataset, cases, str(TASKS_DIR.relative_to(RESULTS.parent.parent)),
                                _experiments.configs(["agent-tasks"], args.model))
    written = export(open_store(), jsonl, finished)
    print(f"exported {written} row(s) of {', '.join(e['name'] for e, _ in finished)} to {jsonl}")
    from workbench.config import get_settings

    return args.model or get_settings().model


# --- main -------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model for every task (default: the workbench default)")
    parser.add_argument("--only", default=None, help="comma-separated task numbers or names, e.g. 01,15")
    parser.add_argument("--kinds", default=None, help=f"comma-separated kinds: {','.join(KINDS)}")
    parser.add_argument("--limit", type=int, default=None, help="run only the first N (after --only, --kinds)")
    parser.add_argument("--resume", action="store_true", help="skip the tasks already in the jsonl for this model")
    parser.add_argument("--report", action="store_true", help="only print and save the report from the jsonl")
    parser.add_argument("--name", default=None,
                        help="results name: <name>.jsonl rows, <name>.json report (default agent_tasks, and "
                             "agent_tasks-experiment with --experiment or --export)")
    parser.add_argument("--experiment", action="store_true",
                        help="run the tasks as an experiment in the store, then export its rows to <name>.jsonl")
    parser.add_argument("--export", nargs="+", metavar="EXPERIMENT", default=None,
                        help="only export these experiments' finished rows to <name>.jsonl, then report")
    args = parser.parse_args()
    args.name = args.name or ("agent_tasks-experiment" if args.experiment or args.export else "agent_tasks")
    if not NAME.fullmatch(args.name):
        raise SystemExit(f"--name {args.name!r}: use letters, digits, '.', '_' or '-' (a file name in {RESULTS}).")
    jsonl = RESULTS / f"{args.name}.jsonl"
    if args.report:
        report(jsonl, args.model)
        return
    if args.export or args.experiment:
        from workbench.errors import WorkbenchError

        try:
            if args.experiment:
                model = run_experiment(args, jsonl)
            else:
                from benchmarks import _experiments
                from workbench.store import open_store

                runs = [_experiments.rows(ref) for ref in args.export]
                print(f"exported {export(open_store(), jsonl, runs)} row(s) to {jsonl}")
                model = args.model
        except WorkbenchError as exc:
            raise SystemExit(str(exc)) from None
        report(jsonl, model)
        return
    tasks = load_tasks(args.only, args.limit, args.kinds)

    # The benchmark runs on its own store and cluster, never on a configured external one.
    for key in ("WORKBENCH_POSTGRES_URL", "WORKBENCH_DASK_SCHEDULER"):
        os.environ.pop(key, None)
    from workbench.config import get_settings

    model = args.model or get_settings().model
    done = {t: r for (m, t), r in read_rows(jsonl).items() if m == model} if args.resume else {}
    todo = [(n, m) for n, m in tasks if n not in done]
    if not todo:
        print(f"every task asked for is in {jsonl.name} for {model}")
        report(jsonl, model)
        return
    homes = [Path(r["home"]) for r in sorted(done.values(), key=lambda r: r.get("at", "")) if r.get("home")]
    home = homes[-1] if homes and homes[-1].is_dir() else None
    if done:
        print(f"resuming: {len(done)} task(s) in {jsonl.name}, {len(todo)} to run, "
              + (f"home {home}" if home else "in a fresh home (the earlier one is not on this machine)"))
    if home is None:
        # Outside /tmp/pytest-of-root (a pytest session chmods that to 0700); the embedded Postgres runs as
        # another user and must be able to enter the directory.
        home = Path(tempfile.mkdtemp(prefix="wb-bench-agents-"))
        home.chmod(0o755)

    os.environ["WORKBENCH_HOME"] = str(home)  # workers inherit WORKBENCH_* and open this store themselves
    from workbench.config import reload_settings
    from workbench.errors import SandboxError
    from workbench.sandbox import get_executor
    from workbench.store.sync import BackgroundSync

    reload_settings()
    try:
        judge = Judge(get_executor(), home)
    except SandboxError as exc:
        raise SystemExit(f"the code checks need the sandbox: {exc}") from exc
    # SIGTERM (e.g. `timeout`) ends the run like Ctrl-C: the stack stops the cluster and Postgres.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    try:
        with agents_stack(home) as stack:
            print(f"store + cluster + sync started in {time.perf_counter() - began:.1f} s; {len(todo)} task(s) on "
                  f"{model}, home {home}", flush=True)
            for i, (name, module) in enumerate(todo, 1):
                frozen = reads_log(module.check)
                if frozen:
                    publish_and_pause(stack.sync, stack.store)
                try:
                    row = run_one(name, module, args.model, stack.service, stack.runner, judge)
                    if frozen:
                        row["log_events"] = judge.log_events()
                finally:
                    if frozen:
                        stack.sync = BackgroundSync(stack.sync.syncer, stack.sync.interval_s)
                row.update(model=model, home=str(home), at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
                append(jsonl, row)
                print(f"[{i}/{len(todo)}] {name}: {row['status']}, strict {'PASS' if row['passed'] else 'FAIL'} "
                      f"({row['why'][:90]}), lenient {'pass' if row['lenient_passed'] else 'fail'}, "
                      f"{row['seconds']:.1f} s, {row['tokens']} tokens", flush=True)
    except BaseException:
        print(f"interrupted: finished tasks are in {jsonl}, the store in {home}; rerun with --resume "
              f"(delete {home} when done with it)", file=sys.stderr)
        raise
    load = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    report(jsonl, model, extra={"load_average_1min_last_session": load,
                                "last_session_s": round(time.perf_counter() - began, 1),
                                "workers": get_settings().dask_workers, "llm_slots": get_settings().llm_slots})


if __name__ == "__main__":
    main()
