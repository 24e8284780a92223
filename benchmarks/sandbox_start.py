"""Sandbox start-to-exit versus the same command run bare, interleaved in the same run.

Rows:
  python -c pass      the interpreter alone (goal: sandbox overhead <= 30 ms at the median), with the
                      warm sandbox the executor keeps between runs; "(cold start)" starts one per run
  <lang> program      a hello-world program per language (python, typescript via tsx, java via javac+java),
                      with no CPU share limit, like the bare run: what isolation costs
  <lang> program (1-CPU share)
                      the same with the default limits' CPU share (`WORKBENCH_SANDBOX_CPUS`, 1.0): Node and
                      the JVM start several threads, so a 1-CPU cgroup slows their start on a multi-core host
  <lang> test suite   run_tests end to end with the default limits (format, scan, runner, JUnit XML,
                      coverage) — sandbox only
Overhead = sandbox median - bare median. Results: benchmarks/results/sandbox_start.json.
Usage: python benchmarks/sandbox_start.py [--reps 40] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import save, table

from workbench.sandbox import Limits
from workbench.sandbox.bwrap import BwrapExecutor
from workbench.sandbox.runtimes import get_runtime, run_tests

PROGRAMS = {
    "python": ("main.py", "print('hi')\n"),
    "typescript": ("main.ts", "const greeting: string = 'hi';\nconsole.log(greeting);\n"),
    "java": ("Main.java", "public class Main { public static void main(String[] a) { System.out.println(\"hi\"); } }\n"),
}
SUITES = {
    "python": {"fib.py": "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
               "test_fib.py": "from fib import fib\n\n\ndef test_fib():\n    assert fib(10) == 55\n"},
    "typescript": {"sum.ts": "export function add(a: number, b: number): number {\n  return a + b;\n}\n",
                   "sum.test.ts": 'import { test } from "node:test";\nimport assert from "node:assert/strict";\n'
                                  'import { add } from "./sum";\ntest("adds", () => assert.equal(add(1, 2), 3));\n'},
    "java": {"Calc.java": "public class Calc { public static int add(int a, int b) { return a + b; } }\n",
             "CalcTest.java": "import org.junit.jupiter.api.Test;\nimport static org.junit.jupiter.api.Assertions.*;\n"
                              "class CalcTest { @Test void adds() { assertEquals(3, Calc.add(1, 2)); } }\n"},
}


def stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(name: str, bare, sandboxed, reps: int, warmup: int = 2, settle=lambda: None) -> dict:
    """Interleaved, so load from other processes hits both alike. `settle` waits for the warm
    sandbox's background start, so that it does not overlap (and slow) the next bare run."""
    for _ in range(warmup):
        bare()
        sandboxed()
        settle()
    b, s = [], []
    for _ in range(reps):
        b.append(timed(bare))
        s.append(timed(sandboxed))
        settle()
    (bm, bp), (sm, sp) = stats(b), stats(s)
    return {"case": name, "reps": reps, "bare_median_ms": bm, "bare_p95_ms": bp, "sandbox_median_ms": sm,
            "sandbox_p95_ms": sp, "overhead_median_ms": sm - bm, "overhead_p95_ms": sp - bp}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions for the slow languages")
    args = parser.parse_args()
    ex = BwrapExecutor()
    ok, why = ex.available()
    if not ok:
        sys.exit(f"bubblewrap unusable here: {why}")
    tools = ex.tools()
    uncapped = Limits(timeout_s=120, memory_mb=1024, cpus=None)  # the bare runs are not CPU-capped either
    capped = Limits(timeout_s=120, memory_mb=1024)  # the default CPU share
    rows = []
    interp = tools["python"]
    cold = BwrapExecutor(warm=False)
    rows.append(compare("python -c pass (cold start)", lambda: subprocess.run([interp, "-c", "pass"], check=True),
                        lambda: cold.run([interp, "-c", "pass"], limits=capped), args.reps))
    rows.append(compare("python -c pass", lambda: subprocess.run([interp, "-c", "pass"], check=True),
                        lambda: ex.run([interp, "-c", "pass"], limits=capped), args.reps, settle=ex.wait_warm))
    for language, (name, source) in PROGRAMS.items():
        runtime = get_runtime(language)
        files = {name: source.encode()}
        script = runtime.program(tools, name, files)
        env = runtime.env(uncapped)
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, name).write_text(source)
            reps = {"python": args.reps, "typescript": 10, "java": 6}[language]
            if args.quick:
                reps = min(reps, 5)

            def bare(script=script, tmp=tmp, env=env):
                subprocess.run(["/bin/sh", "-c", script], cwd=tmp, check=True, capture_output=True,
                               env={"PATH": "/usr/bin:/bin", "HOME": tmp, **env})

            def boxed(script=script, files=files, env=env, limits=uncapped):
                r = ex.run(["/bin/sh", "-c", script], files, limits=limits, env=env)
                assert r.ok and r.stdout == "hi\n", r

            rows.append(compare(f"{language} program", bare, boxed, reps, warmup=1, settle=ex.wait_warm))
            rows.append(compare(f"{language} program (1-CPU share)", bare,
                                lambda boxed=boxed: boxed(limits=capped), reps, warmup=1, settle=ex.wait_warm))
    for language, files in SUITES.items():
        samples = []
        for _ in range(2 if args.quick else 3):
            start = time.perf_counter()
            run = run_tests(language, files, executor=ex, limits=capped)
            samples.append(time.perf_counter() - start)
            assert run.ok, (language, run.report and run.report.as_dict())
        median, p95 = stats(samples)
        rows.append({"case": f"{language} test suite", "reps": len(samples), "sandbox_median_ms": median,
                     "sandbox_p95_ms": p95})
    columns = ["case", "reps", "bare_median_ms", "bare_p95_ms", "sandbox_median_ms", "sandbox_p95_ms",
               "overhead_median_ms", "overhead_p95_ms"]
    print(table(rows, columns))
    for head in rows[:2]:
        verdict = "meets" if head["overhead_median_ms"] <= 30 else "misses"
        print(f"{head['case']}: sandbox overhead {head['overhead_median_ms']:.1f} ms at the median "
              f"({verdict} the 30 ms goal), {head['overhead_p95_ms']:.1f} ms at p95")
    import os

    path = save("sandbox_start", rows, goal_overhead_ms=30, backend="bwrap", load_average=os.getloadavg(),
                toolchain=tools, notes="interleaved bare/sandbox; load from other processes on the host included")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
