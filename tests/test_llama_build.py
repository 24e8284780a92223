"""The portable llama.cpp build: the flag choice from recorded CPUs, the installed build, the smoke test."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, require
from workbench import llama_build, smoke

CPUINFO = REPO / "tests" / "data" / "cpuinfo"
SCRIPT = REPO / "workbench" / "llama_build.py"

EXPECTED = {
    "sapphirerapids-amx.txt": "zen4",  # every AVX-512 extension it has, and still no AMX
    "zen4-epyc.txt": "zen4",
    "skylakex-avx512.txt": "skylakex",
    "alderlake-avx-vnni.txt": "alderlake",
    "haswell-avx2.txt": "haswell",
}


def flags_of(name: str) -> set[str]:
    return llama_build.cpu_flags((CPUINFO / name).read_text())


@pytest.mark.parametrize("cpu,variant", sorted(EXPECTED.items()))
def test_the_build_is_chosen_from_the_cpu_flags(cpu, variant):
    build = llama_build.choose(flags_of(cpu))
    assert build.variant == variant
    args = build.cmake_args.split()
    assert "-DGGML_NATIVE=OFF" in args
    for feature in llama_build.ALL_FEATURES:  # every feature is set explicitly, and on only if the CPU has it
        on = f"-DGGML_{feature}=ON" in args
        assert on or f"-DGGML_{feature}=OFF" in args
        if on:
            assert llama_build.has_feature(flags_of(cpu), feature), feature


def test_a_cpu_with_amx_gets_avx512_and_never_amx():
    flags = flags_of("sapphirerapids-amx.txt")
    assert {"amx_tile", "amx_int8", "amx_bf16", "avx512f"} <= flags  # the recording really has AMX
    args = llama_build.choose(flags).cmake_args.split()
    assert "-DGGML_AVX512=ON" in args and "-DGGML_AVX512_VNNI=ON" in args
    for amx in ("AMX_TILE", "AMX_INT8", "AMX_BF16"):
        assert f"-DGGML_{amx}=OFF" in args
    assert not any("native" in a.lower() and a.endswith("=ON") for a in args)


def test_no_variant_can_turn_on_amx_or_native():
    for name, features in llama_build.VARIANTS.items():
        args = llama_build.LlamaBuild(name, features).cmake_args
        assert "AMX" not in " ".join(features)
        assert re.search(r"AMX_\w+=ON", args) is None
        assert "-DGGML_NATIVE=OFF" in args and "-march" not in args


def test_a_cpu_without_avx2_is_refused_with_one_line():
    with pytest.raises(llama_build.UnsupportedCPU, match="AVX2"):
        llama_build.choose(flags_of("sandybridge-no-avx2.txt"))
    # setup's own entry point: exit 2, one line, nothing built or installed
    proc = subprocess.run([sys.executable, str(SCRIPT), "install", "--cpuinfo",
                           str(CPUINFO / "sandybridge-no-avx2.txt")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "AVX2" in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert "WORKBENCH_MODEL=" in lines[0]  # and says what to do instead


def test_the_wheel_identity_follows_the_flags():
    haswell = llama_build.choose(flags_of("haswell-avx2.txt"))
    zen4 = llama_build.choose(flags_of("zen4-epyc.txt"))
    assert haswell.key("0.3.36") != zen4.key("0.3.36")
    assert zen4.key("0.3.36") == llama_build.choose(flags_of("sapphirerapids-amx.txt")).key("0.3.36")
    same_name_other_flags = llama_build.LlamaBuild("zen4", zen4.features[:-1])
    assert same_name_other_flags.key("0.3.36") != zen4.key("0.3.36")  # the digest, not the name, decides
    assert zen4.key("0.3.37") != zen4.key("0.3.36")


def test_the_build_ignores_pips_cache_and_the_users_cmake_args(monkeypatch, tmp_path):
    """A native wheel in pip's cache, or CMAKE_ARGS=-DGGML_NATIVE=ON in the environment, must not leak in."""
    seen = {}

    def fake_run(cmd, env=None, check=False, **kw):
        seen.update(cmd=cmd, env=env)
        out = Path(cmd[cmd.index("-w") + 1])
        (out / "llama_cpp_python-0.3.36-cp311-cp311-linux_x86_64.whl").write_bytes(b"")
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(llama_build.subprocess, "run", fake_run)
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_NATIVE=ON")
    build = llama_build.choose(flags_of("haswell-avx2.txt"))
    wheel = llama_build.build_wheel(sys.executable, "0.3.36", build, tmp_path / build.key("0.3.36"))
    assert "--no-cache-dir" in seen["cmd"] and "--no-binary" in seen["cmd"]
    assert seen["env"]["CMAKE_ARGS"] == build.cmake_args
    assert wheel.parent.name == build.key("0.3.36")
    assert (wheel.parent / "cmake_args.txt").read_text().strip() == build.cmake_args


def test_a_variant_pinned_by_hand_stays_pinned(monkeypatch, tmp_path, capsys):
    marker = tmp_path / "workbench-llama.json"
    marker.write_text(json.dumps({"variant": "haswell", "pinned": True}))
    monkeypatch.setattr(llama_build, "marker_path", lambda: marker)
    monkeypatch.delenv("LLAMA_VARIANT", raising=False)
    assert llama_build.main(["choose", "--cpuinfo", str(CPUINFO / "zen4-epyc.txt")]) == 0
    assert json.loads(capsys.readouterr().out)["variant"] == "haswell"
    marker.write_text(json.dumps({"variant": "haswell", "pinned": False}))
    assert llama_build.main(["choose", "--cpuinfo", str(CPUINFO / "zen4-epyc.txt")]) == 0
    assert json.loads(capsys.readouterr().out)["variant"] == "zen4"


def test_the_pinned_version_is_the_locked_one():
    lock = (REPO / "requirements.lock").read_text()
    assert f"llama_cpp_python=={llama_build.VERSION}\n" in lock


# --- the build installed in this venv (setup put it there: under CI a missing one is a failure) ----------

def _installed_record() -> dict:
    record = llama_build.installed_marker()
    require(record, f"no portable llama.cpp build recorded in {llama_build.marker_path()}: run `make llama`")
    return record


def test_the_installed_llama_cpp_is_the_portable_build_for_this_cpu():
    record = _installed_record()
    ok, detail = llama_build.verify_installed(record)
    assert ok, detail
    expected = llama_build.choose(llama_build.cpu_flags(llama_build.read_cpuinfo()))
    if not record.get("pinned"):
        assert record["variant"] == expected.variant
    assert "-DGGML_NATIVE=OFF" in record["cmake_args"]


def test_a_library_replaced_after_setup_is_noticed():
    """pip installing another build over setup's (the same file names) must not pass as the portable one."""
    record = _installed_record()
    tampered = {**record, "libraries": {rel: "0" * 64 for rel in record["libraries"]}}
    ok, detail = llama_build.verify_installed(tampered)
    assert not ok and "differs" in detail
    ok, detail = llama_build.verify_installed({**record, "libraries": {"llama_cpp/lib/libgone.so": "0" * 64}})
    assert not ok and "missing" in detail


def test_the_installed_library_has_no_amx_instructions():
    import importlib.util

    record = _installed_record()

    lib_dir = Path(list(importlib.util.find_spec("llama_cpp").submodule_search_locations)[0]) / "lib"
    libs = sorted(lib_dir.glob("libggml-cpu*.so*"))
    assert libs, f"no libggml-cpu in {lib_dir} ({record['key']})"
    disassembly = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(libs[0])], capture_output=True,
                                 text=True, timeout=300).stdout
    assert "vfmadd" in disassembly  # the disassembly is real: FMA is on in every variant
    for amx in ("ldtilecfg", "tileloadd", "tdpbssd", "tdpbf16ps"):
        assert amx not in disassembly, f"{libs[0].name} contains AMX instruction {amx}"
    if "AVX512" in record["features"]:
        assert "zmm" in disassembly  # AVX-512 really used where the CPU has it
    else:
        assert "zmm" not in disassembly


def test_doctor_reports_the_build():
    from workbench import checks, health  # noqa: F401 (checks registers it)

    _installed_record()
    result = health.run_check(health.CHECKS["llama.cpp build"])
    assert result.status == "ok", result.detail


# --- the smoke test -------------------------------------------------------------------------------------

def _crashing_llama_cpp(tmp_path: Path) -> dict:
    """An environment whose `import llama_cpp` kills the importing process with a real SIGSEGV."""
    fake = tmp_path / "crash" / "llama_cpp"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    return {**os.environ, "PYTHONPATH": str(fake.parent)}


def test_smoke_turns_a_native_crash_into_one_line(tmp_path):
    from workbench import weights

    name = "qwen2.5-coder-0.5b"  # never loaded: the crash comes first
    require(weights.status(name)[0], f"{name} not pulled: run `make weights`")
    proc = subprocess.run([str(Path(sys.executable).with_name("workbench")), "models", "smoke", name],
                          capture_output=True, text=True, timeout=120, env=_crashing_llama_cpp(tmp_path))
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "SIGSEGV" in last and "make llama-rebuild" in last and "features:" in last, last
    assert "Traceback" not in proc.stderr and "Segmentation fault" not in proc.stderr


def test_smoke_passes_on_the_real_build():
    from workbench import weights

    name = "qwen2.5-coder-0.5b"
    require(weights.status(name)[0], f"{name} not pulled: run `make weights`")
    result = smoke.run(name, weights.weights_path(name))
    assert result.ok, result.detail
    assert re.match(rf"{name}: [1-9]\d* tokens", result.detail)


def test_describe_exit_names_signals():
    assert smoke.describe_exit(-11) == "SIGSEGV"
    assert smoke.describe_exit(-4) == "SIGILL"
    assert smoke.describe_exit(3) == "exit status 3"
