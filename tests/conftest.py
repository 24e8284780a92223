"""Test set-up: every test gets its own WORKBENCH_HOME; network beyond loopback is blocked.

Weights live in the shared models directory (never redirected), so a model is assembled once per machine.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from workbench.config import reload_settings

os.environ.setdefault("WORKBENCH_ALLOW_NETWORK", "0")
# The strategy statistics explore at random. Set here as well as per test: module-scoped clusters start
# before the per-test environment, and their workers copy this one.
os.environ.setdefault("WORKBENCH_STRATEGY", "false")
TEST_MODEL = os.environ.get("WORKBENCH_TEST_MODEL", "local:qwen2.5-coder-0.5b")
REPO = Path(__file__).resolve().parent.parent
# Provider keys from the developer's shell must not leak into tests (or their logs).
for var in ("OPENAI_API_KEY", "GROQ_API_KEY", "MISTRAL_API_KEY", "OLLAMA_HOST", "OPENAI_BASE_URL"):
    os.environ.pop(var, None)


def pytest_configure(config):
    config.addinivalue_line("markers", "requires(ok, missing): a component setup installs; skip locally "
                                       "without it, fail under CI=true (tests/helpers.py `requires`)")


@pytest.hookimpl(tryfirst=True)  # before fixtures: a missing component must not be half set up first
def pytest_runtest_setup(item):
    from helpers import require

    for mark in item.iter_markers("requires"):
        require(*mark.args)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("WORKBENCH_ALLOW_NETWORK") == "1":
        return
    skip = pytest.mark.skip(reason="network test: set WORKBENCH_ALLOW_NETWORK=1 to run")
    for item in items:
        if "network" in item.keywords:
            item.add_marker(skip)


_real_connect = socket.socket.connect


def _loopback_only(self, address):
    """No test may reach beyond this machine (unless marked `network` and allowed)."""
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        if host not in ("127.0.0.1", "::1", "localhost") and not str(host).startswith("127."):
            raise ConnectionRefusedError(f"tests are network-off: blocked connection to {host}")
    return _real_connect(self, address)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def isolated_home(monkeypatch, request):
    """A fresh WORKBENCH_HOME per test, outside /tmp/pytest-of-root: an embedded Postgres runs as the
    `pgserver` user, and any pytest session starting on the machine chmods that tree back to 0700."""
    home = Path(tempfile.mkdtemp(prefix="wb-home-"))
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    monkeypatch.setenv("WORKBENCH_ALLOW_NETWORK", "0")
    # Prompt prefixes on disk live in the home, and a model host is per shelf: one per test would load the
    # model again each time. The tests that need the shelf turn it on.
    monkeypatch.setenv("WORKBENCH_LOCAL_PROMPT_CACHE_DISK_MB", "0")
    # Memory would carry answers from one test's tasks into the next (the execution cache answers a repeated
    # request without a model call): off unless a test turns it on.
    monkeypatch.setenv("WORKBENCH_MEMORY", "off")
    # The strategy statistics explore at random: a test that wants its choice turns it on.
    monkeypatch.setenv("WORKBENCH_STRATEGY", "false")
    # Never talk to a developer's running `workbench serve` on the default port.
    monkeypatch.setenv("WORKBENCH_PORT", str(_free_port()))
    if "network" not in request.keywords:
        monkeypatch.setattr(socket.socket, "connect", _loopback_only)
    reload_settings()
    yield home
    _stop_store_under(home)
    shutil.rmtree(home, ignore_errors=True)
    reload_settings()


def _stop_store_under(home: Path) -> None:
    """Never leave an embedded Postgres behind a test."""
    if not (home / "postgres").exists():
        return
    from workbench.store import close_store, current_store
    from workbench.store import postgres as embedded

    store = current_store()
    if store is not None and Path(store.home) == home:
        close_store()
    embedded.stop(home / "postgres")


@pytest.fixture(scope="session")
def test_model() -> str:
    """Name of the small local model; its weights are assembled (once) if missing."""
    import importlib.util

    from helpers import require

    from workbench import weights

    require(importlib.util.find_spec("llama_cpp"), "llama_cpp (llama-cpp-python) is not installed: run `make venv`")
    weights.verified_path(TEST_MODEL.removeprefix("local:"))
    return TEST_MODEL
