"""workbench as a real package: its wheel installed (not editable) into a fresh venv, run outside a checkout.

The fresh venv gets the dependencies from this checkout's venv through a .pth line (installing 2 GB again
would prove nothing about workbench), but workbench itself only from the wheel, and llama.cpp the way a
package user gets it: `python -m workbench.llama_build install`, from the keyed wheelhouse.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO, require
from workbench import llama_build, weights

pytestmark = pytest.mark.slow
TEST_MODEL = "qwen2.5-coder-0.5b"


def sh(cmd: list[str], timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    record = llama_build.installed_marker()
    require(record and Path(record["wheel"]).is_file(), "no portable llama.cpp wheel in the wheelhouse: run `make llama`")
    require(weights.status(TEST_MODEL)[0], f"{TEST_MODEL} not pulled: run `make weights`")
    tmp = tmp_path_factory.mktemp("package")
    built = sh([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"), str(REPO)], timeout=600)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp / "dist").glob("workbench-*.whl"))

    venv = tmp / "venv"
    made = sh([sys.executable, "-m", "venv", str(venv)])  # venv bases it on the interpreter under .venv
    assert made.returncode == 0, made.stderr
    py = venv / "bin" / "python"
    site = Path(sh([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "_workbench_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    inst = sh([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)])
    assert inst.returncode == 0, inst.stderr

    home = tmp / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKBENCH_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / ".local" / "share"), XDG_CACHE_HOME=str(home / ".cache"),
               WORKBENCH_WHEELHOUSE=str(llama_build.wheelhouse()), PATH=f"{venv / 'bin'}:{os.environ['PATH']}")
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    return {"wheel": wheel, "venv": venv, "py": py, "env": env, "cwd": elsewhere,
            "data": home / ".local" / "share" / "workbench"}


def run(installed: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return sh([str(installed["venv"] / "bin" / "workbench"), *args], timeout=timeout, env=installed["env"],
              cwd=installed["cwd"])


def test_the_wheel_holds_the_package_data(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    for data in ("workbench/prices.yaml", "workbench/alerts.yaml", "workbench/gateway/policy.yaml",
                 "workbench/agents/agents.yaml"):
        assert data in names
    assert any(n.startswith("dashboards/") for n in names) and any(n.startswith("pipelines/") for n in names)
    assert not any(n.startswith(("tests/", "data/", "benchmarks/")) for n in names)


def test_the_installed_package_is_not_the_checkout(installed):
    where = sh([str(installed["py"]), "-c", "import workbench; print(workbench.__file__)"], env=installed["env"],
               cwd=installed["cwd"])
    assert where.returncode == 0, where.stderr
    assert str(installed["venv"]) in where.stdout and str(REPO) not in where.stdout


def test_data_and_models_go_to_the_per_user_directory(installed):
    out = run(installed, "config", "--json")
    assert out.returncode == 0, out.stderr
    settings = json.loads(out.stdout)
    assert Path(settings["home"]) == installed["data"]
    assert Path(settings["models_dir"]) == installed["data"] / "models"


def test_doctor_and_ask_work_on_the_test_model(installed):
    # llama.cpp the way a package user installs it: the portable build from the keyed wheelhouse
    built = sh([str(installed["py"]), "-m", "workbench.llama_build", "install"], env=installed["env"],
               cwd=installed["cwd"])
    assert built.returncode == 0, built.stdout + built.stderr
    models = installed["data"] / "models"
    models.mkdir(parents=True, exist_ok=True)
    source = weights.weights_path(TEST_MODEL)
    for path in (source, source.with_name(source.name + ".verified.json")):
        target = models / path.name
        if not target.exists():
            os.link(path, target)  # same inode: the stamp's size and mtime still match, no 0.5 GB copy
    env = {**installed["env"], "WORKBENCH_MODEL": f"local:{TEST_MODEL}"}
    doctor = sh([str(installed["venv"] / "bin" / "workbench"), "doctor", "--json"], env=env, cwd=installed["cwd"],
                timeout=600)
    report = json.loads(doctor.stdout)
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    assert doctor.returncode == 0 and not failed, failed or doctor.stderr
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses["llama.cpp build"] == "ok" and statuses["model smoke"] == "ok"
    ask = sh([str(installed["venv"] / "bin" / "workbench"), "ask", "Reply with the single word: hello",
              "--model", f"local:{TEST_MODEL}"], env=env, cwd=installed["cwd"])
    assert ask.returncode == 0, ask.stderr
    assert ask.stdout.strip(), "ask printed no answer"
