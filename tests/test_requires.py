"""`require`/`requires` (tests/helpers.py): a component that setup installs skips a local run when it is
missing, and fails a CI run (CI=true), naming what is missing. Checked on a real pytest in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import REPO

TINY = '''
import pytest
from helpers import require, requires, sandbox_ok

RAN = []


@pytest.fixture
def expensive():
    RAN.append("fixture")  # must not run when the component is missing
    yield


def test_function_form():
    require(False, "no frobnicator: run `make frobnicator`")


@requires(*sandbox_ok())  # WORKBENCH_TOOLCHAIN_DIR points at an empty folder
def test_mark_form(expensive):
    pass


@requires(True, "never shown")
def test_present(expensive):
    require(True, "never shown")


def test_fixture_never_ran_for_the_missing_component():
    assert RAN == ["fixture"]  # only test_present's
'''


def run_tiny(tmp_path, ci: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "test_tiny.py").write_text(TINY)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = str(REPO / "tests")
    env["WORKBENCH_TOOLCHAIN_DIR"] = str(tmp_path / "no-toolchain")
    # The project's conftest as a plugin: the same `requires` hook the real suite runs under.
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "conftest", "-p", "no:cacheprovider",
                           "-c", os.devnull, "--rootdir", str(tmp_path), str(tmp_path / "test_tiny.py")],
                          check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)


def outcomes(out: str) -> dict[str, str]:
    """test name -> PASSED/FAILED/ERROR/SKIPPED from pytest's -rA short summary."""
    found = {}
    for line in out.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("PASSED", "FAILED", "ERROR", "SKIPPED"):
            name = rest.split("::")[-1].split(" ")[0] if "::" in rest else rest
            found[name] = word
    return found


@pytest.mark.timeout(300)
def test_a_missing_component_skips_locally(tmp_path):
    res = run_tiny(tmp_path, ci=None)
    got = outcomes(res.stdout)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("SKIPPED") == 2 and "no frobnicator: run `make frobnicator`" in res.stdout, res.stdout
    assert "make toolchain" in res.stdout or "make system" in res.stdout, res.stdout
    assert got.get("test_present") == "PASSED" and got.get("test_fixture_never_ran_for_the_missing_component") == "PASSED", got


@pytest.mark.timeout(300)
@pytest.mark.parametrize("ci", ["true", "TRUE"])
def test_a_missing_component_fails_under_ci(tmp_path, ci):
    res = run_tiny(tmp_path, ci=ci)
    got = outcomes(res.stdout)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "SKIPPED" not in res.stdout, res.stdout
    assert got.get("test_function_form") == "FAILED", got
    assert got.get("test_mark_form") == "ERROR", got  # failed in setup, before its fixture ran
    # Each failure names what is missing and how to install it.
    assert "CI=true, so this cannot be skipped: no frobnicator: run `make frobnicator`" in res.stdout, res.stdout
    assert ("CI=true, so this cannot be skipped: no sandbox toolchain at" in res.stdout
            or "CI=true, so this cannot be skipped: bubblewrap unusable" in res.stdout), res.stdout
    assert got.get("test_present") == "PASSED" and got.get("test_fixture_never_ran_for_the_missing_component") == "PASSED", got
