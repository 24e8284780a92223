"""A portable llama.cpp for this CPU: never `-march=native`, never AMX, AVX-512 where the CPU has it.

pip builds llama-cpp-python from source with llama.cpp's default `GGML_NATIVE=ON`, which compiles for the
build machine's exact CPU: on CPUs with AMX that turns on the AMX matmul path, which crashes in `decode`
(segfault on the first generated token). So setup builds the wheel itself, with `GGML_NATIVE=OFF` and an
explicit instruction set chosen from the CPU's flags:

- the candidates are llama.cpp's own x86 CPU variants (its `GGML_CPU_ALL_VARIANTS` list) minus the one
  that uses AMX; the best one whose features the CPU has wins; no AVX2/FMA/F16C is a clear refusal;
- the wheel is kept in a wheelhouse directory named by the llama-cpp-python version and the variant's
  CMake arguments, and built with `--no-cache-dir`: a wheel built with other flags (pip's cache keys
  wheels by source, not by `CMAKE_ARGS`) is never reused;
- the venv records what it got (`<venv>/workbench-llama.json`), so a second run is a file read.

Stdlib only: setup runs this file with the venv's Python before the package's dependencies are there
(`<venv>/bin/python workbench/llama_build.py install` installs into that venv). `workbench doctor` imports it to report the build.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

DIST = "llama-cpp-python"
VERSION = "0.3.36"  # the same pin as requirements.lock (a test holds them together)
MARKER = "workbench-llama.json"

# CMake feature -> the /proc/cpuinfo flags it needs (GGML_AVX512 compiles with -mavx512{f,cd,vl,dq,bw}).
FEATURE_FLAGS: dict[str, tuple[str, ...]] = {
    "SSE42": ("sse4_2",),
    "AVX": ("avx",),
    "F16C": ("f16c",),
    "FMA": ("fma",),
    "AVX2": ("avx2",),
    "BMI2": ("bmi2",),
    "AVX_VNNI": ("avx_vnni",),
    "AVX512": ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"),
    "AVX512_VBMI": ("avx512vbmi",),
    "AVX512_VNNI": ("avx512_vnni",),
    "AVX512_BF16": ("avx512_bf16",),
}
# Always off: AMX's kernels crash on some CPUs that have it; the rest are not x86 SIMD levels.
FORCED_OFF = ("AMX_TILE", "AMX_INT8", "AMX_BF16")

_BASE = ("SSE42", "AVX", "F16C", "FMA", "AVX2", "BMI2")
# llama.cpp's x86 CPU variants from AVX2 up, in its own order; its `sapphirerapids` variant (AMX) is left out.
VARIANTS: dict[str, tuple[str, ...]] = {
    "haswell": _BASE,
    "skylakex": _BASE + ("AVX512",),
    "cannonlake": _BASE + ("AVX512", "AVX512_VBMI"),
    "cascadelake": _BASE + ("AVX512", "AVX512_VNNI"),
    "icelake": _BASE + ("AVX512", "AVX512_VBMI", "AVX512_VNNI"),
    "cooperlake": _BASE + ("AVX512", "AVX512_VNNI", "AVX512_BF16"),
    "zen4": _BASE + ("AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16"),
    "alderlake": _BASE + ("AVX_VNNI",),
}
ALL_FEATURES = tuple(FEATURE_FLAGS)


class UnsupportedCPU(Exception):
    """The CPU lacks what every portable variant needs (AVX2, FMA, F16C)."""


@dataclass(frozen=True)
class LlamaBuild:
    variant: str
    features: tuple[str, ...]
    pinned: bool = False  # chosen by hand (--variant), not from the CPU's flags

    @property
    def cmake_args(self) -> str:
        on = set(self.features)
        args = ["-DLLAVA_BUILD=OFF", "-DGGML_NATIVE=OFF", "-DGGML_CPU_ALL_VARIANTS=OFF", "-DGGML_BACKEND_DL=OFF"]
        args += [f"-DGGML_{f}={'ON' if f in on else 'OFF'}" for f in ALL_FEATURES]
        args += [f"-DGGML_{f}=OFF" for f in FORCED_OFF]
        return " ".join(args)

    def key(self, version: str) -> str:
        """The wheel's identity: version, variant and a digest of the exact CMake arguments."""
        digest = hashlib.sha256(self.cmake_args.encode()).hexdigest()[:12]
        return f"{version}-{self.variant}-{digest}"


def cpu_flags(cpuinfo_text: str) -> set[str]:
    """The feature flags of the first processor in a /proc/cpuinfo text."""
    for line in cpuinfo_text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() == "flags":
            return set(value.split())
    return set()


def cpu_model(cpuinfo_text: str) -> str:
    match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo_text, re.M)
    return match.group(1).strip() if match else "unknown CPU"


def has_feature(flags: set[str], feature: str) -> bool:
    return all(flag in flags for flag in FEATURE_FLAGS[feature])


def choose(flags: set[str]) -> LlamaBuild:
    """The variant with the most features that this CPU has all of; AMX is never among them."""
    fitting = [(name, feats) for name, feats in VARIANTS.items() if all(has_feature(flags, f) for f in feats)]
    if not fitting:
        missing = [f for f in _BASE if not has_feature(flags, f)]
        raise UnsupportedCPU(
            f"this CPU lacks {', '.join(missing)}; the local model needs an x86-64 CPU with AVX2, FMA and F16C "
            "(2013 or newer). Use a remote model instead: WORKBENCH_MODEL=openai:gpt-4o-mini (or groq:, mistral:, "
            "ollama:)"
        )
    name, feats = max(fitting, key=lambda item: len(item[1]))  # max keeps the first of equals
    return LlamaBuild(name, feats)


def read_cpuinfo(path: str = "/proc/cpuinfo") -> str:
    return Path(path).read_text(errors="replace")


def wheelhouse() -> Path:
    """Per user, outside any checkout, so fresh clones on one machine share the (keyed) builds."""
    if os.environ.get("WORKBENCH_WHEELHOUSE"):
        return Path(os.environ["WORKBENCH_WHEELHOUSE"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "workbench" / "wheels"


def marker_path() -> Path:
    return Path(sys.prefix) / MARKER


def installed_marker() -> dict | None:
    """What setup recorded for this interpreter's environment, or None."""
    path = marker_path()
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def wheel_libraries(wheel: Path) -> dict[str, str]:
    """{path inside the package: sha256 hex} of the wheel's native libraries, from its RECORD."""
    out: dict[str, str] = {}
    with zipfile.ZipFile(wheel) as zf:
        record = next(n for n in zf.namelist() if n.endswith(".dist-info/RECORD"))
        for line in zf.read(record).decode().splitlines():
            path, digest, _ = (line.rsplit(",", 2) + ["", ""])[:3]
            if path.startswith("llama_cpp/") and ".so" in path and digest.startswith("sha256="):
                raw = base64.urlsafe_b64decode(digest[7:] + "=" * (-len(digest[7:]) % 4))
                out[path] = raw.hex()
    return out


def verify_installed(record: dict | None = None) -> tuple[bool, str]:
    """Whether the llama_cpp libraries this interpreter imports are the ones setup built (byte for byte)."""
    record = record if record is not None else installed_marker()
    if not record:
        return False, "no portable build recorded for this environment (setup did not install llama.cpp)"
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return False, "llama_cpp is not installed"
    root = Path(list(spec.submodule_search_locations)[0]).parent
    libs = record.get("libraries") or {}
    if not libs:
        return False, "the build record lists no libraries"
    for rel, sha in libs.items():
        path = root / rel
        if not path.is_file():
            return False, f"{rel} is missing"
        if hashlib.sha256(path.read_bytes()).hexdigest() != sha:
            return False, f"{rel} differs from the {record.get('variant')} build (another build was installed over it)"
    return True, f"{record.get('variant')} build {record.get('key')} ({len(libs)} libraries verified)"


def _say(text: str) -> None:
    print(f"llama-build: {text}", flush=True)


def build_wheel(python: str, version: str, build: LlamaBuild, target: Path) -> Path:
    """`pip wheel` from source with our flags only; the result lands in `target` (atomically)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    env = {k: v for k, v in os.environ.items() if k not in ("CMAKE_ARGS", "FORCE_CMAKE")}
    env.update(CMAKE_ARGS=build.cmake_args, FORCE_CMAKE="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    _say(f"building {DIST} {version} for the {build.variant} variant (no -march=native, no AMX); "
         "about 4 minutes on 2 cores")
    cmd = [python, "-m", "pip", "wheel", "-q", "--no-deps", "--no-cache-dir", "--no-binary", DIST,
           f"{DIST}=={version}", "-w", str(scratch)]
    try:
        subprocess.run(cmd, env=env, check=True)
        wheels = list(scratch.glob("*.whl"))
        if len(wheels) != 1:
            raise SystemExit(f"llama-build: pip wheel left {len(wheels)} wheels in {scratch}; expected one")
        (scratch / "cmake_args.txt").write_text(build.cmake_args + "\n")
        if target.exists():
            shutil.rmtree(target)
        scratch.rename(target)
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(scratch, ignore_errors=True)
        raise SystemExit(f"llama-build: building {DIST} failed (exit {exc.returncode}); it needs gcc, g++ and "
                         "cmake (Debian: apt-get install build-essential cmake)") from exc
    return next(target.glob("*.whl"))


def install(build: LlamaBuild, version: str = VERSION, rebuild: bool = False) -> dict:
    """Install the keyed portable wheel into this interpreter's environment (building it if needed)."""
    key = build.key(version)
    current = installed_marker()
    if current and current.get("key") == key and not rebuild and verify_installed(current)[0]:
        return current
    target = wheelhouse() / key
    wheels = list(target.glob("*.whl")) if target.is_dir() else []
    wheel = wheels[0] if wheels and not rebuild else build_wheel(sys.executable, version, build, target)
    _say(f"installing {wheel.name} ({build.variant}) from {target}")
    marker_path().unlink(missing_ok=True)  # written last: an interrupted install is redone next time
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall",
                    "--no-cache-dir", str(wheel)], check=True)
    record = {"key": key, "version": version, "variant": build.variant, "features": list(build.features),
              "cmake_args": build.cmake_args, "wheel": str(wheel), "libraries": wheel_libraries(wheel),
              "pinned": build.pinned}
    marker_path().write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llama_build.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("choose", "install"):
        p = sub.add_parser(name)
        p.add_argument("--cpuinfo", default="/proc/cpuinfo", help="a /proc/cpuinfo text to choose from")
        p.add_argument("--variant", choices=sorted(VARIANTS), default=os.environ.get("LLAMA_VARIANT") or None,
                       help="override the choice (must fit the CPU); kept for later installs")
    inst = sub.choices["install"]
    inst.add_argument("--rebuild", action="store_true", help="build again even if the wheelhouse has it")
    args = parser.parse_args(argv)
    text = read_cpuinfo(args.cpuinfo)
    flags = cpu_flags(text)
    try:
        build = choose(flags)
    except UnsupportedCPU as exc:
        print(f"llama-build: {exc}", file=sys.stderr)
        return 2
    pinned = (installed_marker() or {}).get("variant") if (installed_marker() or {}).get("pinned") else None
    if not args.variant and pinned in VARIANTS and all(has_feature(flags, f) for f in VARIANTS[pinned]):
        args.variant = pinned  # a variant chosen by hand (after a crash) stays until changed by hand
    if args.variant:
        feats = VARIANTS[args.variant]
        lacking = [f for f in feats if not has_feature(flags, f)]
        if lacking:
            print(f"llama-build: variant {args.variant} needs {', '.join(lacking)}, which this CPU lacks", file=sys.stderr)
            return 2
        build = LlamaBuild(args.variant, feats, pinned=True)
    if args.command == "choose":
        print(json.dumps({"cpu": cpu_model(text), "variant": build.variant, "cmake_args": build.cmake_args}))
        return 0
    install(build, rebuild=args.rebuild)
    return 0


if __name__ == "__main__":
    sys.exit(main())
