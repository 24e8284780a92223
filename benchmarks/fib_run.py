"""One request end to end, as a user types it: `workbench run "Write a Python function fibonacci(n) with unit tests"`.

    .venv/bin/python benchmarks/fib_run.py [--runs 3] [--prompt "..."]

Two ways a user runs it, each timed from the command's start to its exit (wall clock):
  served    a `workbench serve` is running (started here, in a throwaway home, on a free port); the first run
            after it starts pays for loading the model and for the prompt prefixes it has not seen yet, the
            later ones are what a user with the workbench open gets
  alone     no server: the CLI starts the store and a LocalCluster for the run, and stops them after (a new
            home each time, so nothing is warm but the operating system's file cache)
Baseline in the same run: the first served run (cold) against the later ones. Each row also has the task's own
time (created -> finished, from the task row), its status and the code subtask's tokens.
--memory on (the default a user gets) lets a repeat of the request come from memory: that measures the
memory, not the agents, so the agents' time is measured with --memory off (the default here).
Results: benchmarks/results/fib_run.json (memory off), fib_run-memory.json (memory on).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._common import save, table

REPO = Path(__file__).resolve().parent.parent
WORKBENCH = [sys.executable, "-m", "workbench"]
PROMPT = "Write a Python function fibonacci(n) with unit tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_once(prompt: str, env: dict[str, str], mode: str, number: int) -> dict:
    start = time.perf_counter()
    proc = subprocess.run([*WORKBENCH, "run", prompt, "--json"], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=900)
    seconds = time.perf_counter() - start
    if proc.returncode != 0 and not proc.stdout.strip():
        return {"mode": mode, "run": number, "seconds": round(seconds, 2), "status": "error",
                "error": proc.stderr.strip().splitlines()[-1:] or ["(no output)"]}
    task = json.loads(proc.stdout)
    subtasks = list(((task.get("result") or {}).get("subtasks") or {}).values())
    created, finished = task.get("created_at"), task.get("finished_at")
    task_s = (datetime.fromisoformat(finished) - datetime.fromisoformat(created)).total_seconds() \
        if created and finished else None
    return {"mode": mode, "run": number, "seconds": round(seconds, 2),
            "task_s": round(task_s, 2) if task_s is not None else None, "status": task["status"],
            "specialists": ",".join(s.get("specialist", "?") for s in subtasks),
            "tokens": sum((s.get("tokens_in") or 0) + (s.get("tokens_out") or 0) for s in subtasks),
            "verdict": (subtasks[0].get("output") or "").split("\n", 1)[0][:80] if subtasks else ""}


def served(prompt: str, runs: int, base: dict[str, str]) -> list[dict]:
    home = Path(tempfile.mkdtemp(prefix="wb-fib-served-"))
    port = free_port()
    env = {**base, "WORKBENCH_HOME": str(home), "WORKBENCH_PORT": str(port)}
    server = subprocess.Popen([*WORKBENCH, "serve"], env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        import httpx

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise SystemExit("workbench serve did not answer /health within 180 s")
        return [run_once(prompt, env, "served", n) for n in range(1, runs + 1)]
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(home, ignore_errors=True)


def alone(prompt: str, runs: int, base: dict[str, str]) -> list[dict]:
    rows = []
    for n in range(1, runs + 1):
        home = Path(tempfile.mkdtemp(prefix="wb-fib-alone-"))
        env = {**base, "WORKBENCH_HOME": str(home), "WORKBENCH_PORT": str(free_port())}  # no server there
        try:
            rows.append(run_once(prompt, env, "alone", n))
        finally:
            shutil.rmtree(home, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per mode (default 3)")
    parser.add_argument("--prompt", default=PROMPT)
    parser.add_argument("--memory", choices=("on", "off"), default="off",
                        help="WORKBENCH_MEMORY for the runs (default off: a repeat from memory times no agent)")
    args = parser.parse_args()
    if args.runs < 1:
        raise SystemExit("--runs must be at least 1.")
    base = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_") or k == "WORKBENCH_MODELS_DIR"}
    base["WORKBENCH_MEMORY"] = args.memory
    rows = served(args.prompt, args.runs, base) + alone(args.prompt, args.runs, base)
    print(table(rows, ["mode", "run", "seconds", "task_s", "status", "specialists", "tokens", "verdict"]))
    warm = [r["seconds"] for r in rows if r["mode"] == "served" and r["run"] > 1 and r["status"] == "completed"]
    summary = {"served_cold_s": rows[0]["seconds"], "served_warm_median_s": statistics.median(warm) if warm else None,
               "alone_median_s": statistics.median(r["seconds"] for r in rows if r["mode"] == "alone"),
               "goal_s": 15.0}
    print(summary)
    name = "fib_run" if args.memory == "off" else "fib_run-memory"
    print(f"saved {save(name, rows, prompt=args.prompt, memory=args.memory, summary=summary)}")


if __name__ == "__main__":
    main()
