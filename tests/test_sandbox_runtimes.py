"""Languages in the sandbox (tests parsed from JUnit XML, coverage, formatting), the security scan,
bad input, the `workbench sandbox exec` CLI, the doctor check and the docker backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import TOOLCHAIN_FIX, require, requires, run_cli, sandbox_ok

from workbench.errors import SandboxError
from workbench.sandbox import Limits
from workbench.sandbox.runtimes import (
    RUNTIMES,
    UnknownLanguage,
    get_runtime,
    run_code,
    run_path,
    run_tests,
)
from workbench.sandbox.toolchain import Toolchain

TOOLCHAIN = Toolchain.from_settings()
pytestmark = [requires(*sandbox_ok(toolchain=False)), pytest.mark.timeout(180)]
needs_toolchain = requires(*sandbox_ok())

PY_SRC = "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n\n\ndef unused(x):\n    return -x\n"
PY_TESTS = "from fib import fib\n\n\ndef test_small():\n    assert fib(10) == 55\n\n\ndef test_wrong():\n    assert fib(3) == 3\n"
TS_SRC = "export function add(a:number,b:number):number{return a+b}\nexport function neg(x:number){return -x}\n"
TS_TESTS = ('import { test } from "node:test";\nimport assert from "node:assert/strict";\nimport { add } from "./sum";\n'
            'test("adds", () => { assert.equal(add(1, 2), 3); });\n'
            'test("wrong", () => { assert.equal(add(1, 2), 4); });\n')
JAVA_SRC = "public class Calc {\n  public static int add(int a, int b) { return a + b; }\n}\n"
JAVA_TESTS = ("import org.junit.jupiter.api.Test;\nimport static org.junit.jupiter.api.Assertions.*;\n"
              "class CalcTest {\n  @Test void adds() { assertEquals(3, Calc.add(1, 2)); }\n"
              "  @Test void wrong() { assertEquals(4, Calc.add(1, 2)); }\n}\n")


# --- languages --------------------------------------------------------------------------------


@needs_toolchain
def test_python_tests_parsed_from_junit_xml_with_coverage_and_formatting():
    run = run_tests("python", {"fib.py": "def fib(n):\n  return n if n<2 else fib(n-1)+fib(n-2)\n", "test_fib.py": PY_TESTS})
    assert run.kind == "tests" and not run.ok and run.result.exit_code == 1
    rep = run.report
    assert (rep.tests, rep.passed, rep.failed) == (2, 1, 1) and rep.source == ".workbench/junit.xml"
    assert rep.failure_signature() == frozenset({("test_fib::test_wrong", "AssertionError")})
    assert "assert 2 == 3" in rep.failing()[0].details
    assert run.coverage == 100.0  # fib.py fully run; the test file is not counted
    assert run.files["fib.py"].startswith(b"def fib(n):\n    return n if n < 2")  # ruff-formatted

    fixed = run_tests("python", {"fib.py": PY_SRC, "test_fib.py": PY_TESTS.replace("== 3", "== 2")})
    assert fixed.ok and fixed.report.passed == 2 and fixed.coverage is not None and fixed.coverage < 100


@needs_toolchain
def test_zero_tests_never_counts_as_passed():
    run = run_tests("python", {"test_empty.py": "x = 1\n"})
    assert run.report.tests == 0 and not run.report.ok and not run.ok


@needs_toolchain
def test_python_collection_error_is_a_failing_test():
    run = run_tests("python", {"test_broken.py": "import does_not_exist\n\ndef test_a():\n    assert True\n"})
    assert not run.ok and run.report.errors == 1
    assert run.report.failing()[0].error_type == "ModuleNotFoundError"


@needs_toolchain
def test_typescript_tests_with_prettier_and_coverage():
    run = run_tests("typescript", {"sum.ts": TS_SRC, "sum.test.ts": TS_TESTS})
    rep = run.report
    assert (rep.tests, rep.passed, rep.failed) == (2, 1, 1), run.result.stderr[-2000:]
    assert ("test::wrong", "testCodeFailure") in rep.failure_signature()
    assert run.coverage is not None and 0 < run.coverage < 100  # neg() never ran
    assert run.files["sum.ts"].startswith(b"export function add(a: number, b: number): number {\n")
    assert "MaxListenersExceededWarning" not in run.result.stderr


@needs_toolchain
def test_java_junit5_tests_parsed_and_compile_errors_reported():
    run = run_tests("java", {"Calc.java": JAVA_SRC, "CalcTest.java": JAVA_TESTS})
    rep = run.report
    assert (rep.tests, rep.passed, rep.failed) == (2, 1, 1), run.result.stdout[-2000:]
    assert ("CalcTest::wrong()", "org.opentest4j.AssertionFailedError") in rep.failure_signature()
    assert run.coverage is None and "not measured" in run.coverage_note

    broken = run_tests("java", {"Calc.java": "public class Calc { int x = ; }", "CalcTest.java": JAVA_TESTS})
    assert not broken.ok and broken.report.failure_signature() == frozenset({("compile::javac", "CompilationError")})
    assert "error:" in broken.result.stderr + broken.result.stdout


@needs_toolchain
def test_programs_in_each_language():
    assert run_code("python", "print(sum(range(10)))").result.stdout == "45\n"
    assert run_code("typescript", "const n: number = 7; console.log(n * 6)").result.stdout == "42\n"
    java = run_code("java", "public class Hi { public static void main(String[] a) { System.out.println(\"hi\"); } }")
    assert java.ok and java.result.stdout == "hi\n", java.result.stderr


def test_registry_and_aliases():
    assert set(RUNTIMES) >= {"python", "typescript", "java"}
    assert get_runtime("ts").name == "typescript" and get_runtime("PY").name == "python"


# --- security scan ----------------------------------------------------------------------------


@needs_toolchain
def test_bandit_blocks_high_severity_unless_allowed():
    code = "import subprocess, sys\nsubprocess.call(sys.argv[0] + ' x', shell=True)\nprint('ran')\n"
    blocked = run_code("python", code)
    assert blocked.blocked and blocked.result is None and not blocked.ok
    assert [f.test_id for f in blocked.scan.high] == ["B602"] and blocked.scan.blocks
    allowed = run_code("python", code, allow_high=True)
    assert allowed.result is not None and "ran" in allowed.result.stdout and allowed.scan.findings


@needs_toolchain
def test_low_findings_are_reported_but_do_not_block():
    run = run_code("python", "import pickle\nprint(pickle.dumps(1)[:1])\n")
    assert run.ok and any(f.test_id == "B403" for f in run.scan.findings)


# --- bad input --------------------------------------------------------------------------------


def test_unknown_language_and_empty_code():
    with pytest.raises(UnknownLanguage, match="Available: java, python, typescript"):
        run_code("cobol", "DISPLAY 'HI'.")
    with pytest.raises(SandboxError, match="Empty code"):
        run_code("python", "   \n")
    with pytest.raises(SandboxError, match="No python test files"):
        run_tests("python", {"main.py": "print(1)"})


@needs_toolchain
def test_a_task_reading_host_files_is_denied_and_says_so():
    run = run_code("python", "print(open('/etc/passwd').read())")
    assert not run.ok and "FileNotFoundError" in run.result.stderr and "/etc/passwd" in run.result.stderr


@needs_toolchain
def test_run_path_picks_tests_or_program(tmp_path):
    (tmp_path / "fib.py").write_text(PY_SRC)
    (tmp_path / "test_fib.py").write_text(PY_TESTS.replace("== 3", "== 2"))
    assert run_path("python", tmp_path).kind == "tests"
    (tmp_path / "main.py").write_text("print(sum(range(7)))\n")
    assert run_path("python", tmp_path / "main.py").result.stdout == "21\n"  # a file runs alone


# --- CLI --------------------------------------------------------------------------------------


@needs_toolchain
def test_cli_exec_json_and_exit_codes(tmp_path):
    (tmp_path / "fib.py").write_text(PY_SRC)
    (tmp_path / "test_fib.py").write_text(PY_TESTS)
    out = run_cli("sandbox", "exec", "--language", "python", str(tmp_path), "--json", "--timeout", "60")
    assert out.returncode == 1, out.stderr
    data = json.loads(out.stdout)
    assert data["kind"] == "tests" and data["report"]["passed"] == 1 and data["report"]["failed"] == 1
    assert data["result"]["backend"] == "bwrap" and data["result"]["limits"]["timeout_s"] == 60

    (tmp_path / "main.py").write_text("print('hello')\n")
    out = run_cli("sandbox", "exec", "-l", "python", str(tmp_path / "main.py"), "--memory", "128")
    assert out.returncode == 0 and out.stdout == "hello\n" and "python program: ok" in out.stderr

    (tmp_path / "bad.py").write_text("import os, sys\nos.system(sys.argv[0])\n")
    out = run_cli("sandbox", "exec", "-l", "python", str(tmp_path / "bad.py"))
    assert out.returncode == 3 and "B605" in out.stderr and "BLOCKED" in out.stderr


def test_cli_bad_input_is_one_line_without_traceback(tmp_path):
    out = run_cli("sandbox", "exec", "--language", "cobol", str(tmp_path))
    assert out.returncode == 2 and "Unknown language 'cobol'" in out.stderr and "Traceback" not in out.stderr
    out = run_cli("sandbox", "exec", "--language", "python", str(tmp_path / "missing.py"))
    assert out.returncode == 1 and "does not exist" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


# --- doctor check -----------------------------------------------------------------------------


def test_doctor_sandbox_check():
    import workbench.sandbox.health  # noqa: F401  (registers the check)
    from workbench.health import CHECKS, run_check

    result = run_check(CHECKS["sandbox"])
    assert result.status == "ok" and "bwrap" in result.detail, result


# --- docker backend ---------------------------------------------------------------------------


def test_docker_backend_needs_an_engine():
    from workbench.sandbox.docker import DockerExecutor

    ok, why = DockerExecutor.available()
    if not ok:
        pytest.skip(f"docker backend not tested end to end: {why}")
    run = DockerExecutor().run(["python3", "-c", "print(1)"], language="python", limits=Limits(timeout_s=60))
    assert run.stdout == "1\n"


def test_docker_container_is_locked_down():
    """The options the backend hands to the engine (checked without one)."""
    import docker  # noqa: F401  (a declared dependency: missing, it is a broken install, not a skip)

    from workbench.sandbox.docker import DockerExecutor

    opts = DockerExecutor(client=object(), images={}).container_options(
        Limits(memory_mb=256, cpus=0.5, processes=50, disk_mb=32), {"A": "1"})
    assert opts["network_mode"] == "none" and opts["read_only"] is True and opts["cap_drop"] == ["ALL"]
    assert opts["mem_limit"] == opts["memswap_limit"] == "256m" and opts["pids_limit"] == 50
    assert opts["nano_cpus"] == 500_000_000 and "no-new-privileges" in opts["security_opt"]
    assert opts["tmpfs"]["/work"].startswith("size=32m") and opts["user"] == "1000:1000"
    assert "OPENAI_API_KEY" not in opts["environment"] and opts["environment"]["A"] == "1"


def test_toolchain_stamp_lists_versions():
    stamp = TOOLCHAIN.stamp()
    require(stamp, f"no sandbox toolchain stamp at {TOOLCHAIN.root}: {TOOLCHAIN_FIX}")
    assert {"pytest", "coverage", "typescript", "tsx", "prettier", "python", "node", "node_origin"} <= set(stamp)
    # The node the runtimes use is the one setup recorded (the system's or PyPI's), and it is >= 20.
    from workbench.sandbox.components import node_origin, node_version

    node = TOOLCHAIN.paths()["node"]
    assert node_version(node)[1] == stamp["node"] and node_origin(node) == stamp["node_origin"]
    assert node_version(node)[0] >= 20
    assert not str(TOOLCHAIN.root.resolve()).startswith(str(Path(__file__).resolve().parent.parent))
