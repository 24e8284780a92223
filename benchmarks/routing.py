"""The routing benchmark: does the Director send each request to the right specialist, and how fast?

    .venv/bin/python benchmarks/routing.py [--models qwen-0.5b,qwen-1.5b] [--paths route,classify+plan]
                                           [--every K] [--merge]

benchmarks/routing/requests.jsonl holds labelled requests (route: general, code, data, or multi for a
request with parts for different specialists); the specialists' descriptions were worded against it.
benchmarks/routing/heldout.jsonl (--set heldout) holds 40 more that were never run while wording them.
Each request goes through each model on each path:

  route           one `workbench.agents.routing.route` call (the new first step: a single specialist
                  takes the request as is; `multi`, or a request worded in several parts, gets a plan)
  classify+plan   `workbench.tasks.understanding.classify` then the Director's `plan` (the old first
                  steps); the route is read off the plan: its one specialist, or multi when it uses two
                  or more. With --code PATH it measures the workbench of another checkout (the
                  code before routing existed); results still go to this checkout's results folder.

Reported per model and path: accuracy overall and per label, seconds per request (median, p90, mean,
wall clock, warm: one untimed call first), CPU seconds per request of this process and its model hosts
(the figure to trust on a shared machine: wall clock grows with the load, CPU time much less), the
1-minute load average, and the misrouted requests. With
--merge the rows are added to benchmarks/results/routing.json (replacing rows of the same model, path and
code revision) instead of replacing the file. --every K keeps every K-th request (a fixed subset).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._common import RESULTS, save, table

SETS = Path(__file__).resolve().parent / "routing"  # requests.jsonl (the labelled set), heldout.jsonl, ...
LABELS = ("general", "code", "data", "multi")


def load(path: Path, every: int) -> list[dict]:
    if not path.exists():
        raise SystemExit(f"No request set {path}: name one of {', '.join(p.stem for p in SETS.glob('*.jsonl'))}.")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    bad = [r for r in rows if r.get("route") not in LABELS]
    if bad:
        raise SystemExit(f"{path}: route must be one of {', '.join(LABELS)}; got {bad[0]!r}.")
    return rows[::every]


def code_revision() -> str:
    """The commit of the workbench package this run imported (PYTHONPATH may point at another checkout)."""
    import workbench

    where = Path(workbench.__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "-C", str(where), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        rev = "unknown"
    return f"{where.name}@{rev}"


def by_route(model, registry):
    from workbench.agents.director import DirectorSettings, offered
    from workbench.agents.routing import route

    names = offered(registry, DirectorSettings.from_dict(registry.director_config))
    def label(text: str) -> str:
        routed = route(text, registry=registry, names=names, model=model)
        if routed.source == "error":
            return f"error: {routed.error}"
        return routed.route if routed.single else "multi"  # not single: it gets a plan

    return label


def by_classify_and_plan(model, registry):
    from workbench.agents.director import plan
    from workbench.tasks.understanding import classify

    def label(text: str) -> str:
        classify(text, model)
        specialists = {s.specialist for s in plan(text, registry=registry, model=model).subtasks}
        return specialists.pop() if len(specialists) == 1 else "multi"

    return label


PATHS = {"route": by_route, "classify+plan": by_classify_and_plan}


def cpu_seconds() -> float:
    """CPU time of this process and its children (the local model runs in a model host process)."""
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            pass
    return total


def run(model_name: str, path: str, requests: list[dict]) -> tuple[dict, list[dict]]:
    import workbench
    from workbench.agents.registry import Registry

    model = workbench.get_model(model_name)
    model.complete([{"role": "user", "content": "hi"}], max_tokens=1)  # load the weights: not timed
    label = PATHS[path](model, Registry.from_config())
    detail = []
    for i, req in enumerate(requests, 1):
        began, cpu0 = time.perf_counter(), cpu_seconds()
        try:
            got = label(req["request"])
        except Exception as exc:  # noqa: BLE001 - a crash is a miss, reported with its reason
            got = f"error: {type(exc).__name__}: {str(exc)[:100]}"
        seconds, cpu = time.perf_counter() - began, cpu_seconds() - cpu0
        detail.append({"model": model_name, "path": path, "request": req["request"], "want": req["route"],
                       "got": got, "ok": got == req["route"], "seconds": round(seconds, 3), "cpu_s": round(cpu, 3)})
        print(f"  [{i}/{len(requests)}] {seconds:5.1f} s {cpu:5.1f} cpu-s  {'ok  ' if got == req['route'] else 'MISS'} "
              f"{req['route']:>7} -> {got:<7} {req['request'][:70]}", flush=True)
    secs = sorted(d["seconds"] for d in detail)
    row = {"model": model_name, "path": path, "n": len(detail),
           "accuracy": round(sum(d["ok"] for d in detail) / len(detail), 3),
           **{f"acc_{lab}": _acc(detail, lab) for lab in LABELS},
           "median_s": round(statistics.median(secs), 2), "p90_s": round(secs[int(0.9 * (len(secs) - 1))], 2),
           "mean_s": round(statistics.fmean(secs), 2),
           "median_cpu_s": round(statistics.median(d["cpu_s"] for d in detail), 2),
           "load_1min": round(os.getloadavg()[0], 1),
           "misses": [f"{d['want']}->{d['got']}: {d['request'][:60]}" for d in detail if not d["ok"]]}
    return row, detail


def _acc(detail: list[dict], label: str) -> float | None:
    mine = [d for d in detail if d["want"] == label]
    return round(sum(d["ok"] for d in mine) / len(mine), 3) if mine else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="local:qwen2.5-coder-0.5b,local:qwen2.5-coder-1.5b")
    parser.add_argument("--paths", default="route", help=f"comma-separated: {', '.join(PATHS)}")
    parser.add_argument("--every", type=int, default=1, help="keep every K-th request (a fixed subset)")
    parser.add_argument("--set", default="requests", help="benchmarks/routing/SET.jsonl: requests (the set the "
                        "descriptions were written against) or heldout (never used to tune them); results go to "
                        "routing.json or routing-SET.json")
    parser.add_argument("--merge", action="store_true", help="add to routing.json instead of replacing it")
    parser.add_argument("--code", help="import workbench from this checkout instead (e.g. one without routing)")
    args = parser.parse_args()
    if args.code:
        if "workbench" in sys.modules:
            raise SystemExit("--code must be applied before workbench is imported.")
        sys.path.insert(0, str(Path(args.code).resolve()))
    source = SETS / f"{args.set}.jsonl"
    requests = load(source, args.every)
    name = "routing" if args.set == "requests" else f"routing-{args.set}"
    revision = code_revision()
    rows, details = [], []
    for model in [m.strip() for m in args.models.split(",") if m.strip()]:
        for path in [p.strip() for p in args.paths.split(",") if p.strip()]:
            if path not in PATHS:
                raise SystemExit(f"--paths: {path!r} is not one of {', '.join(PATHS)}.")
            print(f"{model} · {path} · {len(requests)} requests · {revision}", flush=True)
            row, detail = run(model, path, requests)
            rows.append({**row, "code": revision, "every": args.every})
            details += [{**d, "code": revision} for d in detail]
    if args.merge and (RESULTS / f"{name}.json").exists():
        old = json.loads((RESULTS / f"{name}.json").read_text())
        mine = {(r["model"], r["path"], r["code"]) for r in rows}
        rows = [r for r in old["rows"] if (r["model"], r["path"], r["code"]) not in mine] + rows
        details = [d for d in old.get("requests", []) if (d["model"], d["path"], d["code"]) not in mine] + details
    columns = ["model", "path", "code", "n", "accuracy", *[f"acc_{lab}" for lab in LABELS], "median_s", "p90_s",
               "mean_s", "median_cpu_s", "load_1min"]
    print(table(rows, columns))
    for r in rows:
        if r["misses"]:
            print(f"\n{r['model']} · {r['path']} · {r['code']} misses:\n  " + "\n  ".join(r["misses"]))
    print(f"\nwrote {save(name, rows, requests=details, labels=str(source.relative_to(RESULTS.parent.parent)))}")


if __name__ == "__main__":
    main()
