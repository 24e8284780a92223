"""`make lab`: the `workbench` kernel spec its install step registers, a kernel started from that spec, and
JupyterLab itself on a free port answering its REST API with the token."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from helpers import REPO, free_port, wait_http

pytestmark = pytest.mark.timeout(180)
sys.path.insert(0, str(REPO / "scripts"))
import lab  # noqa: E402  (scripts/lab.py: what `make lab` runs)


def _jupyter_env(tmp: Path, prefix: Path) -> dict[str, str]:
    """Jupyter's folders in the test's own directory: nothing read from or written to the user's ~/.jupyter."""
    return {**os.environ, "JUPYTER_PATH": str(prefix / "share" / "jupyter"),
            "JUPYTER_CONFIG_DIR": str(tmp / "config"), "JUPYTER_DATA_DIR": str(tmp / "data"),
            "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "IPYTHONDIR": str(tmp / "ipython")}


@pytest.fixture
def kernel_prefix(tmp_path, isolated_home):
    """The kernel spec, installed by the make target itself (twice: it must be idempotent)."""
    prefix = tmp_path / "prefix"
    env = {**os.environ, "WORKBENCH_MODELS_DIR": str(tmp_path / "weights")}
    for _ in range(2):
        done = subprocess.run(["make", "-s", "lab-kernel", f"BIN={Path(sys.executable).parent}",
                               f"KERNEL_PREFIX={prefix}"], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
    assert f"WORKBENCH_HOME={isolated_home}" in done.stdout
    return prefix


def test_the_make_step_registers_the_workbench_kernel(kernel_prefix, tmp_path, isolated_home):
    spec = json.loads((kernel_prefix / "share/jupyter/kernels/workbench/kernel.json").read_text())
    assert spec["argv"][0] == sys.executable  # the project's venv interpreter
    assert spec["env"] == {"WORKBENCH_HOME": str(isolated_home), "WORKBENCH_MODELS_DIR": str(tmp_path / "weights")}
    listed = subprocess.run([str(Path(sys.executable).with_name("jupyter")), "kernelspec", "list", "--json"],
                            env=_jupyter_env(tmp_path, kernel_prefix), capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    kernels = json.loads(listed.stdout)["kernelspecs"]
    assert Path(kernels["workbench"]["resource_dir"]) == kernel_prefix / "share/jupyter/kernels/workbench"
    assert kernels["workbench"]["spec"]["display_name"] == lab.DISPLAY


def test_a_kernel_from_the_spec_sees_the_users_home(kernel_prefix, tmp_path, isolated_home, monkeypatch):
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    for key, value in _jupyter_env(tmp_path, kernel_prefix).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("WORKBENCH_HOME", "/somewhere/else")  # the spec's value wins: the user's, resolved at install
    ksm = KernelSpecManager(kernel_dirs=[str(kernel_prefix / "share/jupyter/kernels")])
    manager = KernelManager(kernel_name="workbench", kernel_spec_manager=ksm)
    manager.start_kernel()
    client = manager.client()
    try:
        client.start_channels()
        client.wait_for_ready(timeout=60)
        out: list[str] = []
        code = "import os, sys, workbench; print(sys.executable, os.environ['WORKBENCH_HOME'], workbench.__version__)"
        reply = client.execute_interactive(code, timeout=60, output_hook=lambda m: out.append(
            m["content"].get("text", "")) if m["msg_type"] == "stream" else None)
        assert reply["content"]["status"] == "ok", reply["content"]
        assert "".join(out).split() == [sys.executable, str(isolated_home), "0.1.0"]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_jupyterlab_answers_with_the_token_and_lists_the_kernel(kernel_prefix, tmp_path):
    port, token = free_port(), "test-token-0123456789"
    command = [*lab.lab_command(port, REPO), f"--IdentityProvider.token={token}"]
    assert "--no-browser" in command and "--ServerApp.ip=127.0.0.1" in command
    proc = subprocess.Popen(command, env=_jupyter_env(tmp_path, kernel_prefix), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        status = wait_http(f"{base}/api/status?token={token}", timeout=90, proc=proc)
        assert status.status_code == 200 and "started" in status.json()
        assert httpx.get(f"{base}/api/kernelspecs", timeout=10).status_code == 403  # no token, no API
        specs = httpx.get(f"{base}/api/kernelspecs", headers={"Authorization": f"token {token}"}, timeout=10).json()
        assert specs["default"] == "workbench"
        assert specs["kernelspecs"]["workbench"]["spec"]["argv"][0] == sys.executable
        page = httpx.get(f"{base}/lab?token={token}", timeout=30, follow_redirects=True)
        assert page.status_code == 200 and "JupyterLab" in page.text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert f"127.0.0.1:{port}/lab?token=" in output  # the log tells the user the URL with its token
