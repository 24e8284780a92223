"""Where the served /v1/chat/completions spends its time: py-spy samples every thread of the server (served
as `workbench serve` serves it, or the router alone) while 50 clients post to it, with the instant mock
upstream of gateway_overhead.py behind it; the samples are summed per function (self and inclusive).

    pip install --target /tmp/pyspy py-spy      # a profiler, not a dependency of the workbench
    python benchmarks/gateway_profile.py [--variant app|router] [--seconds 12] [--rate 200]

Wall-clock samples, idle threads included: a thread waiting on a lock or on Postgres counts where it waits,
which is the point under concurrency. Sampling slows the server (py-spy pauses it to read its stacks), so
the throughput printed here is not the benchmark's; gateway_overhead.py measures that.
Results: benchmarks/results/gateway_profile-<variant>.json (the top functions).
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import gateway_overhead as g  # noqa: E402
from _common import save, table  # noqa: E402

PY_SPY = Path(os.environ.get("PY_SPY", "/tmp/pyspy/bin/py-spy"))


def summarise(raw: Path, top: int) -> tuple[int, list[dict]]:
    """py-spy's collapsed stacks -> (samples, the `top` functions by inclusive share, with their self share)."""
    own, within, total = collections.Counter(), collections.Counter(), 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n, frames = int(count), stack.split(";")
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            within[frame] += n
    rows = [{"function": f[:140], "inclusive_pct": round(100 * n / total, 1), "self_pct": round(100 * own[f] / total, 1)}
            for f, n in within.most_common(top)]
    return total, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", choices=("app", "router"), default="app")
    ap.add_argument("--seconds", type=int, default=12)
    ap.add_argument("--rate", type=int, default=200, help="samples a second")
    ap.add_argument("--top", type=int, default=60)
    args = ap.parse_args()
    if not PY_SPY.exists():
        sys.exit(f"py-spy not found at {PY_SPY}: pip install --target /tmp/pyspy py-spy (or set PY_SPY).")
    tmp = Path(tempfile.mkdtemp(prefix="gw-profile-"))
    env = {**os.environ, "WORKBENCH_HOME": str(tmp / "home"), "OPENAI_API_KEY": "sk-bench",
           "WORKBENCH_MODEL": "test:echo", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    mock_port, app_port = g.free_port(), g.free_port()
    mock = f"http://127.0.0.1:{mock_port}/v1"
    env["WORKBENCH_OPENAI_BASE_URL"] = mock
    me = [sys.executable, str(Path(g.__file__).resolve())]
    procs = [g.start([*me, "_mock", str(mock_port)], f"{mock}/chat/completions", env, g.body("bench", 0))]
    url = f"http://127.0.0.1:{app_port}/v1/chat/completions"
    try:
        procs.append(g.start([*me, "_gateway", str(app_port), args.variant], url, env, g.body("openai:bench", 0)))
        g._run_async(g._throughput(url, "openai:bench", 300, 50))  # warm-up
        raw = tmp / "stacks.txt"
        spy = subprocess.Popen([str(PY_SPY), "record", "-p", str(procs[1].pid), "-d", str(args.seconds), "-r",
                                str(args.rate), "--format", "raw", "-o", str(raw)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + args.seconds
        served = 0
        while time.monotonic() < deadline:
            rps, _ = g._run_async(g._throughput(url, "openai:bench", 200, 50))
            served += 200
        spy.wait(60)
    finally:
        for p in procs:
            p.terminate()
    samples, rows = summarise(raw, args.top)
    print(table(rows[:40], ["function", "inclusive_pct", "self_pct"]))
    print(save(f"gateway_profile-{args.variant}", rows, samples=samples, requests_while_sampled=served,
               rate_hz=args.rate, seconds=args.seconds, load_average=os.getloadavg()))


if __name__ == "__main__":
    main()
