"""Local model speed through workbench vs raw llama_cpp.Llama, same prompt, same run, interleaved.

For each model: load time, prompt tok/s, generation tok/s and peak RSS, each measured in a fresh
process (median of REPS). Ratio = workbench / raw (for load time and RSS: raw / workbench), goal >= 0.95.

With --native-wheel W (a llama-cpp-python wheel built by pip's defaults, i.e. -march=native), a second
table compares setup's portable build (the venv's) with that native build, both raw, same model and
prompt, interleaved: generation tok/s ratio portable/native, goal >= 0.95.
Usage: python benchmarks/local_model.py [--models qwen2.5-coder-0.5b,...] [--reps 3] [--tokens 200]
       [--native-wheel PATH.whl]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save, table  # noqa: E402

N_CTX, THREADS = 2048, 2
PROMPT = ("You are reviewing a pull request. " * 2 + "Here is the context of the project: a small data pipeline "
          "that reads CSV files, validates rows, aggregates totals per customer and writes a report. ") * 6


def measure(variant: str, model: str, rep: int, tokens: int) -> dict:
    """Runs in a fresh process: load, then one streamed generation; prints one JSON line."""
    import resource
    import time

    messages = [{"role": "user", "content": f"Run {rep}. {PROMPT}\nNow write a long, detailed story about a lighthouse keeper."}]
    t0 = time.perf_counter()
    if variant == "raw":
        from llama_cpp import Llama

        from workbench import weights

        path = weights.weights_path(model)  # same file; raw skips workbench's stamp check
        llm = Llama(model_path=str(path), n_ctx=N_CTX, n_threads=THREADS, n_batch=512, verbose=False)
        load = time.perf_counter() - t0
        prompt_tokens = len(llm.tokenize(messages[0]["content"].encode(), add_bos=False))
        start = time.perf_counter()
        it = (c["choices"][0]["delta"].get("content") or "" for c in
              llm.create_chat_completion(messages=messages, max_tokens=tokens, temperature=0, stream=True))
    else:
        import os

        os.environ.update(WORKBENCH_N_CTX=str(N_CTX), WORKBENCH_N_THREADS=str(THREADS))
        import workbench

        m = workbench.get_model(f"local:{model}")
        m.host()  # start the model host: verifies the stamp, loads the weights
        load = time.perf_counter() - t0
        prompt_tokens = m.count_tokens(messages[0]["content"])
        start = time.perf_counter()
        it = iter(m.stream(messages, max_tokens=tokens, temperature=0))
    first = last = None
    n = 0
    for delta in it:
        now = time.perf_counter()
        if delta:
            first = first or now
            last = now
            n += 1
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    llama_file = sys.modules["llama_cpp"].__file__ if "llama_cpp" in sys.modules else ""
    return {"llama_cpp": llama_file, "load_s": load, "prompt_tok_s": prompt_tokens / (first - start),
            "gen_tok_s": (n - 1) / (last - first) if n > 1 else 0.0, "tokens": n, "peak_rss_mb": rss_mb}


def run_once(variant: str, model: str, rep: int, tokens: int, native_site: str | None = None) -> dict:
    """`native` is the raw variant with the native build's llama_cpp first on the path."""
    import os

    env = dict(os.environ)
    if variant == "native":
        env["PYTHONPATH"] = native_site
    out = subprocess.run([sys.executable, __file__, "--child", "raw" if variant == "native" else variant, model,
                          str(rep), str(tokens)], capture_output=True, text=True, check=True, env=env)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if variant in ("raw", "native"):
        expected = native_site if variant == "native" else sys.prefix
        assert result["llama_cpp"].startswith(expected), f"{variant} loaded {result['llama_cpp']}"
    return result


def compare(a: str, b: str, model: str, reps: int, tokens: int, native_site: str | None = None) -> dict:
    """Medians of `reps` fresh processes per variant, the order alternating per rep."""
    runs: dict[str, list[dict]] = {a: [], b: []}
    for rep in range(reps):
        for variant in (a, b) if rep % 2 == 0 else (b, a):
            runs[variant].append(run_once(variant, model, rep, tokens, native_site))
    keys = ("load_s", "prompt_tok_s", "gen_tok_s", "tokens", "peak_rss_mb")
    return {v: {k: statistics.median(r[k] for r in rs) for k in keys} for v, rs in runs.items()}


def unpack_wheel(wheel: str) -> str:
    import tempfile

    target = tempfile.mkdtemp(prefix="native-llama-")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", target,
                    wheel], check=True)
    return target


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="smollm2-135m,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--child", nargs=4)
    ap.add_argument("--native-wheel", help="a llama-cpp-python wheel built natively, for the build table")
    ap.add_argument("--skip-workbench", action="store_true", help="only the build table")
    args = ap.parse_args()
    if args.child:
        variant, model, rep, tokens = args.child
        print(json.dumps(measure(variant, model, int(rep), int(tokens))))
        return
    from workbench import weights

    rows, build_rows = [], []
    native_site = unpack_wheel(args.native_wheel) if args.native_wheel else None
    for model in args.models.split(","):
        weights.verified_path(model)
        if not args.skip_workbench:
            med = compare("raw", "workbench", model, args.reps, args.tokens)
            raw, wb = med["raw"], med["workbench"]
            row = {"model": model}
            for key in ("load_s", "prompt_tok_s", "gen_tok_s", "peak_rss_mb"):
                row[f"raw_{key}"], row[f"wb_{key}"] = raw[key], wb[key]
            row["ratio_load"] = raw["load_s"] / wb["load_s"]
            row["ratio_prompt"] = wb["prompt_tok_s"] / raw["prompt_tok_s"]
            row["ratio_gen"] = wb["gen_tok_s"] / raw["gen_tok_s"]
            row["ratio_rss"] = raw["peak_rss_mb"] / wb["peak_rss_mb"]
            row["meets_0.95"] = min(row["ratio_prompt"], row["ratio_gen"]) >= 0.95
            rows.append(row)
        if native_site:
            med = compare("raw", "native", model, args.reps, args.tokens, native_site)
            portable, native = med["raw"], med["native"]
            build_rows.append({
                "model": model, "portable_prompt_tok_s": portable["prompt_tok_s"],
                "native_prompt_tok_s": native["prompt_tok_s"], "portable_gen_tok_s": portable["gen_tok_s"],
                "native_gen_tok_s": native["gen_tok_s"],
                "ratio_prompt": portable["prompt_tok_s"] / native["prompt_tok_s"],
                "ratio_gen": portable["gen_tok_s"] / native["gen_tok_s"],
                "meets_0.95": portable["gen_tok_s"] / native["gen_tok_s"] >= 0.95,
            })
        print(f"{model}: done", file=sys.stderr)
    cols = ["model", "raw_load_s", "wb_load_s", "raw_prompt_tok_s", "wb_prompt_tok_s", "raw_gen_tok_s",
            "wb_gen_tok_s", "raw_peak_rss_mb", "wb_peak_rss_mb", "ratio_load", "ratio_prompt", "ratio_gen",
            "ratio_rss", "meets_0.95"]
    if rows:
        print(table(rows, cols))
    extra = {}
    if build_rows:
        from workbench import llama_build

        record = llama_build.installed_marker() or {}
        print(f"\nportable build ({record.get('variant')}) vs native build, raw llama_cpp:")
        print(table(build_rows, list(build_rows[0])))
        extra = {"build_rows": build_rows, "portable_build": record.get("key"),
                 "native_wheel": Path(args.native_wheel).name}
    name = "local_model" if rows else "local_model_build"
    path = save(name, rows or build_rows, n_ctx=N_CTX, threads=THREADS, reps=args.reps, tokens=args.tokens,
                note="ratio = workbench/raw throughput (raw/workbench for load time and RSS); medians of fresh "
                     "processes; build_rows: setup's portable llama.cpp vs pip's native build", **extra)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
