"""The native smoke test: one short generation per local model, in a child process.

A llama.cpp build that does not fit the CPU crashes the process (SIGSEGV, SIGILL) on the first decoded
token; run in a child, that crash becomes one clear line naming the signal, the CPU and the command that
rebuilds with safe flags, instead of a bare "Segmentation fault" from the user's own process. Setup runs it
after pulling the weights (`workbench models smoke`), and `workbench doctor` runs the same check.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from workbench import llama_build

# Loads the file, decodes a few tokens greedily, prints how many came back. Nothing else in the child.
_CHILD = """
import sys
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=256, n_threads=int(sys.argv[2]), verbose=False)
out = llm.create_completion("def add(a, b):", max_tokens=int(sys.argv[3]), temperature=0)
print(out["usage"]["completion_tokens"])
"""
REBUILD = "make llama-rebuild LLAMA_VARIANT=haswell"


@dataclass(frozen=True)
class SmokeResult:
    model: str
    ok: bool
    detail: str
    fix: str
    seconds: float


def cpu_summary(cpuinfo_text: str | None = None) -> str:
    """The CPU's model and the features the build choice reads, for error lines."""
    text = cpuinfo_text if cpuinfo_text is not None else _cpuinfo()
    flags = llama_build.cpu_flags(text)
    shown = [f for f in ("avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8")
             if f in flags]
    return f"{llama_build.cpu_model(text)}; features: {' '.join(shown) or 'none of avx2/avx512/amx'}"


def _cpuinfo() -> str:
    try:
        return llama_build.read_cpuinfo()
    except OSError:
        return ""


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


def run(model: str, path: Path, tokens: int = 4, threads: int = 2, timeout_s: float = 180) -> SmokeResult:
    """Generate `tokens` tokens from the weights at `path` in a fresh interpreter."""
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(threads), str(tokens)],
                              capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return SmokeResult(model, False, f"{model}: no answer in {timeout_s:.0f} s", "workbench doctor", timeout_s)
    seconds = time.perf_counter() - start
    if proc.returncode == 0 and proc.stdout.strip().isdigit() and int(proc.stdout.strip()) > 0:
        return SmokeResult(model, True, f"{model}: {proc.stdout.strip()} tokens in {seconds:.1f} s", "", seconds)
    how = describe_exit(proc.returncode)
    tail = (proc.stderr.strip().splitlines() or [""])[-1][:200]
    if proc.returncode < 0:
        detail = f"{model} crashed the model process with {how} in llama.cpp on this CPU ({cpu_summary()})"
        return SmokeResult(model, False, detail, f"rebuild llama.cpp with safe flags: {REBUILD}", seconds)
    detail = f"{model}: the model process ended with {how}" + (f": {tail}" if tail else "")
    return SmokeResult(model, False, detail, "workbench models pull --force " + model, seconds)


def run_installed(models: list[str]) -> list[SmokeResult]:
    """Smoke-test each named local model whose weights are verified; unverified ones fail with the pull command."""
    from workbench import weights

    out = []
    for name in models:
        ok, reason = weights.status(name)
        if not ok:
            out.append(SmokeResult(name, False, f"{name}: {reason}", f"workbench models pull {name}", 0.0))
            continue
        out.append(run(name, weights.weights_path(name)))
    return out
