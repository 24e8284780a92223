"""The agents benchmark: small real tasks through the Director and its specialists, end to end.

    .venv/bin/python benchmarks/agent_tasks.py [--model NAME] [--only 01,02] [--limit N] [--resume]

Each file in benchmarks/tasks/ (sorted; general, code, then data) defines PROMPT, KIND and
`check(task) -> (passed, why)`, which judges the finished task row by its structure and behaviour (a code
subtask that ran its tests in the sandbox, a data subtask whose SQL returned rows, an answer that names a
key term), never by exact wording. Everything runs on the stack the server uses, in a throwaway
WORKBENCH_HOME: the embedded Postgres, the LocalCluster (`workbench.cluster.get_client`), the background
DuckDB sync (the data specialist reads its published snapshot, so the data tasks query the execution log
of the tasks run before them), and `TaskRunner` with the task's default body (agents). One task at a time:
create, submit, wait for a final status; its time is create -> final status, wall clock.

Reported: per task (status, passed, seconds, tokens, cost, subtasks, specialists used) and a summary
(completion rate = share of tasks `completed`; pass rate = share whose checker passed; median and p95
seconds; mean tokens and cost per task; pass rate per kind), against the seed goals completion > 95 %
and median < 30 s. Results go to benchmarks/results/agent_tasks.json.

--resume: finished tasks are appended to benchmarks/results/agent_tasks.partial.jsonl as they finish (with
the WORKBENCH_HOME they ran in); after a crash, --resume skips them and reuses that home, so the data tasks
still see the earlier tasks' log. A run that ends normally deletes the home and the partial file.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "tasks"))  # the task files' shared `_checks`
from benchmarks._common import RESULTS, save, table

TASKS_DIR = Path(__file__).resolve().parent / "tasks"
PARTIAL = RESULTS / "agent_tasks.partial.jsonl"
GOALS = {"completion_rate": 0.95, "median_s": 30.0}  # the project's goals: completion > 95 %, median < 30 s
TASK_TIMEOUT_S = 900
KINDS = ("general", "code", "data")


def load_tasks(only: str | None, limit: int | None) -> list[tuple[str, ModuleType]]:
    """The task modules, sorted by file name; `only` keeps those whose number (or name) is listed."""
    wanted = {w.strip() for w in only.split(",") if w.strip()} if only else None
    tasks = []
    for path in sorted(TASKS_DIR.glob("[0-9][0-9]_*.py")):
        name = path.stem
        if wanted is not None and name.split("_")[0] not in wanted and name not in wanted:
            continue
        spec = importlib.util.spec_from_file_location(f"agent_task_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for attr in ("PROMPT", "KIND", "check"):
            if not hasattr(module, attr):
                raise SystemExit(f"{path} defines no {attr}; every task file needs PROMPT, KIND and check(task).")
        if module.KIND not in KINDS:
            raise SystemExit(f"{path}: KIND {module.KIND!r} is not one of {', '.join(KINDS)}.")
        tasks.append((name, module))
    if wanted is not None and not tasks:
        raise SystemExit(f"--only {only} matches no file in {TASKS_DIR}.")
    return tasks[:limit] if limit else tasks


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- the partial results file (--resume) ------------------------------------------------------------


def read_partial(model: str) -> tuple[Path | None, list[dict]]:
    """The home and finished rows of an interrupted run on the same model (refuses another model's)."""
    if not PARTIAL.exists():
        return None, []
    lines = []
    for line in PARTIAL.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # the line being written when the run was killed: that task runs again
    if not lines or "header" not in lines[0]:
        return None, []
    header = lines[0]["header"]
    if header["model"] != model:
        raise SystemExit(f"{PARTIAL} holds a run on {header['model']}, not {model}: rerun with --model "
                         f"{header['model']} --resume, or without --resume to start over.")
    return Path(header["home"]), lines[1:]


def start_partial(model: str, home: Path) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    PARTIAL.write_text(json.dumps({"header": {"model": model, "home": str(home)}}) + "\n")


def append_partial(row: dict) -> None:
    with PARTIAL.open("a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


# --- one task ---------------------------------------------------------------------------------------


def run_one(name: str, module: ModuleType, model: str | None, service, runner) -> dict:
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
    try:
        passed, why = module.check(task)
    except Exception as exc:  # noqa: BLE001 - a broken checker fails its task, not the run
        passed, why = False, f"checker raised {type(exc).__name__}: {exc}"
    if timed_out:
        passed, why = False, f"timed out after {TASK_TIMEOUT_S} s ({why})"
    result = task.get("result") or {}
    subtasks = result.get("subtasks") or {}
    return {"task": name, "kind": module.KIND, "status": task["status"], "passed": bool(passed), "why": str(why),
            "seconds": round(seconds, 2), "tokens": result.get("tokens"), "cost_usd": result.get("cost_usd"),
            "subtasks": len(subtasks),
            "specialists": "+".join(sorted({s.get("specialist", "?") for s in subtasks.values()})) or "-",
            "plan_source": (result.get("plan") or {}).get("source"), "task_id": task_id,
            "error": task.get("error"), "answer_head": (result.get("answer") or "")[:300]}


def wait_for_sync(sync, store, rounds: int = 2, timeout_s: float = 15.0) -> None:
    """Before a data task: let the background sync publish the rows of the tasks run so far."""
    store.flush()
    target, deadline = sync.rounds + rounds, time.monotonic() + timeout_s
    while sync.rounds < target and time.monotonic() < deadline:
        time.sleep(0.1)
    if sync.last_error:
        print(f"  (the DuckDB sync reports: {sync.last_error})", flush=True)


# --- the summary ------------------------------------------------------------------------------------


def summarize(rows: list[dict]) -> tuple[list[dict], dict]:
    n = len(rows)
    seconds = [r["seconds"] for r in rows]
    completion = sum(r["status"] == "completed" for r in rows) / n
    median = statistics.median(seconds)
    tokens = [r["tokens"] for r in rows if r["tokens"] is not None]
    costs = [r["cost_usd"] for r in rows if r["cost_usd"] is not None]
    out = [
        {"measure": "tasks", "value": n},
        {"measure": "completion rate (status completed)", "value": completion,
         "goal": f"> {GOALS['completion_rate']}", "met": completion > GOALS["completion_rate"]},
        {"measure": "pass rate (checker passed)", "value": sum(r["passed"] for r in rows) / n},
        {"measure": "median s per task", "value": median, "goal": f"< {GOALS['median_s']:g}",
         "met": median < GOALS["median_s"]},
        {"measure": "p95 s per task", "value": pct(seconds, 0.95)},
        {"measure": "mean tokens per task", "value": statistics.mean(tokens) if tokens else None},
        {"measure": "mean cost_usd per task", "value": statistics.mean(costs) if costs else None},
    ]
    for kind in KINDS:
        of_kind = [r for r in rows if r["kind"] == kind]
        if of_kind:
            out.append({"measure": f"pass rate {kind} (n={len(of_kind)})",
                        "value": sum(r["passed"] for r in of_kind) / len(of_kind)})
    met = {"completion_rate": out[1]["met"], "median_s": out[3]["met"]}
    return out, met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model for every task (default: the workbench default)")
    parser.add_argument("--only", default=None, help="comma-separated task numbers or names, e.g. 01,15")
    parser.add_argument("--limit", type=int, default=None, help="run only the first N (after --only)")
    parser.add_argument("--resume", action="store_true", help=f"skip the tasks already in {PARTIAL.name}")
    args = parser.parse_args()
    tasks = load_tasks(args.only, args.limit)

    # The benchmark runs on its own store and cluster, never on a configured external one.
    for key in ("WORKBENCH_POSTGRES_URL", "WORKBENCH_DASK_SCHEDULER"):
        os.environ.pop(key, None)
    from workbench.config import get_settings

    model = args.model or get_settings().model
    home, done = read_partial(model) if args.resume else (None, [])
    if home is not None and not home.is_dir():
        print(f"{home} (the interrupted run's home) is gone: the data tasks will see only this run's log.")
        home = None
    if home is None:  # a fresh run (or a resumed one whose home is gone): a new partial file names it
        # Outside /tmp/pytest-of-root (a pytest session chmods that to 0700); the embedded Postgres runs as
        # another user and must be able to enter the directory.
        home = Path(tempfile.mkdtemp(prefix="wb-bench-agents-"))
        home.chmod(0o755)
        start_partial(model, home)
        for row in done:
            append_partial(row)
    finished = {r["task"] for r in done}
    todo = [(n, m) for n, m in tasks if n not in finished]
    if finished:
        print(f"resuming: {len(finished)} task(s) already done in {PARTIAL}, {len(todo)} to run, home {home}")

    os.environ["WORKBENCH_HOME"] = str(home)  # workers inherit WORKBENCH_* and open this store themselves
    from workbench import cluster
    from workbench.config import reload_settings
    from workbench.store import close_store, open_store
    from workbench.store import postgres as embedded
    from workbench.store.sync import start_background_sync
    from workbench.tasks.runner import TaskRunner
    from workbench.tasks.service import TaskService

    reload_settings()
    # SIGTERM (e.g. `timeout`) ends the run like Ctrl-C: the finally below stops the cluster and Postgres and
    # keeps the partial file. open_store() chains its own handler (close the store) in front of this one.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    rows = [r for r in done if r["task"] in {n for n, _ in tasks}]
    sync = None
    completed_run = False
    try:
        store = open_store()
        service = TaskService(store)
        for stale in service.stale():  # left running by the crashed run this one resumes
            service.transition(stale["id"], "failed", reason="benchmark interrupted",
                               error="the benchmark run stopped while this task ran")
        client = cluster.get_client()
        client.wait_for_workers(get_settings().dask_workers, timeout=120)
        sync = start_background_sync(store)
        runner = TaskRunner(client, service)
        started = time.perf_counter() - began
        print(f"store + cluster + sync started in {started:.1f} s; {len(todo)} task(s) on {model}, home {home}",
              flush=True)
        for i, (name, module) in enumerate(todo, 1):
            if module.KIND == "data":
                wait_for_sync(sync, store)
            row = run_one(name, module, args.model, service, runner)
            rows.append(row)
            append_partial(row)
            print(f"[{i}/{len(todo)}] {name}: {row['status']}, {'PASS' if row['passed'] else 'FAIL'} "
                  f"({row['why'][:100]}), {row['seconds']:.1f} s, {row['tokens']} tokens", flush=True)
        completed_run = True
    finally:
        cluster.close_client()  # workers first (they hold store connections), then the sync, then Postgres
        if sync is not None:
            sync.stop(final_round=False)
        close_store()
        embedded.stop(home / "postgres")
        if completed_run:
            shutil.rmtree(home, ignore_errors=True)
        else:
            print(f"interrupted: finished tasks are in {PARTIAL}, the store in {home}; rerun with --resume "
                  f"(delete {home} when done with it)", file=sys.stderr)

    if not rows:
        raise SystemExit("no task ran")
    rows.sort(key=lambda r: r["task"])
    summary, met = summarize(rows)
    shown = [{**r, "why": r["why"][:70]} for r in rows]
    print()
    print(table(shown, ["task", "kind", "status", "passed", "seconds", "tokens", "cost_usd", "subtasks",
                        "specialists", "why"]))
    print()
    print(table(summary, ["measure", "value", "goal", "met"]))
    load = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    whole = time.perf_counter() - began
    print(f"\nseed goals met: {met}; model {model}; 1-minute load average before/after {load}; "
          f"whole run {whole:.0f} s")
    path = save("agent_tasks", rows, summary=summary, goals=GOALS, goals_met=met, model=model,
                tasks=len(rows), resumed=sorted(finished), task_timeout_s=TASK_TIMEOUT_S,
                workers=get_settings().dask_workers, llm_slots=get_settings().llm_slots,
                load_average_1min=load, whole_run_s=round(whole, 1),
                note="one task at a time on a fresh store; seconds = create -> final status (wall clock); "
                     "see the module docstring and benchmarks/tasks/ for what each checker accepts")
    PARTIAL.unlink(missing_ok=True)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
